//! `set_memory_limit`: `docker service update --limit-memory VALUE SERVICE` (runbook P1 step 2,
//! "resource limits"). The value is checked here first (digits and one unit letter, so it can
//! never be read as an option or carry anything else) and parsed exactly as the CLI parses it
//! (binary units), so the plan can show the bytes; the CLI then validates it again.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cli::{self, SERVER, SwarmResult};
use crate::engine::action::{Action, Draft, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, Name, ToolError, ToolMeta, Toolset};

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
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan and the current limit; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

crate::impl_mutating!(Params, no_hosts);

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

fn argv(sw: &crate::config::Swarm, service: &str, limit: &str) -> Vec<String> {
    cli::docker(
        sw,
        &[
            "service",
            "update",
            "--detach",
            "--limit-memory",
            limit,
            service,
        ],
    )
}

impl Action for SetMemoryLimit {
    const META: ToolMeta = ToolMeta {
        name: "set_memory_limit",
        title: "Set a Swarm service's memory limit",
        description: "Sets the memory limit of each task of a Docker Swarm service (`docker \
            service update --limit-memory 2G`; `0` removes the limit). Use to contain resource \
            exhaustion (runbook P1 step 2). The tasks restart with the new limit. Needs approval \
            of the exact plan; try `dry_run` first to see the current limit. Returns the \
            command's exit code and the service read back (limit, replicas, image).",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    type Params = Params;
    type Output = SwarmResult;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        let sw = cli::swarm(ctx)?;
        let service = cli::service(sw, &p.service)?;
        let b = limit_bytes(&p.limit)?;
        Ok(Draft {
            steps: vec![
                Step::run(SERVER, &argv(sw, service, &p.limit), false),
                Step::check(
                    SERVER,
                    format!(
                        "the service reads back a memory limit of {} ({b} bytes)",
                        cli::memory(Some(b))
                    ),
                ),
            ],
            undo: vec![format!(
                "set_memory_limit `{service}` back to the limit shown under current health (`0` for none)"
            )],
            targets: vec![cli::target(service)],
            confirm_text: service.into(),
        })
    }

    async fn preflight(ctx: Arc<Ctx>, p: &Params) -> Result<Vec<String>, ToolError> {
        let sw = cli::swarm(&ctx)?;
        let service = cli::service(sw, &p.service)?;
        Ok(vec![cli::read(&ctx, sw, service).await?.line(service)])
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, _run: RunCtx) -> Result<SwarmResult, ToolError> {
        let sw = cli::swarm(&ctx)?;
        let service = cli::service(sw, &p.service)?;
        let want = limit_bytes(&p.limit)?;
        let argv = argv(sw, service, &p.limit);
        Ok(SwarmResult::run_and_read(&ctx, sw, service, &argv, |now| {
            now.spec.memory_limit_bytes.unwrap_or(0) == want
        })
        .await)
    }

    fn summary(out: &SwarmResult) -> String {
        match &out.after {
            Some(now) if out.command.ok => format!(
                "{}: memory limit {} ({} tasks running){}",
                out.service,
                cli::memory(now.spec.memory_limit_bytes),
                now.replicas,
                out.failure()
            ),
            _ => format!("{}: {}", out.service, out.failure()),
        }
    }

    fn failed(out: &SwarmResult) -> bool {
        !out.ok
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
