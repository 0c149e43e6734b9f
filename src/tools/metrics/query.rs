//! `query_metrics`: one PromQL query (or a named preset), instant or over a time range.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PRESETS;
use crate::analyze::prom::{self, Point, PromData, PromResponse, PromValue};
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};
use crate::exec::{ExecError, HttpRequest};

pub struct QueryMetrics;

/// Most points returned per series; longer ranges get a coarser step.
const MAX_POINTS: u64 = 500;

/// Parameters of `query_metrics`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A PromQL expression. Give this or `preset`.
    #[serde(default)]
    #[schemars(length(max = 4000))]
    pub query: Option<String>,
    /// A named query: `error_rate_5xx`, `request_rate`, `p95_latency`, `cpu`, `memory` (plus
    /// any the configuration adds). Give this or `query`.
    #[serde(default)]
    pub preset: Option<Name>,
    /// Rate window used by presets, e.g. `5m` (default), `1m`, `1h`.
    #[serde(default)]
    pub window: Option<String>,
    /// Look back this far from now and return a range (e.g. `30m`, `2h`, `7d`). Without it (and
    /// without `start`), the query is instant.
    #[serde(default)]
    pub range: Option<String>,
    /// Range start, RFC 3339 (`2025-01-15T10:00:00Z`) or Unix seconds; needs `end`.
    #[serde(default)]
    pub start: Option<String>,
    /// Range end, RFC 3339 or Unix seconds; needs `start`.
    #[serde(default)]
    pub end: Option<String>,
    /// Range step, e.g. `60s` (default: the range divided into at most 500 points).
    #[serde(default)]
    pub step: Option<String>,
}

/// A query's result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// The PromQL that ran.
    pub query: String,
    /// `instant` or `range`.
    pub kind: String,
    /// Prometheus result type (`vector`, `matrix`, `scalar`, `string`).
    pub result_type: String,
    /// Range bounds and step as sent, for range queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeInfo>,
    pub series: Vec<Series>,
    /// Warnings Prometheus attached to the answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RangeInfo {
    pub start: String,
    pub end: String,
    pub step: String,
}

/// One series.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    /// The value (instant queries) or the last value (range queries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<PromValue>,
    /// The points, oldest first (range queries).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<Point>,
    /// Minimum, maximum and mean over the range (range queries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Stats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

impl Tool for QueryMetrics {
    const META: ToolMeta = ToolMeta {
        name: "query_metrics",
        title: "Query metrics",
        description: "Runs a PromQL query on the fleet's Prometheus, instant or over a range, or \
            a named preset (error_rate_5xx, request_rate, p95_latency, cpu, memory; by host). Use \
            it to confirm impact and recovery with numbers. Returns each series' labels and value, \
            or points with min/max/mean for ranges.",
        effect: Effect::Read,
        toolset: Toolset::Metrics,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        let window = match &p.window {
            Some(w) => super::api::duration("window", w)?.1,
            None => "5m".to_string(),
        };
        if let Some(q) = &p.query {
            crate::screen::check_text(q).map_err(|e| ToolError::invalid("query", e))?;
        }
        let query = match (&p.query, &p.preset) {
            (Some(q), None) if !q.trim().is_empty() && q.len() <= 4000 => q.clone(),
            (Some(_), None) => {
                return Err(ToolError::invalid(
                    "query",
                    "must be 1..=4000 bytes of PromQL",
                ));
            }
            (None, Some(name)) => preset(&ctx, name)?.replace("$window", &window),
            (None, None) => return Err(ToolError::invalid("query", "give `query` or `preset`")),
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid(
                    "preset",
                    "give `query` or `preset`, not both",
                ));
            }
        };
        let range = plan_range(&p)?;
        let prom = ctx
            .config
            .prometheus
            .as_ref()
            .ok_or_else(|| ToolError::unavailable("no [prometheus] is configured"))?;
        let (path, mut params) = match &range {
            None => ("query", vec![("query", query.clone())]),
            Some(r) => (
                "query_range",
                vec![
                    ("query", query.clone()),
                    ("start", r.start.clone()),
                    ("end", r.end.clone()),
                    ("step", r.step.clone()),
                ],
            ),
        };
        params.push((
            "timeout",
            format!("{}s", ctx.config.server.http_timeout.as_secs()),
        ));
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/{path}", prom.url), &params)
            .map_err(|e| ToolError::internal(format!("bad Prometheus URL: {e}")))?;
        let reply = ctx
            .http
            .send(&HttpRequest::get(
                url.as_str(),
                ctx.config.server.http_timeout,
            ))
            .await
            .map_err(|e| match e {
                ExecError::TimedOut(_) => ToolError::unavailable(format!(
                    "Prometheus at {} did not answer within {:?}",
                    prom.url, ctx.config.server.http_timeout
                )),
                other => ToolError::unavailable(format!(
                    "Prometheus at {} is not reachable: {other}",
                    prom.url
                )),
            })?;
        let parsed = prom::parse_response(&reply.body).map_err(|e| {
            ToolError::unavailable(format!("Prometheus answered HTTP {}: {e}", reply.status))
        })?;
        match parsed {
            PromResponse::Success { data, warnings } => Ok(to_output(query, range, data, warnings)),
            // bad_data is Prometheus saying the query (or a parameter) is wrong.
            PromResponse::Error { error_type, error } if error_type == "bad_data" => Err(
                ToolError::invalid(if p.query.is_some() { "query" } else { "preset" }, error),
            ),
            PromResponse::Error { error_type, error } => Err(ToolError::unavailable(format!(
                "Prometheus failed the query ({error_type}): {error}"
            ))),
        }
    }

    fn summary(out: &Output) -> String {
        let mut s = format!("{} series ({})", out.series.len(), out.kind);
        let val = |x: &Series| x.value.map_or(f64::NAN, |v| v.0);
        let mut top: Vec<&Series> = out.series.iter().filter(|x| x.value.is_some()).collect();
        top.sort_by(|a, b| val(b).total_cmp(&val(a)));
        for x in top.iter().take(6) {
            // `host job` when both exist: one host has several series (node, app, bridge).
            let label = match (
                x.labels.get("host").or_else(|| x.labels.get("instance")),
                x.labels.get("job"),
            ) {
                (Some(h), Some(j)) => format!("{h} {j}"),
                (Some(h), None) => h.clone(),
                (None, Some(j)) => j.clone(),
                (None, None) => "{}".into(),
            };
            s.push_str(&format!("; {label}: {}", fmt_num(val(x))));
            if let Some(st) = &x.stats {
                s.push_str(&format!(" (max {})", fmt_num(st.max)));
            }
        }
        s
    }
}

fn preset(ctx: &Ctx, name: &Name) -> Result<String, ToolError> {
    let from_config = ctx
        .config
        .prometheus
        .as_ref()
        .and_then(|p| p.presets.get(name.as_str()));
    if let Some(q) = from_config {
        return Ok(q.clone());
    }
    PRESETS
        .iter()
        .find(|(n, _)| *n == name.as_str())
        .map(|(_, q)| q.to_string())
        .ok_or_else(|| {
            let mut names: Vec<String> = PRESETS.iter().map(|(n, _)| n.to_string()).collect();
            if let Some(p) = &ctx.config.prometheus {
                names.extend(p.presets.keys().cloned());
            }
            ToolError::invalid(
                "preset",
                format!("unknown preset `{name}`; known: {}", names.join(", ")),
            )
        })
}

struct Range {
    start: String,
    end: String,
    step: String,
}

fn plan_range(p: &Params) -> Result<Option<Range>, ToolError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (start, end, span) = match (&p.range, &p.start, &p.end) {
        (None, None, None) => {
            if p.step.is_some() {
                return Err(ToolError::invalid(
                    "step",
                    "only applies to range queries (`range` or `start`/`end`)",
                ));
            }
            return Ok(None);
        }
        (Some(r), None, None) => {
            let secs = super::api::duration("range", r)?.0;
            (
                now.saturating_sub(secs).to_string(),
                now.to_string(),
                Some(secs),
            )
        }
        (None, Some(s), Some(e)) => {
            timestamp_arg("start", s)?;
            timestamp_arg("end", e)?;
            let span = match (s.parse::<u64>(), e.parse::<u64>()) {
                (Ok(a), Ok(b)) if b > a => Some(b - a),
                (Ok(_), Ok(_)) => return Err(ToolError::invalid("end", "must be after `start`")),
                _ => None,
            };
            (s.clone(), e.clone(), span)
        }
        (Some(_), _, _) => {
            return Err(ToolError::invalid(
                "range",
                "give `range` or `start`/`end`, not both",
            ));
        }
        (None, Some(_), None) => return Err(ToolError::invalid("end", "needed with `start`")),
        (None, None, Some(_)) => return Err(ToolError::invalid("start", "needed with `end`")),
    };
    let step = match &p.step {
        Some(s) => {
            let secs = super::api::duration("step", s)?.0;
            if let Some(span) = span
                && span / secs.max(1) > 11_000
            {
                return Err(ToolError::invalid(
                    "step",
                    "too fine for the range (Prometheus allows 11000 points)",
                ));
            }
            format!("{secs}s")
        }
        None => format!("{}s", (span.unwrap_or(3600) / MAX_POINTS).max(1)),
    };
    Ok(Some(Range { start, end, step }))
}

/// RFC 3339 or Unix seconds; Prometheus parses both itself, we only keep junk out.
fn timestamp_arg(field: &str, v: &str) -> Result<(), ToolError> {
    let ok = v.parse::<f64>().is_ok_and(f64::is_finite)
        || (v.len() >= 20
            && v.len() <= 35
            && v.as_bytes().get(4) == Some(&b'-')
            && v.as_bytes().get(10) == Some(&b'T')
            && v.chars()
                .all(|c| c.is_ascii_digit() || "-:.TZ+".contains(c)));
    if ok {
        Ok(())
    } else {
        Err(ToolError::invalid(
            field,
            format!("`{}` is not RFC 3339 or Unix seconds", v.escape_debug()),
        ))
    }
}

fn to_output(query: String, range: Option<Range>, data: PromData, warnings: Vec<String>) -> Output {
    let (result_type, series) = match data {
        PromData::Vector { series } => (
            "vector",
            series
                .into_iter()
                .map(|s| Series {
                    labels: s.labels,
                    value: Some(s.point.value),
                    points: Vec::new(),
                    stats: None,
                })
                .collect(),
        ),
        PromData::Matrix { series } => ("matrix", series.into_iter().map(range_series).collect()),
        PromData::Scalar { point } => (
            "scalar",
            vec![Series {
                labels: BTreeMap::new(),
                value: Some(point.value),
                points: Vec::new(),
                stats: None,
            }],
        ),
        PromData::String { .. } => ("string", Vec::new()),
    };
    Output {
        query,
        kind: if range.is_some() { "range" } else { "instant" }.into(),
        result_type: result_type.into(),
        range: range.map(|r| RangeInfo {
            start: r.start,
            end: r.end,
            step: r.step,
        }),
        series,
        warnings,
    }
}

fn range_series(s: prom::RangeSeries) -> Series {
    let vals: Vec<f64> = s
        .points
        .iter()
        .map(|p| p.value.0)
        .filter(|x| x.is_finite())
        .collect();
    let stats = (!vals.is_empty()).then(|| Stats {
        min: vals.iter().copied().fold(f64::INFINITY, f64::min),
        max: vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        mean: vals.iter().sum::<f64>() / vals.len() as f64,
    });
    Series {
        labels: s.labels,
        value: s.points.last().map(|p| p.value),
        points: s.points,
        stats,
    }
}

fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.abs() >= 100.0 || x == x.trunc() {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_timestamps() {
        assert_eq!(
            crate::tools::metrics::api::duration("w", "5m").unwrap().0,
            300
        );
        assert_eq!(
            crate::tools::metrics::api::duration("w", "7d").unwrap().0,
            604_800
        );
        for bad in ["", "5", "m", "5x", "0m", "5m; drop", "-5m"] {
            assert_eq!(
                crate::tools::metrics::api::duration("window", bad)
                    .unwrap_err()
                    .field
                    .as_deref(),
                Some("window"),
                "{bad}"
            );
        }
        assert!(timestamp_arg("start", "2025-01-15T10:00:00Z").is_ok());
        assert!(timestamp_arg("start", "1736935200").is_ok());
        assert!(timestamp_arg("start", "yesterday").is_err());
    }
}
