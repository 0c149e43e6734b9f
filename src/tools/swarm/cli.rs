//! What the swarm tools share: the `[swarm]` table, the exact `docker -H HOST ...` argv, running
//! it on this server (local executor: argv, never a shell), and reading the service back.
//!
//! Every mutating command carries `--detach`: without it the CLI watches the update converge
//! (polling tasks and nodes, then waiting the service's `UpdateConfig.Monitor`, 5 s by
//! default), which on a real Swarm takes minutes for a rolling update — past the command
//! timeout, so the call would end "outcome unknown" while the manager carries on anyway. With
//! `--detach` the CLI returns once the manager has accepted the new spec; the tool then reads
//! the service back and reports what it wants and runs now.

use schemars::JsonSchema;
use serde::Serialize;

use crate::analyze::ServiceState;
use crate::analyze::docker::{SwarmSpec, parse_service_inspect, parse_service_ls};
use crate::config::Swarm;
use crate::engine::action::Target;
use crate::engine::{Ctx, Name, ToolError};
use crate::exec::{Cmd, ExecError};

/// Steps run here, on the server (`docker -H` reaches the manager).
pub const SERVER: &str = "server";

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

/// What the planned command did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CliRun {
    /// The command line, exactly as planned.
    pub command: String,
    /// The CLI's exit code; absent when it did not finish (timed out: outcome unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub ok: bool,
    /// First line of the CLI's error output (or why it did not run to the end).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Runs one planned command and reports it (never an error: the report says what happened).
pub async fn run(ctx: &Ctx, argv: &[String]) -> CliRun {
    let command = argv.join(" ");
    match ctx.fleet.run_local(&Cmd::new(argv.iter().cloned())).await {
        Ok(o) => CliRun {
            command,
            exit_code: o.exit_code,
            ok: o.success(),
            error: if o.success() {
                String::new()
            } else {
                first_line(&o.stderr)
            },
        },
        Err(e) => CliRun {
            command,
            exit_code: None,
            ok: false,
            error: match e {
                ExecError::TimedOut(_) => format!("{e}: outcome unknown"),
                other => other.to_string(),
            },
        },
    }
}

/// A read command's stdout, or an error naming the command and the CLI's own message.
async fn output(ctx: &Ctx, argv: &[String]) -> Result<String, ToolError> {
    let command = argv.join(" ");
    let o = ctx
        .fleet
        .run_local(&Cmd::new(argv.iter().cloned()))
        .await
        .map_err(|e| ToolError::unavailable(format!("`{command}`: {e}")))?;
    if !o.success() {
        return Err(ToolError::unavailable(format!(
            "`{command}` failed (exit {}): {}",
            o.exit_code.map_or("-".into(), |c| c.to_string()),
            first_line(&o.stderr)
        )));
    }
    Ok(o.stdout)
}

/// A Swarm service as it is now: `docker service ls` (tasks running) and `docker service
/// inspect` (what its spec sets, and the previous spec a rollback restores).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ServiceNow {
    /// Tasks running / wanted as `docker service ls` prints them, e.g. `3/3`.
    pub replicas: String,
    /// Tasks running now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_running: Option<u32>,
    /// running, degraded, failed, stopped (0 wanted) or unknown.
    pub state: ServiceState,
    /// The engine's version index of the service (each accepted update bumps it).
    pub version: u64,
    /// The spec in force.
    pub spec: SwarmSpec,
    /// The spec a rollback would restore; absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<SwarmSpec>,
    /// State of the last update or rollback (`completed`, `updating`, `paused`,
    /// `rollback_completed`, ...); empty when there was none.
    pub update_state: String,
}

impl ServiceNow {
    /// One line for the approver: the `docker service ls` view plus what the spec sets.
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name}: {} tasks running ({}), image {}, memory limit {}{}",
            self.replicas,
            self.spec.mode,
            self.spec.image,
            memory(self.spec.memory_limit_bytes),
            if self.update_state.is_empty() {
                String::new()
            } else {
                format!(", last update {}", self.update_state)
            }
        )
    }
}

/// Reads `service` from the manager (`service ls` and `service inspect`, at once).
pub async fn read(ctx: &Ctx, sw: &Swarm, service: &str) -> Result<ServiceNow, ToolError> {
    let name_filter = format!("name={service}");
    let ls = docker(
        sw,
        &[
            "service",
            "ls",
            "--filter",
            &name_filter,
            "--format",
            "{{json .}}",
        ],
    );
    let inspect = docker(sw, &["service", "inspect", service]);
    let (listed, inspected) = tokio::join!(output(ctx, &ls), output(ctx, &inspect));
    let bad = |e: crate::analyze::ParseError| ToolError::unavailable(e.to_string());
    // `name=` filters by prefix: pick the exact name.
    let listed = parse_service_ls(&listed?)
        .map_err(bad)?
        .into_iter()
        .find(|s| s.name == service);
    let inspected = parse_service_inspect(&inspected?)
        .map_err(bad)?
        .into_iter()
        .find(|s| s.name == service);
    match (listed, inspected) {
        (Some(l), Some(i)) => Ok(ServiceNow {
            replicas: l.replicas_text,
            replicas_running: l.replicas_running,
            state: l.state,
            version: i.version,
            spec: i.spec,
            previous: i.previous,
            update_state: i.update_state,
        }),
        _ => Err(ToolError::unavailable(format!(
            "the Swarm at {} has no service `{service}`",
            sw.docker_host
        ))),
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

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string()
}

/// The result of every swarm tool: the command, and the service read back after it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SwarmResult {
    pub service: String,
    pub command: CliRun,
    /// The service after the command (absent when it could not be read back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<ServiceNow>,
    /// Why the service could not be read back (the command's own result stands).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub readback_error: String,
    /// The command succeeded and the service now shows the change.
    pub ok: bool,
}

impl SwarmResult {
    /// Runs the planned command, reads the service back, and judges the change by `shows`.
    pub async fn run_and_read(
        ctx: &Ctx,
        sw: &Swarm,
        service: &str,
        argv: &[String],
        shows: impl Fn(&ServiceNow) -> bool,
    ) -> Self {
        let command = run(ctx, argv).await;
        let (after, readback_error) = match read(ctx, sw, service).await {
            Ok(now) => (Some(now), String::new()),
            Err(e) => (None, e.message),
        };
        let ok = command.ok && after.as_ref().is_some_and(shows);
        Self {
            service: service.into(),
            command,
            after,
            readback_error,
            ok,
        }
    }

    /// What went wrong, for the summary: `FAILED: <command> (exit N): <error>` when the
    /// command failed, a note when the readback failed or does not show the change, else `""`.
    pub fn failure(&self) -> String {
        if self.command.ok {
            return match (&self.after, self.ok) {
                (None, _) => format!(" (not read back: {})", self.readback_error),
                (Some(_), false) => " — but the service does not show the change".into(),
                _ => String::new(),
            };
        }
        format!(
            "FAILED: `{}` (exit {}): {}",
            self.command.command,
            self.command.exit_code.map_or("-".into(), |c| c.to_string()),
            self.command.error
        )
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
