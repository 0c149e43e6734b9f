//! What the model reads of `run_diagnostics`: every problem by name, the healthy hosts in one
//! line, a short line of figures per host, and the calls that follow from the problems.

use super::{HostDiagnostics, Output};
use crate::analyze::findings::Severity;
use crate::digest::{self, Digest};

pub(super) fn digest(out: &Output) -> Digest {
    let word = match out.overall {
        Severity::Ok => "OK",
        Severity::Warn => "WARN",
        Severity::Critical => "CRITICAL",
    };
    let troubled = out
        .hosts
        .iter()
        .filter(|h| h.result.as_ref().is_none_or(|d| d.severity != Severity::Ok))
        .count();
    let lb = match &out.load_balancer {
        Some(lb) if lb.healthy => "; load balancer healthy",
        Some(_) => "; load balancer UNHEALTHY",
        None => "",
    };
    let mut d = Digest::new(format!(
        "{word}: {} host(s), {troubled} with problems{lb}; {} problem(s)",
        out.hosts.len(),
        out.problems.len()
    ));
    for p in &out.problems {
        d.problem(p);
    }
    // The newest error line says more than a count of them.
    for h in &out.hosts {
        if let Some(e) = h.result.as_ref().and_then(|r| r.recent_errors.last()) {
            d.problem(format!(
                "{}: newest error ({}): {}",
                h.host,
                e.service,
                digest::clip(&e.message, 160)
            ));
        }
    }
    let healthy: Vec<&str> = out
        .hosts
        .iter()
        .filter(|h| {
            h.result
                .as_ref()
                .is_some_and(|r| r.severity == Severity::Ok)
        })
        .map(|h| h.host.as_str())
        .collect();
    if !healthy.is_empty() {
        d.ok(format!(
            "{}: services running, health endpoints 2xx, resources within limits",
            digest::names(&healthy)
        ));
    }
    for h in &out.hosts {
        if let Some(r) = &h.result {
            d.figure(figures(&h.host, r));
        }
    }
    next_steps(out, &mut d);
    d
}

/// `mcp-01 load 0.7/2 mem 4% disk 33% err 0`: the numbers an engineer scans first.
fn figures(host: &str, r: &HostDiagnostics) -> String {
    let disk = r
        .resources
        .disks
        .iter()
        .filter_map(|d| d.used_percent)
        .fold(0.0_f64, f64::max);
    let running = r
        .services
        .iter()
        .filter(|s| s.state == crate::analyze::ServiceState::Running)
        .count();
    format!(
        "{host} svc {running}/{} load {:.2}/{} mem {:.0}% disk {disk:.0}% err {}",
        r.services.len(),
        r.resources.load.load1,
        r.resources.cpus,
        r.resources.memory.used_percent,
        r.recent_errors.len()
    )
}

/// The calls that follow from the problems, most urgent first.
fn next_steps(out: &Output, d: &mut Digest) {
    let mut down = Vec::new();
    let mut unhealthy = Vec::new();
    let mut resources = Vec::new();
    let mut logs = Vec::new();
    let mut unreachable = Vec::new();
    for h in &out.hosts {
        let Some(r) = &h.result else {
            unreachable.push(h.host.as_str());
            continue;
        };
        for f in r.findings.iter().filter(|f| f.severity != Severity::Ok) {
            let list = match f.section.as_str() {
                "services" => &mut down,
                "health" => &mut unhealthy,
                "resources" => &mut resources,
                _ => &mut logs,
            };
            if !list.contains(&h.host.as_str()) {
                list.push(h.host.as_str());
            }
        }
    }
    if !down.is_empty() {
        d.next(format!(
            "get_recent_logs hosts={down:?}, then restart_service (dry_run first)"
        ));
    }
    if !unhealthy.is_empty() {
        d.next(format!(
            "analyze_logs hosts={unhealthy:?} for the failing requests"
        ));
    }
    if !resources.is_empty() {
        d.next(format!("check_system_resources hosts={resources:?}"));
    }
    if !logs.is_empty() {
        d.next(format!("analyze_logs hosts={logs:?}"));
    }
    if !unreachable.is_empty() {
        d.next(format!(
            "`runbook-mcp doctor` for {unreachable:?} (ssh reachability)"
        ));
    }
    if out.load_balancer.as_ref().is_some_and(|lb| !lb.healthy) {
        d.next("check_load_balancer");
    }
    if !d.has_problems() {
        d.next("what_changed or get_alerts if users still report trouble");
    }
}
