//! The target group as it is now (`describe-target-groups` and `describe-target-health` at
//! once, with each target's inventory host), and the result every mutating tool returns: the
//! planned command's outcome plus the group read back.

use schemars::JsonSchema;
use serde::Serialize;

use super::cli::{argv, output};
use crate::analyze::elbv2::{self, HealthCheck, TargetState};
use crate::config::{Aws, Secrets};
use crate::engine::{Ctx, ToolError};
use crate::exec::Fleet;

/// One target of the group, with its inventory host.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TargetRow {
    /// Inventory host of the instance (from `[aws] instances`); absent for targets the
    /// configuration does not know.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// EC2 instance id.
    pub instance_id: String,
    /// Port the target receives traffic on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// ELBv2's state: `healthy`, `unhealthy`, `initial`, `draining`, `unused`, ...
    pub state: TargetState,
    /// In the target group: not draining, not `Target.NotRegistered` (a stopped instance is
    /// registered but `unused`).
    pub registered: bool,
    /// Reason code, e.g. `Target.Timeout`, `Target.NotRegistered`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// AWS's sentence about the state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The target group as it is now.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TargetGroupNow {
    /// Target group name.
    pub target_group: String,
    /// Target group ARN.
    pub arn: String,
    /// Load balancers that send it traffic.
    pub load_balancers: Vec<String>,
    /// Its health check.
    pub health_check: HealthCheck,
    /// Every registered target, then configured hosts whose instance is not registered (as
    /// AWS reports those: `unused`, `Target.NotRegistered`).
    pub targets: Vec<TargetRow>,
    /// Registered targets passing health checks.
    pub healthy: usize,
    /// Registered targets.
    pub registered: usize,
}

impl TargetGroupNow {
    pub fn target(&self, instance_id: &str) -> Option<&TargetRow> {
        self.targets.iter().find(|t| t.instance_id == instance_id)
    }

    /// `HTTP /health every 30 s, timeout 5 s, healthy after 5, unhealthy after 2`.
    pub fn health_check_line(&self) -> String {
        let h = &self.health_check;
        let n = |v: Option<u32>| v.map_or("?".into(), |v| v.to_string());
        format!(
            "{} {} every {} s, timeout {} s, healthy after {}, unhealthy after {}",
            h.protocol.as_deref().unwrap_or("?"),
            h.path.as_deref().unwrap_or("(no path)"),
            n(h.interval_seconds),
            n(h.timeout_seconds),
            n(h.healthy_threshold),
            n(h.unhealthy_threshold)
        )
    }

    /// `mcp-01 (i-…) healthy` per target, for the approver.
    pub fn target_lines(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|t| {
                let who = match &t.host {
                    Some(h) => format!("{h} ({})", t.instance_id),
                    None => t.instance_id.clone(),
                };
                format!("{who} {}", state_text(t))
            })
            .collect()
    }

    /// One glance: counts, each target by host, the health check.
    pub fn line(&self) -> String {
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|t| {
                let who = t.host.as_deref().unwrap_or(&t.instance_id);
                format!("{who} {}", state_text(t))
            })
            .collect();
        format!(
            "{}: {}/{} registered targets healthy ({}); health check {}",
            self.target_group,
            self.healthy,
            self.registered,
            targets.join(", "),
            self.health_check_line()
        )
    }
}

/// `healthy`, `unhealthy (Target.Timeout)`.
fn state_text(t: &TargetRow) -> String {
    match &t.reason {
        Some(r) => format!("{} ({r})", t.state.as_str()),
        None => t.state.as_str().into(),
    }
}

/// Reads the target group: its settings and its targets' health, at once.
pub async fn read(ctx: &Ctx, aws: &Aws) -> Result<TargetGroupNow, ToolError> {
    read_with(&ctx.fleet, &ctx.config.secrets, aws).await
}

/// [`read`] without a tool context (for `doctor`).
pub async fn read_with(
    fleet: &Fleet,
    secrets: &Secrets,
    aws: &Aws,
) -> Result<TargetGroupNow, ToolError> {
    let arn = aws.target_group_arn.as_str();
    let groups = argv(aws, "describe-target-groups", &["--target-group-arns", arn]);
    let health = argv(aws, "describe-target-health", &["--target-group-arn", arn]);
    let (groups, health) = tokio::join!(
        output(fleet, secrets, aws, &groups),
        output(fleet, secrets, aws, &health)
    );
    let bad = |e: crate::analyze::ParseError| ToolError::unavailable(e.to_string());
    let group = elbv2::parse_target_groups(&groups?)
        .map_err(bad)?
        .into_iter()
        .find(|g| g.arn == aws.target_group_arn)
        .ok_or_else(|| {
            ToolError::unavailable(format!("no target group `{}` in the answer", arn))
        })?;
    let mut targets: Vec<TargetRow> = elbv2::parse_target_health(&health?)
        .map_err(bad)?
        .into_iter()
        .map(|t| TargetRow {
            host: aws.host_of(&t.id).map(String::from),
            registered: elbv2::is_registered(t.state, t.reason.as_deref()),
            instance_id: t.id,
            port: t.port,
            state: t.state,
            reason: t.reason,
            description: t.description,
        })
        .collect();
    for (host, id) in &aws.instances {
        if !targets.iter().any(|t| &t.instance_id == id) {
            targets.push(TargetRow {
                host: Some(host.clone()),
                instance_id: id.clone(),
                port: aws.target_port,
                state: TargetState::Unused,
                registered: false,
                reason: Some("Target.NotRegistered".into()),
                description: Some("not in the target group".into()),
            });
        }
    }
    // Configured hosts in name order, then targets the configuration does not know.
    targets.sort_by(|a, b| match (&a.host, &b.host) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.instance_id.cmp(&b.instance_id),
    });
    let registered = targets.iter().filter(|t| t.registered).count();
    let healthy = targets
        .iter()
        .filter(|t| t.registered && t.state == TargetState::Healthy)
        .count();
    Ok(TargetGroupNow {
        target_group: group.name,
        arn: group.arn,
        load_balancers: group.load_balancer_arns,
        health_check: group.health_check,
        targets,
        healthy,
        registered,
    })
}
