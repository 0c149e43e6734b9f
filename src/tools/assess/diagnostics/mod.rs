//! `run_diagnostics`: the runbook's whole diagnostics script, per host, in one call — system
//! information, service status, health endpoints, resources, processes, listening sockets,
//! recent errors, security events and performance metrics — plus the load balancer, graded
//! into findings. Every command of a host runs concurrently over its one ssh connection.

mod sections;
mod text;

use text::digest;

use sections::{endpoint, grade, health_checks, keep_last, log_events, metric_samples};

use std::sync::Arc;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::health::{HealthCheck, check};
use super::resources::{Resources, collect};
use super::services::{ServiceStatus, statuses};
use crate::analyze::findings::{Finding, Severity};
use crate::analyze::metrics_text::Sample;
use crate::analyze::resources::{ListeningSocket, ProcessInfo, parse_ss_listening};
use crate::config::{Host, Service};
use crate::engine::fanout::{self, HostResult};
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};
use crate::exec::{Cmd, ExecError};

pub struct RunDiagnostics;

/// Lines of each log searched for recent errors and security events.
const LOG_TAIL: &str = "200";
const SHOW_ERRORS: usize = 10;
const SHOW_SECURITY: usize = 5;
const TOP_PROCESSES: usize = 10;

/// Parameters of `run_diagnostics`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Inventory host names; default: every host.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub hosts: Option<Vec<Name>>,
}

/// The diagnostics of every host, graded.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// Worst severity over every host and the load balancer.
    pub overall: Severity,
    pub hosts: Vec<HostResult<HostDiagnostics>>,
    /// The load balancer's health check, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<HealthCheck>,
    /// External dependencies (e.g. the Telegram API), checked once from this server.
    pub endpoints: Vec<HealthCheck>,
    /// Every finding that is not `ok`, worst first, as `host: check: message`.
    pub problems: Vec<String>,
}

/// The diagnostics of one host.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HostDiagnostics {
    /// Worst severity of this host's findings.
    pub severity: Severity,
    pub findings: Vec<Finding>,
    pub system: SystemInfo,
    pub services: Vec<ServiceStatus>,
    pub health: Vec<HealthCheck>,
    pub resources: Resources,
    /// Processes matching the configured pattern.
    pub processes: Vec<ProcessInfo>,
    /// Listening TCP sockets.
    pub listening: Vec<ListeningSocket>,
    /// Newest error lines of the services' application logs.
    pub recent_errors: Vec<LogEvent>,
    /// Newest security events of the services' security logs.
    pub security_events: Vec<LogEvent>,
    /// Request, latency, CPU and memory samples from the services' metrics endpoints.
    pub metrics: Vec<Sample>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SystemInfo {
    pub hostname: String,
    /// `uname -a`.
    pub kernel: String,
}

/// A log line attributed to its service.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LogEvent {
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub message: String,
}

impl Tool for RunDiagnostics {
    const META: ToolMeta = ToolMeta {
        name: "run_diagnostics",
        title: "Run diagnostics",
        description: "Runs the runbook's full diagnostics on every host at once (service status, \
            health endpoints, load, memory, disks, processes, listening ports, recent errors, \
            security events, performance metrics) plus the load balancer, and grades each finding \
            ok/warn/critical. Use it first: one call covers the whole immediate assessment. \
            Returns per host the findings and the raw sections, and a worst-first problem list.",
        effect: Effect::Read,
        toolset: Toolset::Assess,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        let hosts = fanout::select_hosts(&ctx, &p.hosts)?;
        let pattern = Regex::new(&ctx.config.diagnostics.process_pattern)
            .map_err(|e| ToolError::internal(format!("diagnostics.process_pattern: {e}")))?;
        let deadline = ctx.fleet.limits().timeout * 2;
        let lb = async {
            match &ctx.config.load_balancer {
                Some(lb) => Some(
                    check(
                        &ctx,
                        "load_balancer",
                        &lb.health_url,
                        lb.api_key_secret.as_deref(),
                    )
                    .await,
                ),
                None => None,
            }
        };
        let per_host = fanout::per_host(&ctx, hosts, deadline, |ctx, host| {
            let pattern = pattern.clone();
            async move { diagnose(&ctx, &host, &pattern).await }
        });
        let endpoints = futures::future::join_all(
            ctx.config
                .diagnostics
                .endpoints
                .iter()
                .map(|ep| endpoint(&ctx, ep)),
        );
        let (results, load_balancer, endpoints) = tokio::join!(per_host, lb, endpoints);

        let mut problems: Vec<(Severity, String)> = Vec::new();
        for r in &results {
            match &r.result {
                Some(d) => problems.extend(
                    d.findings
                        .iter()
                        .filter(|f| f.severity != Severity::Ok)
                        .map(|f| {
                            (
                                f.severity,
                                format!("{}: {}: {}", r.host, f.check, f.message),
                            )
                        }),
                ),
                None => problems.push((
                    Severity::Critical,
                    format!(
                        "{}: host: {}",
                        r.host,
                        r.error.as_deref().unwrap_or("no answer")
                    ),
                )),
            }
        }
        if let Some(c) = &load_balancer
            && !c.healthy
        {
            let why = c
                .status_code
                .map_or(c.detail.clone(), |s| format!("HTTP {s}"));
            problems.push((Severity::Critical, format!("load_balancer: health: {why}")));
        }
        for c in endpoints.iter().filter(|c| !c.healthy) {
            let why = c
                .status_code
                .map_or(c.detail.clone(), |s| format!("HTTP {s}"));
            // An external dependency down degrades the service; it is not the fleet's fault.
            problems.push((Severity::Warn, format!("{}: endpoint: {why}", c.service)));
        }
        problems.sort_by_key(|p| std::cmp::Reverse(p.0));
        Ok(Output {
            overall: problems.first().map_or(Severity::Ok, |p| p.0),
            hosts: results,
            load_balancer,
            endpoints,
            problems: problems.into_iter().map(|p| p.1).collect(),
        })
    }

    fn summary(out: &Output) -> String {
        digest(out).render()
    }

    fn is_error(out: &Output) -> bool {
        out.hosts.iter().all(|h| !h.is_ok())
    }
}

async fn diagnose(ctx: &Ctx, host: &Host, pattern: &Regex) -> Result<HostDiagnostics, ExecError> {
    let services: Vec<Service> = ctx.config.services_on(&host.name).cloned().collect();
    let uname = Cmd::new(["uname", "-a"]);
    let ss = Cmd::new(["ss", "-Htlnp"]);
    let (uname, ss, resources, status, health, logs, metrics) = tokio::join!(
        ctx.fleet.run(host, &uname),
        ctx.fleet.run(host, &ss),
        collect(ctx, host, usize::MAX),
        statuses(ctx, host, &services),
        health_checks(ctx, host, &services),
        log_events(ctx, host, &services),
        metric_samples(ctx, host, &services),
    );
    let uname = uname?;
    let mut resources = resources?;
    let services = status?;
    let (mut recent_errors, mut security_events) = logs;

    let processes: Vec<ProcessInfo> = resources
        .top_processes
        .iter()
        .filter(|p| pattern.is_match(&p.command))
        .cloned()
        .collect();
    resources.top_processes.truncate(TOP_PROCESSES);
    let kernel = uname.stdout.trim().to_string();
    let system = SystemInfo {
        hostname: kernel
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string(),
        kernel,
    };
    // `ss` without root may lack process names but still lists sockets; a missing `ss` is not
    // worth failing the host for.
    let listening = ss
        .ok()
        .and_then(|o| parse_ss_listening(&o.stdout).ok())
        .unwrap_or_default();

    // Graded on every match, shown newest-last and bounded.
    let findings = grade(
        &services,
        &health,
        &resources,
        &recent_errors,
        &security_events,
    );
    keep_last(&mut recent_errors, SHOW_ERRORS);
    keep_last(&mut security_events, SHOW_SECURITY);
    Ok(HostDiagnostics {
        severity: findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok),
        findings,
        system,
        services,
        health,
        resources,
        processes,
        listening,
        recent_errors,
        security_events,
        metrics,
    })
}
