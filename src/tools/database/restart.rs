//! `restart_database`: the runbook's "connection pool reset" (`systemctl restart postgresql`)
//! on the database service's hosts, then waiting until the database accepts connections
//! again. Destructive: every session is cut, so an operator approves it at a terminal.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conn;
use crate::config::{Host, Service};
use crate::engine::plan::{At, Check, Command, Extract, Fact, Probe, Read, Step};
use crate::engine::runner::RunOutcome;
use crate::engine::{Action, Common, Ctx, Draft, Effect, Facts, ToolError, ToolMeta, Toolset};
use crate::exec::manager::{self, Op};

pub struct RestartDatabase;

/// How long the database may take to accept connections after the restart.
const ACCEPTS_WITHIN: Duration = Duration::from_secs(60);
/// A restart may wait for a shutdown checkpoint: far longer than an ordinary command.
const RESTART_TIMEOUT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(250);
const START_TIME: &str = "SELECT to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

/// `restart_database` has only the common parameters (`hosts`: the database service's hosts).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {}

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
fn targets(ctx: &Ctx, c: &Common, svc: &Service) -> Result<Vec<Host>, ToolError> {
    c.hosts
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

fn start_time(target: &str) -> Fact {
    Fact {
        read: Read::Sql {
            target: target.into(),
            statement: START_TIME.into(),
        },
        extract: Extract::Scalar,
    }
}

impl Action for RestartDatabase {
    const META: ToolMeta = ToolMeta {
        name: "restart_database",
        title: "Restart the database",
        description: "Restarts the PostgreSQL service on its host (`systemctl restart postgresql`) \
            and waits until it accepts connections again. Use as a last resort when connections \
            are exhausted or stuck and check_database shows no query worth cancelling; every \
            session is cut. Destructive: an operator approves it at a terminal, typing the host \
            back. Returns the steps, and the server's start time before and after (they differ \
            when it really restarted).",
        effect: Effect::Destructive,
        toolset: Toolset::Database,
    };
    type Params = Params;

    fn facts(ctx: &Ctx, _c: &Common, _p: &Params) -> Result<Vec<(String, Fact)>, ToolError> {
        let s = conn::settings(&ctx.config)?;
        Ok(vec![("sessions".into(), super::sessions(&s.target))])
    }

    fn plan(ctx: &Ctx, c: &Common, _p: &Params, _f: &Facts) -> Result<Draft, ToolError> {
        let svc = db_service(ctx)?;
        let s = conn::settings(&ctx.config)?;
        let hosts = targets(ctx, c, &svc)?;
        let mut stages = Vec::new();
        for h in &hosts {
            let c = manager::control(svc.manager, Op::Restart, &svc.unit);
            let mut restart = Command::new(&At::of(h), c.argv, c.privileged && h.sudo);
            restart.timeout_secs = Some(RESTART_TIMEOUT.as_secs());
            let accepting = Probe::Fact {
                what: format!("PostgreSQL at {} accepts connections", s.target),
                fact: Fact {
                    read: Read::Sql {
                        target: s.target.clone(),
                        statement: "SELECT 1".into(),
                    },
                    extract: Extract::Scalar,
                },
                check: Check::Succeeds,
            };
            let steps = vec![
                Step::Capture {
                    name: "started_before".into(),
                    fact: start_time(&s.target),
                },
                Step::Run(restart),
                Step::WaitUntil {
                    probe: accepting,
                    within_secs: ACCEPTS_WITHIN.as_secs(),
                    every_ms: POLL.as_millis() as u64,
                },
                Step::Capture {
                    name: "started_after".into(),
                    fact: start_time(&s.target),
                },
            ];
            stages.push(crate::tools::remediate::common::stage(h, steps));
        }
        Ok(Draft {
            stages,
            notes: vec![format!(
                "if it stays down: `systemctl start {}` on {}, then read its log (journalctl -u {})",
                svc.unit,
                svc.hosts.join(", "),
                svc.unit
            )],
            targets: crate::tools::remediate::common::targets(&hosts, &svc),
            confirm_text: crate::tools::remediate::common::confirm_text(&hosts),
            ..Draft::default()
        })
    }

    /// The sessions about to be cut; a database that does not answer is reported, never a
    /// reason to refuse (restarting it may be the fix).
    fn preflight(
        ctx: &Ctx,
        _c: &Common,
        _p: &Params,
        facts: &Facts,
    ) -> Result<Vec<String>, ToolError> {
        let s = conn::settings(&ctx.config)?;
        Ok(vec![super::sessions_line(&s.target, facts)])
    }

    fn summary(_c: &Common, _p: &Params, out: &RunOutcome) -> String {
        let restarted = out.stages.iter().any(|s| {
            let b = s.captured.get("started_before");
            let a = s.captured.get("started_after");
            a.is_some_and(|a| !a.is_null() && Some(a) != b)
        });
        format!(
            "{}{}",
            out.line(),
            if restarted {
                "; the server's start time changed: it really restarted"
            } else {
                ""
            }
        )
    }
}
