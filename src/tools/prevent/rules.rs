//! The alerting rules the runbook asks for, over metrics the service really exports, as a
//! Prometheus rules file. The runbook's own text has two mistakes this fixes, and says so:
//! `increase()` of a gauge (memory) treats every drop as a counter reset, so
//! `MemoryLeakDetection` uses `delta()`; and `rate(process_cpu_usage_percent[5m])` is a rate of
//! a gauge that is already a percentage — CPU comes from `process_cpu_seconds_total`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Requests that are traffic (not scrapes or health probes).
const TRAFFIC: &str = "path!~\"/metrics|/health\"";

/// Thresholds of the generated rules.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// `ConsecutiveErrors`: 5xx answers per host in 5 minutes (runbook: 50).
    #[serde(default = "fifty")]
    #[schemars(range(min = 1, max = 1000000))]
    pub errors_in_5m: u64,
    /// `MemoryLeakDetection`: growth in 30 minutes, MiB (runbook: 100).
    #[serde(default = "hundred")]
    #[schemars(range(min = 1, max = 1048576))]
    pub memory_growth_mib_in_30m: u64,
    /// `High5xxRatio`: share of 5xx answers over 5 minutes (default 0.05).
    #[serde(default = "five_percent")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub error_ratio: f64,
    /// `HighP95Latency`: p95 over 5 minutes, ms (default 500).
    #[serde(default = "half_second")]
    #[schemars(range(min = 1, max = 600000))]
    pub p95_ms: u64,
    /// Rule group name (default `runbook-mcp`).
    #[serde(default = "group")]
    pub group: String,
}

fn fifty() -> u64 {
    50
}
fn hundred() -> u64 {
    100
}
fn five_percent() -> f64 {
    0.05
}
fn half_second() -> u64 {
    500
}
fn group() -> String {
    "runbook-mcp".into()
}

/// One alerting rule.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Rule {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub severity: String,
    pub summary: String,
    /// The metrics the expression reads (each must exist for the rule to mean anything).
    pub series: Vec<String>,
}

impl Thresholds {
    /// Field errors for values the schema allows a client to get wrong.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(self.error_ratio > 0.0 && self.error_ratio < 1.0) {
            return Err(("error_ratio", "must be above 0 and below 1".into()));
        }
        if !(1..=1_000_000).contains(&self.errors_in_5m) {
            return Err(("errors_in_5m", "must be within 1..=1000000".into()));
        }
        if !(1..=1_048_576).contains(&self.memory_growth_mib_in_30m) {
            return Err((
                "memory_growth_mib_in_30m",
                "must be within 1..=1048576".into(),
            ));
        }
        if !(1..=600_000).contains(&self.p95_ms) {
            return Err(("p95_ms", "must be within 1..=600000".into()));
        }
        let ok = !self.group.is_empty()
            && self.group.len() <= 64
            && self
                .group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !ok {
            return Err(("group", "1..=64 letters, digits, - or _".into()));
        }
        Ok(())
    }

    pub fn rules(&self) -> Vec<Rule> {
        let ratio = format!(
            "sum by (host) (rate(http_requests_total{{status=~\"5..\",{TRAFFIC}}}[5m])) / \
             sum by (host) (rate(http_requests_total{{{TRAFFIC}}}[5m])) > {}",
            self.error_ratio
        );
        vec![
            Rule {
                alert: "ConsecutiveErrors".into(),
                expr: format!(
                    "sum by (host) (increase(http_requests_total{{status=~\"5..\"}}[5m])) > {}",
                    self.errors_in_5m
                ),
                for_: "1m".into(),
                severity: "high".into(),
                summary: "High number of consecutive errors on {{ $labels.host }}".into(),
                series: vec!["http_requests_total".into()],
            },
            Rule {
                alert: "MemoryLeakDetection".into(),
                expr: format!(
                    "delta(process_memory_heap_used_bytes[30m]) > {}",
                    self.memory_growth_mib_in_30m * 1_048_576
                ),
                for_: "15m".into(),
                severity: "warning".into(),
                summary: "Potential memory leak on {{ $labels.host }}".into(),
                series: vec!["process_memory_heap_used_bytes".into()],
            },
            Rule {
                alert: "High5xxRatio".into(),
                expr: ratio,
                for_: "5m".into(),
                severity: "critical".into(),
                summary: "More than the allowed share of 5xx answers on {{ $labels.host }}".into(),
                series: vec!["http_requests_total".into()],
            },
            Rule {
                alert: "HighP95Latency".into(),
                expr: format!(
                    "histogram_quantile(0.95, sum by (host, le) (rate(http_request_duration_seconds_bucket{{{TRAFFIC}}}[5m]))) > {}",
                    self.p95_ms as f64 / 1000.0
                ),
                for_: "5m".into(),
                severity: "warning".into(),
                summary: "p95 latency above the limit on {{ $labels.host }}".into(),
                series: vec!["http_request_duration_seconds_bucket".into()],
            },
        ]
    }
}

/// The rules as a Prometheus rules file. Every value is a YAML single-quoted scalar (a `'`
/// doubles), so no expression or summary can break the file's structure.
pub fn yaml(group: &str, rules: &[Rule]) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut y = format!(
        "# written by runbook-mcp\ngroups:\n  - name: {}\n    rules:\n",
        q(group)
    );
    for r in rules {
        y.push_str(&format!(
            "      - alert: {}\n        expr: {}\n        for: {}\n        labels:\n          severity: {}\n        annotations:\n          summary: {}\n",
            q(&r.alert),
            q(&r.expr),
            r.for_,
            q(&r.severity),
            q(&r.summary)
        ));
    }
    y
}

/// What the runbook's own rules and queries get wrong, for the answer's notes.
pub const NOTES: [&str; 2] = [
    "MemoryLeakDetection uses delta(): the runbook's increase() treats a gauge's every drop as a counter reset and overstates growth",
    "process_cpu_usage_percent, which the runbook's impact and capacity queries use, is not a metric Prometheus client libraries export (they export the counter process_cpu_seconds_total); where a service has it, it is a gauge, so the runbook's rate() of it is meaningless: CPU here is rate(process_cpu_seconds_total[5m]) in cores",
];

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_cannot_break_the_file() {
        let mut r = super::Thresholds {
            errors_in_5m: 50,
            memory_growth_mib_in_30m: 100,
            error_ratio: 0.05,
            p95_ms: 500,
            group: "g".into(),
        }
        .rules();
        r[0].summary = "it's 'quoted'\nnext: line".into();
        let y = super::yaml("g", &r[..1]);
        assert!(y.contains("summary: 'it''s ''quoted''\nnext: line'"), "{y}");
        assert!(
            y.contains(
                "expr: 'sum by (host) (increase(http_requests_total{status=~\"5..\"}[5m])) > 50'"
            ),
            "{y}"
        );
    }
}
