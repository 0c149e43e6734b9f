//! `rollback_deployment`: `docker service update --rollback SERVICE` (runbook P0 option C).
//! The manager swaps the service's spec with its previous one; rolling back twice returns to
//! where it started, which is the undo.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cli::{self, SERVER, SwarmResult};
use crate::engine::action::{Action, Draft, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, Name, ToolError, ToolMeta, Toolset};

pub struct RollbackDeployment;

/// Parameters of `rollback_deployment`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Swarm service, one of `[swarm] services` (e.g. `cctelegram_mcp-server`).
    pub service: Name,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan, the current spec and the one it would restore; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

crate::impl_mutating!(Params, no_hosts);

fn argv(sw: &crate::config::Swarm, service: &str) -> Vec<String> {
    cli::docker(
        sw,
        &["service", "update", "--detach", "--rollback", service],
    )
}

impl Action for RollbackDeployment {
    const META: ToolMeta = ToolMeta {
        name: "rollback_deployment",
        title: "Roll back a Swarm service",
        description: "Rolls a Docker Swarm service back to its previous spec (image, replicas, \
            limits) with `docker service update --rollback`. Use when a deployment broke the \
            service (runbook P0 option C). Destructive: an operator approves at a terminal; try \
            `dry_run` first to see the spec it restores. Returns the command's exit code and the \
            service read back (image, replicas, memory limit).",
        effect: Effect::Destructive,
        toolset: Toolset::Remediate,
    };
    type Params = Params;
    type Output = SwarmResult;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        let sw = cli::swarm(ctx)?;
        let service = cli::service(sw, &p.service)?;
        Ok(Draft {
            steps: vec![Step::run(SERVER, &argv(sw, service), false)],
            undo: vec![format!(
                "rollback_deployment `{service}` again: the manager swaps back to the spec in force now"
            )],
            targets: vec![cli::target(service)],
            confirm_text: service.into(),
        })
    }

    async fn preflight(ctx: Arc<Ctx>, p: &Params) -> Result<Vec<String>, ToolError> {
        let sw = cli::swarm(&ctx)?;
        let service = cli::service(sw, &p.service)?;
        let now = cli::read(&ctx, sw, service).await?;
        let Some(prev) = &now.previous else {
            return Err(ToolError::invalid(
                "service",
                format!("`{service}` has no previous spec to roll back to"),
            ));
        };
        Ok(vec![
            now.line(service),
            format!(
                "rolls back to: image {}, {} replicas, memory limit {}",
                prev.image,
                prev.replicas.map_or("-".into(), |r| r.to_string()),
                cli::memory(prev.memory_limit_bytes)
            ),
        ])
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, _run: RunCtx) -> Result<SwarmResult, ToolError> {
        let sw = cli::swarm(&ctx)?;
        let service = cli::service(sw, &p.service)?;
        // What the rollback should restore, read right before it (the readback compares).
        let expected = cli::read(&ctx, sw, service).await?.previous;
        let argv = argv(sw, service);
        Ok(SwarmResult::run_and_read(&ctx, sw, service, &argv, |now| {
            expected.as_ref() == Some(&now.spec)
        })
        .await)
    }

    fn summary(out: &SwarmResult) -> String {
        match &out.after {
            Some(now) if out.command.ok => format!(
                "{}: rolled back to image {} ({} replicas, {} running, {}){}",
                out.service,
                now.spec.image,
                now.spec.replicas.map_or("-".into(), |r| r.to_string()),
                now.replicas,
                if now.update_state.is_empty() {
                    "no update state"
                } else {
                    &now.update_state
                },
                out.failure()
            ),
            _ => format!("{}: {}", out.service, out.failure()),
        }
    }

    fn failed(out: &SwarmResult) -> bool {
        !out.ok
    }
}
