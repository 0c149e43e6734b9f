//! Pieces the remediation plans share: resolving the service argument and its hosts, and the
//! typed steps every restart-like plan uses (the manager's command, the last-healthy guard,
//! waiting for health).

use crate::config::{Host, Service};
use crate::engine::Target;
use crate::engine::plan::{At, Otherwise, Probe, Stage, Step};
use crate::engine::{Ctx, Name, ToolError};
use crate::exec::manager::{self, Op};

/// How long a restarted service may take to answer its health check again.
pub const HEALTHY_AGAIN_SECS: u64 = 30;

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
pub fn targets(hosts: &[Host], svc: &Service) -> Vec<Target> {
    hosts
        .iter()
        .map(|h| Target {
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

/// Every target host must run the service. A Swarm-managed service is not acted on per host:
/// a "restart" there updates the whole swarm service, and a stop scales it to 0.
pub fn hosts_running(ctx: &Ctx, hosts: &[Name], svc: &Service) -> Result<Vec<Host>, ToolError> {
    if svc.manager == crate::config::Manager::Docker {
        return Err(ToolError::invalid(
            "service",
            format!(
                "`{}` is a Docker Swarm service: a per-host restart would restart every task of \
                 it; use scale_service, set_memory_limit or rollback_deployment",
                svc.name
            ),
        ));
    }
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
                    format!(
                        "`{}` does not run `{}` (it runs on: {})",
                        host.name,
                        svc.name,
                        svc.hosts.join(", ")
                    ),
                ));
            }
            Ok(host)
        })
        .collect()
}

/// A stage of `h`.
pub fn stage(h: &Host, steps: Vec<Step>) -> Stage {
    let at = At::of(h);
    Stage {
        name: at.host,
        via: at.via,
        steps,
    }
}

/// The manager's command for `op` on `svc`, on `h`.
pub fn control(h: &Host, svc: &Service, op: Op) -> Step {
    let c = manager::control(svc.manager, op, &svc.unit);
    Step::run(&At::of(h), c.argv, c.privileged && h.sudo)
}

/// `svc` on `h` answers its health check (None: no health URL).
pub fn healthy(h: &Host, svc: &Service) -> Option<Probe> {
    let url = Service::url_for(svc.health_url.as_deref()?, h);
    Some(Probe::Healthy {
        host: h.name.clone(),
        service: svc.name.clone(),
        url,
        api_key_secret: svc.api_key_secret.clone(),
    })
}

/// Never the last healthy instance: `h` is already unhealthy, or another instance of `svc`
/// is healthy. The same probe runs before anyone is asked and again right before the stage.
pub fn last_healthy_guard(ctx: &Ctx, h: &Host, svc: &Service) -> Option<Step> {
    let this = healthy(h, svc)?;
    let mut any = vec![Probe::Not {
        probe: Box::new(this),
    }];
    for other in svc.hosts.iter().filter(|o| **o != h.name) {
        if let Some(o) = ctx.config.host(other)
            && let Some(p) = healthy(o, svc)
        {
            any.push(p);
        }
    }
    Some(Step::Guard {
        why: format!(
            "never the last healthy instance of `{}`: {} goes down only while another instance is healthy",
            svc.name, h.name
        ),
        probe: Probe::Any { probes: any },
        otherwise: Otherwise::Halt,
    })
}

/// Wait until `svc` on `h` is healthy again, at most `secs`.
pub fn wait_healthy(h: &Host, svc: &Service, secs: u64) -> Option<Step> {
    Some(Step::WaitUntil {
        probe: healthy(h, svc)?,
        within_secs: secs,
        every_ms: 250,
    })
}
