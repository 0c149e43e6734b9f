//! `rolling_restart`: restart a service on several hosts, one at a time, in the given order;
//! before each host another instance must be healthy, after it the host must answer its health
//! check within the bound, else the roll halts and the rest stay untouched.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::engine::plan::Step;
use crate::engine::runner::RunOutcome;
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Name, ToolError, ToolMeta, Toolset,
};
use crate::exec::manager::Op;

pub struct RollingRestart;

/// Parameters of `rolling_restart` (besides `hosts` — in the order to restart them —
/// `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Service name from the inventory.
    pub service: Name,
    /// Seconds each host may take to answer its health check again (default 30, 1..=300).
    #[serde(default = "thirty")]
    #[schemars(range(min = 1, max = 300))]
    pub health_timeout_secs: u64,
}

fn thirty() -> u64 {
    30
}

impl Action for RollingRestart {
    const META: ToolMeta = ToolMeta {
        name: "rolling_restart",
        title: "Rolling restart",
        description: "Restarts a service on the named hosts one at a time, in the given order, \
            waiting for each to pass its health check before the next, and halts at the first \
            host that fails (the rest are left untouched). Use for memory leaks or config \
            reloads across the fleet without an outage. Needs approval of the exact plan; sends \
            progress notifications. Returns each host's steps, and which hosts were not started.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    type Params = Params;

    /// One host is down at a time: that is what the host limit counts.
    fn hosts_at_once(c: &Common, _p: &Params) -> usize {
        c.hosts.len().min(1)
    }

    fn plan(ctx: &Ctx, c: &Common, p: &Params, _f: &Facts) -> Result<Draft, ToolError> {
        if !(1..=300).contains(&p.health_timeout_secs) {
            return Err(ToolError::invalid(
                "health_timeout_secs",
                "out of range 1..=300",
            ));
        }
        let svc = common::service(ctx, "service", &p.service)?;
        let hosts = common::hosts_running(ctx, &c.hosts, &svc)?;
        let mut stages = Vec::new();
        for h in &hosts {
            let (Some(guard), Some(wait)) = (
                common::last_healthy_guard(ctx, h, &svc),
                common::wait_healthy(h, &svc, p.health_timeout_secs),
            ) else {
                return Err(ToolError::invalid(
                    "service",
                    format!(
                        "`{}` has no health URL: a rolling restart needs one to know when to go on",
                        svc.name
                    ),
                ));
            };
            let steps: Vec<Step> = vec![guard, common::control(h, &svc, Op::Restart), wait];
            stages.push(common::stage(h, steps));
        }
        Ok(Draft {
            stages,
            targets: common::targets(&hosts, &svc),
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, p: &Params, out: &RunOutcome) -> String {
        match &out.halted {
            None => format!(
                "{}: restarted and healthy on every host ({})",
                p.service,
                out.line()
            ),
            Some(why) => format!("{}: HALTED: {why}. {}", p.service, out.line()),
        }
    }
}
