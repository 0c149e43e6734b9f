//! Metrics: PromQL against the configured Prometheus, with the runbook's queries as presets.

mod alerts;
pub mod api;
mod capacity;
mod impact;
mod query;

pub use alerts::GetAlerts;
pub use capacity::GenerateCapacityReport;
pub use impact::AnalyzeIncidentImpact;
pub use query::QueryMetrics;

/// Built-in presets; `$window` becomes the rate window. Config may add or replace presets.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "error_rate_5xx",
        "sum by (host) (rate(http_requests_total{status=~\"5..\"}[$window]))",
    ),
    (
        "request_rate",
        "sum by (host) (rate(http_requests_total[$window]))",
    ),
    (
        "p95_latency",
        "histogram_quantile(0.95, sum by (host, le) (rate(http_request_duration_seconds_bucket[$window])))",
    ),
    (
        "cpu",
        "100 * (1 - avg by (host) (rate(node_cpu_seconds_total{mode=\"idle\"}[$window])))",
    ),
    (
        "memory",
        "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
    ),
];
