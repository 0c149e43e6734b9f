//! `run_database_maintenance`: the runbook's `VACUUM ANALYZE` and `REINDEX DATABASE`, run from
//! this server over the configured connection. The plan is the exact SQL; `table` narrows a
//! vacuum to one table, validated as an identifier and quoted as one.

use std::sync::Arc;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conn::{self, Session, Settings, TableName, quote_ident};
use crate::engine::action::{Action, Draft, RunCtx, Target};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, ToolError, ToolMeta, Toolset};

pub struct RunDatabaseMaintenance;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `VACUUM ANALYZE`: reclaims dead tuples and refreshes planner statistics; reads and
    /// writes go on meanwhile.
    VacuumAnalyze,
    /// `REINDEX DATABASE`: rebuilds every index of the database (suspected index corruption
    /// or bloat); writes to each table wait while its indexes are rebuilt.
    Reindex,
}

/// Parameters of `run_database_maintenance`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `vacuum_analyze` or `reindex`.
    pub operation: Operation,
    /// With `vacuum_analyze`: only this table (`table` or `schema.table`); default: the whole
    /// database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableName>,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan (the SQL) and the current state; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

// Acts on the database through its URL, not on inventory hosts.
crate::impl_mutating!(Params, no_hosts);

/// What ran, how long it took, and what it reclaimed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// `host:port/database`.
    pub target: String,
    pub statements: Vec<StatementResult>,
    /// Vacuum only: dead tuples of the table (or of every table of the database) before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_tuples_before: Option<i64>,
    /// Vacuum only: the same count after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_tuples_after: Option<i64>,
    /// The server's notices and warnings (e.g. catalogs only a superuser may vacuum), first 20.
    pub notices: Vec<String>,
    pub ok: bool,
}

/// One statement.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StatementResult {
    pub statement: String,
    pub ok: bool,
    pub duration_ms: u64,
    /// The server's error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The exact SQL of the plan.
fn statements(s: &Settings, p: &Params) -> Result<Vec<String>, ToolError> {
    Ok(match (p.operation, &p.table) {
        (Operation::VacuumAnalyze, None) => vec!["VACUUM ANALYZE".into()],
        (Operation::VacuumAnalyze, Some(t)) => vec![format!("VACUUM ANALYZE {}", t.quoted())],
        // REINDEX DATABASE works only on the database the session is connected to.
        (Operation::Reindex, None) => vec![format!("REINDEX DATABASE {}", quote_ident(&s.dbname))],
        (Operation::Reindex, Some(_)) => {
            return Err(ToolError::invalid(
                "table",
                "only with operation `vacuum_analyze`; `reindex` rebuilds the whole database",
            ));
        }
    })
}

/// Dead tuples of `table`, or of every user table; `None` when the table has no statistics.
async fn dead_tuples(s: &Session, table: Option<&TableName>) -> Result<Option<i64>, ToolError> {
    let c = &s.client;
    let row = match table {
        Some(t) => {
            let (schema, name) = t.parts();
            s.bounded(
                "reading pg_stat_user_tables",
                c.query_opt(
                    "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2",
                    &[&schema, &name],
                ),
            )
            .await?
        }
        None => Some(
            s.bounded(
                "reading pg_stat_user_tables",
                c.query_one(
                    "SELECT coalesce(sum(n_dead_tup), 0)::int8 FROM pg_stat_user_tables",
                    &[],
                ),
            )
            .await?,
        ),
    };
    Ok(row.map(|r| r.get(0)))
}

impl Action for RunDatabaseMaintenance {
    const META: ToolMeta = ToolMeta {
        name: "run_database_maintenance",
        title: "Run database maintenance",
        description: "Runs VACUUM ANALYZE (whole database or one `table`) or REINDEX DATABASE on \
            the configured PostgreSQL database, from this server. Use VACUUM ANALYZE when \
            check_database shows many dead tuples or stale statistics; REINDEX when index \
            corruption or bloat is suspected. Needs approval of the exact SQL; try `dry_run` \
            first. Returns each statement's duration and, for a vacuum, dead tuples before/after.",
        effect: Effect::Change,
        toolset: Toolset::Database,
    };
    type Params = Params;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
        let s = conn::settings(ctx)?;
        let steps = statements(&s, p)?
            .into_iter()
            .map(|sql| Step::sql("server", sql))
            .collect();
        Ok(Draft {
            steps,
            undo: Vec::new(),
            targets: vec![Target {
                host: "database".into(),
                service: s.db.service.clone(),
            }],
            confirm_text: s.dbname,
        })
    }

    /// The database's state for the approver; a missing table or a database that does not
    /// answer stops here, before anyone is asked.
    async fn preflight(ctx: Arc<Ctx>, p: &Params) -> Result<Vec<String>, ToolError> {
        let s = conn::connect(&ctx).await?;
        let out = super::check::read(&s, 5, Instant::now()).await?;
        let mut lines = vec![super::connections_line(&out)];
        if p.operation == Operation::VacuumAnalyze {
            match (&p.table, dead_tuples(&s, p.table.as_ref()).await?) {
                (Some(t), None) => {
                    return Err(ToolError::invalid(
                        "table",
                        format!(
                            "no table `{}` in {} (pg_stat_user_tables lists none by that name)",
                            t.as_str(),
                            s.target
                        ),
                    ));
                }
                (Some(t), Some(n)) => lines.push(format!("{}: {n} dead tuples", t.as_str())),
                (None, n) => lines.push(format!(
                    "every table: {} dead tuples",
                    n.unwrap_or_default()
                )),
            }
        }
        Ok(lines)
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, run: RunCtx) -> Result<Output, ToolError> {
        let settings = conn::settings(&ctx)?;
        let sql = statements(&settings, &p)?;
        let s = conn::connect_with(&settings).await?;
        let vacuum = p.operation == Operation::VacuumAnalyze;
        let before = if vacuum {
            dead_tuples(&s, p.table.as_ref()).await?
        } else {
            None
        };
        let mut results = Vec::new();
        for (i, stmt) in sql.iter().enumerate() {
            if run.stopped() {
                break;
            }
            run.progress(i as f64, sql.len() as f64, stmt.clone()).await;
            let started = Instant::now();
            // The simple-query protocol: VACUUM and REINDEX DATABASE refuse to run inside a
            // transaction block.
            let res = s.bounded(stmt, s.client.batch_execute(stmt)).await;
            let ok = res.is_ok();
            results.push(StatementResult {
                statement: stmt.clone(),
                ok,
                duration_ms: started.elapsed().as_millis() as u64,
                error: res.err().map(|e| e.message),
            });
            if !ok {
                break;
            }
        }
        let ok = results.len() == sql.len() && results.iter().all(|r| r.ok);
        let after = if vacuum {
            dead_tuples(&s, p.table.as_ref()).await.ok().flatten()
        } else {
            None
        };
        Ok(Output {
            target: s.target.clone(),
            statements: results,
            dead_tuples_before: before,
            dead_tuples_after: after,
            notices: s.notices(),
            ok,
        })
    }

    fn summary(out: &Output) -> String {
        let parts: Vec<String> = out
            .statements
            .iter()
            .map(|r| match &r.error {
                None => format!("{}: done in {} ms", r.statement, r.duration_ms),
                Some(e) => format!("{}: FAILED after {} ms: {e}", r.statement, r.duration_ms),
            })
            .collect();
        let mut s = format!("{}: {}", out.target, parts.join("; "));
        if let (Some(b), Some(a)) = (out.dead_tuples_before, out.dead_tuples_after) {
            s.push_str(&format!("; dead tuples {b} -> {a}"));
        }
        if !out.notices.is_empty() {
            s.push_str(&format!("; {} notice(s)", out.notices.len()));
        }
        s
    }

    fn failed(out: &Output) -> bool {
        !out.ok
    }
}
