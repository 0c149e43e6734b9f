//! What every connection shares: identity, API key, logs, metrics, rate limiter, bridge.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::args::{Args, Role};
use crate::auth::ApiKey;
use crate::bridge::Bridge;
use crate::fault::Mode;
use crate::lock;
use crate::logging::{Log, LogFiles, js, security_line, service_line};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

pub(crate) struct State {
    pub(crate) role: Role,
    pub(crate) name: String,
    pub(crate) listen: SocketAddr,
    pub(crate) started: Instant,
    pub(crate) start_unix: f64,
    pub(crate) api_key: ApiKey,
    pub(crate) control_file: Option<PathBuf>,
    logs: Mutex<LogFiles>,
    pub(crate) metrics: Mutex<Metrics>,
    limiter: RateLimiter,
    bridge: Mutex<Bridge>,
    next_request: AtomicU64,
    request_prefix: u32,
}

impl State {
    pub(crate) fn new(args: Args) -> Result<Self> {
        let api_key = ApiKey::load(args.api_key_file)?;
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
            api_key,
            control_file: args.control_file,
            logs: Mutex::new(LogFiles::open(args.log_dir)?),
            metrics: Mutex::new(Metrics::default()),
            limiter: RateLimiter::default(),
            bridge: Mutex::new(Bridge::default()),
            next_request: AtomicU64::new(1),
            // Differs between restarts, so request ids from two runs do not collide in the logs.
            request_prefix: (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff,
        })
    }

    pub(crate) fn log(&self, which: Log, line: &str) {
        lock(&self.logs).write(which, line);
    }

    /// A lifecycle line, also echoed to stdout (the service manager's journal).
    pub(crate) fn log_event(&self, level: &str, message: &str, context: &str) {
        let line = service_line(level, message, context);
        self.log(Log::App, &line);
        if lock(&self.logs).to_files() {
            println!("{line}");
        }
    }

    pub(crate) fn log_security(&self, event: &str, detail: &str, client_ip: &IpAddr, extra: &str) {
        self.log(
            Log::Security,
            &security_line(event, detail, client_ip, extra),
        );
    }

    /// SIGHUP: reopen the logs and reread the API key, as logrotate and key rotation expect.
    pub(crate) fn reload(&self) {
        lock(&self.logs).reopen();
        let mut note = String::new();
        if let Err(e) = self.api_key.reload() {
            note = format!(",\"error\":{}", js(&format!("{e:#}")));
        }
        self.log_event(
            "INFO",
            "reloaded",
            &format!("{{\"pid\":{}{note}}}", std::process::id()),
        );
    }

    pub(crate) fn request_id(&self) -> String {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!("req-{:04x}-{n:06}", self.request_prefix)
    }

    /// Counts this request against `ip`'s one-second window.
    pub(crate) fn over_limit(&self, ip: IpAddr) -> bool {
        self.limiter
            .over_limit(ip, self.started.elapsed().as_secs())
    }

    /// Bridge bookkeeping for the current mode; returns (connected, queue_depth, messages_sent).
    pub(crate) fn bridge_status(&self, mode: Mode) -> (bool, u64, u64) {
        lock(&self.bridge).status(mode)
    }

    pub(crate) fn bridge_send(&self, mode: Mode) {
        lock(&self.bridge).send(mode);
    }
}
