//! The connection to the configured database: its URL comes only from the secret named in
//! `[database]` (never from arguments, never on a command line), the server's own session
//! is bounded by `statement_timeout`, and every failure becomes a clear `unavailable` error
//! that names where the database is (host, port, database) but never the URL or password.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use tokio_postgres::config::Host as PgHost;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::config::Database;
use crate::engine::{Ctx, ToolError};

/// Notices kept from one session (VACUUM warns once per relation it skips).
const MAX_NOTICES: usize = 20;
/// Extra time the client waits beyond the server's `statement_timeout` before giving up.
const GRACE: Duration = Duration::from_secs(5);

/// The configured database, resolved for connecting.
pub struct Settings {
    pub db: Database,
    pub pg: tokio_postgres::Config,
    /// `host:port/database`, safe to show.
    pub target: String,
    /// The database name (REINDEX DATABASE needs it).
    pub dbname: String,
}

/// Reads `[database]` and its URL secret. Needs no network, so plans can use it.
pub fn settings(config: &crate::config::Config) -> Result<Settings, ToolError> {
    let db = config.database.clone().ok_or_else(|| {
        ToolError::unavailable(
            "no database is configured: add a [database] table with `url_secret` to the configuration",
        )
    })?;
    let url = config
        .secrets
        .get(&db.url_secret)
        .map_err(ToolError::unavailable)?;
    let mut pg = tokio_postgres::Config::from_str(url).map_err(|e| {
        ToolError::unavailable(format!(
            "the secret `{}` is not a usable postgres URL ({e})",
            db.url_secret
        ))
    })?;
    let dbname = pg
        .get_dbname()
        .or(pg.get_user())
        .unwrap_or("postgres")
        .to_string();
    let host = match pg.get_hosts().first() {
        Some(PgHost::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(PgHost::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    // Sent in the startup packet: the bound holds from the first statement on. Options the URL
    // already carries are kept.
    let timeout = format!("-c statement_timeout={}", db.statement_timeout.as_millis());
    let options = match pg.get_options() {
        Some(o) if !o.trim().is_empty() => format!("{o} {timeout}"),
        _ => timeout,
    };
    pg.application_name("runbook-mcp")
        .connect_timeout(config.server.http_timeout)
        .options(options);
    Ok(Settings {
        target: format!("{host}:{port}/{dbname}"),
        dbname,
        db,
        pg,
    })
}

/// An open session of this server.
pub struct Session {
    pub client: Client,
    notices: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
    pub target: String,
    /// Client-side bound of one statement (the server's `statement_timeout` plus a grace).
    pub deadline: Duration,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Session {
    /// Notices the server sent so far (e.g. "skipping pg_authid --- only superuser can vacuum it").
    pub fn notices(&self) -> Vec<String> {
        self.notices.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Runs `fut` (queries of this session) within the deadline, mapping errors.
    pub async fn bounded<T, F>(&self, what: &str, fut: F) -> Result<T, ToolError>
    where
        F: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        match tokio::time::timeout(self.deadline, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(query_error(&self.target, what, &e)),
            Err(_) => Err(ToolError::unavailable(format!(
                "PostgreSQL at {} did not answer {what} within {} s",
                self.target,
                self.deadline.as_secs()
            ))),
        }
    }
}

/// Connects to the configured database.
pub async fn connect(ctx: &Ctx) -> Result<Session, ToolError> {
    let s = settings(&ctx.config)?;
    connect_with(&s).await
}

pub async fn connect_with(s: &Settings) -> Result<Session, ToolError> {
    let limit = s.pg.get_connect_timeout().copied().unwrap_or(GRACE) + GRACE;
    let started = std::time::Instant::now();
    let (client, mut connection) = match tokio::time::timeout(limit, s.pg.connect(NoTls)).await {
        Ok(Ok(c)) => {
            tracing::debug!(target = %s.target, elapsed_ms = started.elapsed().as_millis() as u64, "postgres session open");
            c
        }
        Ok(Err(e)) => {
            return Err(ToolError::unavailable(format!(
                "PostgreSQL at {} is not accepting connections: {}. Check the database service \
                 (check_service_status) before anything else.",
                s.target,
                describe(&e)
            )));
        }
        Err(_) => {
            return Err(ToolError::unavailable(format!(
                "PostgreSQL at {} did not complete a connection within {} s",
                s.target,
                limit.as_secs()
            )));
        }
    };
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = notices.clone();
    // The connection object does the I/O; polling its messages also collects the notices.
    let task = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notice(n)) => {
                    if let Ok(mut v) = sink.lock()
                        && v.len() < MAX_NOTICES
                    {
                        v.push(format!("{}: {}", n.severity(), n.message()));
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    Ok(Session {
        client,
        notices,
        task,
        target: s.target.clone(),
        deadline: s.db.statement_timeout + GRACE,
    })
}

/// A failed statement as a tool error; a statement timeout says which bound hit.
fn query_error(target: &str, what: &str, e: &tokio_postgres::Error) -> ToolError {
    if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
        return ToolError::unavailable(format!(
            "{what} on {target} was cancelled by statement_timeout (raise \
             database.statement_timeout_secs for a large database): {}",
            describe(e)
        ));
    }
    if e.is_closed() {
        return ToolError::unavailable(format!(
            "the connection to PostgreSQL at {target} was lost during {what}: {}",
            describe(e)
        ));
    }
    ToolError::unavailable(format!("{what} failed on {target}: {}", describe(e)))
}

/// The server's own message when there is one, else the client's.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let s = e.to_string();
            match std::error::Error::source(e) {
                Some(src) if !s.contains(&src.to_string()) => format!("{s}: {src}"),
                _ => s,
            }
        }
    }
}

/// A table name: `table` or `schema.table`, each part a plain SQL identifier (letters, digits,
/// `_`, not starting with a digit, at most 63 bytes). Quoted as an identifier in SQL, so its
/// case is kept exactly as given (as `pg_stat_user_tables` shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TableName(String);

const TABLE_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]{0,62}(\\.[A-Za-z_][A-Za-z0-9_]{0,62})?$";

impl TableName {
    fn check(v: &str) -> Result<(), String> {
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 63
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !p.starts_with(|c: char| c.is_ascii_digit())
        };
        let parts: Vec<&str> = v.split('.').collect();
        if parts.len() <= 2 && parts.iter().all(|p| part_ok(p)) {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a table name: use `table` or `schema.table` with letters, digits and `_`",
                v.escape_debug()
            ))
        }
    }

    /// `"schema"."table"`: each part as a quoted identifier.
    pub fn quoted(&self) -> String {
        self.0
            .split('.')
            .map(quote_ident)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// (schema, table); the schema defaults to `public`.
    pub fn parts(&self) -> (&str, &str) {
        match self.0.split_once('.') {
            Some((s, t)) => (s, t),
            None => ("public", &self.0),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TableName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TableName::check(&s).map_err(serde::de::Error::custom)?;
        Ok(TableName(s))
    }
}

impl JsonSchema for TableName {
    fn schema_name() -> Cow<'static, str> {
        "TableName".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": TABLE_PATTERN,
            "maxLength": 127,
        })
    }
}

/// An SQL identifier in double quotes, inner quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(v: &str) -> Result<TableName, String> {
        serde_json::from_value(serde_json::json!(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn table_names_are_identifiers_and_are_quoted() {
        let t = table("messages").unwrap();
        assert_eq!(t.quoted(), "\"messages\"");
        assert_eq!(t.parts(), ("public", "messages"));
        let t = table("audit.Events_2").unwrap();
        assert_eq!(t.quoted(), "\"audit\".\"Events_2\"");
        assert_eq!(t.parts(), ("audit", "Events_2"));
        for bad in [
            "x; drop table y",
            "",
            "a.b.c",
            "1abc",
            "a\"b",
            "messages--",
            ".x",
            "x.",
            &"a".repeat(64),
        ] {
            assert!(table(bad).is_err(), "{bad:?} accepted");
        }
        let re = regex::Regex::new(TABLE_PATTERN).unwrap();
        assert!(re.is_match("audit.Events_2") && !re.is_match("x; drop table y"));
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
