//! Pieces the remediation tools share: resolving the service argument, health before and
//! after, and running one planned command.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::{Host, Service};
use crate::engine::{Ctx, Name, Refusal, ToolError};
use crate::exec::Cmd;
use crate::tools::assess::{HealthCheck, health_check};

/// How long a restarted service may take to answer its health check again.
pub const HEALTHY_AGAIN: Duration = Duration::from_secs(30);

/// The inventory service named by `field`.
pub fn service(ctx: &Ctx, field: &str, name: &Name) -> Result<Service, ToolError> {
    ctx.config.service(name.as_str()).cloned().ok_or_else(|| {
        let known: Vec<&str> = ctx
            .config
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        ToolError::invalid(
            field,
            format!(
                "unknown service `{name}`; the inventory has: {}",
                known.join(", ")
            ),
        )
    })
}

/// The plan's targets: `svc` on each of `hosts` (busy locks are per host and service).
pub fn targets(hosts: &[Host], svc: &Service) -> Vec<crate::engine::action::Target> {
    hosts
        .iter()
        .map(|h| crate::engine::action::Target {
            host: h.name.clone(),
            service: Some(svc.name.clone()),
        })
        .collect()
}

/// What an approver of a destructive action types back: the host names.
pub fn confirm_text(hosts: &[Host]) -> String {
    hosts
        .iter()
        .map(|h| h.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Every target host must run the service.
pub fn hosts_running(ctx: &Ctx, hosts: &[Name], svc: &Service) -> Result<Vec<Host>, ToolError> {
    hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = ctx.config.host(h.as_str()).cloned().ok_or_else(|| {
                ToolError::invalid(format!("hosts[{i}]"), format!("unknown host `{h}`"))
            })?;
            if !svc.hosts.contains(&host.name) {
                return Err(ToolError::invalid(
                    format!("hosts[{i}]"),
                    format!("`{}` does not run `{}`", host.name, svc.name),
                ));
            }
            Ok(host)
        })
        .collect()
}

/// One health check of `svc` on `host` (None when it has no health URL).
pub async fn health(ctx: &Ctx, host: &Host, svc: &Service) -> Option<HealthCheck> {
    let url = Service::url_for(svc.health_url.as_deref()?, host);
    Some(health_check(ctx, &svc.name, &url, svc.api_key_secret.as_deref()).await)
}

/// Health of `svc` on every host that runs it, as lines, refusing when acting on `targets`
/// would leave no healthy instance ("never the last healthy instance").
pub async fn guard_last_healthy(
    ctx: &Ctx,
    svc: &Service,
    targets: &[Name],
) -> Result<Vec<String>, ToolError> {
    let hosts: Vec<Host> = svc
        .hosts
        .iter()
        .filter_map(|h| ctx.config.host(h).cloned())
        .collect();
    let checks = futures::future::join_all(hosts.iter().map(|h| health(ctx, h, svc))).await;
    let mut lines = Vec::new();
    let mut healthy_elsewhere = 0;
    for (h, c) in hosts.iter().zip(&checks) {
        let Some(c) = c else { continue };
        let word = match c.status_code {
            Some(code) if c.healthy => format!("healthy (HTTP {code})"),
            Some(code) => format!("UNHEALTHY (HTTP {code})"),
            None => format!("UNHEALTHY ({})", c.detail),
        };
        lines.push(format!("{}/{}: {word}", h.name, svc.name));
        if c.healthy && !targets.iter().any(|t| t.as_str() == h.name) {
            healthy_elsewhere += 1;
        }
    }
    let has_checks = checks.iter().any(Option::is_some);
    if has_checks && healthy_elsewhere == 0 {
        let any_target_healthy = hosts.iter().zip(&checks).any(|(h, c)| {
            c.as_ref().is_some_and(|c| c.healthy) && targets.iter().any(|t| t.as_str() == h.name)
        });
        if any_target_healthy {
            return Err(ToolError::refused(
                Refusal::BlastRadius,
                format!(
                    "this would take down the last healthy instance of `{}` ({}). Recover another instance first.",
                    svc.name,
                    lines.join("; ")
                ),
            ));
        }
    }
    Ok(lines)
}

/// Polls until `svc` on `host` answers 2xx, or `HEALTHY_AGAIN` passes.
pub async fn wait_healthy(ctx: &Ctx, host: &Host, svc: &Service) -> Option<HealthCheck> {
    wait_healthy_for(ctx, host, svc, HEALTHY_AGAIN).await
}

/// Polls until `svc` on `host` answers 2xx, or `limit` passes.
pub async fn wait_healthy_for(
    ctx: &Ctx,
    host: &Host,
    svc: &Service,
    limit: Duration,
) -> Option<HealthCheck> {
    let deadline = Instant::now() + limit;
    loop {
        let c = health(ctx, host, svc).await?;
        if c.healthy || Instant::now() >= deadline {
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What one command did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StepResult {
    /// The command as planned.
    pub command: String,
    /// Exit status; absent when it did not finish (timed out: outcome unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub ok: bool,
    /// Error output or why it did not run to the end.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Runs one planned command and reports it (never an error: the report says what happened).
pub async fn step(ctx: &Ctx, host: &Host, cmd: &Cmd) -> StepResult {
    let command = format!(
        "{}{}",
        if cmd.privileged && host.sudo {
            "sudo "
        } else {
            ""
        },
        cmd.argv.join(" ")
    );
    match ctx.fleet.run(host, cmd).await {
        Ok(o) => StepResult {
            command,
            exit_code: o.exit_code,
            ok: o.success(),
            detail: if o.success() {
                String::new()
            } else {
                first_lines(&o.stderr, 3)
            },
        },
        Err(e) => StepResult {
            command,
            exit_code: None,
            ok: false,
            detail: match e {
                crate::exec::ExecError::TimedOut(_) => format!("{e}: outcome unknown"),
                other => other.to_string(),
            },
        },
    }
}

fn first_lines(s: &str, n: usize) -> String {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect::<Vec<_>>()
        .join(" | ")
}
