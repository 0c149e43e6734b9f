//! One call, many hosts: run the same work on every selected host in parallel and report each
//! host on its own. A host that fails or hangs costs its own timeout and shows as that host's
//! error; the others still answer.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;

use super::{Ctx, ToolError};
use crate::config::Host;
use crate::engine::args::Name;
use crate::exec::ExecError;

/// How one host's part of a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// The host answered (its result may still report problems).
    Ok,
    /// The host did not answer before its timeout.
    TimedOut,
    /// The host could not be reached.
    Unreachable,
    /// Something else failed.
    Error,
}

/// One host's part of a call.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HostResult<T> {
    /// Inventory name of the host.
    pub host: String,
    pub status: HostStatus,
    /// Why the host gave no result (absent when `status` is `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time spent on this host.
    pub elapsed_ms: u64,
    /// The host's result (absent unless `status` is `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
}

impl<T> HostResult<T> {
    pub fn is_ok(&self) -> bool {
        self.status == HostStatus::Ok
    }
}

/// Resolves the `hosts` argument against the inventory: absent or empty means every host.
pub fn select_hosts(ctx: &Ctx, hosts: &Option<Vec<Name>>) -> Result<Vec<Host>, ToolError> {
    let Some(names) = hosts.as_ref().filter(|h| !h.is_empty()) else {
        return Ok(ctx.config.hosts.clone());
    };
    let mut out: Vec<Host> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let host = ctx.config.host(n.as_str()).ok_or_else(|| {
            let known: Vec<&str> = ctx.config.hosts.iter().map(|h| h.name.as_str()).collect();
            ToolError::invalid(
                format!("hosts[{i}]"),
                format!(
                    "unknown host `{n}`; the inventory has: {}",
                    known.join(", ")
                ),
            )
        })?;
        if !out.iter().any(|h| h.name == host.name) {
            out.push(host.clone());
        }
    }
    Ok(out)
}

/// Runs `work` on every host concurrently, each bounded by `deadline`.
pub async fn per_host<T, F, Fut>(
    ctx: &Arc<Ctx>,
    hosts: Vec<Host>,
    deadline: Duration,
    work: F,
) -> Vec<HostResult<T>>
where
    F: Fn(Arc<Ctx>, Host) -> Fut,
    Fut: Future<Output = Result<T, ExecError>>,
{
    let jobs = hosts.into_iter().map(|h| {
        let name = h.name.clone();
        // Boxed: a host's work can be a large future (diagnostics joins many), and N of them
        // inline would overflow a worker thread's stack.
        let fut = Box::pin(work(ctx.clone(), h));
        async move {
            let started = Instant::now();
            let res = tokio::time::timeout(deadline, fut)
                .await
                .unwrap_or(Err(ExecError::TimedOut(deadline)));
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match res {
                Ok(v) => HostResult {
                    host: name,
                    status: HostStatus::Ok,
                    error: None,
                    elapsed_ms,
                    result: Some(v),
                },
                Err(e) => HostResult {
                    host: name,
                    status: match e {
                        ExecError::TimedOut(_) => HostStatus::TimedOut,
                        ExecError::Unreachable(_) => HostStatus::Unreachable,
                        ExecError::Failed(_) => HostStatus::Error,
                    },
                    error: Some(e.to_string()),
                    elapsed_ms,
                    result: None,
                },
            }
        }
    });
    futures::future::join_all(jobs).await
}

/// "3 hosts: 2 ok, mcp-03 timed out" — the host part of a summary.
pub fn hosts_line<T>(results: &[HostResult<T>]) -> String {
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let bad: Vec<String> = results
        .iter()
        .filter(|r| !r.is_ok())
        .map(|r| {
            let what = match r.status {
                HostStatus::TimedOut => "timed out",
                HostStatus::Unreachable => "unreachable",
                _ => "failed",
            };
            match &r.error {
                Some(e) => format!("{} {what} ({})", r.host, crate::digest::clip(e, 200)),
                None => format!("{} {what}", r.host),
            }
        })
        .collect();
    if bad.is_empty() {
        let names: Vec<&str> = results.iter().map(|r| r.host.as_str()).collect();
        format!("{} host(s) answered ({})", results.len(), names.join(", "))
    } else {
        format!(
            "{ok}/{} host(s) answered; {}",
            results.len(),
            bad.join(", ")
        )
    }
}
