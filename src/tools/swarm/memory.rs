//! `set_memory_limit`: `docker service update --limit-memory VALUE SERVICE` (runbook P1 step 2,
//! "resource limits"). The value is checked here first (digits and one unit letter, so it can
//! never be read as an option or carry anything else) and parsed exactly as the CLI parses it
//! (binary units), so the plan can show the bytes; the CLI then validates it again.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cli;
use crate::engine::plan::{Change, Fact, UndoCall};
use crate::engine::runner::RunOutcome;
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Name, ToolError, ToolMeta, Toolset,
};

pub struct SetMemoryLimit;

/// The engine refuses smaller limits (swarmkit: "Must be at least 4MiB").
const MIN_BYTES: i64 = 4 << 20;

/// Parameters of `set_memory_limit`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Swarm service, one of `[swarm] services` (e.g. `cctelegram_mcp-server`).
    pub service: Name,
    /// Memory limit per task as the docker CLI takes it: digits and an optional unit `b`, `k`,
    /// `m` or `g` (binary: `2G` = 2 GiB), at least 4 MiB; `0` removes the limit.
    #[schemars(regex(pattern = r"^[0-9]{1,15}[bkmgBKMG]?$"))]
    pub limit: String,
}

/// `2G` → 2147483648, as the CLI's `RAMInBytes` reads it; `None` for anything else.
fn bytes(v: &str) -> Option<i64> {
    let (digits, unit) = match v.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&v[..i], Some(c.to_ascii_lowercase())),
        _ => (v, None),
    };
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let shift = match unit {
        None | Some('b') => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some(_) => return None,
    };
    n.checked_mul(1 << shift)
}

fn limit_bytes(v: &str) -> Result<i64, ToolError> {
    match bytes(v) {
        Some(b) if b == 0 || b >= MIN_BYTES => Ok(b),
        Some(b) => Err(ToolError::invalid(
            "limit",
            format!("`{v}` is {b} bytes; a limit must be at least 4 MiB (`4m`), or `0` for none"),
        )),
        None => Err(ToolError::invalid(
            "limit",
            format!(
                "`{}` is not a memory size like `2G`, `512m` or `0`: digits (at most 15) and \
                 one optional unit b, k, m or g",
                v.escape_debug()
            ),
        )),
    }
}

impl Action for SetMemoryLimit {
    const META: ToolMeta = ToolMeta {
        name: "set_memory_limit",
        title: "Set a Swarm service's memory limit",
        description: "Sets the memory limit of each task of a Docker Swarm service (`docker \
            service update --limit-memory 2G`; `0` removes the limit), bound to the limit read \
            now, and waits until the service shows it. Use to contain resource exhaustion \
            (runbook P1 step 2). The tasks restart with the new limit. Needs approval of the \
            exact plan, which shows the limit before and after; try `dry_run` first. Returns \
            the steps and the service read back.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    const HOSTS: bool = false;
    type Params = Params;

    /// A smaller limit than the one in force (or a first limit where there was none) can kill
    /// tasks that fit today: destructive.
    fn effect(_ctx: &Ctx, p: &Params, facts: &Facts) -> Effect {
        let now = facts
            .typed::<cli::Now>(&cli::fact_name(p.service.as_str()))
            .map(|n| n.memory_limit_bytes);
        match (limit_bytes(&p.limit), now) {
            (Ok(want), Ok(now)) if want != 0 && (now == 0 || want < now) => Effect::Destructive,
            (Ok(_), Ok(_)) => Effect::Change,
            // Unknown: the stronger one.
            _ => Effect::Destructive,
        }
    }

    fn facts(ctx: &Ctx, _c: &Common, p: &Params) -> Result<Vec<(String, Fact)>, ToolError> {
        limit_bytes(&p.limit)?;
        cli::facts(ctx, &p.service)
    }

    fn plan(ctx: &Ctx, _c: &Common, p: &Params, facts: &Facts) -> Result<Draft, ToolError> {
        let sw = cli::swarm(ctx)?;
        let service = cli::service(sw, &p.service)?;
        let want = limit_bytes(&p.limit)?;
        let value = facts.get(&cli::fact_name(service))?;
        let now: cli::Now = facts.typed(&cli::fact_name(service))?;
        let argv = cli::docker(
            sw,
            &[
                "service",
                "update",
                "--detach",
                "--limit-memory",
                &p.limit,
                service,
            ],
        );
        Ok(Draft {
            stages: vec![cli::stage(vec![
                cli::expect(sw, service, value),
                cli::command(argv),
                cli::wait_for(
                    sw,
                    service,
                    &format!(
                        "`{service}` has a memory limit of {}",
                        cli::memory(Some(want))
                    ),
                    "memory_limit_bytes",
                    vec![json!(want)],
                ),
                cli::after(sw, service),
            ])],
            changes: vec![Change {
                what: format!("memory limit of {service}"),
                before: cli::memory(Some(now.memory_limit_bytes)),
                after: cli::memory(Some(want)),
            }],
            undo: vec![UndoCall {
                tool: "set_memory_limit".into(),
                arguments: json!({
                    "service": service,
                    "limit": match now.memory_limit_bytes {
                        0 => "0".to_string(),
                        b => format!("{b}b"),
                    },
                    "reason": "undo the memory limit",
                }),
            }],
            targets: vec![cli::target(service)],
            confirm_text: service.into(),
            ..Draft::default()
        })
    }

    fn preflight(
        ctx: &Ctx,
        _c: &Common,
        p: &Params,
        facts: &Facts,
    ) -> Result<Vec<String>, ToolError> {
        cli::preflight(ctx, &p.service, facts)
    }

    fn summary(_c: &Common, p: &Params, out: &RunOutcome) -> String {
        if out.ok {
            format!("{}: memory limit now {}", p.service, p.limit)
        } else {
            format!("{}: {}", p.service, out.line())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_like_the_cli_and_anything_else_is_refused_naming_the_field() {
        assert_eq!(bytes("2G"), Some(2 << 30));
        assert_eq!(bytes("2g"), Some(2147483648));
        assert_eq!(bytes("512m"), Some(512 << 20));
        assert_eq!(bytes("4096k"), Some(4 << 20));
        assert_eq!(bytes("5000000"), Some(5_000_000));
        assert_eq!(bytes("5000000b"), Some(5_000_000));
        assert_eq!(bytes("0"), Some(0));
        for bad in [
            "",
            "G",
            "2X",
            "2GB",
            "2 G",
            "-2G",
            "1.5g",
            "2G;reboot",
            "9999999999999999g",
        ] {
            assert_eq!(bytes(bad), None, "{bad}");
            let e = limit_bytes(bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("limit"));
        }
        assert_eq!(bytes("999999999999999g"), None, "overflows i64");
        assert!(
            limit_bytes("1m")
                .unwrap_err()
                .message
                .contains("at least 4 MiB")
        );
        assert_eq!(limit_bytes("0").unwrap(), 0);
    }
}
