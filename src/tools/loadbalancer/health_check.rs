//! `update_health_check`: `aws elbv2 modify-target-group --health-check-interval-seconds N
//! --health-check-timeout-seconds M [--health-check-path P]` (runbook "Load Balancer Recovery",
//! health check adjustment; P0 option B sets the path).
//!
//! The values are checked here, before anyone is asked to approve, against AWS's documented
//! limits: interval 5..=300 s, timeout 2..=120 s and shorter than the interval, a path starting
//! with `/`. The CLI checks the minimums itself before sending anything (botocore's parameter
//! validation); the rest AWS checks server-side (a local emulator may not). An approver should
//! never approve a plan that can only fail.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cli::{self, SERVER};
use super::group::{self, LbResult};
use crate::analyze::elbv2::{self, HealthCheck};
use crate::config::Aws;
use crate::engine::action::{Action, Draft, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, ToolError, ToolMeta, Toolset};

pub struct UpdateHealthCheck;

/// Parameters of `update_health_check`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Seconds between two checks of one target, 5..=300 (the runbook uses 10).
    #[schemars(range(min = 5, max = 300))]
    pub interval_seconds: u32,
    /// Seconds without an answer that fail a check, 2..=120 and less than the interval (the
    /// runbook uses 5).
    #[schemars(range(min = 2, max = 120))]
    pub timeout_seconds: u32,
    /// Path the check requests, e.g. `/health`; unchanged when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 1024),
        regex(pattern = r"^/[A-Za-z0-9/._~%!$&'()*+,;=:@?-]*$")
    )]
    pub path: Option<String>,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan and the current settings; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

crate::impl_mutating!(Params, no_hosts);

/// What the tool did: the command, what it answered, the group read back.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    #[serde(flatten)]
    pub result: LbResult,
    /// The health check as `modify-target-group` answered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returned: Option<HealthCheck>,
}

/// AWS's documented limits, checked before anyone is asked.
fn validate(p: &Params) -> Result<(), ToolError> {
    if !(5..=300).contains(&p.interval_seconds) {
        return Err(ToolError::invalid(
            "interval_seconds",
            format!("{} is out of range 5..=300", p.interval_seconds),
        ));
    }
    if !(2..=120).contains(&p.timeout_seconds) {
        return Err(ToolError::invalid(
            "timeout_seconds",
            format!("{} is out of range 2..=120", p.timeout_seconds),
        ));
    }
    if p.timeout_seconds >= p.interval_seconds {
        return Err(ToolError::invalid(
            "timeout_seconds",
            format!(
                "{} s must be less than the interval ({} s)",
                p.timeout_seconds, p.interval_seconds
            ),
        ));
    }
    if let Some(path) = &p.path {
        let ok = path.starts_with('/')
            && path.len() <= 1024
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._~%!$&'()*+,;=:@?-".contains(c));
        if !ok {
            return Err(ToolError::invalid(
                "path",
                format!(
                    "`{}` is not a URL path like `/health` (at most 1024 characters, no spaces)",
                    path.escape_debug()
                ),
            ));
        }
    }
    Ok(())
}

fn argv(aws: &Aws, p: &Params) -> Vec<String> {
    let interval = p.interval_seconds.to_string();
    let timeout = p.timeout_seconds.to_string();
    let mut args = vec![
        "--target-group-arn",
        aws.target_group_arn.as_str(),
        "--health-check-interval-seconds",
        &interval,
        "--health-check-timeout-seconds",
        &timeout,
    ];
    if let Some(path) = &p.path {
        args.extend(["--health-check-path", path.as_str()]);
    }
    cli::argv(aws, "modify-target-group", &args)
}

impl Action for UpdateHealthCheck {
    const META: ToolMeta = ToolMeta {
        name: "update_health_check",
        title: "Update the load balancer health check",
        description: "Changes how the AWS target group checks its instances \
            (`aws elbv2 modify-target-group`): interval, timeout and optionally the path. Use when \
            health checks flap or check the wrong path (runbook LB recovery, P0 option B). Needs \
            approval of the exact plan; `dry_run` shows the current settings. Returns the \
            command's exit code and the health check read back.",
        effect: Effect::Change,
        toolset: Toolset::Loadbalancer,
    };
    type Params = Params;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        let aws = cli::aws(ctx)?;
        validate(p)?;
        Ok(Draft {
            steps: vec![Step::run(SERVER, &argv(aws, p), false)],
            undo: vec![
                "update_health_check back to the settings shown under current health".into(),
            ],
            targets: vec![cli::lock(aws)],
            confirm_text: aws.target_group_name.clone(),
        })
    }

    async fn preflight(ctx: Arc<Ctx>, _p: &Params) -> Result<Vec<String>, ToolError> {
        let aws = cli::aws(&ctx)?;
        let now = group::read(&ctx, aws).await?;
        let mut lines = vec![format!(
            "{} health check now: {}",
            now.target_group,
            now.health_check_line()
        )];
        lines.extend(now.target_lines());
        Ok(lines)
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, run: RunCtx) -> Result<Output, ToolError> {
        let aws = cli::aws(&ctx)?;
        let argv = cli::planned(&run)?;
        let (result, stdout) = LbResult::run_and_read(&ctx, aws, &argv, |now| {
            let h = &now.health_check;
            h.interval_seconds == Some(p.interval_seconds)
                && h.timeout_seconds == Some(p.timeout_seconds)
                && p.path
                    .as_ref()
                    .is_none_or(|want| h.path.as_ref() == Some(want))
        })
        .await;
        let returned = if result.command.ok {
            elbv2::parse_target_groups(&stdout)
                .ok()
                .and_then(|g| g.into_iter().next())
                .map(|g| g.health_check)
        } else {
            None
        };
        Ok(Output { result, returned })
    }

    fn summary(out: &Output) -> String {
        let r = &out.result;
        match &r.after {
            Some(now) if r.command.ok => format!(
                "{}: health check {}{}",
                r.target_group,
                now.health_check_line(),
                r.failure()
            ),
            _ => format!("{}: {}", r.target_group, r.failure()),
        }
    }

    fn failed(out: &Output) -> bool {
        !out.result.ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(interval: u32, timeout: u32, path: Option<&str>) -> Params {
        Params {
            interval_seconds: interval,
            timeout_seconds: timeout,
            path: path.map(String::from),
            reason: "r".into(),
            dry_run: false,
        }
    }

    #[test]
    fn aws_limits_are_checked_before_approval() {
        assert!(validate(&p(10, 5, Some("/health"))).is_ok());
        assert!(validate(&p(300, 120, None)).is_ok());
        for (bad, field) in [
            (p(1, 5, None), "interval_seconds"),
            (p(301, 5, None), "interval_seconds"),
            (p(10, 1, None), "timeout_seconds"),
            (p(10, 10, None), "timeout_seconds"),
            (p(200, 121, None), "timeout_seconds"),
            (p(10, 5, Some("health")), "path"),
            (p(10, 5, Some("/a b")), "path"),
            (p(10, 5, Some("")), "path"),
        ] {
            let e = validate(&bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
        }
    }
}
