//! `run_database_maintenance`: the runbook's `VACUUM ANALYZE` and `REINDEX DATABASE`, run from
//! this server over the configured connection. The plan is the exact SQL; `table` narrows a
//! vacuum to one table, validated as an identifier and quoted as one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conn::{self, Settings, TableName, quote_ident};
use crate::engine::plan::{Extract, Fact, Read, Stage, Step};
use crate::engine::runner::RunOutcome;
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Target, ToolError, ToolMeta, Toolset,
};

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

/// Dead tuples of `table`, or of every user table (text; null when the table has none).
fn dead_tuples(target: &str, table: Option<&TableName>) -> Fact {
    let statement = match table {
        Some(t) => {
            let (schema, name) = t.parts();
            // Identifiers, validated, as string literals of the catalog query.
            format!(
                "SELECT n_dead_tup::text FROM pg_stat_user_tables WHERE schemaname = {} AND relname = {}",
                literal(schema),
                literal(name)
            )
        }
        None => "SELECT coalesce(sum(n_dead_tup), 0)::text FROM pg_stat_user_tables".into(),
    };
    Fact {
        read: Read::Sql {
            target: target.into(),
            statement,
        },
        extract: Extract::Scalar,
    }
}

/// A validated identifier as an SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Action for RunDatabaseMaintenance {
    const META: ToolMeta = ToolMeta {
        name: "run_database_maintenance",
        title: "Run database maintenance",
        description: "Runs VACUUM ANALYZE (whole database or one `table`) or REINDEX DATABASE on \
            the configured PostgreSQL database, from this server. Use VACUUM ANALYZE when \
            check_database shows many dead tuples or stale statistics; REINDEX when index \
            corruption or bloat is suspected. Needs approval of the exact SQL and the database \
            it runs on; try `dry_run` first. Returns each statement's outcome and, for a vacuum, \
            dead tuples before and after.",
        effect: Effect::Change,
        toolset: Toolset::Database,
    };
    const HOSTS: bool = false;
    type Params = Params;

    fn facts(ctx: &Ctx, _c: &Common, p: &Params) -> Result<Vec<(String, Fact)>, ToolError> {
        let s = conn::settings(&ctx.config)?;
        let mut f = vec![("sessions".to_string(), super::sessions(&s.target))];
        if p.operation == Operation::VacuumAnalyze {
            f.push((
                "dead tuples".into(),
                dead_tuples(&s.target, p.table.as_ref()),
            ));
        }
        Ok(f)
    }

    fn plan(ctx: &Ctx, _c: &Common, p: &Params, facts: &Facts) -> Result<Draft, ToolError> {
        let s = conn::settings(&ctx.config)?;
        // A database that does not answer: say so before anyone is asked.
        if let Some(Err(e)) = facts.0.get("sessions") {
            return Err(ToolError::unavailable(
                e.trim_start_matches("unreachable: "),
            ));
        }
        let vacuum = p.operation == Operation::VacuumAnalyze;
        if vacuum
            && let Some(t) = &p.table
            && facts.get("dead tuples")?.is_null()
        {
            return Err(ToolError::invalid(
                "table",
                format!(
                    "no table `{}` in {} (pg_stat_user_tables lists none by that name)",
                    t.as_str(),
                    s.target
                ),
            ));
        }
        let mut steps = Vec::new();
        if vacuum {
            steps.push(Step::Capture {
                name: "dead_tuples_before".into(),
                fact: dead_tuples(&s.target, p.table.as_ref()),
            });
        }
        for sql in statements(&s, p)? {
            steps.push(Step::Sql {
                target: s.target.clone(),
                statement: sql,
            });
        }
        if vacuum {
            steps.push(Step::Capture {
                name: "dead_tuples_after".into(),
                fact: dead_tuples(&s.target, p.table.as_ref()),
            });
        }
        Ok(Draft {
            stages: vec![Stage {
                name: "database".into(),
                via: s.target.clone(),
                steps,
            }],
            targets: vec![Target {
                host: "database".into(),
                service: s.db.service.clone(),
            }],
            confirm_text: s.dbname,
            ..Draft::default()
        })
    }

    fn preflight(
        ctx: &Ctx,
        _c: &Common,
        p: &Params,
        facts: &Facts,
    ) -> Result<Vec<String>, ToolError> {
        let s = conn::settings(&ctx.config)?;
        let mut lines = vec![super::sessions_line(&s.target, facts)];
        if p.operation == Operation::VacuumAnalyze {
            let what = p.table.as_ref().map_or("every table", |t| t.as_str());
            let n = facts.get("dead tuples")?;
            lines.push(format!("{what}: {} dead tuples", n.as_str().unwrap_or("?")));
        }
        Ok(lines)
    }

    fn summary(_c: &Common, _p: &Params, out: &RunOutcome) -> String {
        let mut s = out.line();
        if let Some(st) = out.stage("database")
            && let (Some(b), Some(a)) = (
                st.captured
                    .get("dead_tuples_before")
                    .and_then(|v| v.as_str()),
                st.captured
                    .get("dead_tuples_after")
                    .and_then(|v| v.as_str()),
            )
        {
            s.push_str(&format!("; dead tuples {b} -> {a}"));
        }
        s
    }
}
