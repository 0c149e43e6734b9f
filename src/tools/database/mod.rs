//! Database: the runbook's "Database Recovery" — read PostgreSQL's live state, vacuum and
//! reindex, restart it. Statements run from this server over a connection whose URL comes
//! only from the secret named in `[database]`; the restart goes through the service manager
//! on the database service's hosts.

mod check;
mod conn;
mod maintenance;
mod restart;

pub use check::CheckDatabase;
pub use maintenance::RunDatabaseMaintenance;
pub use restart::RestartDatabase;

/// "host:port/db: accepting connections; 3/100 connections (1 active, 2 idle); 1 query
/// running, longest 4.2 s" — the approver's view of what an action is about to touch.
fn connections_line(out: &check::Output) -> String {
    let c = &out.connections;
    let states: Vec<String> = c.by_state.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let running = out
        .active_queries
        .iter()
        .filter(|q| q.state == "active")
        .count();
    let mut line = format!(
        "{}: accepting connections; {}/{} connections ({})",
        out.target,
        c.total,
        c.max_connections,
        states.join(", ")
    );
    if let Some(q) = &out.longest_query {
        line.push_str(&format!(
            "; {running} query(ies) running, longest {:.1} s (pid {})",
            q.runtime_secs, q.pid
        ));
    }
    line
}
