//! The runbook's four log analyses in one streaming pass over JSON log lines: error patterns
//! (by time bucket and message), security events (by message and client IP), request duration
//! (mean, p50, p95, p99, max — the runbook's jq gives only the mean), and rate-limit offenders.
//!
//! Fast because it does not parse JSON: the demo's (and the real service's) lines have a fixed
//! key order, so each field is found with a precompiled substring search and read up to its
//! closing quote or the end of the number. Memory is bounded by the result: counts in maps with
//! a cap on distinct keys, durations in a log-scale histogram (1% relative precision), never
//! the lines. Chunks may end mid-line; the rest is carried to the next chunk.

use memchr::memmem::{Finder, FinderRev};
use rustc_hash::FxHashMap as HashMap;
use schemars::JsonSchema;
use serde::Serialize;

/// Distinct keys kept per count table; later keys are counted under `(other)`.
const MAX_KEYS: usize = 10_000;
/// Bytes of a key kept (a message is a key): memory stays bounded whatever a line holds.
const MAX_KEY_BYTES: usize = 256;
/// A line longer than this is skipped, not buffered (a file without newlines must not fill
/// memory): it is counted in `long_lines`.
const MAX_LINE: usize = 1 << 20;
/// Histogram: 1% relative width per bucket, from 1 µs up.
const GROWTH: f64 = 1.01;
const SMALLEST_MS: f64 = 0.001;
const BUCKETS: usize = 2400;

/// Which analyses run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Analyses {
    pub errors: bool,
    pub security: bool,
    pub durations: bool,
    pub rate_limits: bool,
}

impl Analyses {
    pub const ALL: Analyses = Analyses {
        errors: true,
        security: true,
        durations: true,
        rate_limits: true,
    };
}

/// The window and the shape of the answer.
#[derive(Debug, Clone)]
pub struct Options {
    pub analyses: Analyses,
    /// Only lines at or after this timestamp (`2026-12-01T17:00:00`, compared as text).
    pub since: Option<String>,
    pub until: Option<String>,
    /// Characters of the timestamp that name its bucket: 13 = hour, 16 = minute.
    pub bucket_chars: usize,
    pub top: usize,
}

/// A streaming scan; feed chunks, merge scans of several files or hosts, then [`Scan::report`].
pub struct Scan {
    opts: Options,
    keys: Keys,
    carry: Vec<u8>,
    /// The carried line was too long and is being skipped to its end.
    skipping: bool,
    long_lines: u64,
    lines: u64,
    in_window: u64,
    /// Timestamps of the first and last line in the window (bytes: no allocation per line).
    first: Option<Vec<u8>>,
    last: Vec<u8>,
    /// Scratch for the `MESSAGE from IP` key.
    pair: Vec<u8>,
    error_levels: Counts,
    error_buckets: Counts,
    error_messages: Counts,
    security_events: Counts,
    security_ips: Counts,
    security_pairs: Counts,
    rate_limit_ips: Counts,
    durations: Histogram,
}

struct Keys {
    timestamp: Finder<'static>,
    level: Finder<'static>,
    message: Finder<'static>,
    /// From the end: the duration sits in the context, near the end of the line.
    duration: FinderRev<'static>,
    client_ip: Finder<'static>,
    security: Finder<'static>,
    rate_limit: Finder<'static>,
}

impl Scan {
    pub fn new(opts: Options) -> Self {
        Self {
            opts,
            keys: Keys {
                timestamp: Finder::new(b"\"timestamp\":\""),
                level: Finder::new(b"\"level\":\""),
                message: Finder::new(b"\"message\":\""),
                duration: FinderRev::new(b"\"duration\":"),
                client_ip: Finder::new(b"\"client_ip\":\""),
                security: Finder::new(b"\"type\":\"SECURITY\""),
                // The key, not the bare word: a client's request path can put the word in a
                // line, never an unescaped `"event":"`.
                rate_limit: Finder::new(b"\"event\":\"RATE_LIMIT_EXCEEDED\""),
            },
            carry: Vec::new(),
            skipping: false,
            long_lines: 0,
            lines: 0,
            in_window: 0,
            first: None,
            last: Vec::new(),
            pair: Vec::new(),
            error_levels: Counts::default(),
            error_buckets: Counts::default(),
            error_messages: Counts::default(),
            security_events: Counts::default(),
            security_ips: Counts::default(),
            security_pairs: Counts::default(),
            rate_limit_ips: Counts::default(),
            durations: Histogram::new(),
        }
    }

    /// Scans every complete line of `chunk` (with the carried start of the first one).
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        if self.skipping {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.skipping = false;
                    rest = &rest[i + 1..];
                }
                None => return,
            }
        }
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&rest[..i]);
                    if let Some(ts) = self.line(&line) {
                        self.last = ts.to_vec();
                    }
                    rest = &rest[i + 1..];
                }
                None => {
                    self.carry_on(rest);
                    return;
                }
            }
        }
        let mut start = 0;
        // The newest timestamp is copied once per chunk, not once per line.
        let mut newest: Option<&[u8]> = None;
        for end in memchr::memchr_iter(b'\n', rest) {
            if let Some(ts) = self.line(&rest[start..end]) {
                newest = Some(ts);
            }
            start = end + 1;
        }
        if let Some(ts) = newest {
            self.last.clear();
            self.last.extend_from_slice(ts);
        }
        self.carry_on(&rest[start..]);
    }

    /// Keeps the start of an unfinished line, unless it is already too long to be a log line.
    fn carry_on(&mut self, part: &[u8]) {
        if self.carry.len() + part.len() > MAX_LINE {
            self.carry.clear();
            self.skipping = true;
            self.long_lines += 1;
        } else {
            self.carry.extend_from_slice(part);
        }
    }

    /// Ends the input: a last line without a newline counts.
    pub fn finish(&mut self) {
        let line = std::mem::take(&mut self.carry);
        if let Some(ts) = self.line(&line) {
            self.last = ts.to_vec();
        }
    }

    /// Scans one line; answers its timestamp when the line is in the window.
    fn line<'l>(&mut self, line: &'l [u8]) -> Option<&'l [u8]> {
        if line.is_empty() {
            return None;
        }
        self.lines += 1;
        // The service writes the timestamp first: no search for it on the common path.
        const TS: &[u8] = b"{\"timestamp\":\"";
        let ts = if line.starts_with(TS) {
            let rest = &line[TS.len()..];
            memchr::memchr(b'"', rest).map(|n| &rest[..n])
        } else {
            field(&self.keys.timestamp, line, b'"')
        };
        if let Some(ts) = ts
            && (self.opts.since.is_some() || self.opts.until.is_some())
        {
            let t19 = &ts[..ts.len().min(19)];
            if self
                .opts
                .since
                .as_deref()
                .is_some_and(|s| t19 < s.as_bytes())
                || self
                    .opts
                    .until
                    .as_deref()
                    .is_some_and(|u| t19 > u.as_bytes())
            {
                return None;
            }
        }
        self.in_window += 1;
        if self.first.is_none() {
            self.first = ts.map(<[u8]>::to_vec);
        }
        let a = self.opts.analyses;
        if a.rate_limits && !a.security && !a.errors && !a.durations {
            // Only offenders wanted: one search decides the line.
            if self.keys.rate_limit.find(line).is_some() {
                let ip = field(&self.keys.client_ip, line, b'"').unwrap_or(b"-");
                self.rate_limit_ips.add(ip);
            }
            return ts;
        }
        // `"type":"SECURITY"` follows the timestamp and level: look only at the line's head.
        let head = &line[..line.len().min(96)];
        if (a.security || a.rate_limits) && self.keys.security.find(head).is_some() {
            self.security_line(line, a);
            return ts;
        }
        if a.errors
            && let Some(level) = level(&self.keys.level, line, ts.map_or(0, <[u8]>::len))
            && matches!(level, b"ERROR" | b"CRITICAL" | b"FATAL")
        {
            self.error_levels.add(level);
            if let Some(ts) = ts {
                self.error_buckets
                    .add(&ts[..ts.len().min(self.opts.bucket_chars)]);
            }
            let msg = field(&self.keys.message, line, b'"').unwrap_or(b"");
            self.error_messages.add(msg);
        }
        if a.durations
            && let Some(at) = self.keys.duration.rfind(line)
        {
            let num = &line[at + 11..];
            let end = num
                .iter()
                .position(|c| !(c.is_ascii_digit() || *c == b'.' || *c == b'-' || *c == b'e'))
                .unwrap_or(num.len());
            if let Some(ms) = std::str::from_utf8(&num[..end])
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
            {
                self.durations.add(ms);
            }
        }
        ts
    }

    fn security_line(&mut self, line: &[u8], a: Analyses) {
        let limited = a.rate_limits && self.keys.rate_limit.find(line).is_some();
        if !a.security && !limited {
            return;
        }
        let ip = field(&self.keys.client_ip, line, b'"').unwrap_or(b"-");
        if a.security {
            let msg = field(&self.keys.message, line, b'"').unwrap_or(b"");
            self.security_events.add(msg);
            self.security_ips.add(ip);
            self.pair.clear();
            self.pair.extend_from_slice(msg);
            self.pair.extend_from_slice(b" from ");
            self.pair.extend_from_slice(ip);
            self.security_pairs.add(&self.pair);
        }
        if limited {
            self.rate_limit_ips.add(ip);
        }
    }

    /// Adds another scan's counts (another file or host).
    pub fn merge(&mut self, o: Scan) {
        self.lines += o.lines;
        self.long_lines += o.long_lines;
        self.in_window += o.in_window;
        self.first = match (self.first.take(), o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if o.last > self.last {
            self.last = o.last;
        }
        self.error_levels.merge(o.error_levels);
        self.error_buckets.merge(o.error_buckets);
        self.error_messages.merge(o.error_messages);
        self.security_events.merge(o.security_events);
        self.security_ips.merge(o.security_ips);
        self.security_pairs.merge(o.security_pairs);
        self.rate_limit_ips.merge(o.rate_limit_ips);
        self.durations.merge(&o.durations);
    }

    pub fn report(&self) -> Report {
        let top = self.opts.top;
        let a = self.opts.analyses;
        Report {
            lines: self.lines,
            long_lines: self.long_lines,
            in_window: self.in_window,
            first: self.first.as_deref().map(text),
            last: (!self.last.is_empty()).then(|| text(&self.last)),
            errors: a.errors.then(|| ErrorReport {
                total: self.error_levels.total(),
                by_level: self.error_levels.top(usize::MAX),
                by_bucket: self.error_buckets.chronological(),
                top_messages: self.error_messages.top(top),
            }),
            security: a.security.then(|| SecurityReport {
                total: self.security_events.total(),
                by_message: self.security_events.top(top),
                top_ips: self.security_ips.top(top),
                top_message_ip: self.security_pairs.top(top),
            }),
            durations: a.durations.then(|| self.durations.report()),
            rate_limits: a.rate_limits.then(|| RateLimitReport {
                total: self.rate_limit_ips.total(),
                top_ips: self.rate_limit_ips.top(top),
            }),
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The level, which the service writes right after the timestamp (`ts_len` bytes of it).
fn level<'a>(key: &Finder<'_>, line: &'a [u8], ts_len: usize) -> Option<&'a [u8]> {
    const AT: &[u8] = b"\",\"level\":\"";
    let after = 14 + ts_len;
    if line.get(after..after + AT.len()) == Some(AT) {
        let rest = &line[after + AT.len()..];
        return memchr::memchr(b'"', rest).map(|n| &rest[..n]);
    }
    field(key, line, b'"')
}

/// The text value of `key` in `line`, up to `end` (a JSON string's closing quote; escaped
/// quotes inside messages end it early, which only shortens a message key).
fn field<'a>(key: &Finder<'_>, line: &'a [u8], end: u8) -> Option<&'a [u8]> {
    let at = key.find(line)? + key.needle().len();
    let rest = &line[at..];
    let len = memchr::memchr(end, rest).unwrap_or(rest.len());
    Some(&rest[..len])
}

/// Counts by key, bounded.
#[derive(Default)]
struct Counts {
    map: HashMap<Vec<u8>, u64>,
    other: u64,
}

impl Counts {
    fn add(&mut self, key: &[u8]) {
        let key = &key[..key.len().min(MAX_KEY_BYTES)];
        if let Some(n) = self.map.get_mut(key) {
            *n += 1;
        } else if self.map.len() < MAX_KEYS {
            self.map.insert(key.to_vec(), 1);
        } else {
            self.other += 1;
        }
    }

    fn merge(&mut self, o: Counts) {
        for (k, n) in o.map {
            let room = self.map.len() < MAX_KEYS;
            match self.map.get_mut(&k) {
                Some(m) => *m += n,
                None if room => {
                    self.map.insert(k, n);
                }
                None => self.other += n,
            }
        }
        self.other += o.other;
    }

    fn total(&self) -> u64 {
        self.map.values().sum::<u64>() + self.other
    }

    /// The `n` largest, ties by key; `(other)` last when keys were dropped.
    fn top(&self, n: usize) -> Vec<Count> {
        let mut v: Vec<(&Vec<u8>, &u64)> = self.map.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut out: Vec<Count> = v.into_iter().take(n).map(count).collect();
        if self.other > 0 {
            out.push(Count {
                key: "(other)".into(),
                count: self.other,
            });
        }
        out
    }

    fn chronological(&self) -> Vec<Count> {
        let mut v: Vec<(&Vec<u8>, &u64)> = self.map.iter().collect();
        v.sort();
        v.into_iter().map(count).collect()
    }
}

fn count((k, n): (&Vec<u8>, &u64)) -> Count {
    Count {
        key: String::from_utf8_lossy(k).into_owned(),
        count: *n,
    }
}

/// Durations in log-scale buckets: percentiles within 1% of the value, whatever the count.
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
    max: f64,
    log_growth: f64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            count: 0,
            sum: 0.0,
            max: 0.0,
            log_growth: GROWTH.ln(),
        }
    }

    fn add(&mut self, ms: f64) {
        if !ms.is_finite() || ms < 0.0 {
            return;
        }
        let i = if ms <= SMALLEST_MS {
            0
        } else {
            (((ms / SMALLEST_MS).ln() / self.log_growth) as usize + 1).min(BUCKETS - 1)
        };
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += ms;
        self.max = self.max.max(ms);
    }

    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
        self.count += o.count;
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }

    /// The upper bound of the bucket holding the nearest-rank `p` quantile, capped at max.
    fn quantile(&self, p: f64) -> f64 {
        let rank = ((p * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = SMALLEST_MS * GROWTH.powi(i as i32);
                return upper.min(self.max);
            }
        }
        self.max
    }

    fn report(&self) -> DurationReport {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        DurationReport {
            count: self.count,
            mean_ms: r(if self.count == 0 {
                0.0
            } else {
                self.sum / self.count as f64
            }),
            p50_ms: r(self.quantile(0.50)),
            p95_ms: r(self.quantile(0.95)),
            p99_ms: r(self.quantile(0.99)),
            max_ms: r(self.max),
        }
    }
}

/// The analyses' result.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Report {
    /// Lines read, and of those in the time window.
    pub lines: u64,
    /// Lines over 1 MiB, skipped (not a log line: a binary or newline-free file).
    pub long_lines: u64,
    pub in_window: u64,
    /// Timestamps of the first and last line in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durations: Option<DurationReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimitReport>,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Count {
    pub key: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ErrorReport {
    pub total: u64,
    pub by_level: Vec<Count>,
    /// Errors per time bucket, oldest first.
    pub by_bucket: Vec<Count>,
    pub top_messages: Vec<Count>,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct SecurityReport {
    pub total: u64,
    pub by_message: Vec<Count>,
    pub top_ips: Vec<Count>,
    /// `MESSAGE from IP`, the runbook's pairing.
    pub top_message_ip: Vec<Count>,
}

/// Request durations in milliseconds (percentiles within 1%).
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct DurationReport {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct RateLimitReport {
    pub total: u64,
    pub top_ips: Vec<Count>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(ts: &str, status: u16, ms: f64) -> String {
        let level = if status >= 500 { "ERROR" } else { "INFO" };
        format!(
            "{{\"timestamp\":\"{ts}\",\"level\":\"{level}\",\"logger\":\"http\",\"message\":\"GET /api {status}\",\"context\":{{\"method\":\"GET\",\"path\":\"/api\",\"status\":{status},\"duration\":{ms:.3},\"client_ip\":\"10.0.0.1\",\"request_id\":\"r-1\"}}}}\n"
        )
    }

    fn security(ts: &str, event: &str, ip: &str) -> String {
        format!(
            "{{\"timestamp\":\"{ts}\",\"level\":\"WARN\",\"type\":\"SECURITY\",\"message\":\"SECURITY {event}\",\"event\":\"{event}\",\"context\":{{\"client_ip\":\"{ip}\"}}}}\n"
        )
    }

    fn opts() -> Options {
        Options {
            analyses: Analyses::ALL,
            since: None,
            until: None,
            bucket_chars: 16,
            top: 3,
        }
    }

    #[test]
    fn the_four_analyses_in_one_pass_whatever_the_chunking() {
        let mut text = String::new();
        for i in 0..100 {
            let ts = format!("2026-12-01T10:{:02}:00.000Z", i % 2);
            text.push_str(&access(
                &ts,
                if i % 10 == 0 { 500 } else { 200 },
                f64::from(i + 1),
            ));
        }
        for (ip, n) in [("10.0.0.9", 5), ("10.0.0.8", 3), ("10.0.0.7", 1)] {
            for _ in 0..n {
                text.push_str(&security(
                    "2026-12-01T10:02:00.000Z",
                    "RATE_LIMIT_EXCEEDED",
                    ip,
                ));
            }
        }
        text.push_str(&security(
            "2026-12-01T10:02:00.000Z",
            "AUTH_FAILED",
            "10.0.0.7",
        ));
        let whole = {
            let mut s = Scan::new(opts());
            s.feed(text.as_bytes());
            s.finish();
            s.report()
        };
        // Chunks that cut lines anywhere give the same answer.
        let mut s = Scan::new(opts());
        for c in text.as_bytes().chunks(7) {
            s.feed(c);
        }
        s.finish();
        assert_eq!(s.report(), whole);

        let e = whole.errors.as_ref().unwrap();
        assert_eq!(e.total, 10);
        assert_eq!(e.by_bucket[0].key, "2026-12-01T10:00");
        assert_eq!(e.by_bucket[0].count, 10, "i % 10 == 0 are all even minutes");
        assert_eq!(e.top_messages[0].key, "GET /api 500");
        let d = whole.durations.as_ref().unwrap();
        assert_eq!((d.count, d.mean_ms, d.max_ms), (100, 50.5, 100.0));
        assert!((d.p95_ms - 95.0).abs() <= 0.95, "{d:?}");
        assert!((d.p50_ms - 50.0).abs() <= 0.5, "{d:?}");
        let r = whole.rate_limits.as_ref().unwrap();
        assert_eq!(r.total, 9);
        assert_eq!(
            r.top_ips
                .iter()
                .map(|c| (c.key.as_str(), c.count))
                .collect::<Vec<_>>(),
            [("10.0.0.9", 5), ("10.0.0.8", 3), ("10.0.0.7", 1)]
        );
        let sec = whole.security.as_ref().unwrap();
        assert_eq!(sec.total, 10);
        assert_eq!(
            sec.top_message_ip[0].key,
            "SECURITY RATE_LIMIT_EXCEEDED from 10.0.0.9"
        );
    }

    #[test]
    fn a_request_path_cannot_make_a_client_a_rate_limit_offender() {
        let line = access("2026-12-01T10:00:00.000Z", 404, 1.0).replace(
            "/api",
            "/RATE_LIMIT_EXCEEDED\\\"event\\\":\\\"RATE_LIMIT_EXCEEDED",
        );
        for only in [true, false] {
            let mut o = opts();
            if only {
                o.analyses = Analyses {
                    rate_limits: true,
                    ..NONE
                };
            }
            let mut s = Scan::new(o);
            s.feed(line.as_bytes());
            s.finish();
            assert_eq!(s.report().rate_limits.unwrap().total, 0, "{line}");
        }
    }

    #[test]
    fn a_line_without_end_is_skipped_not_buffered() {
        let mut s = Scan::new(opts());
        for _ in 0..3 {
            s.feed(&[b'x'; 1 << 20]);
        }
        assert!(s.carry.len() <= MAX_LINE, "{}", s.carry.len());
        s.feed(b"tail of it\n");
        s.feed(access("2026-12-01T10:00:00.000Z", 500, 1.0).as_bytes());
        s.finish();
        let r = s.report();
        assert_eq!((r.lines, r.long_lines), (1, 1));
        assert_eq!(r.errors.unwrap().total, 1);
    }

    const NONE: Analyses = Analyses {
        errors: false,
        security: false,
        durations: false,
        rate_limits: false,
    };

    #[test]
    fn the_window_drops_lines_outside_it_and_merging_adds_up() {
        let text = [
            access("2026-12-01T09:59:59.999Z", 500, 1.0),
            access("2026-12-01T10:00:00.000Z", 500, 2.0),
            access("2026-12-01T11:00:01.000Z", 500, 3.0),
        ]
        .concat();
        let mut o = opts();
        o.since = Some("2026-12-01T10:00:00".into());
        o.until = Some("2026-12-01T11:00:00".into());
        let mut a = Scan::new(o.clone());
        a.feed(text.as_bytes());
        let mut b = Scan::new(o);
        b.feed(text.as_bytes());
        a.merge(b);
        let r = a.report();
        assert_eq!((r.lines, r.in_window), (6, 2));
        assert_eq!(r.errors.unwrap().total, 2);
        assert_eq!(r.first.as_deref(), Some("2026-12-01T10:00:00.000Z"));
    }
}
