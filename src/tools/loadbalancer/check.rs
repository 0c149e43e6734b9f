//! `check_load_balancer`: the target group's targets (with their inventory hosts) and its
//! health check, from `aws elbv2 describe-target-health` and `describe-target-groups`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::cli;
use super::group::{self, TargetGroupNow};
use crate::engine::{Ctx, Effect, Tool, ToolError, ToolMeta, Toolset};

pub struct CheckLoadBalancer;

/// Parameters of `check_load_balancer` (none: it reads the configured target group).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {}

impl Tool for CheckLoadBalancer {
    const META: ToolMeta = ToolMeta {
        name: "check_load_balancer",
        title: "Check the load balancer",
        description: "Reads the AWS load balancer target group: every target's state \
            (healthy, unhealthy, draining, not registered) with its inventory host, and the \
            health check settings. Use before and after `drain_instance`, `restore_instance` or \
            `update_health_check`, or when traffic misses an instance. Returns per target the \
            instance id, host, port, state and reason, plus the health check and counts.",
        effect: Effect::Read,
        toolset: Toolset::Loadbalancer,
    };
    type Params = Params;
    type Output = TargetGroupNow;

    async fn run(ctx: Arc<Ctx>, _p: Params) -> Result<TargetGroupNow, ToolError> {
        let aws = cli::aws(&ctx)?;
        group::read(&ctx, aws).await
    }

    fn summary(out: &TargetGroupNow) -> String {
        // The read worked even when nothing is healthy: that is news, not a failed call.
        if out.healthy == 0 {
            return format!("NO HEALTHY TARGET. {}", out.line());
        }
        out.line()
    }
}
