//! `check_service_status`: the state of every managed service on every host, read from the
//! service manager's machine-readable output.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::ServiceState;
use crate::analyze::{docker, supervisor, systemd};
use crate::config::{Host, Manager, Service};
use crate::engine::fanout::{self, HostResult};
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};
use crate::exec::{ExecError, manager};

pub struct CheckServiceStatus;

/// Parameters of `check_service_status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Inventory host names; default: every host.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub hosts: Option<Vec<Name>>,
    /// Service names from the inventory; default: every service of each host.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub services: Option<Vec<Name>>,
}

/// State of the services, per host.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub hosts: Vec<HostResult<HostServices>>,
    /// `host/service` pairs that are not running.
    pub down: Vec<String>,
}

/// The services of one host.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HostServices {
    pub services: Vec<ServiceStatus>,
}

/// One service on one host.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ServiceStatus {
    /// Service name from the inventory.
    pub service: String,
    /// Overall state.
    pub state: ServiceState,
    /// Manager detail, e.g. `active/running`, `inactive/dead`, `failed/failed`.
    pub detail: String,
    /// Main process id, when running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_pid: Option<u32>,
    /// When it entered its current state (manager's timestamp), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Automatic restarts counted by the manager, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    /// Memory in use, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

impl Tool for CheckServiceStatus {
    const META: ToolMeta = ToolMeta {
        name: "check_service_status",
        title: "Check service status",
        description: "Reads the state of managed services (running, stopped, failed, not found) on \
            each host, in parallel, from the service manager (systemd, supervisor or Docker). Use \
            it first in an incident to see what is down where. Returns per host each service's \
            state, main PID, start time and restart count, plus a `down` list.",
        effect: Effect::Read,
        toolset: Toolset::Assess,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        let hosts = fanout::select_hosts(&ctx, &p.hosts)?;
        let wanted = select_services(&ctx, &p.services)?;
        let deadline = ctx.fleet.limits().timeout * 2;
        let results = fanout::per_host(&ctx, hosts, deadline, |ctx, host| {
            let wanted = wanted.clone();
            async move {
                let services: Vec<Service> = ctx
                    .config
                    .services_on(&host.name)
                    .filter(|s| wanted.as_ref().is_none_or(|w| w.contains(&s.name)))
                    .cloned()
                    .collect();
                let services = statuses(&ctx, &host, &services).await?;
                Ok(HostServices { services })
            }
        })
        .await;
        let down = results
            .iter()
            .filter_map(|r| r.result.as_ref().map(|v| (&r.host, v)))
            .flat_map(|(h, v)| {
                v.services
                    .iter()
                    .filter(|s| s.state != ServiceState::Running)
                    .map(move |s| format!("{h}/{}", s.service))
            })
            .collect();
        Ok(Output {
            hosts: results,
            down,
        })
    }

    fn summary(out: &Output) -> String {
        let mut s = fanout::hosts_line(&out.hosts);
        if out.down.is_empty() {
            s.push_str("; every service is running");
        } else {
            let detail: Vec<String> = out
                .hosts
                .iter()
                .filter_map(|r| r.result.as_ref().map(|v| (&r.host, v)))
                .flat_map(|(h, v)| {
                    v.services
                        .iter()
                        .filter(|s| s.state != ServiceState::Running)
                        .map(move |s| {
                            format!(
                                "{} on {h} is {} ({})",
                                s.service,
                                state_word(s.state),
                                s.detail
                            )
                        })
                })
                .collect();
            s.push_str(&format!("; DOWN: {}", detail.join("; ")));
        }
        s
    }

    fn is_error(out: &Output) -> bool {
        out.hosts.iter().all(|h| !h.is_ok())
    }
}

/// Validates the `services` argument against the inventory.
pub(crate) fn select_services(
    ctx: &Ctx,
    names: &Option<Vec<Name>>,
) -> Result<Option<Vec<String>>, ToolError> {
    let Some(names) = names.as_ref().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if ctx.config.service(n.as_str()).is_none() {
            let known: Vec<&str> = ctx
                .config
                .services
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            return Err(ToolError::invalid(
                format!("services[{i}]"),
                format!(
                    "unknown service `{n}`; the inventory has: {}",
                    known.join(", ")
                ),
            ));
        }
        out.push(n.as_str().to_string());
    }
    Ok(Some(out))
}

/// Reads the state of `services` on `host`: one command per manager.
pub(crate) async fn statuses(
    ctx: &Ctx,
    host: &Host,
    services: &[Service],
) -> Result<Vec<ServiceStatus>, ExecError> {
    let mut out = Vec::new();
    for m in [Manager::Systemd, Manager::Supervisor, Manager::Docker] {
        let group: Vec<&Service> = services.iter().filter(|s| s.manager == m).collect();
        if group.is_empty() {
            continue;
        }
        let units: Vec<&str> = group.iter().map(|s| s.unit.as_str()).collect();
        let res = ctx.fleet.run(host, &manager::status(m, &units)).await?;
        let parsed = parse_status(m, &res.stdout, &units);
        for s in group {
            out.push(match parsed.iter().find(|u| u.service == s.unit) {
                Some(u) => ServiceStatus {
                    service: s.name.clone(),
                    ..u.clone()
                },
                None => unknown(
                    &s.name,
                    first_line(&res.stderr).unwrap_or("no status reported"),
                ),
            });
        }
    }
    Ok(out)
}

fn unknown(name: &str, why: &str) -> ServiceStatus {
    ServiceStatus {
        service: name.to_string(),
        state: ServiceState::Unknown,
        detail: why.to_string(),
        main_pid: None,
        since: None,
        restarts: None,
        memory_bytes: None,
    }
}

/// The manager's output as statuses keyed by unit name (in `service`).
fn parse_status(m: Manager, stdout: &str, units: &[&str]) -> Vec<ServiceStatus> {
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "?".into());
    match m {
        Manager::Systemd => systemd::parse_show(stdout, units)
            .unwrap_or_default()
            .into_iter()
            .map(|u| ServiceStatus {
                service: u.unit.clone(),
                state: u.state,
                detail: format!("{}/{}", opt(&u.active_state), opt(&u.sub_state)),
                main_pid: u.main_pid,
                since: u.active_since.or(u.started_at),
                restarts: u.restarts,
                memory_bytes: u.memory_bytes,
            })
            .collect(),
        Manager::Supervisor => supervisor::parse_status(stdout)
            .unwrap_or_default()
            .into_iter()
            .map(|p| ServiceStatus {
                service: p.name.clone(),
                state: p.state,
                detail: format!("{} {}", p.raw_state, p.description)
                    .trim()
                    .to_string(),
                main_pid: p.pid,
                since: p.uptime.map(|u| format!("up {u}")),
                restarts: None,
                memory_bytes: None,
            })
            .collect(),
        Manager::Docker => docker::parse_service_ls(stdout)
            .unwrap_or_default()
            .into_iter()
            .map(|d| ServiceStatus {
                service: d.name.clone(),
                state: d.state,
                detail: format!("{} replicas {}", d.mode, d.replicas_text),
                main_pid: None,
                since: None,
                restarts: None,
                memory_bytes: None,
            })
            .collect(),
    }
}

pub(crate) fn state_word(s: ServiceState) -> &'static str {
    match s {
        ServiceState::Running => "running",
        ServiceState::Stopped => "stopped",
        ServiceState::Failed => "failed",
        ServiceState::NotFound => "not installed",
        ServiceState::Activating => "starting",
        ServiceState::Degraded => "degraded",
        _ => "in an unknown state",
    }
}

fn first_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).find(|l| !l.is_empty())
}
