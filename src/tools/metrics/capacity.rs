//! `generate_capacity_report`: the runbook's weekly capacity queries as trends — per host and
//! metric the mean, the peak, the slope per day (least squares over the points) and, where a
//! limit is known, the days of headroom left at that slope.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::api;
use crate::digest::Digest;
use crate::engine::{Ctx, Effect, Tool, ToolError, ToolMeta, Toolset};

pub struct GenerateCapacityReport;

/// Points per series over the period.
const POINTS: f64 = 336.0;

/// Parameters of `generate_capacity_report`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Days looked back (default 7).
    #[serde(default = "seven")]
    #[schemars(range(min = 1, max = 90))]
    pub days: u32,
    /// End of the period: RFC 3339, Unix seconds, or a duration ago (default: now).
    #[serde(default)]
    pub end: Option<String>,
    /// Memory one instance may use, MiB: headroom is counted against it.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub memory_limit_mib: Option<u64>,
    /// CPU cores one instance may use: headroom is counted against it.
    #[serde(default)]
    pub cpu_limit_cores: Option<f64>,
}

fn seven() -> u32 {
    7
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub start: String,
    pub end: String,
    pub step_secs: u64,
    pub trends: Vec<Trend>,
}

/// One metric on one host over the period.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Trend {
    /// `memory_bytes`, `cpu_cores`, `requests_per_sec`.
    pub metric: String,
    pub host: String,
    pub points: usize,
    pub mean: f64,
    pub peak: f64,
    pub last: f64,
    /// Least-squares slope, per day.
    pub slope_per_day: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// Days until `last` reaches `limit` at `slope_per_day` (absent: no limit, or not growing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_of_headroom: Option<f64>,
}

impl Tool for GenerateCapacityReport {
    const META: ToolMeta = ToolMeta {
        name: "generate_capacity_report",
        title: "Generate capacity report",
        description: "Builds the runbook's weekly capacity report from Prometheus: per host, \
            memory, CPU and request volume over the last N days (default 7) with mean, peak, \
            slope per day and, given a limit, the days of headroom left at that slope. Use it \
            after an incident or for planning, to see what is growing toward its limit.",
        effect: Effect::Read,
        toolset: Toolset::Metrics,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        if !(1..=90).contains(&p.days) {
            return Err(ToolError::invalid("days", "must be within 1..=90"));
        }
        if p.cpu_limit_cores
            .is_some_and(|c| !(c > 0.0 && c.is_finite()))
        {
            return Err(ToolError::invalid(
                "cpu_limit_cores",
                "must be a positive number",
            ));
        }
        let end = match &p.end {
            Some(e) => api::time_arg("end", e)?,
            None => api::now(),
        };
        let start = end - f64::from(p.days) * 86_400.0;
        let step = ((end - start) / POINTS).ceil() as u64;
        let w = format!("{step}s");
        let queries = [
            (
                "memory_bytes",
                "sum by (host) (process_memory_heap_used_bytes)".to_string(),
                p.memory_limit_mib.map(|m| m as f64 * 1_048_576.0),
            ),
            (
                "cpu_cores",
                format!("sum by (host) (rate(process_cpu_seconds_total[{w}]))"),
                p.cpu_limit_cores,
            ),
            (
                "requests_per_sec",
                format!(
                    "sum by (host) (rate(http_requests_total{{path!~\"/metrics|/health\"}}[{w}]))"
                ),
                None,
            ),
        ];
        let answers = futures::future::join_all(
            queries
                .iter()
                .map(|(_, q, _)| api::range(&ctx, q, start, end, step)),
        )
        .await;
        let mut trends = Vec::new();
        for ((metric, _, limit), answer) in queries.iter().zip(answers) {
            for (labels, points) in answer? {
                trends.push(trend(metric, api::host_of(&labels), &points, *limit));
            }
        }
        trends.sort_by(|a, b| (&a.metric, &a.host).cmp(&(&b.metric, &b.host)));
        Ok(Output {
            start: api::rfc3339(start),
            end: api::rfc3339(end),
            step_secs: step,
            trends,
        })
    }

    fn summary(out: &Output) -> String {
        let mut d = Digest::new(format!(
            "capacity {} → {}: {} trend(s)",
            out.start,
            out.end,
            out.trends.len()
        ));
        for t in &out.trends {
            let unit = |x: f64| match t.metric.as_str() {
                "memory_bytes" => crate::digest::bytes(x),
                _ => format!("{x:.3}"),
            };
            let line = format!(
                "{} {}: mean {}, peak {}, slope {}{}/day{}",
                t.host,
                t.metric,
                unit(t.mean),
                unit(t.peak),
                if t.slope_per_day >= 0.0 { "+" } else { "-" },
                unit(t.slope_per_day.abs()),
                t.days_of_headroom
                    .map(|d| format!(", {d:.1} days to the limit"))
                    .unwrap_or_default()
            );
            if t.days_of_headroom.is_some_and(|d| d < 30.0) {
                d.problem(line);
            } else {
                d.figure(line);
            }
        }
        if out.trends.is_empty() {
            d.problem("no series in the period (is the service scraped?)");
        }
        d.render()
    }
}

fn trend(metric: &str, host: String, points: &[(f64, f64)], limit: Option<f64>) -> Trend {
    let n = points.len() as f64;
    let mean = points.iter().map(|p| p.1).sum::<f64>() / n.max(1.0);
    let peak = points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    let last = points.last().map_or(0.0, |p| p.1);
    // Least squares of value on time (days), centred for precision.
    let t_mean = points.iter().map(|p| p.0).sum::<f64>() / n.max(1.0);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, v) in points {
        let dt = (t - t_mean) / 86_400.0;
        sxy += dt * (v - mean);
        sxx += dt * dt;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    // Already at the limit is no headroom, whatever the slope; below it, only growth runs out.
    let days_of_headroom = limit.and_then(|l| {
        if last >= l {
            Some(0.0)
        } else if slope > 0.0 {
            Some((l - last) / slope)
        } else {
            None
        }
    });
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    Trend {
        metric: metric.into(),
        host,
        points: points.len(),
        mean: r(mean),
        peak: r(if points.is_empty() { 0.0 } else { peak }),
        last: r(last),
        slope_per_day: r(slope),
        limit,
        days_of_headroom: days_of_headroom.map(|d| (d * 10.0).round() / 10.0),
    }
}
