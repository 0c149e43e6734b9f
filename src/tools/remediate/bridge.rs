//! `restart_bridge`: restart the Telegram bridge, terminate stale bridge processes left from
//! before the restart, and wait until the bridge is healthy.
//!
//! Stale processes are selected, never matched by `pkill -f` (which matches its own command
//! line): the plan captures the bridge's processes — by executable (`process_name`, `node` for
//! the runbook's Node.js bridge) and command line (`process_args`) — *with their start time*
//! before the restart; after it, the selector keeps those still there with the same pid and
//! the same start time (a reused pid is another process) and not the unit's new main process.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::config::{Host, Role, Service};
use crate::engine::plan::{At, Command, Extract, Fact, Read, Selector, Step};
use crate::engine::runner::RunOutcome;
use crate::engine::{Action, Common, Ctx, Draft, Effect, Facts, ToolError, ToolMeta, Toolset};
use crate::exec::manager::Op;

pub struct RestartBridge;

/// `restart_bridge` has only the common parameters.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {}

/// The name the processes list is captured under.
const BEFORE: &str = "bridge_processes";

fn bridge(ctx: &Ctx) -> Result<Service, ToolError> {
    ctx.config
        .services
        .iter()
        .find(|s| s.role == Role::Bridge)
        .cloned()
        .ok_or_else(|| ToolError::unavailable("no service with role = \"bridge\" is configured"))
}

/// The bridge's processes with their start times.
fn processes(at: &At, svc: &Service) -> Fact {
    Fact {
        read: Read::Run(Command::new(
            at,
            ["ps", "-eo", "pid=,lstart=,args="].map(String::from).into(),
            false,
        )),
        extract: Extract::Processes {
            name: svc.process_name.clone(),
            args: svc.process_args.clone(),
        },
    }
}

fn main_pid(at: &At, svc: &Service) -> Fact {
    Fact {
        read: Read::Run(Command::new(
            at,
            vec!["systemctl".into(), "show".into(), svc.unit.clone()],
            false,
        )),
        extract: Extract::MainPid,
    }
}

fn host_steps(ctx: &Ctx, h: &Host, svc: &Service) -> Vec<Step> {
    let at = At::of(h);
    let mut steps = Vec::new();
    steps.extend(common::last_healthy_guard(ctx, h, svc));
    steps.push(Step::Capture {
        name: BEFORE.into(),
        fact: processes(&at, svc),
    });
    steps.push(common::control(h, svc, Op::Restart));
    steps.push(Step::ForEach {
        selector: Selector::StaleProcesses {
            captured: BEFORE.into(),
            now: processes(&at, svc),
            main_pid: main_pid(&at, svc),
        },
        template: Command::new(
            &at,
            ["kill", "-TERM", "--", "{pid}"].map(String::from).into(),
            h.sudo,
        ),
    });
    steps.extend(common::wait_healthy(h, svc, common::HEALTHY_AGAIN_SECS));
    steps
}

impl Action for RestartBridge {
    const META: ToolMeta = ToolMeta {
        name: "restart_bridge",
        title: "Restart the Telegram bridge",
        description: "Restarts the Telegram bridge service on the named hosts, terminates stale \
            bridge processes that survived from before the restart (the same pid and start \
            time as before it, never the new main process), and waits until the bridge answers \
            its health check. Use when notifications stop or get_bridge_status shows it \
            disconnected or stuck. Needs approval of the exact plan. Returns per host each \
            step's outcome, the processes seen before, and the ones terminated.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    type Params = Params;

    fn plan(ctx: &Ctx, c: &Common, _p: &Params, _f: &Facts) -> Result<Draft, ToolError> {
        let svc = bridge(ctx)?;
        let hosts = common::hosts_running(ctx, &c.hosts, &svc)?;
        Ok(Draft {
            stages: hosts
                .iter()
                .map(|h| common::stage(h, host_steps(ctx, h, &svc)))
                .collect(),
            targets: common::targets(&hosts, &svc),
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, _p: &Params, out: &RunOutcome) -> String {
        let killed: Vec<String> = out
            .stages
            .iter()
            .flat_map(|s| &s.steps)
            .filter(|s| s.step.starts_with("kill ") || s.step.starts_with("sudo kill "))
            .map(|s| s.step.rsplit(' ').next().unwrap_or_default().to_string())
            .collect();
        let stale = if killed.is_empty() {
            String::new()
        } else {
            format!("; terminated stale PIDs {}", killed.join(", "))
        };
        format!("bridge: {}{stale}", out.line())
    }
}
