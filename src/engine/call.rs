//! What a call brings from its transport: who asks, and which channels can carry a human's
//! decision back. The engine defines these traits; `src/mcp/` implements them with rmcp, and
//! tests with scripted answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::ToolOutput;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A human's answer through the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Approve,
    Decline,
    Cancel,
    /// The channel failed (timeout, unsupported); nothing was decided.
    Failed(String),
}

/// Asks the session's own client (MCP elicitation on sessions before 2026-07-28).
pub trait Asker: Send + Sync {
    fn ask<'a>(&'a self, message: &'a str) -> BoxFuture<'a, Answer>;
}

/// Progress notifications, when the client gave a progress token.
pub trait Progress: Send + Sync {
    fn report<'a>(&'a self, done: f64, total: Option<f64>, message: String) -> BoxFuture<'a, ()>;
}

/// The per-call context.
#[derive(Clone, Default)]
pub struct CallCtx {
    /// Who asked (the kernel's account, or an HTTP token's name): approvals apply only to the
    /// same principal.
    pub principal: String,
    /// The client's self-reported name: shown as such, never matched.
    pub client: String,
    /// Elicitation, when the client declared it.
    pub asker: Option<Arc<dyn Asker>>,
    /// Multi round-trip input (2026-07-28 sessions): the server may answer "input required".
    pub input_required: Option<InputRound>,
    pub progress: Option<Arc<dyn Progress>>,
    /// The client connection this call came on (its incident binding); `None` for the CLI.
    pub session: Option<Arc<Session>>,
    /// The incident this call belongs to, as the engine resolved it before running it.
    pub incident: Option<String>,
}

/// One client connection: the incident its calls belong to (DESIGN §12). A session is bound
/// by `open_incident` or `join_incident`; a new session binds on its first call to the one
/// incident open then, if there is exactly one.
#[derive(Debug, Default)]
pub struct Session {
    incident: std::sync::Mutex<Option<String>>,
    started: std::sync::atomic::AtomicBool,
}

impl Session {
    pub fn bind(&self, id: &str) {
        if let Ok(mut i) = self.incident.lock() {
            *i = Some(id.to_string());
        }
    }

    /// Ends the binding to `id` (it was resolved): later calls are on no timeline.
    pub fn unbind(&self, id: &str) {
        if let Ok(mut i) = self.incident.lock()
            && i.as_deref() == Some(id)
        {
            *i = None;
        }
    }

    pub fn bound(&self) -> Option<String> {
        self.incident.lock().ok().and_then(|i| i.clone())
    }

    /// True exactly once: on the session's first call.
    pub fn first_call(&self) -> bool {
        !self.started.swap(true, std::sync::atomic::Ordering::SeqCst)
    }
}

/// A 2026-07-28 session's round: on the first call nothing; on the retry, the sealed request
/// state and the client's answer.
#[derive(Clone, Default)]
pub struct InputRound {
    pub request_state: Option<String>,
    pub answer: Option<Answer>,
}

impl CallCtx {
    /// The command line and tests that need no channel.
    pub fn local(principal: &str) -> Self {
        Self {
            principal: principal.into(),
            ..Self::default()
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Done(ToolOutput),
    /// Ask the client (2026-07-28 `InputRequiredResult`): `message` for the human, and the
    /// sealed state to echo back.
    InputRequired {
        request_state: String,
        message: String,
    },
}
