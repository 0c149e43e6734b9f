//! `check_database`: what the database is doing now — sessions that are not idle (the
//! runbook's `pg_stat_activity WHERE state = 'active'`, plus idle-in-transaction ones, which
//! hold locks and snapshots), connections by state against `max_connections`, the database's
//! size and the tables with the most dead tuples. Connects from this server with the URL secret.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conn::{self, Session};
use crate::engine::{Ctx, Effect, Tool, ToolError, ToolMeta, Toolset};

pub struct CheckDatabase;

/// Thresholds of the one-glance warnings.
const USAGE_WARN_PERCENT: f64 = 80.0;
const LONG_QUERY_SECS: f64 = 60.0;
const DEAD_WARN_PERCENT: f64 = 20.0;
const DEAD_WARN_MIN: i64 = 1000;

/// Parameters of `check_database`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Most sessions and most tables listed (default 20).
    #[serde(default = "twenty")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

fn twenty() -> u32 {
    20
}

/// The database now.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// `host:port/database` (the URL's credentials are never shown).
    pub target: String,
    pub server_version: String,
    pub connections: Connections,
    /// Sessions that are not idle (running, or idle inside a transaction), longest first;
    /// this server's own session is left out.
    pub active_queries: Vec<Query>,
    /// The longest-running query in state `active`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_query: Option<Query>,
    /// Size of the database on disk.
    pub size_bytes: i64,
    /// Tables of the database with the most dead tuples (what VACUUM reclaims), most first.
    pub tables: Vec<TableStats>,
    /// What deserves attention, one sentence each.
    pub warnings: Vec<String>,
    /// Time to connect and read everything.
    pub elapsed_ms: u64,
}

/// Client connections of the whole server (every database).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Connections {
    pub total: i64,
    pub max_connections: i64,
    /// `total` as a percentage of `max_connections`.
    pub usage_percent: f64,
    /// Count per state (`active`, `idle`, `idle in transaction`, ...); this server's own
    /// session counts as `active`.
    pub by_state: BTreeMap<String, i64>,
}

/// One session.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Query {
    pub pid: i32,
    pub user: String,
    pub database: String,
    /// `active`, `idle in transaction`, `idle in transaction (aborted)`, `fastpath function call`.
    pub state: String,
    /// What it waits for, `Type:Event` (e.g. `Lock:transactionid`, `Timeout:PgSleep`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_event: Option<String>,
    /// Seconds since the query started (`active`) or since the session entered its state.
    pub runtime_secs: f64,
    /// The first 200 characters of the query.
    pub query: String,
}

/// Tuple counts of one table (from `pg_stat_user_tables`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct TableStats {
    /// `schema.table`.
    pub table: String,
    pub live_tuples: i64,
    pub dead_tuples: i64,
    /// Dead tuples as a percentage of all tuples.
    pub dead_percent: f64,
    /// Last vacuum, manual or automatic (UTC), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_vacuum: Option<String>,
}

const OVERVIEW: &str = "SELECT current_setting('server_version'), current_setting('max_connections')::int8, \
     pg_database_size(current_database())::int8";
const BY_STATE: &str = "SELECT coalesce(state, 'not visible')::text, count(*)::int8 \
     FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1";
const SESSIONS: &str = "SELECT pid::int4, coalesce(usename::text, ''), coalesce(datname::text, ''), \
     state::text, wait_event_type::text, wait_event::text, \
     coalesce(extract(epoch FROM now() - CASE WHEN state = 'active' THEN query_start ELSE state_change END), 0)::float8, \
     left(query, 200) \
     FROM pg_stat_activity \
     WHERE backend_type = 'client backend' AND state <> 'idle' AND pid <> pg_backend_pid() \
     ORDER BY 7 DESC, pid LIMIT $1";
pub(super) const TABLES: &str = "SELECT schemaname::text, relname::text, n_live_tup, n_dead_tup, \
     to_char(greatest(last_vacuum, last_autovacuum) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
     FROM pg_stat_user_tables ORDER BY n_dead_tup DESC, 1, 2 LIMIT $1";

impl Tool for CheckDatabase {
    const META: ToolMeta = ToolMeta {
        name: "check_database",
        title: "Check the database",
        description: "Reads PostgreSQL's live state from this server: sessions that are not idle \
            (pid, user, state, wait event, runtime, first 200 characters of the query), \
            connections by state against max_connections, database size, the longest-running \
            query and the tables with the most dead tuples. Use it when the app is slow, times \
            out or runs out of connections. Returns those numbers plus warnings; `unavailable` \
            when the database does not answer.",
        effect: Effect::Read,
        toolset: Toolset::Database,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        if !(1..=100).contains(&p.limit) {
            return Err(ToolError::invalid(
                "limit",
                format!("{} is out of range 1..=100", p.limit),
            ));
        }
        let started = Instant::now();
        let s = conn::connect(&ctx).await?;
        read(&s, i64::from(p.limit), started).await
    }

    fn summary(out: &Output) -> String {
        let c = &out.connections;
        let states: Vec<String> = c.by_state.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let busy = match out.active_queries.len() {
            0 => "no other session busy".to_string(),
            n => format!("{n} session(s) busy"),
        };
        let mut s = format!(
            "{}: {}/{} connections ({:.0}%: {}), {busy}",
            out.target,
            c.total,
            c.max_connections,
            c.usage_percent,
            states.join(", "),
        );
        if let Some(q) = &out.longest_query {
            s.push_str(&format!(
                ", longest query {:.1} s (pid {}: {})",
                q.runtime_secs,
                q.pid,
                first_words(&q.query)
            ));
        }
        s.push_str(&format!(", size {}", human_bytes(out.size_bytes)));
        if let Some(t) = out.tables.first().filter(|t| t.dead_tuples > 0) {
            s.push_str(&format!(
                ", most dead tuples: {} {} ({:.0}%)",
                t.table, t.dead_tuples, t.dead_percent
            ));
        }
        if !out.warnings.is_empty() {
            s.push_str(&format!("; WARN: {}", out.warnings.join("; ")));
        }
        s
    }
}

/// Reads everything over one session, the statements pipelined.
pub(super) async fn read(s: &Session, limit: i64, started: Instant) -> Result<Output, ToolError> {
    let c = &s.client;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&limit];
    let (overview, states, sessions, tables) = s
        .bounded("reading pg_stat_activity", async {
            tokio::try_join!(
                c.query_one(OVERVIEW, &[]),
                c.query(BY_STATE, &[]),
                c.query(SESSIONS, &params),
                c.query(TABLES, &params),
            )
        })
        .await?;
    let by_state: BTreeMap<String, i64> = states.iter().map(|r| (r.get(0), r.get(1))).collect();
    let total: i64 = by_state.values().sum();
    let max_connections: i64 = overview.get(1);
    let active_queries: Vec<Query> = sessions
        .iter()
        .map(|r| Query {
            pid: r.get(0),
            user: r.get(1),
            database: r.get(2),
            state: r.get(3),
            wait_event: match (r.get::<_, Option<String>>(4), r.get::<_, Option<String>>(5)) {
                (Some(t), Some(e)) => Some(format!("{t}:{e}")),
                (t, e) => t.or(e),
            },
            runtime_secs: round1(r.get(6)),
            query: redact_literals(&r.get::<_, Option<String>>(7).unwrap_or_default()),
        })
        .collect();
    let tables: Vec<TableStats> = tables.iter().map(table_stats).collect();
    let connections = Connections {
        total,
        max_connections,
        usage_percent: round1(100.0 * total as f64 / max_connections.max(1) as f64),
        by_state,
    };
    let longest_query = active_queries
        .iter()
        .filter(|q| q.state == "active")
        .max_by(|a, b| a.runtime_secs.total_cmp(&b.runtime_secs))
        .cloned();
    let warnings = warnings(&connections, &active_queries, &tables);
    Ok(Output {
        target: s.target.clone(),
        server_version: overview.get(0),
        connections,
        active_queries,
        longest_query,
        size_bytes: overview.get(2),
        tables,
        warnings,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

pub(super) fn table_stats(r: &tokio_postgres::Row) -> TableStats {
    let (live, dead): (i64, i64) = (r.get(2), r.get(3));
    TableStats {
        table: format!("{}.{}", r.get::<_, String>(0), r.get::<_, String>(1)),
        live_tuples: live,
        dead_tuples: dead,
        dead_percent: round1(100.0 * dead as f64 / (live + dead).max(1) as f64),
        last_vacuum: r.get(4),
    }
}

fn warnings(c: &Connections, queries: &[Query], tables: &[TableStats]) -> Vec<String> {
    let mut w = Vec::new();
    if c.usage_percent >= USAGE_WARN_PERCENT {
        w.push(format!(
            "{:.0}% of max_connections in use ({}/{})",
            c.usage_percent, c.total, c.max_connections
        ));
    }
    for q in queries.iter().filter(|q| q.runtime_secs >= LONG_QUERY_SECS) {
        w.push(format!(
            "pid {} ({}) {} for {:.0} s: {}",
            q.pid,
            q.user,
            q.state,
            q.runtime_secs,
            first_words(&q.query)
        ));
    }
    for t in tables
        .iter()
        .filter(|t| t.dead_tuples >= DEAD_WARN_MIN && t.dead_percent >= DEAD_WARN_PERCENT)
    {
        w.push(format!(
            "{} is {:.0}% dead tuples ({}): VACUUM ANALYZE would reclaim them",
            t.table, t.dead_percent, t.dead_tuples
        ));
    }
    w
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn first_words(q: &str) -> String {
    let one_line: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

fn human_bytes(n: i64) -> String {
    let mut v = n as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if v < 1024.0 {
            return format!("{v:.1} {unit}");
        }
        v /= 1024.0;
    }
    format!("{v:.1} TiB")
}

/// The query with every string literal (`'…'`, `E'…'`, dollar-quoted `$$…$$`/`$tag$…$tag$`)
/// replaced by `'…'`: another session's SQL may carry a password (`ALTER ROLE … PASSWORD
/// '…'`) or personal data; its shape is what diagnosis needs. (A query cut at 200 characters
/// inside a literal loses the rest of it too.)
pub fn redact_literals(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    let mut rest = q;
    while let Some(i) = rest.find(['\'', '$']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with('\'') {
            // '…' with '' as an escaped quote; an unclosed literal runs to the end.
            let mut j = 1;
            let b = tail.as_bytes();
            loop {
                match b.get(j) {
                    None => break,
                    Some(b'\'') if b.get(j + 1) == Some(&b'\'') => j += 2,
                    Some(b'\'') => {
                        j += 1;
                        break;
                    }
                    Some(_) => j += 1,
                }
            }
            out.push_str("'…'");
            rest = &tail[j.min(tail.len())..];
        } else {
            // $tag$ … $tag$ (a tag of letters/digits/_), else a plain `$1` parameter.
            let tag_end = tail[1..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map(|e| e + 1);
            match tag_end {
                Some(e)
                    if tail[e..].starts_with('$')
                        && !tail[1..e].starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    let tag = &tail[..=e];
                    let body = &tail[tag.len()..];
                    let close = body
                        .find(tag)
                        .map_or(tail.len(), |k| tag.len() + k + tag.len());
                    out.push_str("'…'");
                    rest = &tail[close..];
                }
                _ => {
                    out.push('$');
                    rest = &tail[1..];
                }
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_sessions_literals_never_leave_the_server() {
        assert_eq!(
            redact_literals("ALTER ROLE app PASSWORD 's3cr''et!'"),
            "ALTER ROLE app PASSWORD '…'"
        );
        assert_eq!(
            redact_literals("SELECT * FROM t WHERE a = $1 AND b = 'x' AND c = E'y'"),
            "SELECT * FROM t WHERE a = $1 AND b = '…' AND c = E'…'"
        );
        assert_eq!(
            redact_literals("DO $f$ secret $f$; SELECT 1"),
            "DO '…'; SELECT 1"
        );
        assert_eq!(redact_literals("SELECT 'unclosed pass"), "SELECT '…'");
        assert_eq!(redact_literals("SELECT 'é' , 1"), "SELECT '…' , 1");
        assert_eq!(redact_literals("VACUUM"), "VACUUM");
    }

    fn q(state: &str, secs: f64) -> Query {
        Query {
            pid: 7,
            user: "app".into(),
            database: "db".into(),
            state: state.into(),
            wait_event: None,
            runtime_secs: secs,
            query: "SELECT   *\n FROM orders".into(),
        }
    }

    #[test]
    fn warnings_name_what_to_look_at() {
        let c = Connections {
            total: 90,
            max_connections: 100,
            usage_percent: 90.0,
            by_state: BTreeMap::new(),
        };
        let t = TableStats {
            table: "public.orders".into(),
            live_tuples: 1000,
            dead_tuples: 3000,
            dead_percent: 75.0,
            last_vacuum: None,
        };
        let w = warnings(
            &c,
            &[q("idle in transaction", 120.0), q("active", 1.0)],
            &[t],
        );
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("90% of max_connections"));
        assert_eq!(
            w[1],
            "pid 7 (app) idle in transaction for 120 s: SELECT * FROM orders"
        );
        assert!(w[2].contains("public.orders is 75% dead tuples (3000)"));
        assert_eq!(human_bytes(7_500_000), "7.2 MiB");
        assert_eq!(first_words(&"x ".repeat(50)).len(), 63);
    }
}
