//! `restart_database`: the runbook's "connection pool reset" (`systemctl restart postgresql`)
//! on the database service's hosts, then waiting until the database accepts connections
//! again. Destructive: every session is cut, so an operator approves it at a terminal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conn::{self, Settings};
use crate::config::{Host, Service};
use crate::engine::action::{Action, Draft, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, Name, ToolError, ToolMeta, Toolset};
use crate::exec::manager::{self, Op};
use crate::exec::{Cmd, ExecError, Limits};

pub struct RestartDatabase;

/// How long the database may take to accept connections after the restart.
const ACCEPTS_WITHIN: Duration = Duration::from_secs(60);
/// A restart may wait for a shutdown checkpoint: far longer than an ordinary command.
const RESTART_TIMEOUT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(250);
const START_TIME: &str = "SELECT to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

/// Parameters of `restart_database`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The database service's hosts (inventory names), explicit.
    #[serde(deserialize_with = "crate::engine::args::names_required")]
    pub hosts: Vec<Name>,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan and the current connections; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

crate::impl_mutating!(Params);

/// Per host, the restart and whether the database answers again.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub service: String,
    /// `host:port/database` polled after the restart.
    pub target: String,
    pub hosts: Vec<HostOutcome>,
    /// `pg_postmaster_start_time()` before (absent when it did not answer) and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_after: Option<String>,
    /// The postmaster's start time changed: the server really restarted.
    pub restarted: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostOutcome {
    pub host: String,
    /// The command as planned.
    pub command: String,
    /// Exit status; absent when it did not finish (timed out: outcome unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Error output, or why the command did not run to the end.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Seconds until a connection succeeded after the restart (absent: it did not, within 60 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepting_after_secs: Option<f64>,
    pub ok: bool,
}

/// The `[database].service`, which says where the database runs.
fn db_service(ctx: &Ctx) -> Result<Service, ToolError> {
    let name = ctx
        .config
        .database
        .as_ref()
        .and_then(|d| d.service.as_deref())
        .ok_or_else(|| {
            ToolError::unavailable(
                "no database service is configured: set `service` in the [database] table",
            )
        })?;
    ctx.config
        .service(name)
        .cloned()
        .ok_or_else(|| ToolError::internal(format!("database service `{name}` vanished")))
}

/// Every target must run the database service.
fn targets(ctx: &Ctx, p: &Params, svc: &Service) -> Result<Vec<Host>, ToolError> {
    p.hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            ctx.config
                .host(h.as_str())
                .filter(|host| svc.hosts.contains(&host.name))
                .cloned()
                .ok_or_else(|| {
                    ToolError::invalid(
                        format!("hosts[{i}]"),
                        format!(
                            "`{h}` does not run the database service `{}` (it runs on: {})",
                            svc.name,
                            svc.hosts.join(", ")
                        ),
                    )
                })
        })
        .collect()
}

fn restart_cmd(svc: &Service) -> Cmd {
    manager::control(svc.manager, Op::Restart, &svc.unit)
}

/// Polls until a session opens, or `ACCEPTS_WITHIN` passes: the seconds it took.
async fn wait_accepting(s: &Settings) -> Option<f64> {
    let started = Instant::now();
    loop {
        if conn::connect_with(s).await.is_ok() {
            return Some((started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        }
        if started.elapsed() >= ACCEPTS_WITHIN {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn start_time(s: &Settings) -> Option<String> {
    let session = conn::connect_with(s).await.ok()?;
    let row = session
        .bounded(
            "reading the start time",
            session.client.query_one(START_TIME, &[]),
        )
        .await
        .ok()?;
    row.get(0)
}

impl Action for RestartDatabase {
    const META: ToolMeta = ToolMeta {
        name: "restart_database",
        title: "Restart the database",
        description: "Restarts the PostgreSQL service on its host (`systemctl restart postgresql`) \
            and waits until it accepts connections again. Use as a last resort when connections \
            are exhausted or stuck and check_database shows no query worth cancelling; every \
            session is cut. Destructive: an operator approves it at a terminal, typing the host \
            back. Returns the command's outcome, seconds until connections succeed, and whether \
            the server really restarted.",
        effect: Effect::Destructive,
        toolset: Toolset::Database,
    };
    type Params = Params;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        let svc = db_service(ctx)?;
        let s = conn::settings(ctx)?;
        let hosts = targets(ctx, p, &svc)?;
        let cmd = restart_cmd(&svc);
        let mut steps = Vec::new();
        for h in &hosts {
            steps.push(Step::run(&h.name, &cmd.argv, cmd.privileged && h.sudo));
            steps.push(Step::check(
                &h.name,
                format!(
                    "PostgreSQL at {} accepts connections within {} s",
                    s.target,
                    ACCEPTS_WITHIN.as_secs()
                ),
            ));
        }
        Ok(Draft {
            steps,
            undo: vec![format!(
                "if it stays down: `systemctl start {}` on {}, then read its log (journalctl -u {})",
                svc.unit,
                svc.hosts.join(", "),
                svc.unit
            )],
            targets: crate::tools::remediate::common::targets(&hosts, &svc),
            confirm_text: crate::tools::remediate::common::confirm_text(&hosts),
        })
    }

    /// The connections about to be cut; a database that does not answer is reported, never a
    /// reason to refuse (restarting it may be the fix).
    async fn preflight(ctx: Arc<Ctx>, _p: &Params) -> Result<Vec<String>, ToolError> {
        let line = match conn::connect(&ctx).await {
            Ok(s) => match super::check::read(&s, 5, Instant::now()).await {
                Ok(out) => super::connections_line(&out),
                Err(e) => format!("{}: {}", s.target, e.message),
            },
            // "PostgreSQL at ... is not accepting connections: ..."
            Err(e) => e.message,
        };
        Ok(vec![line])
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, run: RunCtx) -> Result<Output, ToolError> {
        let svc = db_service(&ctx)?;
        let s = conn::settings(&ctx)?;
        let hosts = targets(&ctx, &p, &svc)?;
        let cmd = restart_cmd(&svc);
        let started_before = start_time(&s).await;
        let limits = Limits {
            timeout: RESTART_TIMEOUT,
            ..ctx.fleet.limits()
        };
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
            let command = format!(
                "{}{}",
                if cmd.privileged && h.sudo {
                    "sudo "
                } else {
                    ""
                },
                cmd.argv.join(" ")
            );
            let (exit_code, detail) = match ctx.fleet.run_with(h, &cmd, limits).await {
                Ok(o) if o.success() => (o.exit_code, String::new()),
                Ok(o) => (o.exit_code, o.stderr.trim().chars().take(300).collect()),
                Err(e @ ExecError::TimedOut(_)) => (None, format!("{e}: outcome unknown")),
                Err(e) => (None, e.to_string()),
            };
            let ran = exit_code == Some(0);
            let accepting_after_secs = if ran { wait_accepting(&s).await } else { None };
            let ok = ran && accepting_after_secs.is_some();
            out.push(HostOutcome {
                host: h.name.clone(),
                command,
                exit_code,
                detail,
                accepting_after_secs,
                ok,
            });
            if !ok {
                break;
            }
        }
        let started_after = start_time(&s).await;
        Ok(Output {
            service: svc.name,
            target: s.target,
            hosts: out,
            restarted: started_after.is_some() && started_after != started_before,
            started_before,
            started_after,
        })
    }

    fn summary(out: &Output) -> String {
        let parts: Vec<String> = out
            .hosts
            .iter()
            .map(|h| match (h.ok, h.accepting_after_secs) {
                (true, Some(secs)) => format!(
                    "{}: restarted, accepting connections after {secs} s",
                    h.host
                ),
                (false, None) if h.exit_code == Some(0) => format!(
                    "{}: restarted but NOT accepting connections within {} s",
                    h.host,
                    ACCEPTS_WITHIN.as_secs()
                ),
                _ => format!("{}: FAILED: {} ({})", h.host, h.command, h.detail),
            })
            .collect();
        format!("{} at {}: {}", out.service, out.target, parts.join("; "))
    }

    fn failed(out: &Output) -> bool {
        out.hosts.is_empty() || out.hosts.iter().any(|h| !h.ok)
    }
}
