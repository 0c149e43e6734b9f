//! `analyze_incident_impact`: the runbook's post-incident queries (error rate, p95, CPU,
//! request volume over the incident window) turned into the numbers a post-mortem needs —
//! peak and when, mean, time above the threshold, and when the bad period started and ended.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::api;
use crate::digest::Digest;
use crate::engine::{Ctx, Effect, Tool, ToolError, ToolMeta, Toolset};

pub struct AnalyzeIncidentImpact;

/// Traffic, not Prometheus scrapes or health probes.
const TRAFFIC: &str = "path!~\"/metrics|/health\"";

/// Parameters of `analyze_incident_impact`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Window start: RFC 3339, Unix seconds, or a duration ago (`2h`).
    pub start: String,
    /// Window end (default: now).
    #[serde(default)]
    pub end: Option<String>,
    /// A 5xx share of requests above this is bad (default 0.05).
    #[serde(default = "five_percent")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub error_ratio_threshold: f64,
    /// A p95 latency above this is bad, in ms (default 500).
    #[serde(default = "half_second")]
    #[schemars(range(min = 1, max = 600000))]
    pub p95_threshold_ms: u64,
}

fn five_percent() -> f64 {
    0.05
}
fn half_second() -> u64 {
    500
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub start: String,
    pub end: String,
    pub step_secs: u64,
    /// The rate window each point averages over.
    pub rate_window: String,
    pub metrics: Vec<Metric>,
    /// The longest stretch where the error ratio or p95 was above its threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_period: Option<Period>,
    /// Every such stretch, oldest first (at most 10): two spikes are two periods, not one.
    pub bad_periods: Vec<Period>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Metric {
    /// `error_ratio`, `p95_ms`, `cpu_cores`, `requests_per_sec`.
    pub name: String,
    pub query: String,
    /// Points with data.
    pub points: usize,
    pub peak: f64,
    pub peak_at: String,
    pub mean: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Seconds above the threshold (points above × step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above_secs: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Period {
    pub start: String,
    pub end: String,
    pub duration_secs: u64,
}

impl Tool for AnalyzeIncidentImpact {
    const META: ToolMeta = ToolMeta {
        name: "analyze_incident_impact",
        title: "Analyze incident impact",
        description: "Measures an incident from Prometheus over a time window: 5xx error ratio, \
            p95 latency, CPU and request volume, each with peak (and when), mean and time above \
            its threshold, plus when the bad period started and ended. Use it for the \
            post-mortem's impact section. Returns one row per metric and the bad period.",
        effect: Effect::Read,
        toolset: Toolset::Metrics,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        let start = api::time_arg("start", &p.start)?;
        let end = match &p.end {
            Some(e) => api::time_arg("end", e)?,
            None => api::now(),
        };
        if end <= start {
            return Err(ToolError::invalid("end", "must be after start"));
        }
        if end - start > 31.0 * 86_400.0 {
            return Err(ToolError::invalid("start", "the window is at most 31 days"));
        }
        if !(0.0..=1.0).contains(&p.error_ratio_threshold) {
            return Err(ToolError::invalid(
                "error_ratio_threshold",
                "must be within 0..=1",
            ));
        }
        // About 240 points; a rate window of four steps (at least a minute) smooths scrapes.
        let step = (((end - start) / 240.0).ceil() as u64).max(15);
        let window = format!("{}s", (step * 4).max(60));
        let w = &window;
        let queries = [
            (
                "error_ratio",
                format!(
                    "sum(rate(http_requests_total{{status=~\"5..\",{TRAFFIC}}}[{w}])) / sum(rate(http_requests_total{{{TRAFFIC}}}[{w}]))"
                ),
                Some(p.error_ratio_threshold),
            ),
            (
                "p95_ms",
                format!(
                    "1000 * histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{TRAFFIC}}}[{w}])))"
                ),
                Some(p.p95_threshold_ms as f64),
            ),
            (
                "cpu_cores",
                format!("sum(rate(process_cpu_seconds_total[{w}]))"),
                None,
            ),
            (
                "requests_per_sec",
                format!("sum(rate(http_requests_total{{{TRAFFIC}}}[{w}]))"),
                None,
            ),
        ];
        let answers = futures::future::join_all(
            queries
                .iter()
                .map(|(_, q, _)| api::range(&ctx, q, start, end, step)),
        )
        .await;
        let mut metrics = Vec::new();
        let mut bad: Vec<f64> = Vec::new();
        for ((name, query, threshold), answer) in queries.iter().zip(answers) {
            let points: Vec<(f64, f64)> = answer?.into_iter().flat_map(|(_, p)| p).collect();
            if let Some(t) = threshold {
                bad.extend(points.iter().filter(|(_, v)| v > t).map(|(ts, _)| *ts));
            }
            metrics.push(summarize(name, query, &points, *threshold, step));
        }
        let runs = runs(bad, step as f64);
        let bad_period = runs
            .iter()
            .max_by(|a, b| (a.1 - a.0).total_cmp(&(b.1 - b.0)))
            .map(|r| period(*r, step));
        let bad_periods = runs.iter().take(10).map(|r| period(*r, step)).collect();
        Ok(Output {
            start: api::rfc3339(start),
            end: api::rfc3339(end),
            step_secs: step,
            rate_window: window,
            metrics,
            bad_period,
            bad_periods,
        })
    }

    fn summary(out: &Output) -> String {
        let head = match &out.bad_period {
            Some(b) => format!(
                "bad period {} → {} ({} min) in {} → {}",
                b.start,
                b.end,
                b.duration_secs / 60,
                out.start,
                out.end
            ),
            None => format!("no bad period in {} → {}", out.start, out.end),
        };
        let mut d = Digest::new(head);
        if out.bad_periods.len() > 1 {
            let all: Vec<String> = out
                .bad_periods
                .iter()
                .map(|p| format!("{} → {}", p.start, p.end))
                .collect();
            d.problem(format!(
                "{} bad periods: {}",
                out.bad_periods.len(),
                all.join("; ")
            ));
        }
        for m in &out.metrics {
            let line = format!(
                "{}: peak {} at {}, mean {}{}",
                m.name,
                num(m.peak),
                m.peak_at,
                num(m.mean),
                match (m.threshold, m.above_secs) {
                    (Some(t), Some(s)) => format!(", above {} for {} min", num(t), s / 60),
                    _ => String::new(),
                }
            );
            if m.points == 0 {
                d.problem(format!("{}: no data in the window", m.name));
            } else if m.above_secs.is_some_and(|s| s > 0) {
                d.problem(line);
            } else {
                d.figure(line);
            }
        }
        d.next("query_metrics for a metric by host; what_changed around the bad period's start");
        d.render()
    }
}

/// Bad points grouped into stretches; a gap of more than two steps starts a new one.
fn runs(mut bad: Vec<f64>, step: f64) -> Vec<(f64, f64)> {
    bad.sort_by(f64::total_cmp);
    bad.dedup();
    let mut out: Vec<(f64, f64)> = Vec::new();
    for t in bad {
        match out.last_mut() {
            Some(r) if t - r.1 <= 2.0 * step => r.1 = t,
            _ => out.push((t, t)),
        }
    }
    out
}

fn period((a, b): (f64, f64), step: u64) -> Period {
    Period {
        start: api::rfc3339(a),
        end: api::rfc3339(b),
        duration_secs: (b - a) as u64 + step,
    }
}

fn summarize(
    name: &str,
    query: &str,
    points: &[(f64, f64)],
    threshold: Option<f64>,
    step: u64,
) -> Metric {
    let peak = points
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0.0, 0.0));
    let mean = if points.is_empty() {
        0.0
    } else {
        points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64
    };
    Metric {
        name: name.into(),
        query: query.into(),
        points: points.len(),
        peak: round(peak.1),
        peak_at: api::rfc3339(peak.0),
        mean: round(mean),
        threshold,
        above_secs: threshold.map(|t| points.iter().filter(|p| p.1 > t).count() as u64 * step),
    }
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}
