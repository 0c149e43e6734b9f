//! `restart_service`: reload, restart, or stop-and-start a service on explicit hosts, one host
//! at a time, each health-checked after.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use crate::config::{Host, Manager, Service};
use crate::engine::plan::{At, Step};
use crate::engine::runner::RunOutcome;
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Name, ToolError, ToolMeta, Toolset,
};
use crate::exec::manager::Op;

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

/// Parameters of `restart_service` (besides `hosts`, `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Service name from the inventory.
    pub service: Name,
    /// `reload`, `restart` (default) or `stop_start`.
    #[serde(default = "restart")]
    pub mode: Mode,
    /// With `stop_start`: remove the service's temporary files (its configured `tmp_pattern`
    /// in /tmp) while it is stopped.
    #[serde(default)]
    pub clean_tmp: bool,
}

fn restart() -> Mode {
    Mode::Restart
}

/// `find /tmp -maxdepth 1 -name PATTERN -exec rm -rf -- {} +`: find's own pattern, never a
/// shell glob, only directly under /tmp.
fn clean_tmp(h: &Host, pattern: &str) -> Step {
    let argv = [
        "find",
        "/tmp",
        "-mindepth",
        "1",
        "-maxdepth",
        "1",
        "-name",
        pattern,
        "-exec",
        "rm",
        "-rf",
        "--",
        "{}",
        "+",
    ];
    Step::run(
        &At::of(h),
        argv.iter().map(|a| a.to_string()).collect(),
        h.sudo,
    )
}

/// The mode as it really acts: supervisor has no reload of one program (its "reload" is a
/// restart), so there a reload is planned as the restart it is, with the restart's guard.
fn honest(svc: &Service, mode: Mode) -> Mode {
    match (mode, svc.manager) {
        (Mode::Reload, Manager::Supervisor) => Mode::Restart,
        (m, _) => m,
    }
}

/// The steps for one host, in order.
pub(super) fn host_steps(ctx: &Ctx, h: &Host, svc: &Service, mode: Mode, clean: bool) -> Vec<Step> {
    let mode = honest(svc, mode);
    let mut steps = Vec::new();
    if mode != Mode::Reload {
        steps.extend(common::last_healthy_guard(ctx, h, svc));
    }
    match mode {
        Mode::Reload => steps.push(common::control(h, svc, Op::Reload)),
        Mode::Restart => steps.push(common::control(h, svc, Op::Restart)),
        Mode::StopStart => {
            steps.push(common::control(h, svc, Op::Stop));
            // Whatever fails after the stop (the temp clean, the start itself), start it again:
            // the plan never leaves the service stopped.
            steps.push(Step::Compensate {
                steps: vec![common::control(h, svc, Op::Start)],
            });
            if clean && let Some(p) = &svc.tmp_pattern {
                steps.push(clean_tmp(h, p));
            }
            steps.push(common::control(h, svc, Op::Start));
        }
    }
    if mode != Mode::Reload {
        steps.extend(common::wait_healthy(h, svc, common::HEALTHY_AGAIN_SECS));
    }
    steps
}

impl Action for RestartService {
    const META: ToolMeta = ToolMeta {
        name: "restart_service",
        title: "Restart a service",
        description: "Reloads or restarts a managed service on the named hosts, one host at a \
            time, and waits for its health check after each; never takes down the last healthy \
            instance. Use when a service hangs, leaks or runs a bad state; `stop_start` \
            (optionally cleaning its temp files) is destructive and needs an operator at a \
            terminal. Needs approval of the exact plan; try `dry_run` first. Returns per host \
            each step's outcome.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    type Params = Params;

    fn effect(_ctx: &Ctx, p: &Params, _f: &Facts) -> Effect {
        if p.mode == Mode::StopStart {
            Effect::Destructive
        } else {
            Effect::Change
        }
    }

    fn plan(ctx: &Ctx, c: &Common, p: &Params, _f: &Facts) -> Result<Draft, ToolError> {
        let svc = common::service(ctx, "service", &p.service)?;
        if p.clean_tmp && (p.mode != Mode::StopStart || svc.tmp_pattern.is_none()) {
            return Err(ToolError::invalid(
                "clean_tmp",
                "needs mode `stop_start` and a `tmp_pattern` configured for the service",
            ));
        }
        let hosts = common::hosts_running(ctx, &c.hosts, &svc)?;
        let stages = hosts
            .iter()
            .map(|h| common::stage(h, host_steps(ctx, h, &svc, p.mode, p.clean_tmp)))
            .collect();
        let mut notes = Vec::new();
        if honest(&svc, p.mode) != p.mode {
            notes.push(format!(
                "{} is managed by supervisor, which cannot reload one program: this is a restart",
                svc.name
            ));
        }
        Ok(Draft {
            stages,
            notes,
            targets: common::targets(&hosts, &svc),
            confirm_text: common::confirm_text(&hosts),
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, p: &Params, out: &RunOutcome) -> String {
        format!("{}: {}", p.service, out.line())
    }
}
