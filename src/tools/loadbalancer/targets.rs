//! `drain_instance` and `restore_instance`: take an inventory host's instance out of the
//! target group and put it back (runbook "Load Balancer Recovery", drain and restore).
//!
//! Draining is `aws elbv2 deregister-targets`, not `modify-target-group --targets` as the
//! seed runbook says (that command has no `--targets`; the CLI refuses it). AWS then lets
//! in-flight requests finish (the target reads `draining` for the group's deregistration
//! delay) and sends it no new ones. Draining is destructive: it never leaves the group without
//! a healthy target — checked before anyone is asked and again right before the command,
//! since a destructive approval can take minutes.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cli::{self, SERVER};
use super::group::{self, LbResult, TargetGroupNow};
use crate::analyze::elbv2::TargetState;
use crate::engine::action::{Action, Draft, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, Name, Refusal, ToolError, ToolMeta, Toolset};

pub struct DrainInstance;
pub struct RestoreInstance;

/// Parameters of `drain_instance` and `restore_instance`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Inventory host whose instance is acted on (one of `[aws] instances`, e.g. `mcp-02`).
    pub host: Name,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan and the current targets; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

// A target group is acted on, not the host: there is no `hosts` argument.
crate::impl_mutating!(Params, no_hosts);

/// Refuses a drain that is pointless (not registered) or that would leave no healthy target.
fn drain_allowed(now: &TargetGroupNow, host: &str, id: &str) -> Result<(), ToolError> {
    match now.target(id) {
        Some(t) if t.registered => {}
        t => {
            return Err(ToolError::invalid(
                "host",
                format!(
                    "`{host}` ({id}) is not registered in `{}` ({}); nothing to drain",
                    now.target_group,
                    t.map_or("absent", |t| t.state.as_str())
                ),
            ));
        }
    }
    let healthy_others = now
        .targets
        .iter()
        .filter(|t| t.registered && t.state == TargetState::Healthy && t.instance_id != id)
        .count();
    if healthy_others == 0 {
        return Err(ToolError::refused(
            Refusal::BlastRadius,
            format!(
                "draining `{host}` would leave `{}` without a healthy target ({}). Restore or \
                 recover another instance first.",
                now.target_group,
                now.target_lines().join(", ")
            ),
        ));
    }
    Ok(())
}

/// `mcp-02 (i-…) draining; cctelegram-tg: 2/2 targets healthy (...)`.
fn summary(out: &LbResult, host: &str, id: &str) -> String {
    match &out.after {
        Some(now) if out.command.ok => {
            let state = now.target(id).map_or("absent", |t| t.state.as_str());
            format!("{host} ({id}) now {state}; {}{}", now.line(), out.failure())
        }
        _ => format!("{host} ({id}): {}", out.failure()),
    }
}

/// What a drain or restore did, and to which instance.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// The inventory host.
    pub host: String,
    /// Its instance id.
    pub instance_id: String,
    #[serde(flatten)]
    pub result: LbResult,
}

impl Action for DrainInstance {
    const META: ToolMeta = ToolMeta {
        name: "drain_instance",
        title: "Drain an instance from the load balancer",
        description: "Takes one inventory host's instance out of the AWS target group \
            (`aws elbv2 deregister-targets`): in-flight requests finish, no new ones arrive. Use \
            to route around a failing instance (runbook P0 option B, LB recovery). Destructive: \
            an operator approves at a terminal, typing the host name; refused when it would \
            leave no healthy target. Undo with `restore_instance`. Returns the command's exit \
            code and the targets read back.",
        effect: Effect::Destructive,
        toolset: Toolset::Loadbalancer,
    };
    type Params = Params;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        let aws = cli::aws(ctx)?;
        let id = cli::instance(aws, "host", &p.host)?;
        let spec = cli::target_spec(aws, id);
        let argv = cli::argv(
            aws,
            "deregister-targets",
            &[
                "--target-group-arn",
                &aws.target_group_arn,
                "--targets",
                &spec,
            ],
        );
        Ok(Draft {
            steps: vec![
                Step::check(
                    SERVER,
                    format!(
                        "another target of `{}` is healthy right before the command (never the \
                         last healthy one)",
                        aws.target_group_name
                    ),
                ),
                Step::run(SERVER, &argv, false),
            ],
            undo: vec![format!("restore_instance host={}", p.host)],
            targets: vec![cli::lock(aws)],
            confirm_text: p.host.as_str().into(),
        })
    }

    async fn preflight(ctx: Arc<Ctx>, p: &Params) -> Result<Vec<String>, ToolError> {
        let aws = cli::aws(&ctx)?;
        let id = cli::instance(aws, "host", &p.host)?;
        let now = group::read(&ctx, aws).await?;
        drain_allowed(&now, p.host.as_str(), id)?;
        Ok(now.target_lines())
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, run: RunCtx) -> Result<Output, ToolError> {
        let aws = cli::aws(&ctx)?;
        let id = cli::instance(aws, "host", &p.host)?;
        // The plan's check step: the fleet may have changed while the operator decided.
        let now = group::read(&ctx, aws).await?;
        drain_allowed(&now, p.host.as_str(), id)?;
        let argv = cli::planned(&run)?;
        let (result, _) = LbResult::run_and_read(&ctx, aws, &argv, |now| {
            now.target(id).is_none_or(|t| !t.registered)
        })
        .await;
        Ok(Output {
            host: p.host.as_str().into(),
            instance_id: id.into(),
            result,
        })
    }

    fn summary(out: &Output) -> String {
        summary(&out.result, &out.host, &out.instance_id)
    }

    fn failed(out: &Output) -> bool {
        !out.result.ok
    }
}

impl Action for RestoreInstance {
    const META: ToolMeta = ToolMeta {
        name: "restore_instance",
        title: "Restore an instance to the load balancer",
        description: "Puts one inventory host's instance back into the AWS target group \
            (`aws elbv2 register-targets`). Use after `drain_instance` once the instance is \
            fixed; it receives traffic when it passes the group's health checks. Needs approval of the exact plan; \
            refused when the instance is already registered. Returns the command's exit code \
            and the targets read back.",
        effect: Effect::Change,
        toolset: Toolset::Loadbalancer,
    };
    type Params = Params;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        let aws = cli::aws(ctx)?;
        let id = cli::instance(aws, "host", &p.host)?;
        let spec = cli::target_spec(aws, id);
        let argv = cli::argv(
            aws,
            "register-targets",
            &[
                "--target-group-arn",
                &aws.target_group_arn,
                "--targets",
                &spec,
            ],
        );
        Ok(Draft {
            steps: vec![Step::run(SERVER, &argv, false)],
            undo: vec![format!("drain_instance host={}", p.host)],
            targets: vec![cli::lock(aws)],
            confirm_text: p.host.as_str().into(),
        })
    }

    async fn preflight(ctx: Arc<Ctx>, p: &Params) -> Result<Vec<String>, ToolError> {
        let aws = cli::aws(&ctx)?;
        let id = cli::instance(aws, "host", &p.host)?;
        let now = group::read(&ctx, aws).await?;
        if let Some(t) = now.target(id).filter(|t| t.registered) {
            return Err(ToolError::invalid(
                "host",
                format!(
                    "`{}` ({id}) is already registered in `{}` ({}); nothing to restore",
                    p.host,
                    now.target_group,
                    t.state.as_str()
                ),
            ));
        }
        Ok(now.target_lines())
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, run: RunCtx) -> Result<Output, ToolError> {
        let aws = cli::aws(&ctx)?;
        let id = cli::instance(aws, "host", &p.host)?;
        let argv = cli::planned(&run)?;
        let (result, _) = LbResult::run_and_read(&ctx, aws, &argv, |now| {
            now.target(id).is_some_and(|t| t.registered)
        })
        .await;
        Ok(Output {
            host: p.host.as_str().into(),
            instance_id: id.into(),
            result,
        })
    }

    fn summary(out: &Output) -> String {
        summary(&out.result, &out.host, &out.instance_id)
    }

    fn failed(out: &Output) -> bool {
        !out.result.ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::elbv2::HealthCheck;
    use crate::tools::loadbalancer::group::TargetRow;

    fn group(states: &[(&str, TargetState)]) -> TargetGroupNow {
        let targets: Vec<TargetRow> = states
            .iter()
            .map(|(id, s)| TargetRow {
                host: None,
                instance_id: (*id).into(),
                port: Some(8080),
                state: *s,
                registered: crate::analyze::elbv2::is_registered(*s, None),
                reason: None,
                description: None,
            })
            .collect();
        TargetGroupNow {
            target_group: "tg".into(),
            arn: "arn".into(),
            load_balancers: vec![],
            health_check: HealthCheck {
                enabled: Some(true),
                protocol: None,
                port: None,
                path: None,
                interval_seconds: None,
                timeout_seconds: None,
                healthy_threshold: None,
                unhealthy_threshold: None,
                matcher: None,
            },
            healthy: 0,
            registered: 0,
            targets,
        }
    }

    #[test]
    fn never_the_last_healthy_target_and_only_registered_ones() {
        use TargetState::*;
        let g = group(&[("i-1", Healthy), ("i-2", Healthy), ("i-3", Unhealthy)]);
        assert!(drain_allowed(&g, "mcp-02", "i-2").is_ok());
        assert!(drain_allowed(&g, "mcp-03", "i-3").is_ok());
        let g = group(&[("i-1", Draining), ("i-2", Healthy), ("i-3", Unhealthy)]);
        let e = drain_allowed(&g, "mcp-02", "i-2").unwrap_err();
        assert_eq!(e.refusal, Some(Refusal::BlastRadius), "{e}");
        assert!(
            drain_allowed(&g, "mcp-03", "i-3").is_ok(),
            "mcp-02 stays healthy"
        );
        let sick = group(&[("i-1", Unhealthy), ("i-2", Unhealthy)]);
        let e = drain_allowed(&sick, "mcp-01", "i-1").unwrap_err();
        assert_eq!(e.refusal, Some(Refusal::BlastRadius), "{e}");
        let e = drain_allowed(&g, "mcp-01", "i-1").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("host"), "draining already: {e}");
        let e = drain_allowed(&g, "mcp-09", "i-9").unwrap_err();
        assert!(e.message.contains("absent"), "{e}");
    }
}
