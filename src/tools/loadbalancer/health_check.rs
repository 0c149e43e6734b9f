//! `update_health_check`: `aws elbv2 modify-target-group --health-check-interval-seconds N
//! --health-check-timeout-seconds M [--health-check-path P]` (runbook "Load Balancer Recovery",
//! health check adjustment; P0 option B sets the path).
//!
//! The values are checked here, before anyone is asked to approve, against AWS's documented
//! limits: interval 5..=300 s, timeout 2..=120 s and shorter than the interval, a path starting
//! with `/`. The CLI checks the minimums itself before sending anything (botocore's parameter
//! validation); the rest AWS checks server-side (a local emulator may not). An approver should
//! never approve a plan that can only fail.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cli;
use crate::config::Aws;
use crate::engine::plan::{Change, Command, Extract, Fact, Read, Step, UndoCall};
use crate::engine::runner::RunOutcome;
use crate::engine::{Action, Common, Ctx, Draft, Effect, Facts, ToolError, ToolMeta, Toolset};

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
}

/// The group's health check settings.
fn settings(aws: &Aws) -> Fact {
    Fact {
        read: Read::Run(cli::command(
            aws,
            "describe-target-groups",
            &["--target-group-arns", &aws.target_group_arn],
        )),
        extract: Extract::HealthCheck {
            arn: aws.target_group_arn.clone(),
        },
    }
}

/// The settings as the fact reads them.
#[derive(serde::Deserialize)]
struct Now {
    interval_seconds: Option<u32>,
    timeout_seconds: Option<u32>,
    path: Option<String>,
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

fn modify(aws: &Aws, p: &Params) -> Command {
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
    cli::command(aws, "modify-target-group", &args)
}

fn show(v: Option<u32>) -> String {
    v.map_or("-".into(), |n| format!("{n} s"))
}

impl Action for UpdateHealthCheck {
    const META: ToolMeta = ToolMeta {
        name: "update_health_check",
        title: "Update the load balancer health check",
        description: "Changes how the AWS target group checks its instances \
            (`aws elbv2 modify-target-group`): interval, timeout and optionally the path. Use when \
            health checks flap or check the wrong path (runbook LB recovery, P0 option B). Needs \
            approval of the exact plan, which shows each setting before and after and the undo \
            call; `dry_run` shows them without asking. Returns the steps and the health check \
            read back.",
        effect: Effect::Change,
        toolset: Toolset::Loadbalancer,
    };
    const HOSTS: bool = false;
    type Params = Params;

    /// A new path can fail every target at once (a path the service does not serve takes the
    /// whole group out of service): destructive. Interval and timeout alone are a change.
    fn effect(_ctx: &Ctx, p: &Params, facts: &Facts) -> Effect {
        let now: Result<Now, _> = facts.typed("health check");
        match (&p.path, now) {
            (None, _) => Effect::Change,
            (Some(path), Ok(n)) if n.path.as_ref() == Some(path) => Effect::Change,
            _ => Effect::Destructive,
        }
    }

    fn facts(ctx: &Ctx, _c: &Common, p: &Params) -> Result<Vec<(String, Fact)>, ToolError> {
        let aws = cli::aws(ctx)?;
        validate(p)?;
        Ok(vec![("health check".into(), settings(aws))])
    }

    fn plan(ctx: &Ctx, _c: &Common, p: &Params, facts: &Facts) -> Result<Draft, ToolError> {
        let aws = cli::aws(ctx)?;
        validate(p)?;
        let now: Now = facts.typed("health check")?;
        let mut changes = vec![
            Change {
                what: "health check interval".into(),
                before: show(now.interval_seconds),
                after: show(Some(p.interval_seconds)),
            },
            Change {
                what: "health check timeout".into(),
                before: show(now.timeout_seconds),
                after: show(Some(p.timeout_seconds)),
            },
        ];
        if let Some(path) = &p.path {
            changes.push(Change {
                what: "health check path".into(),
                before: now.path.clone().unwrap_or_else(|| "-".into()),
                after: path.clone(),
            });
        }
        let mut undo = json!({"reason": "undo the health check change"});
        if let (Some(i), Some(t)) = (now.interval_seconds, now.timeout_seconds) {
            undo["interval_seconds"] = i.into();
            undo["timeout_seconds"] = t.into();
            if p.path.is_some()
                && let Some(path) = &now.path
            {
                undo["path"] = path.clone().into();
            }
        }
        Ok(Draft {
            stages: vec![cli::stage(
                aws,
                vec![
                    Step::Run(modify(aws, p)),
                    Step::Capture {
                        name: "after".into(),
                        fact: settings(aws),
                    },
                ],
            )],
            changes,
            undo: vec![UndoCall {
                tool: "update_health_check".into(),
                arguments: undo,
            }],
            targets: vec![cli::lock(aws)],
            confirm_text: aws.target_group_name.clone(),
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, p: &Params, out: &RunOutcome) -> String {
        if out.ok {
            format!(
                "health check now every {} s, timeout {} s{}",
                p.interval_seconds,
                p.timeout_seconds,
                p.path
                    .as_ref()
                    .map(|x| format!(", path {x}"))
                    .unwrap_or_default()
            )
        } else {
            out.line()
        }
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
