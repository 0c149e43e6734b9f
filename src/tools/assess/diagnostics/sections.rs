//! The sections of `run_diagnostics` that are not tools of their own (logs, metrics, external
//! endpoints), and the grading of a host's sections into findings.

use super::{HealthCheck, LOG_TAIL, LogEvent, Resources, ServiceStatus, check};
use crate::analyze::findings::{self, Finding, Severity};
use crate::analyze::logs::{self, parse_line};
use crate::analyze::metrics_text::{self, Sample};
use crate::config::{Host, Service};
use crate::engine::Ctx;
use crate::exec::{Cmd, HttpRequest};

pub(super) fn grade(
    services: &[ServiceStatus],
    health: &[HealthCheck],
    r: &Resources,
    errors: &[LogEvent],
    security: &[LogEvent],
) -> Vec<Finding> {
    let mut f = Vec::new();
    for s in services {
        f.push(Finding::new(
            "services",
            &s.service,
            findings::grade_service(s.state),
            format!(
                "{} ({})",
                crate::tools::assess::state_word(s.state),
                s.detail
            ),
        ));
    }
    for h in health {
        let what = h.status_code.map_or_else(
            || h.detail.clone(),
            |c| format!("HTTP {c} in {} ms", h.latency_ms),
        );
        f.push(Finding::new(
            "health",
            &h.service,
            findings::grade_http(h.status_code),
            what,
        ));
    }
    f.push(Finding::new(
        "resources",
        "load",
        findings::grade_load(r.load.load1, r.cpus),
        format!("load {:.2} on {} cpu(s)", r.load.load1, r.cpus),
    ));
    f.push(Finding::new(
        "resources",
        "memory",
        findings::grade_memory(r.memory.used_percent),
        format!("{:.0}% used", r.memory.used_percent),
    ));
    for d in &r.disks {
        let Some(pct) = d.used_percent else { continue };
        f.push(Finding::new(
            "resources",
            format!("disk {}", d.mounted_on),
            findings::grade_disk(pct),
            format!("{pct:.0}% used"),
        ));
    }
    f.push(Finding::new(
        "logs",
        "recent errors",
        findings::grade_error_count(errors.len() as u64),
        format!(
            "{} error line(s) in the last {LOG_TAIL} lines",
            errors.len()
        ),
    ));
    if !security.is_empty() {
        f.push(Finding::new(
            "logs",
            "security events",
            Severity::Warn,
            format!("{} recent security event(s)", security.len()),
        ));
    }
    f
}

/// One external endpoint; the shown URL keeps its `{secret:…}` placeholders.
pub(super) async fn endpoint(ctx: &Ctx, ep: &crate::config::Endpoint) -> HealthCheck {
    match ep.resolved_url(&ctx.config.secrets) {
        Ok(url) => HealthCheck {
            url: ep.url.clone(),
            ..check(ctx, &ep.name, &url, None).await
        },
        Err(e) => HealthCheck {
            service: ep.name.clone(),
            url: ep.url.clone(),
            healthy: false,
            status_code: None,
            latency_ms: 0,
            detail: e,
        },
    }
}

pub(super) fn keep_last<T>(v: &mut Vec<T>, n: usize) {
    let cut = v.len().saturating_sub(n);
    v.drain(..cut);
}

pub(super) async fn health_checks(
    ctx: &Ctx,
    host: &Host,
    services: &[Service],
) -> Vec<HealthCheck> {
    let checks = services.iter().filter_map(|s| {
        let url = Service::url_for(s.health_url.as_deref()?, host);
        Some(async move { check(ctx, &s.name, &url, s.api_key_secret.as_deref()).await })
    });
    futures::future::join_all(checks).await
}

/// Errors of the application logs and security events of the security logs (newest last).
pub(super) async fn log_events(
    ctx: &Ctx,
    host: &Host,
    services: &[Service],
) -> (Vec<LogEvent>, Vec<LogEvent>) {
    let reads = services.iter().flat_map(|s| {
        ["application", "security"]
            .into_iter()
            .filter_map(move |kind| {
                let path = s.logs.get(kind)?.clone();
                Some(async move {
                    let cmd = Cmd::new([
                        "tail".to_string(),
                        "-n".into(),
                        LOG_TAIL.into(),
                        "--".into(),
                        path,
                    ])
                    .privileged();
                    let out = ctx.fleet.run(host, &cmd).await.ok()?;
                    Some((s.name.clone(), kind, out.stdout))
                })
            })
    });
    let mut errors = Vec::new();
    let mut security = Vec::new();
    for (service, kind, text) in futures::future::join_all(reads).await.into_iter().flatten() {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let e = parse_line(line);
            let keep = if kind == "application" {
                logs::is_error(&e)
            } else {
                logs::is_security_event(&e)
            };
            if keep {
                let ev = LogEvent {
                    service: service.clone(),
                    timestamp: e.timestamp.clone(),
                    message: e.message.clone(),
                };
                if kind == "application" {
                    errors.push(ev)
                } else {
                    security.push(ev)
                }
            }
        }
    }
    (errors, security)
}

pub(super) async fn metric_samples(ctx: &Ctx, host: &Host, services: &[Service]) -> Vec<Sample> {
    let reads = services.iter().filter_map(|s| {
        let url = Service::url_for(s.metrics_url.as_deref()?, host);
        Some(async move {
            let mut req = HttpRequest::get(url, ctx.config.server.http_timeout);
            if let Some(k) = s
                .api_key_secret
                .as_deref()
                .and_then(|k| ctx.config.secrets.get(k).ok())
            {
                req = req.header("X-API-Key", k);
            }
            let reply = ctx.http.send(&req).await.ok()?;
            let mut samples =
                metrics_text::parse_samples(&reply.body, metrics_text::RUNBOOK_METRIC_PREFIXES)
                    .ok()?;
            // Histogram buckets are most of a page and say little at a glance: the count and
            // sum stay, and query_metrics gives the percentiles.
            samples.retain(|s| !s.name.ends_with("_bucket"));
            Some(samples)
        })
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect()
}
