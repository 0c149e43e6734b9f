//! `validate_performance`: the runbook's 100-request latency loop, done from this server with
//! the API key kept here — a sample of sequential health requests per endpoint, as
//! percentiles instead of a screen of `time` output.

use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Endpoint, endpoints};
use crate::digest::Digest;
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};
use crate::tools::assess::health::check;

pub struct ValidatePerformance;

/// A sample never takes longer than this per endpoint, whatever the endpoint does.
const DEADLINE: Duration = Duration::from_secs(30);

/// Parameters of `validate_performance`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Inventory host names; default: every host with a health URL, plus the load balancer.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub hosts: Option<Vec<Name>>,
    /// Sequential requests per endpoint (default 100, the runbook's loop).
    #[serde(default = "hundred")]
    #[schemars(range(min = 1, max = 500))]
    pub requests: u32,
    /// p95 above this many milliseconds is a problem (default 500).
    #[serde(default = "half_second")]
    #[schemars(range(min = 1, max = 60000))]
    pub p95_limit_ms: u64,
}

fn hundred() -> u32 {
    100
}
fn half_second() -> u64 {
    500
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// Endpoints whose sample failed a request or crossed the p95 limit.
    pub problems: usize,
    pub p95_limit_ms: u64,
    pub endpoints: Vec<Sample>,
}

/// One endpoint's latency sample (milliseconds).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Sample {
    /// Host name, or `load_balancer`.
    pub host: String,
    pub service: String,
    pub sent: u32,
    pub ok: u32,
    pub failed: u32,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Why a request failed, the first time one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
}

impl Tool for ValidatePerformance {
    const META: ToolMeta = ToolMeta {
        name: "validate_performance",
        title: "Validate performance",
        description: "Times N sequential health requests per endpoint (each instance, plus the \
            load balancer) from this server, like the runbook's 100-curl loop. Use it after \
            recovery to confirm latency is back to normal. Returns per endpoint ok/failed counts \
            and min/mean/p50/p95/p99/max in ms.",
        effect: Effect::Read,
        toolset: Toolset::Verify,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        if !(1..=500).contains(&p.requests) {
            return Err(ToolError::invalid("requests", "must be within 1..=500"));
        }
        let mut eps = endpoints(&ctx, &p.hosts)?;
        if let (None, Some(lb)) = (&p.hosts, &ctx.config.load_balancer) {
            eps.push(Endpoint {
                host: "load_balancer".into(),
                service: "load_balancer".into(),
                url: lb.health_url.clone(),
                key: lb.api_key_secret.clone(),
            });
        }
        let samples =
            futures::future::join_all(eps.iter().map(|e| sample(&ctx, e, p.requests))).await;
        let problems = samples
            .iter()
            .filter(|s| s.failed > 0 || s.p95_ms > p.p95_limit_ms as f64)
            .count();
        Ok(Output {
            problems,
            p95_limit_ms: p.p95_limit_ms,
            endpoints: samples,
        })
    }

    fn summary(out: &Output) -> String {
        let mut d = Digest::new(format!(
            "{} endpoint(s) sampled, {} with problems (p95 limit {} ms)",
            out.endpoints.len(),
            out.problems,
            out.p95_limit_ms
        ));
        let mut fine = Vec::new();
        for s in &out.endpoints {
            let line = format!(
                "{} {}: {}/{} ok, p50 {:.1} p95 {:.1} p99 {:.1} max {:.1} ms",
                s.host, s.service, s.ok, s.sent, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
            );
            if s.failed > 0 || s.p95_ms > out.p95_limit_ms as f64 {
                let why = s.first_failure.as_deref().unwrap_or("p95 above the limit");
                d.problem(format!("{line} — {why}"));
            } else {
                fine.push(line);
            }
        }
        for f in fine {
            d.ok(f);
        }
        if out.problems > 0 {
            d.next("run_diagnostics on the slow hosts; query_metrics preset=p95_latency");
        }
        d.render()
    }
}

async fn sample(ctx: &Ctx, e: &Endpoint, n: u32) -> Sample {
    let started = Instant::now();
    let mut ms: Vec<f64> = Vec::with_capacity(n as usize);
    let mut failed = 0;
    let mut first_failure = None;
    for _ in 0..n {
        if started.elapsed() > DEADLINE {
            break;
        }
        let t = Instant::now();
        let r = check(ctx, &e.service, &e.url, e.key.as_deref()).await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !r.healthy {
            failed += 1;
            first_failure.get_or_insert_with(|| {
                r.status_code
                    .map_or_else(|| r.detail.clone(), |c| format!("HTTP {c}"))
            });
        }
    }
    let sent = ms.len() as u32;
    let mean = ms.iter().sum::<f64>() / f64::from(sent.max(1));
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| crate::analyze::quantile(&ms, p);
    Sample {
        host: e.host.clone(),
        service: e.service.clone(),
        sent,
        ok: sent - failed,
        failed,
        min_ms: round(ms.first().copied().unwrap_or(0.0)),
        mean_ms: round(mean),
        p50_ms: round(q(0.50)),
        p95_ms: round(q(0.95)),
        p99_ms: round(q(0.99)),
        max_ms: round(ms.last().copied().unwrap_or(0.0)),
        first_failure,
    }
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
