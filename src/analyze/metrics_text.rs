//! The Prometheus text exposition format (what a `/metrics` endpoint serves), filtered to the
//! metrics a check cares about.
//!
//! The runbook's "Performance Metrics" step greps `/metrics` for `http_requests_total`,
//! `http_request_duration`, `process_cpu_usage` and `process_memory`. Here a sample is kept
//! when its metric name starts with one of the given prefixes. Lines whose names match no
//! prefix are skipped before their labels are read, so an odd line of an unrelated metric
//! cannot fail the whole read; a matching line that is malformed is an error.
//!
//! Line grammar: `name{label="value",...} value [timestamp]`, with `\\`, `\"` and `\n`
//! escapes in label values, `#` comment lines (`# HELP`, `# TYPE`, OpenMetrics' `# EOF`), and
//! values that may be `NaN`, `+Inf` or `-Inf`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::ParseError;
use super::prom::{PromValue, parse_prom_float};

const INPUT: &str = "metrics text";

/// The metric-name prefixes of the runbook's "Performance Metrics" step.
pub const RUNBOOK_METRIC_PREFIXES: &[&str] = &[
    "http_requests_total",
    "http_request_duration",
    "process_cpu_usage",
    "process_memory",
];

/// One sample line.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Sample {
    /// Metric name, e.g. `http_requests_total` or `http_request_duration_seconds_bucket`.
    pub name: String,
    /// Labels of the sample (`le` for histogram buckets, `quantile` for summaries).
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: PromValue,
    /// The sample's own timestamp in milliseconds, when the exporter wrote one (rare).
    pub timestamp_ms: Option<i64>,
}

/// Parse `text`, keeping samples whose name starts with one of `prefixes` (all samples when
/// `prefixes` is empty).
pub fn parse_samples(text: &str, prefixes: &[&str]) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = index + 1;
        let (name, rest, has_labels) = split_name(line)
            .ok_or_else(|| ParseError::line(INPUT, at, "expected a metric name", line))?;
        if !prefixes.is_empty() && !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let (labels, rest) = if has_labels {
            parse_labels(rest)
                .ok_or_else(|| ParseError::line(INPUT, at, "unreadable {labels}", line))?
        } else {
            (BTreeMap::new(), rest)
        };
        let mut fields = rest.split_whitespace();
        let value_text = fields.next().unwrap_or("");
        let value = parse_prom_float(value_text)
            .ok_or_else(|| ParseError::field(INPUT, at, "value", "not a number", value_text))?;
        let timestamp_ms = match fields.next() {
            Some(ts) => Some(crate::analyze::error::number(INPUT, at, "timestamp", ts)?),
            None => None,
        };
        if let Some(extra) = fields.next() {
            return Err(ParseError::field(
                INPUT,
                at,
                "end of line",
                "unexpected text",
                extra,
            ));
        }
        samples.push(Sample {
            name,
            labels,
            value: PromValue(value),
            timestamp_ms,
        });
    }
    Ok(samples)
}

/// Split off the metric name: a bare name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), or a quoted one as the
/// first item inside the braces (`{"my.metric",label="x"}`, Prometheus 3's UTF-8 names).
/// Returns the name, the text after it (inside the braces when the third item is true).
fn split_name(line: &str) -> Option<(String, &str, bool)> {
    if let Some(inner) = line.strip_prefix("{\"") {
        let (name, after) = read_quoted(inner)?;
        let after = after.trim_start();
        return Some((name, after.strip_prefix(',').unwrap_or(after), true));
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let rest = &line[end..];
    Some(match rest.strip_prefix('{') {
        Some(labels) => (name.to_string(), labels, true),
        None => (name.to_string(), rest, false),
    })
}

/// Parse `label="value",...}` (the opening brace already consumed); return the labels and
/// the text after the closing brace.
fn parse_labels(mut rest: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after_key) = match rest.strip_prefix('"') {
            Some(quoted) => read_quoted(quoted)?,
            None => {
                let eq = rest.find('=')?;
                (rest[..eq].trim().to_string(), &rest[eq..])
            }
        };
        let after_eq = after_key.trim_start().strip_prefix('=')?.trim_start();
        let (value, after_value) = read_quoted(after_eq.strip_prefix('"')?)?;
        if key.is_empty() {
            return None;
        }
        labels.insert(key, value);
        rest = after_value.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Read a quoted string whose opening quote is already consumed, undoing `\\`, `\"`, `\n`.
fn read_quoted(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((at, ch)) = chars.next() {
        match ch {
            '"' => return Some((out, &text[at + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            other => out.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMETHEUS: &str = include_str!("fixtures/metrics_prometheus.txt");
    const NODE: &str = include_str!("fixtures/metrics_node_exporter.txt");

    #[test]
    fn real_prometheus_metrics_filtered_by_prefix() {
        let samples = parse_samples(
            PROMETHEUS,
            &["prometheus_http_requests_total", "process_resident_memory"],
        )
        .unwrap();
        assert!(
            samples
                .iter()
                .all(|s| s.name == "prometheus_http_requests_total"
                    || s.name == "process_resident_memory_bytes")
        );
        let metrics_ok = samples
            .iter()
            .find(|s| s.labels.get("handler").map(String::as_str) == Some("/metrics"))
            .unwrap();
        assert_eq!(metrics_ok.labels["code"], "200");
        assert!(metrics_ok.value.0 >= 1.0);
        let rss = samples
            .iter()
            .find(|s| s.name == "process_resident_memory_bytes")
            .unwrap();
        assert!(rss.labels.is_empty());
        assert!(rss.value.0 > 1e6, "Prometheus uses more than 1 MB");
    }

    #[test]
    fn real_histogram_buckets_keep_their_le_label() {
        let buckets = parse_samples(
            PROMETHEUS,
            &["prometheus_http_request_duration_seconds_bucket"],
        )
        .unwrap();
        let inf = buckets
            .iter()
            .find(|s| s.labels["handler"] == "/metrics" && s.labels["le"] == "+Inf")
            .unwrap();
        let count = parse_samples(
            PROMETHEUS,
            &["prometheus_http_request_duration_seconds_count"],
        )
        .unwrap()
        .into_iter()
        .find(|s| s.labels["handler"] == "/metrics")
        .unwrap();
        assert_eq!(
            inf.value, count.value,
            "the +Inf bucket counts every request"
        );
    }

    #[test]
    fn real_node_exporter_every_line_parses() {
        let all = parse_samples(NODE, &[]).unwrap();
        let sample_lines = NODE
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(all.len(), sample_lines);
        let uname = all.iter().find(|s| s.name == "node_uname_info").unwrap();
        assert_eq!(uname.labels["sysname"], "Linux");
        assert_eq!(uname.value, PromValue(1.0));
        // Summaries with no observations read NaN quantiles in some exporters; here go_gc has data.
        assert!(
            all.iter()
                .any(|s| s.name == "go_gc_duration_seconds" && s.labels.contains_key("quantile"))
        );
    }

    #[test]
    fn escapes_nan_timestamps_and_utf8_names() {
        let text = "# HELP x y\nhttp_requests_total{path=\"/a\\\"b\",note=\"l1\\nl2\"} NaN 1700000000000\n\
                    http_request_duration_seconds_sum +Inf\n{\"my.metric\",job=\"x\"} 3\n# EOF\n";
        let samples = parse_samples(text, &[]).unwrap();
        assert_eq!(samples[0].labels["path"], "/a\"b");
        assert_eq!(samples[0].labels["note"], "l1\nl2");
        assert!(samples[0].value.0.is_nan());
        assert_eq!(samples[0].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(samples[1].value.0, f64::INFINITY);
        assert_eq!(
            (samples[2].name.as_str(), samples[2].labels["job"].as_str()),
            ("my.metric", "x")
        );
        let runbook = parse_samples(text, RUNBOOK_METRIC_PREFIXES).unwrap();
        assert_eq!(runbook.len(), 2);
    }

    #[test]
    fn malformed_matching_lines_are_errors_unrelated_ones_are_skipped() {
        let text = "http_requests_total{code=\"200\" 5\n";
        assert!(matches!(
            parse_samples(text, &["http"]),
            Err(ParseError::Line { line: 1, .. })
        ));
        assert!(parse_samples(text, &["process_"]).unwrap().is_empty());
        assert!(matches!(
            parse_samples("up lots\n", &[]),
            Err(ParseError::Field { field: "value", .. })
        ));
        assert!(parse_samples("up 1 2 3\n", &[]).is_err());
        assert!(parse_samples("up 1 soon\n", &[]).is_err());
        assert!(parse_samples("{up 1\n", &[]).is_err());
        assert!(parse_samples("9up 1\n", &[]).is_err());
        assert!(parse_samples("up{=\"x\"} 1\n", &[]).is_err());
    }
}
