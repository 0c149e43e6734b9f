//! The executors a sealed plan runs through. The engine defines the trait; `runtime` gives it
//! the real one (ssh, local argv, reqwest, PostgreSQL), tests give it [`Recording`], which
//! records every command, request and statement and answers from a script — so the whole
//! gate runs at engine level with no root and no lab.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::call::BoxFuture;
use super::plan::Command;
use super::send::Message;
use crate::exec::{CmdOutput, ExecError, HttpReply};

/// A query's answer: rows of text values, and the server's notices.
#[derive(Debug, Clone, Default)]
pub struct SqlReply {
    pub rows: Vec<Vec<Option<String>>>,
    pub notices: Vec<String>,
}

/// How the engine reaches the fleet. Secrets are resolved here, by name, never in a plan.
pub trait Executor: Send + Sync {
    /// Runs one sealed command on its host (`server`: this machine).
    fn run<'a>(&'a self, cmd: &'a Command) -> BoxFuture<'a, Result<CmdOutput, ExecError>>;
    /// `GET url`, with the named secret as `X-API-Key` when given.
    fn get<'a>(
        &'a self,
        url: &'a str,
        api_key_secret: Option<&'a str>,
    ) -> BoxFuture<'a, Result<HttpReply, ExecError>>;
    /// One statement on the configured database (simple-query protocol: VACUUM works).
    fn sql<'a>(&'a self, statement: &'a str) -> BoxFuture<'a, Result<SqlReply, ExecError>>;
    /// One notification request as the `send` step holds it; its `{secret:NAME}`
    /// placeholders are filled here ([`super::send::request`]).
    fn send<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, Result<HttpReply, ExecError>>;
}

/// What the recording executor saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Run(Command),
    Get(String),
    Sql(String),
    Send(Message),
}

type RunRule = Box<dyn Fn(&Command) -> Option<Result<CmdOutput, ExecError>> + Send + Sync>;
type GetRule = Box<dyn Fn(&str) -> Option<Result<HttpReply, ExecError>> + Send + Sync>;
type SqlRule = Box<dyn Fn(&str) -> Option<Result<SqlReply, ExecError>> + Send + Sync>;
type SendRule = Box<dyn Fn(&Message) -> Option<Result<HttpReply, ExecError>> + Send + Sync>;

/// Records everything and answers from scripted rules (first match wins); unmatched commands
/// exit 0 with no output, requests answer 200, statements return no rows.
#[derive(Default)]
pub struct Recording {
    log: Mutex<Vec<Recorded>>,
    runs: Mutex<Vec<RunRule>>,
    gets: Mutex<Vec<GetRule>>,
    sqls: Mutex<Vec<SqlRule>>,
    sends: Mutex<Vec<SendRule>>,
}

/// A finished command's output, for scripted answers.
pub fn output(exit: i32, stdout: &str) -> CmdOutput {
    CmdOutput {
        exit_code: Some(exit),
        stdout: stdout.into(),
        stderr: if exit == 0 {
            String::new()
        } else {
            "scripted failure".into()
        },
        truncated: false,
        elapsed: Duration::ZERO,
    }
}

/// An HTTP reply with `status`, for scripted answers.
pub fn reply(status: u16) -> HttpReply {
    HttpReply {
        status,
        retry_after: None,
        body: String::new(),
        truncated: false,
        elapsed: Duration::ZERO,
    }
}

impl Recording {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Answers commands for which `rule` returns `Some`.
    pub fn on_run(
        &self,
        rule: impl Fn(&Command) -> Option<Result<CmdOutput, ExecError>> + Send + Sync + 'static,
    ) {
        if let Ok(mut r) = self.runs.lock() {
            r.push(Box::new(rule));
        }
    }

    pub fn on_get(
        &self,
        rule: impl Fn(&str) -> Option<Result<HttpReply, ExecError>> + Send + Sync + 'static,
    ) {
        if let Ok(mut r) = self.gets.lock() {
            r.push(Box::new(rule));
        }
    }

    pub fn on_sql(
        &self,
        rule: impl Fn(&str) -> Option<Result<SqlReply, ExecError>> + Send + Sync + 'static,
    ) {
        if let Ok(mut r) = self.sqls.lock() {
            r.push(Box::new(rule));
        }
    }

    /// Answers messages for which `rule` returns `Some` (else `200 {"ok": true}`).
    pub fn on_send(
        &self,
        rule: impl Fn(&Message) -> Option<Result<HttpReply, ExecError>> + Send + Sync + 'static,
    ) {
        if let Ok(mut r) = self.sends.lock() {
            r.push(Box::new(rule));
        }
    }

    /// The messages sent, in order (every attempt).
    pub fn messages(&self) -> Vec<Message> {
        self.log()
            .into_iter()
            .filter_map(|r| match r {
                Recorded::Send(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    pub fn log(&self) -> Vec<Recorded> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The commands that ran, in order.
    pub fn commands(&self) -> Vec<Command> {
        self.log()
            .into_iter()
            .filter_map(|r| match r {
                Recorded::Run(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    fn record(&self, r: Recorded) {
        if let Ok(mut l) = self.log.lock() {
            l.push(r);
        }
    }
}

impl Executor for Recording {
    fn run<'a>(&'a self, cmd: &'a Command) -> BoxFuture<'a, Result<CmdOutput, ExecError>> {
        self.record(Recorded::Run(cmd.clone()));
        let answer = self
            .runs
            .lock()
            .ok()
            .and_then(|rules| rules.iter().find_map(|r| r(cmd)));
        Box::pin(async move { answer.unwrap_or_else(|| Ok(output(0, ""))) })
    }

    fn get<'a>(
        &'a self,
        url: &'a str,
        _api_key_secret: Option<&'a str>,
    ) -> BoxFuture<'a, Result<HttpReply, ExecError>> {
        self.record(Recorded::Get(url.into()));
        let answer = self
            .gets
            .lock()
            .ok()
            .and_then(|rules| rules.iter().find_map(|r| r(url)));
        Box::pin(async move { answer.unwrap_or_else(|| Ok(reply(200))) })
    }

    fn sql<'a>(&'a self, statement: &'a str) -> BoxFuture<'a, Result<SqlReply, ExecError>> {
        self.record(Recorded::Sql(statement.into()));
        let answer = self
            .sqls
            .lock()
            .ok()
            .and_then(|rules| rules.iter().find_map(|r| r(statement)));
        Box::pin(async move { answer.unwrap_or_else(|| Ok(SqlReply::default())) })
    }

    fn send<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, Result<HttpReply, ExecError>> {
        self.record(Recorded::Send(m.clone()));
        let answer = self
            .sends
            .lock()
            .ok()
            .and_then(|rules| rules.iter().find_map(|r| r(m)));
        Box::pin(async move {
            answer.unwrap_or_else(|| {
                let mut r = reply(200);
                r.body = r#"{"ok":true,"ts":"1.000001","id":"sp1","dedup_key":"k"}"#.into();
                Ok(r)
            })
        })
    }
}
