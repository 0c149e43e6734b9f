//! The Prometheus HTTP API as the aftermath tools use it: instant and range queries that come
//! back as numbers, alerts and rules as JSON, every failure one clear error.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::engine::{Ctx, ToolError};
use crate::exec::{ExecError, HttpRequest};

/// A series' labels.
pub type Labels = BTreeMap<String, String>;

/// `GET /api/v1/PATH?params`, answering the `data` of a success.
pub async fn get(ctx: &Ctx, path: &str, params: &[(&str, String)]) -> Result<Value, ToolError> {
    let prom = ctx
        .config
        .prometheus
        .as_ref()
        .ok_or_else(|| ToolError::unavailable("no [prometheus] is configured"))?;
    let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/{path}", prom.url), params)
        .map_err(|e| ToolError::internal(format!("bad Prometheus URL: {e}")))?;
    let timeout = ctx.config.server.http_timeout;
    let reply = ctx
        .http
        .send(&HttpRequest::get(url.as_str(), timeout))
        .await
        .map_err(|e| match e {
            ExecError::TimedOut(_) => ToolError::unavailable(format!(
                "Prometheus at {} did not answer within {timeout:?}",
                prom.url
            )),
            other => ToolError::unavailable(format!(
                "Prometheus at {} is not reachable: {other}",
                prom.url
            )),
        })?;
    let v: Value = serde_json::from_str(&reply.body).map_err(|e| {
        ToolError::unavailable(format!(
            "Prometheus answered HTTP {} with no JSON: {e}",
            reply.status
        ))
    })?;
    if v["status"] != "success" {
        return Err(ToolError::unavailable(format!(
            "Prometheus failed {path} ({}): {}",
            v["errorType"].as_str().unwrap_or("error"),
            v["error"].as_str().unwrap_or("no message")
        )));
    }
    Ok(v["data"].clone())
}

/// An instant query at `at` (default: now): each series' labels and value (NaN dropped).
pub async fn instant(
    ctx: &Ctx,
    query: &str,
    at: Option<f64>,
) -> Result<Vec<(Labels, f64)>, ToolError> {
    let mut params = vec![("query", query.to_string())];
    if let Some(t) = at {
        params.push(("time", format!("{t:.3}")));
    }
    let data = get(ctx, "query", &params).await?;
    let mut out = Vec::new();
    for s in data["result"].as_array().into_iter().flatten() {
        if let Some(v) = number(&s["value"][1]) {
            out.push((labels(&s["metric"]), v));
        }
    }
    Ok(out)
}

/// A range query: each series' labels and `(unix seconds, value)` points (NaN dropped).
pub async fn range(
    ctx: &Ctx,
    query: &str,
    start: f64,
    end: f64,
    step_secs: u64,
) -> Result<Vec<(Labels, Vec<(f64, f64)>)>, ToolError> {
    let params = [
        ("query", query.to_string()),
        ("start", format!("{start:.3}")),
        ("end", format!("{end:.3}")),
        ("step", format!("{}s", step_secs.max(1))),
    ];
    let data = get(ctx, "query_range", &params).await?;
    let mut out = Vec::new();
    for s in data["result"].as_array().into_iter().flatten() {
        let points: Vec<(f64, f64)> = s["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_f64()?, number(&p[1])?)))
            .collect();
        out.push((labels(&s["metric"]), points));
    }
    Ok(out)
}

fn number(v: &Value) -> Option<f64> {
    v.as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|x| x.is_finite())
}

/// A JSON object of strings (a series' metric, an alert's labels or annotations) as labels.
pub fn labels(v: &Value) -> Labels {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Now, in Unix seconds.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `2026-12-01T17:39:13Z` for Unix seconds.
pub fn rfc3339(t: f64) -> String {
    // Clamped to what RFC 3339 can write (the arguments are checked; Prometheus' answers are
    // not ours to trust).
    let t = UNIX_EPOCH + std::time::Duration::from_secs_f64(t.clamp(0.0, LATEST));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// 9999-12-31T23:59:59Z, the last instant RFC 3339 can write.
const LATEST: f64 = 253_402_300_799.0;

/// Seconds since the epoch of an RFC 3339 text (`None` when it is not one).
pub fn epoch(text: &str) -> Option<f64> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// A point in time given as RFC 3339, Unix seconds, or a duration ago (`30m`, `2h`, `7d`).
pub fn time_arg(field: &str, v: &str) -> Result<f64, ToolError> {
    let t = parse_time(field, v)?;
    // A day of clock skew is tolerated; a time beyond it is a mistake, not a window.
    if t > now() + 86_400.0 {
        return Err(ToolError::invalid(
            field,
            format!("`{}` is in the future", v.escape_debug()),
        ));
    }
    Ok(t)
}

fn parse_time(field: &str, v: &str) -> Result<f64, ToolError> {
    if let Ok(x) = v.parse::<f64>()
        && x.is_finite()
        && x > 0.0
    {
        return Ok(x);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(v) {
        return Ok(t
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()));
    }
    if let Ok(d) = duration_arg(field, v) {
        return Ok(now() - d as f64);
    }
    Err(ToolError::invalid(
        field,
        format!(
            "`{}` is not RFC 3339 (2026-01-15T10:00:00Z), Unix seconds or a duration ago (30m)",
            v.escape_debug()
        ),
    ))
}

/// A duration like `30s`, `5m`, `2h`, `7d`, in seconds.
pub fn duration_arg(field: &str, v: &str) -> Result<u64, ToolError> {
    duration(field, v).map(|d| d.0)
}

/// `30s`, `5m`, `2h`, `7d`, `1w` → (seconds, canonical text).
pub fn duration(field: &str, v: &str) -> Result<(u64, String), ToolError> {
    let bad = || {
        ToolError::invalid(
            field,
            format!(
                "`{}` is not a duration like 30s, 5m, 2h, 7d",
                v.escape_debug()
            ),
        )
    };
    let unit = v.chars().last().ok_or_else(bad)?;
    let n: u64 = v[..v.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    if n == 0 || n > 10_000 {
        return Err(bad());
    }
    Ok((n * mult, format!("{n}{unit}")))
}

/// The host a series belongs to: its `host` label, else its `instance`.
pub fn host_of(l: &Labels) -> String {
    l.get("host")
        .or_else(|| l.get("instance"))
        .cloned()
        .unwrap_or_else(|| "all".into())
}
