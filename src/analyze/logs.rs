//! One log line to a time, a level and a message, whatever wrote it.
//!
//! Two shapes:
//! - **JSON lines**, like the lab's demo service and any winston/pino/zap-style logger:
//!   `{"timestamp":..,"level":..,"message":..,"context":{..}}`. Common aliases are accepted
//!   (`ts`/`time`/`@timestamp`, `msg`, `severity`/`lvl`, pino's numeric levels), and
//!   `context` and `type` are kept for the runbook's analyses (`.context.client_ip`,
//!   `.context.duration`, `SECURITY` events).
//! - **Plain text**: `2026-11-26 10:00:01 ERROR something`, supervisord's `... CRIT ...`,
//!   nginx's `2026/11/26 20:42:25 [error] ...`, logfmt's `ts=... level=warn msg="..."`,
//!   syslog's `Nov 26 20:42:25 host prog[1]: ...`. The level is the first token that names
//!   one: an UPPERCASE word anywhere (`ERROR`, `WARNING`, `CRIT`, ...), or any case when it is
//!   bracketed (`[error]`) or a `level=` value. Lowercase words in a message ("no error") are
//!   not levels.
//!
//! Parsing a line never fails: a line that says nothing recognizable keeps its raw text as the
//! message, with no time and no level.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Severity of a log line, ordered: debug < info < warn < error < critical.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// DEBUG, TRACE.
    Debug,
    /// INFO, NOTICE, LOG.
    Info,
    /// WARN, WARNING.
    Warn,
    /// ERROR, ERR.
    Error,
    /// CRITICAL, CRIT, FATAL, PANIC, ALERT, EMERG.
    Critical,
}

impl Level {
    /// The level a word names, in any case (`error`, `WARNING`, `Crit`, supervisord's `ERRO`).
    pub fn from_word(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "trace" | "trac" | "debug" | "debg" | "dbug" | "blat" => Self::Debug,
            "info" | "information" | "notice" | "log" => Self::Info,
            "warn" | "warning" => Self::Warn,
            "error" | "err" | "erro" => Self::Error,
            "critical" | "crit" | "fatal" | "panic" | "alert" | "emerg" | "emergency" => {
                Self::Critical
            }
            _ => return None,
        })
    }

    /// pino/bunyan numeric levels: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
    fn from_number(level: f64) -> Option<Self> {
        Some(match level as i64 {
            10..=29 => Self::Debug,
            30..=39 => Self::Info,
            40..=49 => Self::Warn,
            50..=59 => Self::Error,
            60..=99 => Self::Critical,
            _ => return None,
        })
    }
}

/// One log line, read.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct LogLine {
    /// When it was written, as the line wrote it; absent when no time was recognized.
    pub timestamp: Option<String>,
    /// Its severity; absent when the line names none.
    pub level: Option<Level>,
    /// The message (for plain text: the line after its time and level).
    pub message: String,
    /// The `type` field of a JSON line (e.g. `SECURITY`); absent otherwise.
    pub kind: Option<String>,
    /// The `context` object of a JSON line (client_ip, duration, ...); absent otherwise.
    pub context: Option<Value>,
    /// The line as it was.
    pub raw: String,
}

/// Read one line.
pub fn parse_line(raw: &str) -> LogLine {
    let line = raw.trim_end_matches(['\r', '\n']);
    let trimmed = line.trim_start();
    if trimmed.starts_with('{')
        && let Ok(Value::Object(object)) = serde_json::from_str::<Value>(trimmed)
    {
        return from_json(line, &object);
    }
    from_text(line)
}

/// True when the line is at error level or worse (ERROR, CRITICAL, FATAL: the runbook's
/// `grep -E "(ERROR|CRITICAL|FATAL)"`).
pub fn is_error(line: &LogLine) -> bool {
    line.level.is_some_and(|level| level >= Level::Error)
}

/// True for a security event: `SECURITY` in the message or in the `type` field (the
/// runbook's `grep "SECURITY"` over the security log).
pub fn is_security_event(line: &LogLine) -> bool {
    line.message.contains("SECURITY")
        || line.kind.as_deref().is_some_and(|k| k.contains("SECURITY"))
}

/// `context.client_ip` of a JSON line (security and rate-limit analyses).
pub fn client_ip(line: &LogLine) -> Option<&str> {
    line.context.as_ref()?.get("client_ip")?.as_str()
}

/// `context.duration` of a JSON line, in the logger's unit (milliseconds for the lab's
/// service); a numeric string is accepted too.
pub fn duration(line: &LogLine) -> Option<f64> {
    match line.context.as_ref()?.get("duration")? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn from_json(raw: &str, object: &Map<String, Value>) -> LogLine {
    let first_text = |keys: &[&str]| {
        keys.iter().find_map(|k| match object.get(*k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let level = ["level", "severity", "lvl", "levelname"]
        .iter()
        .find_map(|k| match object.get(*k)? {
            Value::String(s) => Level::from_word(s.trim()),
            Value::Number(n) => Level::from_number(n.as_f64()?),
            _ => None,
        });
    LogLine {
        timestamp: first_text(&["timestamp", "ts", "time", "@timestamp"]),
        level,
        message: first_text(&["message", "msg"]).unwrap_or_default(),
        kind: first_text(&["type"]),
        context: object.get("context").cloned(),
        raw: raw.to_string(),
    }
}

fn from_text(raw: &str) -> LogLine {
    let (timestamp, after_time) = leading_timestamp(raw);
    let mut level = None;
    let mut message = after_time.trim_start();
    let mut logfmt_time = None;
    let mut logfmt_msg = None;
    for (index, word) in raw.split_whitespace().enumerate() {
        if let Some((key, value)) = word.split_once('=') {
            match key {
                "level" | "lvl" | "severity" if level.is_none() => {
                    level = Level::from_word(value.trim_matches('"'))
                }
                "ts" | "time" if logfmt_time.is_none() => {
                    logfmt_time = Some(value.trim_matches('"'))
                }
                "msg" | "message" if logfmt_msg.is_none() => logfmt_msg = quoted_value(raw, word),
                _ => {}
            }
            continue;
        }
        if level.is_some() {
            continue;
        }
        let bare = word.trim_matches(|c: char| matches!(c, ':' | ',' | ';'));
        let bracketed = bare.strip_prefix('[').and_then(|w| w.strip_suffix(']'));
        let candidate = match bracketed {
            Some(inner) => Level::from_word(inner),
            None if bare.bytes().all(|b| b.is_ascii_uppercase()) => Level::from_word(bare),
            None => None,
        };
        if let Some(found) = candidate {
            level = Some(found);
            // When the level directly follows the time, the message is what comes after it.
            if index <= 3 && message.starts_with(word) {
                message = message[word.len()..].trim_start();
            }
        }
    }
    LogLine {
        timestamp: timestamp.or(logfmt_time).map(str::to_string),
        level,
        message: logfmt_msg.unwrap_or(message).to_string(),
        kind: None,
        context: None,
        raw: raw.to_string(),
    }
}

/// A time at the start of the line: `2026-11-26 10:00:01[,123]`, `2026-11-26T10:00:01Z`,
/// `2026/11/26 20:42:25`, or syslog's `Nov 26 20:42:25`. Returns it and the rest.
fn leading_timestamp(line: &str) -> (Option<&str>, &str) {
    let words: Vec<&str> = line.splitn(4, ' ').collect();
    let is_date = |w: &str| {
        let b = w.as_bytes();
        b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && matches!(b[4], b'-' | b'/')
    };
    let is_clock = |w: &str| {
        let b = w.as_bytes();
        b.len() >= 8 && b[2] == b':' && b[5] == b':' && b[..2].iter().all(u8::is_ascii_digit)
    };
    let end_of = |count: usize| words[..count].iter().map(|w| w.len() + 1).sum::<usize>() - 1;
    match words.as_slice() {
        [date, ..] if is_date(date) && date.len() > 10 && date.as_bytes()[10] == b'T' => {
            (Some(&line[..date.len()]), &line[date.len()..])
        }
        [date, clock, ..] if is_date(date) && is_clock(clock) => {
            (Some(&line[..end_of(2)]), &line[end_of(2)..])
        }
        [month, day, clock, ..]
            if MONTHS.contains(month) && day.parse::<u8>().is_ok() && is_clock(clock) =>
        {
            (Some(&line[..end_of(3)]), &line[end_of(3)..])
        }
        _ => (None, line),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The value of a logfmt pair that starts at `word`, following its quotes across spaces.
fn quoted_value<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let start = line.find(word)? + word.find('=')? + 1;
    let value = &line[start..];
    match value.strip_prefix('"') {
        Some(inner) => {
            let mut escaped = false;
            for (at, ch) in inner.char_indices() {
                match ch {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => return Some(&inner[..at]),
                    _ => escaped = false,
                }
            }
            Some(inner)
        }
        None => value.split_whitespace().next(),
    }
}

#[cfg(test)]
mod tests;
