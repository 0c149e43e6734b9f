//! Logs: one JSON object per line, keys in a fixed order (timestamp first) like the real service.
//!
//! Lines are formatted by hand: a `serde_json::Value` object would sort its keys and lose
//! that order.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

#[derive(Clone, Copy)]
pub(crate) enum Log {
    App,
    Security,
}

pub(crate) struct LogFiles {
    dir: Option<PathBuf>,
    app: Option<File>,
    security: Option<File>,
}

impl LogFiles {
    pub(crate) fn open(dir: Option<PathBuf>) -> Result<Self> {
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

    /// True when lines go to files in a log dir rather than to stdout.
    pub(crate) fn to_files(&self) -> bool {
        self.dir.is_some()
    }

    /// Reopen both files (after logrotate or a deleted log); keeps the old handle on failure.
    pub(crate) fn reopen(&mut self) {
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

    pub(crate) fn write(&mut self, which: Log, line: &str) {
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

/// A lifecycle line (`logger: service`); `context` is an already-encoded JSON object.
pub(crate) fn service_line(level: &str, message: &str, context: &str) -> String {
    format!(
        "{{\"timestamp\":{},\"level\":{},\"logger\":\"service\",\"message\":{},\"context\":{context}}}",
        js(&timestamp(SystemTime::now())),
        js(level),
        js(message)
    )
}

/// A security.log line; `extra` is appended inside `context` and must start with a comma.
pub(crate) fn security_line(event: &str, detail: &str, client_ip: &IpAddr, extra: &str) -> String {
    format!(
        "{{\"timestamp\":{},\"level\":\"WARN\",\"type\":\"SECURITY\",\"message\":{},\"event\":{},\"context\":{{\"client_ip\":{}{extra}}}}}",
        js(&timestamp(SystemTime::now())),
        js(&format!("SECURITY {event}{detail}")),
        js(event),
        js(&client_ip.to_string()),
    )
}

/// The per-request application.log line; its level follows the status class.
pub(crate) fn access_line(
    method: &str,
    path: &str,
    status: u16,
    elapsed: Duration,
    client_ip: &IpAddr,
    request_id: &str,
) -> String {
    let level = match status {
        500.. => "ERROR",
        400.. => "WARN",
        _ => "INFO",
    };
    format!(
        "{{\"timestamp\":{},\"level\":\"{level}\",\"logger\":\"http\",\"message\":{},\"context\":{{\"method\":{},\"path\":{},\"status\":{},\"duration\":{:.3},\"client_ip\":{},\"request_id\":{}}}}}",
        js(&timestamp(SystemTime::now())),
        js(&format!("{method} {path} {status}")),
        js(method),
        js(path),
        status,
        elapsed.as_secs_f64() * 1000.0,
        js(&client_ip.to_string()),
        js(request_id)
    )
}

/// A JSON string literal (quoted and escaped).
pub(crate) fn js(s: &str) -> String {
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
