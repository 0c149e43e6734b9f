//! `auto_recover`: the runbook's automated recovery — per host, only if the service is
//! unhealthy, restart it and wait until it answers again. (Notification joins with the notify
//! tools.)

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::engine::plan::{Otherwise, Probe, Step};
use crate::engine::runner::{RunOutcome, StageStatus};
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Name, ToolError, ToolMeta, Toolset,
};
use crate::exec::manager::Op;

pub struct AutoRecover;

/// Parameters of `auto_recover` (besides `hosts`, `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Service name from the inventory (it needs a health URL).
    pub service: Name,
}

impl Action for AutoRecover {
    const META: ToolMeta = ToolMeta {
        name: "auto_recover",
        title: "Recover an unhealthy instance",
        description: "The runbook's automated recovery on the named hosts: checks the service's \
            health, restarts it only where it is unhealthy, and verifies it answers again. Use \
            for an instance that stopped answering when a restart is the known fix. Needs \
            approval of the exact plan. Returns per host whether there was nothing to do, or \
            the restart and the health after.",
        effect: Effect::Change,
        toolset: Toolset::Prevent,
    };
    type Params = Params;

    fn plan(ctx: &Ctx, c: &Common, p: &Params, _f: &Facts) -> Result<Draft, ToolError> {
        let svc = common::service(ctx, "service", &p.service)?;
        let hosts = common::hosts_running(ctx, &c.hosts, &svc)?;
        let mut stages = Vec::new();
        for h in &hosts {
            let (Some(healthy), Some(wait)) = (
                common::healthy(h, &svc),
                common::wait_healthy(h, &svc, common::HEALTHY_AGAIN_SECS),
            ) else {
                return Err(ToolError::invalid(
                    "service",
                    format!("`{}` has no health URL to recover by", svc.name),
                ));
            };
            let only_if_unhealthy = Step::Guard {
                why: format!(
                    "restart {} on {} only where it is unhealthy",
                    svc.name, h.name
                ),
                probe: Probe::Not {
                    probe: Box::new(healthy),
                },
                otherwise: Otherwise::SkipStage,
            };
            let steps = vec![
                only_if_unhealthy,
                common::control(h, &svc, Op::Restart),
                wait,
            ];
            stages.push(common::stage(h, steps));
        }
        Ok(Draft {
            stages,
            targets: common::targets(&hosts, &svc),
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, p: &Params, out: &RunOutcome) -> String {
        out.stages
            .iter()
            .map(|s| match s.status {
                StageStatus::NothingToDo => {
                    format!("{} on {} is healthy; nothing to do", p.service, s.stage)
                }
                StageStatus::Ok => format!(
                    "Auto-recovery successful: {} on {} restarted and healthy",
                    p.service, s.stage
                ),
                StageStatus::Skipped => format!("{} on {}: not started", p.service, s.stage),
                _ => format!(
                    "Auto-recovery FAILED: {} on {} is still unhealthy after a restart; escalate",
                    p.service, s.stage
                ),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
