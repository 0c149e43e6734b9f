//! `rolling_restart`: restart a service on several hosts, one at a time, each health-checked
//! before the next; halts and reports at the first failure, with progress notifications.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common;
use super::restart::{HostOutcome, Mode, commands};
use crate::engine::action::{Action, Draft, Mutating, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, Name, Refusal, ToolError, ToolMeta, Toolset};

pub struct RollingRestart;

/// Parameters of `rolling_restart`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Hosts in the order to restart them (inventory names), explicit.
    #[serde(deserialize_with = "crate::engine::args::names_required")]
    pub hosts: Vec<Name>,
    /// Service name from the inventory.
    pub service: Name,
    /// Seconds each host may take to answer its health check again (default 30, 1..=300).
    #[serde(default = "thirty")]
    #[schemars(range(min = 1, max = 300))]
    pub health_timeout_secs: u64,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan and the current health; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn thirty() -> u64 {
    30
}

impl Mutating for Params {
    fn hosts(&self) -> &[Name] {
        &self.hosts
    }
    /// One host is down at a time: that is what the host limit counts.
    fn hosts_at_once(&self) -> usize {
        self.hosts.len().min(1)
    }
    fn reason(&self) -> &str {
        &self.reason
    }
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// What happened, host by host, in order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub service: String,
    /// Hosts done (ok) and the one that failed, if any.
    pub hosts: Vec<HostOutcome>,
    /// Hosts never touched because the roll halted.
    pub skipped: Vec<String>,
    /// Why the roll halted, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
}

impl Action for RollingRestart {
    const META: ToolMeta = ToolMeta {
        name: "rolling_restart",
        title: "Rolling restart",
        description: "Restarts a service on the named hosts one at a time, in the given order, \
            waiting for each to pass its health check before the next, and halts at the first \
            host that fails (the rest are left untouched). Use for memory leaks or config \
            reloads across the fleet without an outage. Needs approval of the exact plan; sends \
            progress notifications. Returns each host's commands and health, and the skipped hosts.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    type Params = Params;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        if !(1..=300).contains(&p.health_timeout_secs) {
            return Err(ToolError::invalid(
                "health_timeout_secs",
                "out of range 1..=300",
            ));
        }
        let svc = common::service(ctx, "service", &p.service)?;
        if svc.health_url.is_none() {
            return Err(ToolError::invalid(
                "service",
                format!(
                    "`{}` has no health URL: a rolling restart needs one to know when to go on",
                    svc.name
                ),
            ));
        }
        let hosts = common::hosts_running(ctx, &p.hosts, &svc)?;
        let mut steps = Vec::new();
        for h in &hosts {
            steps.push(Step::check(
                &h.name,
                format!("another instance of {} is healthy", svc.name),
            ));
            for c in commands(&svc, Mode::Restart, false) {
                steps.push(Step::run(&h.name, &c.argv, c.privileged && h.sudo));
            }
            steps.push(Step::check(
                &h.name,
                format!(
                    "{} healthy within {} s, else halt",
                    svc.name, p.health_timeout_secs
                ),
            ));
        }
        Ok(Draft {
            steps,
            undo: Vec::new(),
            targets: common::targets(&hosts, &svc),
            confirm_text: String::new(),
        })
    }

    async fn preflight(ctx: Arc<Ctx>, p: &Params) -> Result<Vec<String>, ToolError> {
        let svc = common::service(&ctx, "service", &p.service)?;
        // One host at a time: each step only needs one other healthy instance, checked again
        // before each host. Here: refuse when the first step already could not go.
        let first = p.hosts.first().cloned().into_iter().collect::<Vec<_>>();
        common::guard_last_healthy(&ctx, &svc, &first).await
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, run: RunCtx) -> Result<Output, ToolError> {
        let svc = common::service(&ctx, "service", &p.service)?;
        let hosts = common::hosts_running(&ctx, &p.hosts, &svc)?;
        let limit = Duration::from_secs(p.health_timeout_secs);
        let n = hosts.len() as f64;
        let mut done = Vec::new();
        let mut halted = None;
        for (i, h) in hosts.iter().enumerate() {
            if run.stopped() {
                halted = Some("the caller went away; nothing further started".to_string());
                break;
            }
            let this = [Name::trusted_owned(&h.name)];
            if let Err(e) = common::guard_last_healthy(&ctx, &svc, &this).await {
                halted = Some(if e.refusal == Some(Refusal::BlastRadius) {
                    e.message
                } else {
                    e.to_string()
                });
                break;
            }
            run.progress(
                i as f64,
                n,
                format!(
                    "restarting {} on {} ({}/{})",
                    svc.name,
                    h.name,
                    i + 1,
                    hosts.len()
                ),
            )
            .await;
            let mut steps = Vec::new();
            for c in commands(&svc, Mode::Restart, false) {
                let r = common::step(&ctx, h, &c).await;
                let ok = r.ok;
                steps.push(r);
                if !ok {
                    break;
                }
            }
            let all_ok = steps.iter().all(|s| s.ok);
            let healthy = if all_ok {
                common::wait_healthy_for(&ctx, h, &svc, limit)
                    .await
                    .map(|c| c.healthy)
            } else {
                None
            };
            let ok = all_ok && healthy == Some(true);
            done.push(HostOutcome {
                host: h.name.clone(),
                steps,
                healthy_after: healthy,
                ok,
            });
            if !ok {
                halted = Some(format!(
                    "{} on {} did not come back healthy within {} s",
                    svc.name, h.name, p.health_timeout_secs
                ));
                break;
            }
            run.progress(
                (i + 1) as f64,
                n,
                format!("{} healthy on {}", svc.name, h.name),
            )
            .await;
        }
        let skipped = hosts
            .iter()
            .skip(done.len())
            .map(|h| h.name.clone())
            .collect();
        Ok(Output {
            service: svc.name,
            hosts: done,
            skipped,
            halted,
        })
    }

    fn summary(out: &Output) -> String {
        let ok: Vec<&str> = out
            .hosts
            .iter()
            .filter(|h| h.ok)
            .map(|h| h.host.as_str())
            .collect();
        let mut s = format!(
            "{}: restarted and healthy on {}",
            out.service,
            if ok.is_empty() {
                "none".into()
            } else {
                ok.join(", ")
            }
        );
        if let Some(why) = &out.halted {
            s.push_str(&format!(
                "; HALTED: {why}; untouched: {}",
                out.skipped.join(", ")
            ));
        }
        s
    }

    fn failed(out: &Output) -> bool {
        out.halted.is_some()
    }
}
