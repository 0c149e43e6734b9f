//! Database: the runbook's "Database Recovery" — read PostgreSQL's live state, vacuum and
//! reindex, restart it. Statements run from this server over a connection whose URL comes
//! only from the secret named in `[database]`; the restart goes through the service manager
//! on the database service's hosts.

mod check;
pub(crate) mod conn;
mod maintenance;
mod restart;

pub use check::CheckDatabase;
pub use maintenance::RunDatabaseMaintenance;
pub use restart::RestartDatabase;

/// How many sessions the database has now, as a fact for the approver.
const SESSIONS: &str =
    "SELECT count(*)::text FROM pg_stat_activity WHERE backend_type = 'client backend'";

/// The fact "sessions now" on the configured database.
fn sessions(target: &str) -> crate::engine::plan::Fact {
    crate::engine::plan::Fact {
        read: crate::engine::plan::Read::Sql {
            target: target.into(),
            statement: SESSIONS.into(),
        },
        extract: crate::engine::plan::Extract::Scalar,
    }
}

/// "host:port/db: 3 client sessions" or why the database did not answer.
fn sessions_line(target: &str, facts: &crate::engine::Facts) -> String {
    match facts.get("sessions") {
        Ok(v) => format!(
            "{target}: accepting connections; {} client session(s)",
            v.as_str().unwrap_or("?")
        ),
        Err(e) => format!("{target}: NOT answering ({})", e.message),
    }
}
