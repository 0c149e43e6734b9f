//! `restart_bridge`: restart the Telegram bridge, terminate stale bridge processes left from
//! before the restart (by PID — never `pkill -f`, which matches its own command line), and
//! wait until the bridge is healthy.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{self, StepResult};
use super::restart::{Mode, commands};
use crate::config::{Host, Role, Service};
use crate::engine::action::{Action, Draft, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, Name, ToolError, ToolMeta, Toolset};
use crate::exec::Cmd;

pub struct RestartBridge;

/// Parameters of `restart_bridge`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Target hosts (inventory names), explicit.
    #[serde(deserialize_with = "crate::engine::args::names_required")]
    pub hosts: Vec<Name>,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan and the current health; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

crate::impl_mutating!(Params);

/// Per host: the restart, the stale processes terminated, the health after.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub service: String,
    pub hosts: Vec<HostOutcome>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostOutcome {
    pub host: String,
    pub steps: Vec<StepResult>,
    /// The bridge's main PID after the restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_pid: Option<u32>,
    /// Stale bridge processes (started before the restart) that were terminated.
    pub terminated: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_after: Option<bool>,
    pub ok: bool,
}

fn bridge(ctx: &Ctx) -> Result<Service, ToolError> {
    ctx.config
        .services
        .iter()
        .find(|s| s.role == Role::Bridge)
        .cloned()
        .ok_or_else(|| ToolError::unavailable("no service with role = \"bridge\" is configured"))
}

/// PIDs of processes running an executable named `name` (`ps -eo pid=,args=` output).
/// Matching the executable, not the whole command line, so `timeout … pgrep -f name` or an ssh
/// shell mentioning the name never matches.
fn pids_named(ps: &str, name: &str) -> Vec<u32> {
    ps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid: u32 = f.next()?.parse().ok()?;
            let base = f.next()?.rsplit('/').next()?;
            (base == name).then_some(pid)
        })
        .collect()
}

/// Stale: there before the restart, still there after, and not the new main process.
fn stale(before: &[u32], after: &[u32], main: Option<u32>) -> Vec<u32> {
    after
        .iter()
        .copied()
        .filter(|p| before.contains(p) && Some(*p) != main)
        .collect()
}

async fn bridge_pids(ctx: &Ctx, h: &Host, name: &str) -> Vec<u32> {
    let ps = Cmd::new(["ps", "-eo", "pid=,args="]);
    ctx.fleet
        .run(h, &ps)
        .await
        .map(|o| pids_named(&o.stdout, name))
        .unwrap_or_default()
}

async fn main_pid(ctx: &Ctx, h: &Host, svc: &Service) -> Option<u32> {
    let o = ctx
        .fleet
        .run(
            h,
            &Cmd::new(["systemctl", "show", "-p", "MainPID", &svc.unit]),
        )
        .await
        .ok()?;
    o.stdout
        .trim()
        .strip_prefix("MainPID=")?
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

impl Action for RestartBridge {
    const META: ToolMeta = ToolMeta {
        name: "restart_bridge",
        title: "Restart the Telegram bridge",
        description: "Restarts the Telegram bridge service on the named hosts, terminates stale \
            bridge processes that survived from before the restart (by PID), and waits until \
            the bridge answers its health check. Use when notifications stop or \
            get_bridge_status shows it disconnected or stuck. Needs approval of the exact plan. \
            Returns per host the new main PID, the terminated PIDs and the health after.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    type Params = Params;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        let svc = bridge(ctx)?;
        let hosts = common::hosts_running(ctx, &p.hosts, &svc)?;
        let mut steps = Vec::new();
        for h in &hosts {
            for c in commands(&svc, Mode::Restart, false) {
                steps.push(Step::run(&h.name, &c.argv, c.privileged && h.sudo));
            }
            steps.push(Step::guarded(
                &h.name,
                format!("kill -TERM each process named `{}` that started before this restart and is not its new main process", svc.unit),
            ));
            if svc.health_url.is_some() {
                steps.push(Step::check(
                    &h.name,
                    format!("{} answers its health check within 30 s", svc.name),
                ));
            }
        }
        Ok(Draft {
            steps,
            undo: Vec::new(),
            targets: common::targets(&hosts, &svc),
            confirm_text: String::new(),
        })
    }

    async fn preflight(ctx: Arc<Ctx>, p: &Params) -> Result<Vec<String>, ToolError> {
        let svc = bridge(&ctx)?;
        common::guard_last_healthy(&ctx, &svc, &p.hosts).await
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, run: RunCtx) -> Result<Output, ToolError> {
        let svc = bridge(&ctx)?;
        let hosts = common::hosts_running(&ctx, &p.hosts, &svc)?;
        let mut out = Vec::new();
        for h in &hosts {
            if run.stopped() {
                break;
            }
            let before = bridge_pids(&ctx, h, &svc.unit).await;
            let mut steps = Vec::new();
            for c in commands(&svc, Mode::Restart, false) {
                steps.push(common::step(&ctx, h, &c).await);
            }
            let restarted = steps.iter().all(|s| s.ok);
            let main = if restarted {
                main_pid(&ctx, h, &svc).await
            } else {
                None
            };
            let mut terminated = Vec::new();
            if restarted {
                let after = bridge_pids(&ctx, h, &svc.unit).await;
                for pid in stale(&before, &after, main) {
                    let r = common::step(
                        &ctx,
                        h,
                        &Cmd::new([
                            "kill".to_string(),
                            "-TERM".into(),
                            "--".into(),
                            pid.to_string(),
                        ])
                        .privileged(),
                    )
                    .await;
                    if r.ok {
                        terminated.push(pid);
                    }
                    steps.push(r);
                }
            }
            let healthy_after = if restarted {
                common::wait_healthy(&ctx, h, &svc).await.map(|c| c.healthy)
            } else {
                None
            };
            let ok = restarted && healthy_after != Some(false);
            out.push(HostOutcome {
                host: h.name.clone(),
                steps,
                main_pid: main,
                terminated,
                healthy_after,
                ok,
            });
            if !ok {
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
                let killed = if h.terminated.is_empty() {
                    String::new()
                } else {
                    format!(", terminated stale PIDs {:?}", h.terminated)
                };
                let health = match h.healthy_after {
                    Some(true) => ", healthy",
                    Some(false) => ", NOT healthy",
                    None => "",
                };
                format!(
                    "{}: {}{killed}{health}",
                    h.host,
                    if h.ok { "restarted" } else { "FAILED" }
                )
            })
            .collect();
        format!("{}: {}", out.service, parts.join("; "))
    }

    fn failed(out: &Output) -> bool {
        out.hosts.iter().any(|h| !h.ok)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stale_processes_are_the_old_ones_named_like_the_bridge() {
        let ps = "  101 /opt/cctelegram/bin/cctelegram-bridge --role bridge\n  \
                  202 /opt/cctelegram/bin/cctelegram-bridge --role bridge\n  \
                  303 /usr/bin/timeout 5 pgrep -f cctelegram-bridge\n  \
                  404 cctelegram-bridge\n  \
                  505 bash -c cctelegram-bridge\n";
        assert_eq!(
            super::pids_named(ps, "cctelegram-bridge"),
            vec![101, 202, 404]
        );
        assert_eq!(
            super::stale(&[101, 404, 999], &[101, 202, 404], Some(202)),
            vec![101, 404]
        );
        assert_eq!(super::stale(&[101], &[101], Some(101)), Vec::<u32>::new());
    }
}
