//! What the swarm tools share: the `[swarm]` table, the exact `docker -H HOST ...` argv, running
//! on this server (local executor: argv, never a shell), and the service as a fact the plan reads.
//!
//! Every mutating command carries `--detach`: without it the CLI watches the update converge
//! (polling tasks and nodes, then waiting the service's `UpdateConfig.Monitor`, 5 s by
//! default), which on a real Swarm takes minutes for a rolling update — past the command
//! timeout, so the call would end "outcome unknown" while the manager carries on anyway. With
//! `--detach` the CLI returns once the manager has accepted the new spec; the tool then reads
//! the plan waits (a bounded probe) until the service shows the change and reads it back.

use serde_json::Value;

use crate::config::Swarm;

use crate::engine::Target;
use crate::engine::plan::{At, Check, Command, Extract, Fact, Probe, Read, Stage, Step};
use crate::engine::{Ctx, Name, ToolError};

/// The `[swarm]` table, or why the swarm tools cannot work.
pub fn swarm(ctx: &Ctx) -> Result<&Swarm, ToolError> {
    ctx.config.swarm.as_ref().ok_or_else(|| {
        ToolError::unavailable(
            "no Docker Swarm is configured (a `[swarm]` table with `docker_host` and `services`)",
        )
    })
}

/// The service argument: one of `[swarm] services`.
pub fn service<'a>(sw: &'a Swarm, name: &Name) -> Result<&'a str, ToolError> {
    sw.services
        .iter()
        .find(|s| s.as_str() == name.as_str())
        .map(String::as_str)
        .ok_or_else(|| {
            ToolError::invalid(
                "service",
                format!(
                    "`{name}` is not a Swarm service this server may touch; `[swarm] services` has: {}",
                    sw.services.join(", ")
                ),
            )
        })
}

/// `docker -H HOST ARGS...`.
pub fn docker(sw: &Swarm, args: &[&str]) -> Vec<String> {
    let mut argv = vec!["docker".to_string(), "-H".into(), sw.docker_host.clone()];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// The busy lock and forbidden-services key: one Swarm service, whatever the tool.
pub fn target(service: &str) -> Target {
    Target {
        host: "swarm".into(),
        service: Some(service.into()),
    }
}

/// `2 GiB`, `1536 MiB`, `none`.
pub fn memory(bytes: Option<i64>) -> String {
    const UNITS: [(i64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    match bytes {
        None | Some(0) => "none".into(),
        Some(b) => UNITS.iter().find(|(u, _)| b % u == 0).map_or_else(
            || format!("{b} bytes"),
            |(u, name)| format!("{} {name}", b / u),
        ),
    }
}

/// The service as the plan reads it (`docker service inspect`): version, image, previous
/// image, replicas, memory limit, update state.
pub fn fact(sw: &Swarm, service: &str) -> Fact {
    Fact {
        read: Read::Run(Command::new(
            &At::server(),
            docker(sw, &["service", "inspect", service]),
            false,
        )),
        extract: Extract::SwarmService {
            service: service.into(),
        },
    }
}

/// The fact's value, typed.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Now {
    pub version: u64,
    pub image: String,
    pub replicas: Option<u64>,
    pub memory_limit_bytes: i64,
    pub previous_image: Option<String>,
}

impl Now {
    /// One line for the approver.
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name}: version {}, image {}, {} replicas wanted, memory limit {}{}",
            self.version,
            self.image,
            self.replicas.map_or("-".into(), |r| r.to_string()),
            memory(Some(self.memory_limit_bytes)),
            self.previous_image
                .as_ref()
                .map(|p| format!(", previous image {p}"))
                .unwrap_or_default()
        )
    }
}

/// The facts every swarm plan reads: the service itself.
pub fn facts(ctx: &Ctx, name: &Name) -> Result<Vec<(String, Fact)>, ToolError> {
    let sw = swarm(ctx)?;
    let service = service(sw, name)?;
    Ok(vec![(fact_name(service), fact(sw, service))])
}

/// The approver's line about the service as read.
pub fn preflight(
    ctx: &Ctx,
    name: &Name,
    facts: &crate::engine::Facts,
) -> Result<Vec<String>, ToolError> {
    let service = service(swarm(ctx)?, name)?;
    let now: Now = facts.typed(&fact_name(service))?;
    Ok(vec![now.line(service)])
}

/// The fact name of `service`.
pub fn fact_name(service: &str) -> String {
    format!("swarm service {service}")
}

/// The service read at plan time must still be the same right before the command.
pub fn expect(sw: &Swarm, service: &str, now: &Value) -> Step {
    Step::Expect {
        what: format!("`{service}` (version, image, previous image, replicas, memory limit)"),
        fact: fact(sw, service),
        value: now.clone(),
    }
}

/// The planned command on this server.
pub fn command(argv: Vec<String>) -> Step {
    Step::run(&At::server(), argv, false)
}

/// Waits until the service's `field` is one of `values` (the engine applied the change).
pub fn wait_for(sw: &Swarm, service: &str, what: &str, field: &str, values: Vec<Value>) -> Step {
    Step::WaitUntil {
        probe: Probe::Fact {
            what: what.into(),
            fact: fact(sw, service),
            check: Check::OneOf {
                field: field.into(),
                values,
            },
        },
        within_secs: 60,
        every_ms: 500,
    }
}

/// Records the service after the change.
pub fn after(sw: &Swarm, service: &str) -> Step {
    Step::Capture {
        name: "after".into(),
        fact: fact(sw, service),
    }
}

/// The one stage of a swarm plan.
pub fn stage(steps: Vec<Step>) -> Stage {
    Stage {
        name: "call".into(),
        via: "local".into(),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_in_the_largest_whole_unit() {
        assert_eq!(memory(None), "none");
        assert_eq!(memory(Some(2 << 30)), "2 GiB");
        assert_eq!(memory(Some(1536 << 20)), "1536 MiB");
        assert_eq!(memory(Some(1000)), "1000 bytes");
    }

    #[test]
    fn argv_puts_the_engine_first_and_never_a_shell() {
        let sw = Swarm {
            docker_host: "tcp://127.0.0.1:23750".into(),
            services: vec!["web".into()],
            max_replicas: 10,
        };
        assert_eq!(
            docker(&sw, &["service", "scale", "--detach", "web=6"]),
            [
                "docker",
                "-H",
                "tcp://127.0.0.1:23750",
                "service",
                "scale",
                "--detach",
                "web=6"
            ]
        );
        let err = service(
            &sw,
            &serde_json::from_value(serde_json::json!("db")).unwrap(),
        );
        assert_eq!(err.unwrap_err().field.as_deref(), Some("service"));
    }
}
