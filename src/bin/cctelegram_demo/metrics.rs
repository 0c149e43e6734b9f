//! Prometheus metrics: request counters and latency histograms kept in memory, plus process
//! and bridge gauges read at scrape time, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::args::Role;
use crate::fault::Mode;
use crate::state::State;
use crate::{VERSION, lock};

/// Histogram upper bounds in seconds; `+Inf` is implied.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Distinct `path` label values kept in metrics; later paths are counted as `other`.
const MAX_PATH_LABELS: usize = 64;
/// USER_HZ: the unit of utime/stime in /proc/self/stat (100 on every Linux we run on).
const CLOCK_TICKS: f64 = 100.0;

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub(crate) struct Metrics {
    /// (method, path, status) -> count
    requests: BTreeMap<(String, String, u16), u64>,
    durations: BTreeMap<String, Histogram>,
    /// Last CPU sample (wall clock, cpu seconds) and the percentage computed from it.
    cpu_sample: Option<(Instant, f64)>,
    cpu_percent: f64,
}

impl Metrics {
    /// Caps label cardinality so a path scanner cannot grow the scrape without bound.
    fn path_label(&self, path: &str) -> String {
        if self.durations.contains_key(path)
            || (self.durations.len() < MAX_PATH_LABELS && path.len() <= 80)
        {
            path.to_string()
        } else {
            "other".to_string()
        }
    }

    pub(crate) fn observe(&mut self, method: &str, path: &str, status: u16, secs: f64) {
        let label = self.path_label(path);
        *self
            .requests
            .entry((method.to_string(), label.clone(), status))
            .or_default() += 1;
        let h = self.durations.entry(label).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.buckets[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// Updates the CPU percentage from `cpu_total`; scrapes closer than 200 ms apart reuse the
    /// previous figure because so short a window is mostly noise. The first scrape averages
    /// over the whole uptime.
    fn sample_cpu(&mut self, cpu_total: f64, started: Instant) -> f64 {
        let now = Instant::now();
        match self.cpu_sample {
            Some((at, cpu)) if now.duration_since(at) >= Duration::from_millis(200) => {
                let wall = now.duration_since(at).as_secs_f64();
                self.cpu_percent = ((cpu_total - cpu) / wall * 100.0).max(0.0);
                self.cpu_sample = Some((now, cpu_total));
            }
            Some(_) => {}
            None => {
                let up = started.elapsed().as_secs_f64().max(0.001);
                self.cpu_percent = cpu_total / up * 100.0;
                self.cpu_sample = Some((now, cpu_total));
            }
        }
        self.cpu_percent
    }

    /// `http_requests_total` and `http_request_duration_seconds`.
    fn write_http(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP http_requests_total Total HTTP requests by method, path and status.\n# TYPE http_requests_total counter"
        );
        for ((method, path, status), n) in &self.requests {
            let _ = writeln!(
                out,
                "http_requests_total{{method=\"{}\",path=\"{}\",status=\"{status}\"}} {n}",
                escape_label(method),
                escape_label(path)
            );
        }
        let _ = writeln!(
            out,
            "# HELP http_request_duration_seconds HTTP request duration in seconds.\n# TYPE http_request_duration_seconds histogram"
        );
        for (path, h) in &self.durations {
            let p = escape_label(path);
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{path=\"{p}\",le=\"{le}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{path=\"{p}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{path=\"{p}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{path=\"{p}\"}} {}",
                h.count
            );
        }
    }
}

/// The whole /metrics page.
pub(crate) fn render(state: &State, mode: Mode) -> String {
    let mut out = String::with_capacity(4096);
    let cpu_total = cpu_seconds();
    let cpu_percent = {
        let mut m = lock(&state.metrics);
        let cpu_percent = m.sample_cpu(cpu_total, state.started);
        m.write_http(&mut out);
        cpu_percent
    };
    write_process(&mut out, cpu_percent, cpu_total, state.start_unix);
    let _ = writeln!(
        out,
        "# HELP cctelegram_info Service identity.\n# TYPE cctelegram_info gauge\ncctelegram_info{{service=\"{}\",host=\"{}\",version=\"{VERSION}\"}} 1",
        state.role.service(),
        escape_label(&state.name)
    );
    if state.role == Role::Bridge {
        write_bridge(&mut out, state.bridge_status(mode));
    }
    out
}

/// Process gauges: CPU, resident memory and start time.
fn write_process(out: &mut String, cpu_percent: f64, cpu_total: f64, start_unix: f64) {
    let _ = writeln!(
        out,
        "# HELP process_cpu_usage_percent CPU used by this process since the previous scrape, in percent of one core.\n# TYPE process_cpu_usage_percent gauge\nprocess_cpu_usage_percent {cpu_percent:.3}"
    );
    let _ = writeln!(
        out,
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu_total}"
    );
    let _ = writeln!(
        out,
        "# HELP process_memory_heap_used_bytes Memory in use by this process (resident set size).\n# TYPE process_memory_heap_used_bytes gauge\nprocess_memory_heap_used_bytes {}",
        rss_bytes()
    );
    let _ = writeln!(
        out,
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {start_unix:.3}"
    );
}

/// Bridge gauges from (connected, queue_depth, messages_sent).
fn write_bridge(out: &mut String, (connected, queue, sent): (bool, u64, u64)) {
    let _ = writeln!(
        out,
        "# HELP bridge_messages_sent_total Messages delivered to Telegram.\n# TYPE bridge_messages_sent_total counter\nbridge_messages_sent_total {sent}"
    );
    let _ = writeln!(
        out,
        "# HELP bridge_queue_depth Messages waiting for delivery.\n# TYPE bridge_queue_depth gauge\nbridge_queue_depth {queue}"
    );
    let _ = writeln!(
        out,
        "# HELP bridge_telegram_connected 1 when the Telegram API is reachable.\n# TYPE bridge_telegram_connected gauge\nbridge_telegram_connected {}",
        u8::from(connected)
    );
}

/// The `method` label: unknown methods are folded into `OTHER` to bound cardinality.
pub(crate) fn method_label(method: &str) -> &str {
    match method {
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" => method,
        _ => "OTHER",
    }
}

/// utime + stime of this process in seconds.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name: state is index 0, utime 11, stime 12.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / CLOCK_TICKS
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
