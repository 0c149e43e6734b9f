//! `auto_recover`: the runbook's automated recovery — check health; only if unhealthy,
//! restart; verify. (Notification joins when the notify tools exist: the result says what a
//! notification would carry.)

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{self, StepResult};
use super::restart::{Mode, commands};
use crate::engine::action::{Action, Draft, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, Name, ToolError, ToolMeta, Toolset};

pub struct AutoRecover;

/// Parameters of `auto_recover`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Target hosts (inventory names), explicit.
    #[serde(deserialize_with = "crate::engine::args::names_required")]
    pub hosts: Vec<Name>,
    /// Service name from the inventory (it needs a health URL).
    pub service: Name,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan and the current health; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

crate::impl_mutating!(Params);

/// What recovery did per host.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub service: String,
    pub hosts: Vec<HostRecovery>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostRecovery {
    pub host: String,
    /// Healthy before anything ran.
    pub healthy_before: bool,
    /// True when a restart was needed and run.
    pub restarted: bool,
    pub steps: Vec<StepResult>,
    pub healthy_after: bool,
    /// What to tell people ("recovered", "recovery failed, escalate").
    pub message: String,
}

impl Action for AutoRecover {
    const META: ToolMeta = ToolMeta {
        name: "auto_recover",
        title: "Recover an unhealthy instance",
        description: "The runbook's automated recovery on the named hosts: checks the service's \
            health, restarts it only where it is unhealthy, and verifies it answers again. Use \
            for an instance that stopped answering when a restart is the known fix. Needs \
            approval of the exact plan. Returns per host health before and after, whether it \
            restarted, and the message to send people.",
        effect: Effect::Change,
        toolset: Toolset::Prevent,
    };
    type Params = Params;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        let svc = common::service(ctx, "service", &p.service)?;
        if svc.health_url.is_none() {
            return Err(ToolError::invalid(
                "service",
                format!("`{}` has no health URL to recover by", svc.name),
            ));
        }
        let hosts = common::hosts_running(ctx, &p.hosts, &svc)?;
        let mut steps = Vec::new();
        for h in &hosts {
            steps.push(Step::check(
                &h.name,
                format!(
                    "{} health; the steps below run only if it is unhealthy",
                    svc.name
                ),
            ));
            for c in commands(&svc, Mode::Restart, false) {
                steps.push(Step::run(&h.name, &c.argv, c.privileged && h.sudo));
            }
            steps.push(Step::check(
                &h.name,
                format!("{} healthy within 30 s", svc.name),
            ));
        }
        Ok(Draft {
            steps,
            undo: Vec::new(),
            targets: common::targets(&hosts, &svc),
            confirm_text: String::new(),
        })
    }

    async fn preflight(ctx: Arc<Ctx>, p: &Params) -> Result<Vec<String>, ToolError> {
        let svc = common::service(&ctx, "service", &p.service)?;
        common::guard_last_healthy(&ctx, &svc, &p.hosts).await
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, run: RunCtx) -> Result<Output, ToolError> {
        let svc = common::service(&ctx, "service", &p.service)?;
        let hosts = common::hosts_running(&ctx, &p.hosts, &svc)?;
        let mut out = Vec::new();
        for h in &hosts {
            if run.stopped() {
                break;
            }
            let healthy_before = common::health(&ctx, h, &svc)
                .await
                .is_some_and(|c| c.healthy);
            let mut steps = Vec::new();
            let mut healthy_after = healthy_before;
            if !healthy_before {
                for c in commands(&svc, Mode::Restart, false) {
                    steps.push(common::step(&ctx, h, &c).await);
                }
                healthy_after = steps.iter().all(|s| s.ok)
                    && common::wait_healthy(&ctx, h, &svc)
                        .await
                        .is_some_and(|c| c.healthy);
            }
            let message = match (healthy_before, healthy_after) {
                (true, _) => format!("{} on {} is healthy; nothing to do", svc.name, h.name),
                (false, true) => format!(
                    "Auto-recovery successful: {} on {} restarted and healthy",
                    svc.name, h.name
                ),
                (false, false) => format!(
                    "Auto-recovery FAILED: {} on {} is still unhealthy after a restart; escalate",
                    svc.name, h.name
                ),
            };
            out.push(HostRecovery {
                host: h.name.clone(),
                healthy_before,
                restarted: !healthy_before,
                steps,
                healthy_after,
                message,
            });
        }
        Ok(Output {
            service: svc.name,
            hosts: out,
        })
    }

    fn summary(out: &Output) -> String {
        out.hosts
            .iter()
            .map(|h| h.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn failed(out: &Output) -> bool {
        out.hosts.iter().any(|h| !h.healthy_after)
    }
}
