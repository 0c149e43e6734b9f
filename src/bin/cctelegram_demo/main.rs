//! `cctelegram-demo`: a small stand-in for the CCTelegram MCP server and its Telegram bridge.
//!
//! The runbook lab (`lab/lab.sh`) runs it on every host as `cctelegram-mcp` (`--role mcp`)
//! and `cctelegram-bridge` (`--role bridge`), so the runbook's commands have a real service to
//! look at: `/health` behind an API key, Prometheus `/metrics`, JSON application and security
//! logs, and a control file that injects faults (`ok`, `fail`, `slow MS`, `5xx`), read on every
//! request.
//!
//! HTTP/1.1 is hand-rolled on purpose (keep-alive, Content-Length bodies, nothing more): the
//! crate's dependencies stay as they are and a request costs well under a millisecond.
//! `/metrics` is exempt from injected faults and from the rate limiter, so Prometheus keeps
//! seeing the fault while it is active; metrics scrapes are not written to the application log.
//!
//! Modules: `args` (command line, role), `fault` (control file), `auth` (API key), `bridge`
//! (simulated Telegram side), `ratelimit`, `logging` (JSON log lines and files), `metrics`
//! (Prometheus exposition), `state` (what every request shares), `http` (request parsing and
//! response encoding), `routes` (what each path answers), `server` (one connection's loop).

mod args;
mod auth;
mod bridge;
mod fault;
mod http;
mod logging;
mod metrics;
mod ratelimit;
mod routes;
mod server;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::args::Args;
use crate::logging::js;
use crate::state::State;

const VERSION: &str = "1.4.2";

/// Locks ignoring poison: a panicked request must not wedge every later one.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let state = Arc::new(State::new(args)?);
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;

    let identity = format!(
        "{{\"service\":{},\"host\":{},\"listen\":{},\"version\":\"{VERSION}\",\"pid\":{}}}",
        js(state.role.service()),
        js(&state.name),
        js(&state.listen.to_string()),
        std::process::id()
    );
    state.log_event("INFO", "service started", &identity);

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(server::serve_connection(state.clone(), stream, peer));
                }
                // EMFILE and friends: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            _ = hup.recv() => state.reload(),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    state.log_event("INFO", "service stopping", &identity);
    std::process::exit(0);
}
