//! `cctelegram-demo`: a small stand-in for the CCTelegram MCP server and its Telegram bridge.
//!
//! The runbook lab (`lab/lab.sh`) runs it on every host as `cctelegram-mcp` (`--role mcp`)
//! and `cctelegram-bridge` (`--role bridge`), so the runbook's commands have a real service to
//! look at: `/health` behind an API key, Prometheus `/metrics`, JSON application and security
//! logs, and a control file that injects faults (`ok`, `fail`, `slow MS`, `5xx`), read on every
//! request.
//!
//! HTTP/1.1 is hand-rolled on purpose (keep-alive, Content-Length bodies, nothing more): the
//! crate's dependencies stay as they are and a request costs well under a millisecond.
//! `/metrics` is exempt from injected faults and from the rate limiter, so Prometheus keeps
//! seeing the fault while it is active; metrics scrapes are not written to the application log.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

const VERSION: &str = "1.4.2";
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;
const MAX_HEADERS: usize = 100;
/// More requests than this from one client IP within one second get 429.
const RATE_LIMIT_PER_SEC: u32 = 50;
/// Idle keep-alive connections (and half-sent requests) are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Histogram upper bounds in seconds; `+Inf` is implied.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Distinct `path` label values kept in metrics; later paths are counted as `other`.
const MAX_PATH_LABELS: usize = 64;
/// USER_HZ: the unit of utime/stime in /proc/self/stat (100 on every Linux we run on).
const CLOCK_TICKS: f64 = 100.0;

#[derive(Parser, Debug)]
#[command(name = "cctelegram-demo", version = VERSION, about = "Demo CCTelegram MCP server / bridge for the runbook lab")]
struct Args {
    /// Which service to impersonate.
    #[arg(long, value_enum, default_value_t = Role::Mcp)]
    role: Role,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Host label reported in /health (default: the kernel hostname).
    #[arg(long)]
    name: Option<String>,
    /// File holding the API key that /health requires in `X-API-Key` (no file: no key needed).
    #[arg(long)]
    api_key_file: Option<PathBuf>,
    /// Directory for application.log and security.log (default: stdout).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Fault switch read on every request: ok | fail | slow MS | 5xx (absent or empty = ok).
    #[arg(long)]
    control_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Role {
    Mcp,
    Bridge,
}

impl Role {
    fn service(self) -> &'static str {
        match self {
            Role::Mcp => "cctelegram-mcp",
            Role::Bridge => "cctelegram-bridge",
        }
    }
}

/// The fault currently injected through the control file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ok,
    Fail,
    Slow(u64),
    Error5xx,
}

fn read_mode(path: Option<&Path>) -> Mode {
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return Mode::Ok;
    };
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some("fail"), _) => Mode::Fail,
        (Some("5xx"), _) => Mode::Error5xx,
        (Some("slow"), ms) => Mode::Slow(
            ms.and_then(|m| m.parse::<u64>().ok())
                .unwrap_or(1000)
                .min(120_000),
        ),
        _ => Mode::Ok,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Logs: one JSON object per line, keys in a fixed order (timestamp first) like the real service.

#[derive(Clone, Copy)]
enum Log {
    App,
    Security,
}

struct LogFiles {
    dir: Option<PathBuf>,
    app: Option<File>,
    security: Option<File>,
}

impl LogFiles {
    fn open(dir: Option<PathBuf>) -> Result<Self> {
        let mut files = LogFiles {
            dir,
            app: None,
            security: None,
        };
        if let Some(dir) = &files.dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating log dir {}", dir.display()))?;
            files.app = Some(open_append(&dir.join("application.log"))?);
            files.security = Some(open_append(&dir.join("security.log"))?);
        }
        Ok(files)
    }

    /// Reopen both files (after logrotate or a deleted log); keeps the old handle on failure.
    fn reopen(&mut self) {
        if let Some(dir) = self.dir.clone() {
            let _ = std::fs::create_dir_all(&dir);
            if let Ok(f) = open_append(&dir.join("application.log")) {
                self.app = Some(f);
            }
            if let Ok(f) = open_append(&dir.join("security.log")) {
                self.security = Some(f);
            }
        }
    }

    fn write(&mut self, which: Log, line: &str) {
        let file = match which {
            Log::App => self.app.as_mut(),
            Log::Security => self.security.as_mut(),
        };
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        match file {
            // One write(2) per line on an O_APPEND file: lines never interleave.
            Some(f) => {
                let _ = f.write_all(text.as_bytes());
            }
            None => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
            }
        }
    }
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// A JSON string literal (quoted and escaped).
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Metrics {
    /// (method, path, status) -> count
    requests: BTreeMap<(String, String, u16), u64>,
    durations: BTreeMap<String, Histogram>,
    /// Last CPU sample (wall clock, cpu seconds) and the percentage computed from it.
    cpu_sample: Option<(Instant, f64)>,
    cpu_percent: f64,
}

impl Metrics {
    fn path_label(&self, path: &str) -> String {
        if self.durations.contains_key(path)
            || (self.durations.len() < MAX_PATH_LABELS && path.len() <= 80)
        {
            path.to_string()
        } else {
            "other".to_string()
        }
    }

    fn observe(&mut self, method: &str, path: &str, status: u16, secs: f64) {
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

// ---------------------------------------------------------------------------------------------
// Service state

/// The bridge's simulated Telegram side: messages queue up while it is failing.
#[derive(Default)]
struct Bridge {
    messages_sent: u64,
    queue_depth: u64,
}

struct State {
    role: Role,
    name: String,
    listen: SocketAddr,
    started: Instant,
    start_unix: f64,
    key_file: Option<PathBuf>,
    api_key: Mutex<Option<String>>,
    control_file: Option<PathBuf>,
    logs: Mutex<LogFiles>,
    metrics: Mutex<Metrics>,
    /// client ip -> (second since start, requests in that second)
    limiter: Mutex<HashMap<IpAddr, (u64, u32)>>,
    bridge: Mutex<Bridge>,
    next_request: AtomicU64,
    request_prefix: u32,
}

fn read_key(path: &Path) -> Result<String> {
    let key = std::fs::read_to_string(path)
        .with_context(|| format!("reading API key file {}", path.display()))?;
    let key = key.trim().to_string();
    if key.is_empty() {
        bail!("API key file {} is empty", path.display());
    }
    Ok(key)
}

impl State {
    fn new(args: Args) -> Result<Self> {
        let api_key = match &args.api_key_file {
            Some(p) => Some(read_key(p)?),
            None => None,
        };
        let name = args.name.unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".to_string())
        });
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(State {
            role: args.role,
            name,
            listen: args.listen,
            started: Instant::now(),
            start_unix: now.as_secs_f64(),
            key_file: args.api_key_file,
            api_key: Mutex::new(api_key),
            control_file: args.control_file,
            logs: Mutex::new(LogFiles::open(args.log_dir)?),
            metrics: Mutex::new(Metrics::default()),
            limiter: Mutex::new(HashMap::new()),
            bridge: Mutex::new(Bridge::default()),
            next_request: AtomicU64::new(1),
            request_prefix: (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff,
        })
    }

    fn log(&self, which: Log, line: &str) {
        lock(&self.logs).write(which, line);
    }

    /// A lifecycle line, also echoed to stdout (the service manager's journal).
    fn log_event(&self, level: &str, message: &str, context: &str) {
        let line = format!(
            "{{\"timestamp\":{},\"level\":{},\"logger\":\"service\",\"message\":{},\"context\":{context}}}",
            js(&timestamp(SystemTime::now())),
            js(level),
            js(message)
        );
        self.log(Log::App, &line);
        if lock(&self.logs).dir.is_some() {
            println!("{line}");
        }
    }

    fn log_security(&self, event: &str, detail: &str, client_ip: &IpAddr, extra: &str) {
        let line = format!(
            "{{\"timestamp\":{},\"level\":\"WARN\",\"type\":\"SECURITY\",\"message\":{},\"event\":{},\"context\":{{\"client_ip\":{}{extra}}}}}",
            js(&timestamp(SystemTime::now())),
            js(&format!("SECURITY {event}{detail}")),
            js(event),
            js(&client_ip.to_string()),
        );
        self.log(Log::Security, &line);
    }

    fn reload(&self) {
        lock(&self.logs).reopen();
        let mut note = String::new();
        if let Some(path) = &self.key_file {
            match read_key(path) {
                Ok(k) => *lock(&self.api_key) = Some(k),
                Err(e) => note = format!(",\"error\":{}", js(&format!("{e:#}"))),
            }
        }
        self.log_event(
            "INFO",
            "reloaded",
            &format!("{{\"pid\":{}{note}}}", std::process::id()),
        );
    }

    fn request_id(&self) -> String {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!("req-{:04x}-{n:06}", self.request_prefix)
    }

    /// Fixed one-second windows per client IP.
    fn over_limit(&self, ip: IpAddr) -> bool {
        let second = self.started.elapsed().as_secs();
        let mut map = lock(&self.limiter);
        if map.len() > 10_000 {
            map.retain(|_, (s, _)| *s == second);
        }
        let entry = map.entry(ip).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 > RATE_LIMIT_PER_SEC
    }

    fn key_ok(&self, presented: Option<&str>) -> Result<(), &'static str> {
        let key = lock(&self.api_key);
        let Some(key) = key.as_deref() else {
            return Ok(());
        };
        match presented {
            None => Err("missing"),
            Some(p) if constant_time_eq(p.trim().as_bytes(), key.as_bytes()) => Ok(()),
            Some(_) => Err("invalid"),
        }
    }

    /// Bridge bookkeeping for the current mode; returns (connected, queue_depth, messages_sent).
    fn bridge_status(&self, mode: Mode) -> (bool, u64, u64) {
        let mut b = lock(&self.bridge);
        let connected = !matches!(mode, Mode::Fail | Mode::Error5xx);
        if connected && b.queue_depth > 0 {
            b.messages_sent += b.queue_depth;
            b.queue_depth = 0;
        }
        (connected, b.queue_depth, b.messages_sent)
    }

    fn bridge_send(&self, mode: Mode) {
        let (connected, _, _) = self.bridge_status(mode);
        let mut b = lock(&self.bridge);
        if connected {
            b.messages_sent += 1;
        } else {
            b.queue_depth += 1;
        }
    }

    fn render_metrics(&self, mode: Mode) -> String {
        let mut out = String::with_capacity(4096);
        let cpu_total = cpu_seconds();
        let mut m = lock(&self.metrics);
        let now = Instant::now();
        match m.cpu_sample {
            Some((at, cpu)) if now.duration_since(at) >= Duration::from_millis(200) => {
                let wall = now.duration_since(at).as_secs_f64();
                m.cpu_percent = ((cpu_total - cpu) / wall * 100.0).max(0.0);
                m.cpu_sample = Some((now, cpu_total));
            }
            Some(_) => {}
            None => {
                let up = self.started.elapsed().as_secs_f64().max(0.001);
                m.cpu_percent = cpu_total / up * 100.0;
                m.cpu_sample = Some((now, cpu_total));
            }
        }

        let _ = writeln!(
            out,
            "# HELP http_requests_total Total HTTP requests by method, path and status.\n# TYPE http_requests_total counter"
        );
        for ((method, path, status), n) in &m.requests {
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
        for (path, h) in &m.durations {
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
        let cpu_percent = m.cpu_percent;
        drop(m);
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
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {:.3}",
            self.start_unix
        );
        let _ = writeln!(
            out,
            "# HELP cctelegram_info Service identity.\n# TYPE cctelegram_info gauge\ncctelegram_info{{service=\"{}\",host=\"{}\",version=\"{VERSION}\"}} 1",
            self.role.service(),
            escape_label(&self.name)
        );
        if self.role == Role::Bridge {
            let (connected, queue, sent) = self.bridge_status(mode);
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
        out
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct Request {
    method: String,
    path: String,
    http11: bool,
    headers: Vec<(String, String)>,
    content_length: usize,
    chunked: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn keep_alive(&self) -> bool {
        let tokens = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let has = |t: &str| tokens.split(',').any(|x| x.trim() == t);
        if self.http11 {
            !has("close")
        } else {
            has("keep-alive")
        }
    }
}

/// End of the request head (index after the blank line); accepts CRLF or bare LF.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
    {
        return None;
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return None,
    };
    let mut req = Request {
        method: method.to_string(),
        path: target.split(['?', '#']).next().unwrap_or("/").to_string(),
        http11,
        headers: Vec::new(),
        content_length: 0,
        chunked: false,
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        if name.is_empty() || name.contains(' ') || req.headers.len() >= MAX_HEADERS {
            return None;
        }
        let name = name.to_ascii_lowercase();
        let value = value.trim().to_string();
        match name.as_str() {
            "content-length" => req.content_length = value.parse().ok()?,
            "transfer-encoding" => req.chunked = true,
            _ => {}
        }
        req.headers.push((name, value));
    }
    Some(req)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
    extra: Vec<(&'static str, String)>,
}

impl Response {
    fn json(status: u16, body: String) -> Self {
        Response {
            status,
            content_type: "application/json",
            body,
            extra: Vec::new(),
        }
    }

    fn encode(&self, head_only: bool, keep_alive: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nServer: cctelegram-demo/{VERSION}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        for (k, v) in &self.extra {
            let _ = write!(out, "{k}: {v}\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

fn error_response(status: u16, message: &str) -> Vec<u8> {
    let body = format!("{{\"error\":{},\"status\":{status}}}", js(message));
    Response::json(status, body).encode(false, false)
}

/// The client as the service sees it: the peer, or the address nginx on the same host
/// passed in X-Real-IP / X-Forwarded-For (trusted from loopback only).
fn client_ip(peer: SocketAddr, req: &Request) -> IpAddr {
    if peer.ip().is_loopback() {
        let forwarded = req.header("x-real-ip").or_else(|| {
            req.header("x-forwarded-for")
                .and_then(|v| v.split(',').next())
        });
        if let Some(ip) = forwarded.and_then(|v| v.trim().parse().ok()) {
            return ip;
        }
    }
    peer.ip()
}

fn method_label(method: &str) -> &str {
    match method {
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" => method,
        _ => "OTHER",
    }
}

async fn respond(state: &State, req: &Request, peer: SocketAddr) -> Response {
    let started = Instant::now();
    let mode = read_mode(state.control_file.as_deref());
    let ip = client_ip(peer, req);
    let request_id = req
        .header("x-request-id")
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| state.request_id());
    let path = req.path.as_str();
    let read_only = matches!(req.method.as_str(), "GET" | "HEAD");

    if path == "/metrics" {
        let mut resp = if read_only {
            Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: state.render_metrics(mode),
                extra: Vec::new(),
            }
        } else {
            method_not_allowed()
        };
        let secs = started.elapsed().as_secs_f64();
        lock(&state.metrics).observe(method_label(&req.method), path, resp.status, secs);
        resp.extra.push(("X-Request-Id", request_id));
        return resp;
    }

    let mut resp = if state.over_limit(ip) {
        state.log_security(
            "RATE_LIMIT_EXCEEDED",
            "",
            &ip,
            &format!(
                ",\"path\":{},\"limit_per_second\":{RATE_LIMIT_PER_SEC}",
                js(path)
            ),
        );
        let mut r = Response::json(
            429,
            "{\"error\":\"rate_limited\",\"message\":\"too many requests\"}".to_string(),
        );
        r.extra.push(("Retry-After", "1".to_string()));
        r
    } else if path == "/health" {
        health(state, req, mode, &ip, &request_id)
    } else if mode == Mode::Error5xx {
        Response::json(
            500,
            format!(
                "{{\"error\":\"internal_error\",\"message\":\"injected fault (5xx mode)\",\"request_id\":{}}}",
                js(&request_id)
            ),
        )
    } else {
        if state.role == Role::Bridge && !read_only {
            state.bridge_send(mode);
        }
        Response::json(
            200,
            format!(
                "{{\"ok\":true,\"service\":{},\"host\":{},\"method\":{},\"path\":{},\"request_id\":{}}}",
                js(state.role.service()),
                js(&state.name),
                js(&req.method),
                js(path),
                js(&request_id)
            ),
        )
    };

    if let Mode::Slow(ms) = mode {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let elapsed = started.elapsed();
    lock(&state.metrics).observe(
        method_label(&req.method),
        path,
        resp.status,
        elapsed.as_secs_f64(),
    );
    let level = match resp.status {
        500.. => "ERROR",
        400.. => "WARN",
        _ => "INFO",
    };
    let line = format!(
        "{{\"timestamp\":{},\"level\":\"{level}\",\"logger\":\"http\",\"message\":{},\"context\":{{\"method\":{},\"path\":{},\"status\":{},\"duration\":{:.3},\"client_ip\":{},\"request_id\":{}}}}}",
        js(&timestamp(SystemTime::now())),
        js(&format!("{} {path} {}", req.method, resp.status)),
        js(&req.method),
        js(path),
        resp.status,
        elapsed.as_secs_f64() * 1000.0,
        js(&ip.to_string()),
        js(&request_id)
    );
    state.log(Log::App, &line);
    resp.extra.push(("X-Request-Id", request_id));
    resp
}

fn method_not_allowed() -> Response {
    let mut r = Response::json(405, "{\"error\":\"method_not_allowed\"}".to_string());
    r.extra.push(("Allow", "GET, HEAD".to_string()));
    r
}

fn health(state: &State, req: &Request, mode: Mode, ip: &IpAddr, request_id: &str) -> Response {
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        return method_not_allowed();
    }
    if let Err(reason) = state.key_ok(req.header("x-api-key")) {
        state.log_security(
            "AUTHENTICATION_FAILED",
            &format!(" {reason} API key"),
            ip,
            &format!(
                ",\"path\":\"/health\",\"reason\":{},\"request_id\":{}",
                js(reason),
                js(request_id)
            ),
        );
        let mut r = Response::json(
            401,
            "{\"error\":\"unauthorized\",\"message\":\"missing or invalid X-API-Key\"}".to_string(),
        );
        r.extra.push((
            "WWW-Authenticate",
            "ApiKey header=\"X-API-Key\"".to_string(),
        ));
        return r;
    }
    let healthy = matches!(mode, Mode::Ok | Mode::Slow(_));
    let mut body = format!(
        "{{\"status\":{},\"service\":{},\"host\":{},\"version\":\"{VERSION}\",\"uptime_seconds\":{}",
        js(if healthy { "healthy" } else { "unhealthy" }),
        js(state.role.service()),
        js(&state.name),
        state.started.elapsed().as_secs()
    );
    if state.role == Role::Bridge {
        let (connected, queue, sent) = state.bridge_status(mode);
        let _ = write!(
            body,
            ",\"telegram\":{},\"queue_depth\":{queue},\"messages_sent\":{sent}",
            js(if connected {
                "connected"
            } else {
                "disconnected"
            })
        );
    }
    match mode {
        Mode::Fail => body.push_str(",\"error\":\"injected fault (fail mode)\""),
        Mode::Error5xx => body.push_str(",\"error\":\"injected fault (5xx mode)\""),
        _ => {}
    }
    body.push('}');
    let mut r = Response::json(if healthy { 200 } else { 503 }, body);
    r.extra.push(("Cache-Control", "no-store".to_string()));
    r
}

/// One connection: requests in order (keep-alive and pipelining), closed on any error.
async fn serve_connection(state: Arc<State>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    loop {
        let end = loop {
            match head_end(&buf) {
                Some(end) if end <= MAX_HEAD => break end,
                None if buf.len() <= MAX_HEAD => {}
                _ => {
                    let _ = stream
                        .write_all(&error_response(431, "request head too large"))
                        .await;
                    return;
                }
            }
            if !read_more(&mut stream, &mut buf).await {
                return;
            }
        };
        let Some(req) = parse_head(&buf[..end]) else {
            let _ = stream.write_all(&error_response(400, "bad request")).await;
            return;
        };
        buf.drain(..end);
        if req.chunked {
            let _ = stream
                .write_all(&error_response(411, "chunked bodies are not supported"))
                .await;
            return;
        }
        if req.content_length > MAX_BODY {
            let _ = stream
                .write_all(&error_response(413, "body too large"))
                .await;
            return;
        }
        while buf.len() < req.content_length {
            if !read_more(&mut stream, &mut buf).await {
                return;
            }
        }
        buf.drain(..req.content_length);

        let keep_alive = req.keep_alive();
        let resp = respond(&state, &req, peer).await;
        let bytes = resp.encode(req.method == "HEAD", keep_alive);
        if stream.write_all(&bytes).await.is_err() || !keep_alive {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Reads more bytes into `buf`; false on EOF, error or idle timeout.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut chunk)).await {
        Ok(Ok(n)) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let state = Arc::new(State::new(args)?);
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;

    let identity = format!(
        "{{\"service\":{},\"host\":{},\"listen\":{},\"version\":\"{VERSION}\",\"pid\":{}}}",
        js(state.role.service()),
        js(&state.name),
        js(&state.listen.to_string()),
        std::process::id()
    );
    state.log_event("INFO", "service started", &identity);

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(serve_connection(state.clone(), stream, peer));
                }
                // EMFILE and friends: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            _ = hup.recv() => state.reload(),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    state.log_event("INFO", "service stopping", &identity);
    std::process::exit(0);
}
