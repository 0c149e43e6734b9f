//! `analyze_logs`: the runbook's four log analyses over the services' JSON logs on every host
//! at once. Each host sends the newest `max_bytes_per_host` of each log (`tail -c`), streamed
//! into one scan per host as it arrives (memory bounded by the result, not the log); hosts
//! run in parallel and their scans are merged.

use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::logscan::{Analyses, Options, Report, Scan};
use crate::engine::fanout::{self, HostResult};
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};
use crate::exec::{Cmd, ExecError, Limits, Sink};
use crate::tools::metrics::api;

pub struct AnalyzeLogs;

/// One of the four analyses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Analysis {
    /// ERROR/CRITICAL/FATAL lines by time bucket and message.
    Errors,
    /// Security events by message and client IP.
    Security,
    /// Request duration: mean, p50, p95, p99, max.
    Durations,
    /// Top clients hitting the rate limit.
    RateLimits,
}

/// Bucket size of the error counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    #[default]
    Minute,
    Hour,
}

/// Parameters of `analyze_logs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Inventory host names; default: every host running a service with logs.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub hosts: Option<Vec<Name>>,
    /// Window start: RFC 3339, Unix seconds, or a duration ago (default `1h`).
    #[serde(default)]
    pub since: Option<String>,
    /// Window end (default: now).
    #[serde(default)]
    pub until: Option<String>,
    /// Which analyses; default all four.
    #[serde(default)]
    pub analyses: Option<Vec<Analysis>>,
    /// Newest bytes read of each log per host (default 64 MiB).
    #[serde(default = "default_budget")]
    #[schemars(range(min = 1024, max = 4294967296u64))]
    pub max_bytes_per_host: u64,
    /// Entries in each top list (default 10).
    #[serde(default = "ten")]
    #[schemars(range(min = 1, max = 100))]
    pub top: usize,
    #[serde(default)]
    pub bucket: Bucket,
}

fn default_budget() -> u64 {
    64 * 1024 * 1024
}
fn ten() -> usize {
    10
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// All hosts together.
    pub total: Report,
    /// Per host: its own report, or why it gave none.
    pub hosts: Vec<HostResult<HostLogs>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostLogs {
    /// Bytes received from the host.
    pub bytes: u64,
    /// A log was longer than the budget: the window may start later than `since` here.
    pub cut_by_budget: bool,
    pub report: Report,
}

impl Tool for AnalyzeLogs {
    const META: ToolMeta = ToolMeta {
        name: "analyze_logs",
        title: "Analyze logs",
        description: "Runs the runbook's log analyses over a time window on every host in \
            parallel: error patterns (per minute/hour and by message), security events (by \
            message and client IP), request durations (mean, p50, p95, p99, max) and the top \
            rate-limit offenders. Use it to find what is failing and who is hammering the \
            service. Returns fleet totals and per-host reports.",
        effect: Effect::Read,
        toolset: Toolset::Logs,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        let since = api::time_arg("since", p.since.as_deref().unwrap_or("1h"))?;
        let until = p
            .until
            .as_deref()
            .map(|u| api::time_arg("until", u))
            .transpose()?;
        if !(1024..=4 << 30).contains(&p.max_bytes_per_host) {
            return Err(ToolError::invalid(
                "max_bytes_per_host",
                "must be within 1 KiB..=4 GiB",
            ));
        }
        if !(1..=100).contains(&p.top) {
            return Err(ToolError::invalid("top", "must be within 1..=100"));
        }
        let analyses = match &p.analyses {
            None => Analyses::ALL,
            Some(v) if v.is_empty() => {
                return Err(ToolError::invalid("analyses", "name at least one analysis"));
            }
            Some(v) => Analyses {
                errors: v.contains(&Analysis::Errors),
                security: v.contains(&Analysis::Security),
                durations: v.contains(&Analysis::Durations),
                rate_limits: v.contains(&Analysis::RateLimits),
            },
        };
        let opts = Options {
            analyses,
            since: Some(api::rfc3339(since)[..19].to_string()),
            until: until.map(|u| api::rfc3339(u)[..19].to_string()),
            bucket_chars: if p.bucket == Bucket::Hour { 13 } else { 16 },
            top: p.top,
        };
        let mut hosts = fanout::select_hosts(&ctx, &p.hosts)?;
        let explicit = p.hosts.is_some();
        hosts.retain(|h| explicit || ctx.config.services_on(&h.name).any(|s| !s.logs.is_empty()));
        // A big log over a slow link needs more than one command's timeout.
        let limits = Limits {
            timeout: ctx.fleet.limits().timeout * 12,
            ..ctx.fleet.limits()
        };
        let budget = p.max_bytes_per_host;
        let results = fanout::per_host(
            &ctx,
            hosts,
            limits.timeout + limits.timeout / 4,
            |ctx, host| {
                let opts = opts.clone();
                async move { scan_host(&ctx, &host, opts, budget, limits).await }
            },
        )
        .await;
        let mut total = Scan::new(opts);
        let mut hosts = Vec::new();
        for r in results {
            let HostResult {
                host,
                status,
                error,
                elapsed_ms,
                result,
            } = r;
            let result = result.map(|(scan, bytes, cut)| {
                let report = scan.report();
                total.merge(scan);
                HostLogs {
                    bytes,
                    cut_by_budget: cut,
                    report,
                }
            });
            hosts.push(HostResult {
                host,
                status,
                error,
                elapsed_ms,
                result,
            });
        }
        Ok(Output {
            since: api::rfc3339(since),
            until: until.map(api::rfc3339),
            total: total.report(),
            hosts,
        })
    }

    fn summary(out: &Output) -> String {
        super::log_text::digest(out).render()
    }

    fn is_error(out: &Output) -> bool {
        out.hosts.iter().all(|h| !h.is_ok())
    }
}

/// Every log of the host's services, each streamed into its own scan at the same time (one
/// slow log does not use up the others' time), merged: (scan, bytes, cut by budget).
async fn scan_host(
    ctx: &Ctx,
    host: &crate::config::Host,
    opts: Options,
    budget: u64,
    limits: Limits,
) -> Result<(Scan, u64, bool), ExecError> {
    let files: Vec<String> = ctx
        .config
        .services_on(&host.name)
        .flat_map(|s| s.logs.values().cloned())
        .collect();
    let scans = futures::future::join_all(
        files
            .into_iter()
            .map(|f| scan_file(ctx, host, f, opts.clone(), budget, limits)),
    )
    .await;
    let mut scan = Scan::new(opts);
    let (mut bytes, mut cut) = (0, false);
    for r in scans {
        let (s, n) = r?;
        cut |= n >= budget;
        bytes += n;
        scan.merge(s);
    }
    Ok((scan, bytes, cut))
}

/// The newest `budget` bytes of one log, streamed into a scan: (scan, bytes received).
async fn scan_file(
    ctx: &Ctx,
    host: &crate::config::Host,
    file: String,
    opts: Options,
    budget: u64,
    limits: Limits,
) -> Result<(Scan, u64), ExecError> {
    let part = Arc::new(Mutex::new((Scan::new(opts.clone()), 0u64)));
    let into = part.clone();
    let sink = Sink(Arc::new(move |chunk: &[u8]| {
        if let Ok(mut p) = into.lock() {
            p.0.feed(chunk);
            p.1 += chunk.len() as u64;
        }
    }));
    let cmd = Cmd::new([
        "tail".to_string(),
        "-c".into(),
        budget.to_string(),
        "--".into(),
        file,
    ])
    .privileged()
    .streamed(sink);
    let out = ctx.fleet.run_with(host, &cmd, limits).await?;
    // A missing log is no error: the service may not have written one yet.
    if !out.success() && !out.stderr.contains("No such file") {
        return Err(ExecError::Failed(crate::digest::clip(
            out.stderr.trim(),
            300,
        )));
    }
    let (mut s, n) = {
        let mut p = part
            .lock()
            .map_err(|_| ExecError::Failed("scan poisoned".into()))?;
        std::mem::replace(&mut *p, (Scan::new(opts), 0))
    };
    s.finish();
    Ok((s, n))
}
