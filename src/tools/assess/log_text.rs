//! What the model reads of `analyze_logs`: the fleet's error, latency, security and
//! rate-limit figures first, then each host with something to say, in a few lines.

use super::log_analysis::Output;
use crate::analyze::logscan::{Count, Report};
use crate::digest::{self, Digest};

pub(super) fn digest(out: &Output) -> Digest {
    let t = &out.total;
    let mut d = Digest::new(format!(
        "{} line(s) in the window since {} on {} host(s){}",
        t.in_window,
        out.since,
        out.hosts.len(),
        t.first
            .as_ref()
            .zip(t.last.as_ref())
            .map(|(a, b)| format!(" ({a} … {b})"))
            .unwrap_or_default()
    ));
    for h in out.hosts.iter().filter(|h| !h.is_ok()) {
        d.problem(format!(
            "{}: not read: {}",
            h.host,
            h.error.as_deref().unwrap_or("no answer")
        ));
    }
    lines(&mut d, "all hosts", t);
    let mut quiet = Vec::new();
    for h in &out.hosts {
        let Some(r) = &h.result else { continue };
        if r.bytes == 0 {
            d.problem(format!(
                "{}: no log bytes read (no log yet, or a wrong logs path in the config)",
                h.host
            ));
            continue;
        }
        if r.report.long_lines > 0 {
            d.problem(format!(
                "{}: {} line(s) over 1 MiB skipped (is a logs path a binary file?)",
                h.host, r.report.long_lines
            ));
        }
        if r.cut_by_budget {
            d.problem(format!(
                "{}: read only the newest {} of its logs (raise max_bytes_per_host for the whole window)",
                h.host,
                digest::bytes(r.bytes as f64)
            ));
        }
        let errors = r.report.errors.as_ref().map_or(0, |e| e.total);
        let limited = r.report.rate_limits.as_ref().map_or(0, |e| e.total);
        if errors > 0 || limited > 0 {
            d.figure(format!(
                "{} errors {errors}, rate-limited {limited}",
                h.host
            ));
        } else {
            quiet.push(h.host.as_str());
        }
    }
    if !quiet.is_empty() {
        d.ok(format!(
            "{}: no errors, no rate limiting",
            digest::names(&quiet)
        ));
    }
    if t.errors.as_ref().is_some_and(|e| e.total > 0) {
        d.next("get_recent_logs level=error on the noisiest host for whole lines");
    }
    if t.rate_limits.as_ref().is_some_and(|r| r.total > 0) {
        d.next("adjust_rate_limit only if the offenders are legitimate clients");
    }
    d
}

fn lines(d: &mut Digest, who: &str, r: &Report) {
    if let Some(e) = &r.errors
        && e.total > 0
    {
        let peak = e.by_bucket.iter().max_by_key(|c| c.count);
        d.problem(format!(
            "{who}: {} error line(s) ({}); busiest bucket {}; top: {}",
            e.total,
            counts(&e.by_level, 3),
            peak.map_or("-".into(), |c| format!("{} ({})", c.key, c.count)),
            counts(&e.top_messages, 5)
        ));
    }
    if let Some(s) = &r.security
        && s.total > 0
    {
        d.problem(format!(
            "{who}: {} security event(s); by message: {}; top IPs: {}",
            s.total,
            counts(&s.by_message, 4),
            counts(&s.top_ips, 5)
        ));
    }
    if let Some(rl) = &r.rate_limits
        && rl.total > 0
    {
        d.problem(format!(
            "{who}: {} rate-limited request(s); top offenders: {}",
            rl.total,
            counts(&rl.top_ips, 10)
        ));
    }
    if let Some(x) = &r.durations
        && x.count > 0
    {
        d.figure(format!(
            "{who} durations n={} mean {:.3} p50 {:.3} p95 {:.3} p99 {:.3} max {:.3} ms",
            x.count, x.mean_ms, x.p50_ms, x.p95_ms, x.p99_ms, x.max_ms
        ));
    }
}

fn counts(c: &[Count], n: usize) -> String {
    c.iter()
        .take(n)
        .map(|c| format!("{} ×{}", digest::clip(&c.key, 80), c.count))
        .collect::<Vec<_>>()
        .join(", ")
}
