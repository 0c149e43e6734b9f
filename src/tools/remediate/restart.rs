//! `restart_service`: reload, restart, or stop-and-start a service on explicit hosts, one host
//! at a time, each health-checked after.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{self, StepResult};
use crate::config::Service;
use crate::engine::action::{Action, Draft, Mutating, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, Name, ToolError, ToolMeta, Toolset};
use crate::exec::Cmd;
use crate::exec::manager::{self, Op};

pub struct RestartService;

/// How to restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Graceful: the service re-reads its configuration, connections stay.
    Reload,
    /// The service manager restarts it.
    Restart,
    /// Stop, (optionally clean its temporary files), start. Destructive: needs an operator at
    /// the terminal.
    StopStart,
}

/// Parameters of `restart_service`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Target hosts (inventory names), explicit.
    #[serde(deserialize_with = "crate::engine::args::names_required")]
    pub hosts: Vec<Name>,
    /// Service name from the inventory.
    pub service: Name,
    /// `reload`, `restart` (default) or `stop_start`.
    #[serde(default = "restart")]
    pub mode: Mode,
    /// With `stop_start`: remove the service's temporary files (its configured `tmp_pattern`
    /// in /tmp) while it is stopped.
    #[serde(default)]
    pub clean_tmp: bool,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan and the current health; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn restart() -> Mode {
    Mode::Restart
}

impl Mutating for Params {
    fn hosts(&self) -> &[Name] {
        &self.hosts
    }
    fn reason(&self) -> &str {
        &self.reason
    }
    fn dry_run(&self) -> bool {
        self.dry_run
    }
    fn effect(&self) -> Option<Effect> {
        (self.mode == Mode::StopStart).then_some(Effect::Destructive)
    }
}

/// Per host, what ran and whether the service answers again.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub service: String,
    pub hosts: Vec<HostOutcome>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostOutcome {
    pub host: String,
    pub steps: Vec<StepResult>,
    /// Health after the action (absent without a health URL or when a step failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_after: Option<bool>,
    pub ok: bool,
}

/// The commands for one host, in order; the plan shows exactly these.
pub(super) fn commands(svc: &Service, mode: Mode, clean_tmp: bool) -> Vec<Cmd> {
    match mode {
        Mode::Reload => vec![manager::control(svc.manager, Op::Reload, &svc.unit)],
        Mode::Restart => vec![manager::control(svc.manager, Op::Restart, &svc.unit)],
        Mode::StopStart => {
            let mut v = vec![manager::control(svc.manager, Op::Stop, &svc.unit)];
            if clean_tmp && let Some(p) = &svc.tmp_pattern {
                // find's own pattern, never a shell glob; only directly under /tmp.
                v.push(
                    Cmd::new([
                        "find",
                        "/tmp",
                        "-mindepth",
                        "1",
                        "-maxdepth",
                        "1",
                        "-name",
                        p,
                        "-exec",
                        "rm",
                        "-rf",
                        "--",
                        "{}",
                        "+",
                    ])
                    .privileged(),
                );
            }
            v.push(manager::control(svc.manager, Op::Start, &svc.unit));
            v
        }
    }
}

impl Action for RestartService {
    const META: ToolMeta = ToolMeta {
        name: "restart_service",
        title: "Restart a service",
        description: "Reloads or restarts a managed service on the named hosts, one host at a \
            time, and checks its health after each. Use when a service hangs, leaks or runs a \
            bad state; `stop_start` (optionally cleaning its temp files) is destructive and needs \
            an operator at a terminal. Needs approval of the exact plan; try `dry_run` first. \
            Returns per host the commands run and the health after.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    type Params = Params;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        let svc = common::service(ctx, "service", &p.service)?;
        if p.clean_tmp && (p.mode != Mode::StopStart || svc.tmp_pattern.is_none()) {
            return Err(ToolError::invalid(
                "clean_tmp",
                "needs mode `stop_start` and a `tmp_pattern` configured for the service",
            ));
        }
        let hosts = common::hosts_running(ctx, &p.hosts, &svc)?;
        let mut steps = Vec::new();
        for h in &hosts {
            for c in commands(&svc, p.mode, p.clean_tmp) {
                steps.push(Step::run(&h.name, &c.argv, c.privileged && h.sudo));
            }
            if svc.health_url.is_some() && p.mode != Mode::Reload {
                steps.push(Step::check(
                    &h.name,
                    format!(
                        "{} answers its health check within 30 s before the next host",
                        svc.name
                    ),
                ));
            }
        }
        let undo = match p.mode {
            Mode::StopStart => vec![format!(
                "if it stays down: `systemctl start {}` on the hosts",
                svc.unit
            )],
            _ => Vec::new(),
        };
        Ok(Draft {
            steps,
            undo,
            targets: common::targets(&hosts, &svc),
            confirm_text: common::confirm_text(&hosts),
        })
    }

    async fn preflight(ctx: Arc<Ctx>, p: &Params) -> Result<Vec<String>, ToolError> {
        let svc = common::service(&ctx, "service", &p.service)?;
        if p.mode == Mode::Reload {
            // A reload keeps the service up: report health, never refuse on it.
            let hosts: Vec<_> = svc
                .hosts
                .iter()
                .filter_map(|h| ctx.config.host(h).cloned())
                .collect();
            let mut lines = Vec::new();
            for h in &hosts {
                if let Some(c) = common::health(&ctx, h, &svc).await {
                    lines.push(format!(
                        "{}/{}: {}",
                        h.name,
                        svc.name,
                        if c.healthy { "healthy" } else { "UNHEALTHY" }
                    ));
                }
            }
            return Ok(lines);
        }
        common::guard_last_healthy(&ctx, &svc, &p.hosts).await
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, run: RunCtx) -> Result<Output, ToolError> {
        let svc = common::service(&ctx, "service", &p.service)?;
        let hosts = common::hosts_running(&ctx, &p.hosts, &svc)?;
        let mut out = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            if run.stopped() {
                break;
            }
            run.progress(
                i as f64,
                hosts.len() as f64,
                format!("{} on {}", svc.name, h.name),
            )
            .await;
            let mut steps = Vec::new();
            for c in commands(&svc, p.mode, p.clean_tmp) {
                let r = common::step(&ctx, h, &c).await;
                let ok = r.ok;
                steps.push(r);
                if !ok {
                    break;
                }
            }
            let all_ok = steps.iter().all(|s| s.ok);
            let healthy_after = if all_ok {
                common::wait_healthy(&ctx, h, &svc).await.map(|c| c.healthy)
            } else {
                None
            };
            let ok = all_ok && healthy_after != Some(false);
            out.push(HostOutcome {
                host: h.name.clone(),
                steps,
                healthy_after,
                ok,
            });
            if !ok {
                // One host at a time: stop at the first failure, the rest untouched.
                break;
            }
        }
        Ok(Output {
            service: svc.name,
            hosts: out,
        })
    }

    fn summary(out: &Output) -> String {
        let parts: Vec<String> = out
            .hosts
            .iter()
            .map(|h| {
                let health = match h.healthy_after {
                    Some(true) => ", healthy after",
                    Some(false) => ", NOT healthy after",
                    None => "",
                };
                let failed = h
                    .steps
                    .iter()
                    .find(|s| !s.ok)
                    .map(|s| format!(" FAILED: {} ({})", s.command, s.detail))
                    .unwrap_or_default();
                format!(
                    "{}: {}{health}{failed}",
                    h.host,
                    if h.ok { "done" } else { "failed" }
                )
            })
            .collect();
        format!("{}: {}", out.service, parts.join("; "))
    }

    fn failed(out: &Output) -> bool {
        out.hosts.iter().any(|h| !h.ok)
    }
}
