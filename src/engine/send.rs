//! The `send` step: one message to people through a notification API (Slack, PagerDuty,
//! Statuspage, Telegram), done by the engine so the whole delivery is part of the sealed plan.
//! The request is exact — method, URL, headers and body — with every credential a
//! `{secret:NAME}` placeholder that only the executor fills. Here: the per-destination rate
//! limit, retries of 429 and 5xx with backoff, each API's idea of success (Slack's `ok: false`
//! on HTTP 200 is a failure), and — for APIs without an idempotency key — the server's own
//! record, so a retried call whose message was delivered is answered from it instead of sending
//! again.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::executor::Executor;
use super::outcome::StepStatus;
use crate::exec::{ExecError, HttpReply};

/// The APIs a message can go to; each has its own success rule and rate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    Slack,
    Pagerduty,
    Statuspage,
    Telegram,
}

impl Destination {
    pub fn name(self) -> &'static str {
        match self {
            Destination::Slack => "slack",
            Destination::Pagerduty => "pagerduty",
            Destination::Statuspage => "statuspage",
            Destination::Telegram => "telegram",
        }
    }

    /// Least time between two messages to the same `to`: Slack allows about one message per
    /// second per channel, PagerDuty about 120 events a minute per key, Telegram about one per
    /// second per chat; Statuspage is kept at one a second.
    fn spacing(self) -> Duration {
        match self {
            Destination::Pagerduty => Duration::from_millis(500),
            _ => Duration::from_secs(1),
        }
    }
}

/// One request to a notification API, exactly as it is sent, secrets as placeholders.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Message {
    pub destination: Destination,
    /// The channel, chat, page or routing key the rate limit counts per.
    pub to: String,
    /// `POST` or `PATCH`.
    pub method: String,
    /// From configuration only; `{secret:NAME}` in it (Telegram's token) is filled,
    /// percent-encoded, at send time.
    pub url: String,
    /// Header values may hold `{secret:NAME}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// Body strings set from a secret at send time: JSON pointer → secret name. Only these
    /// places are filled, so a caller's text that spells a placeholder stays text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fill: BTreeMap<String, String>,
    /// The message's key in the server's own record, for APIs without an idempotency key: a
    /// message delivered under it is not sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub once: Option<String>,
    /// What of the answer the incident keeps (the Slack thread, the Statuspage incident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<Keep>,
}

/// `link` on `incident` := the answer's value at `from` (a JSON pointer).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Keep {
    pub incident: String,
    pub link: String,
    pub from: String,
}

impl Message {
    /// One line for the approver.
    pub fn line(&self) -> String {
        let once = if self.once.is_some() {
            " (once: not sent again if already delivered)"
        } else {
            ""
        };
        format!(
            "send to {} {}: {} {} {}{once}",
            self.destination.name(),
            self.to,
            self.method,
            self.url,
            crate::digest::clip(&self.body.to_string(), 400)
        )
    }
}

/// `[INC-20261201-ab12 · P0] `: where a message comes from, for whoever reads it.
pub fn tag(i: Option<&crate::incident::Incident>) -> String {
    i.map(|i| format!("[{} · {:?}] ", i.id, i.severity))
        .unwrap_or_default()
}

/// Slack reads `&`, `<` and `>` as markup (`<!channel>` pings everyone, `<url|text>` hides a
/// link): a caller's text shows as typed.
fn slack_escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `chat.postMessage` of `words` to `channel`, tagged with the incident; in the incident's
/// thread there once it has one, else starting it.
pub fn slack_post(
    cfg: &crate::config::Slack,
    i: Option<&crate::incident::Incident>,
    channel: &str,
    words: &str,
) -> Message {
    let link = format!("slack_thread:{channel}");
    let mut body = serde_json::json!({
        "channel": channel,
        "text": format!("{}{}", tag(i), slack_escape(words)),
        "unfurl_links": false,
    });
    let thread = i.and_then(|i| i.links.get(&link));
    if let Some(ts) = thread {
        body["thread_ts"] = Value::String(ts.clone());
    }
    let id = i.map_or("-", |i| i.id.as_str());
    Message {
        destination: Destination::Slack,
        to: channel.to_string(),
        method: "POST".into(),
        url: format!("{}/api/chat.postMessage", cfg.api_base_url),
        headers: vec![(
            "Authorization".into(),
            format!("Bearer {{secret:{}}}", cfg.token_secret),
        )],
        body,
        fill: BTreeMap::new(),
        once: Some(once_key(&["slack", id, channel, words])),
        keep: match (i, thread) {
            (Some(i), None) => Some(Keep {
                incident: i.id.clone(),
                link,
                from: "/ts".into(),
            }),
            _ => None,
        },
    }
}

/// The request `m` describes, its placeholders filled from `secrets`. An unknown or unloaded
/// secret fails here, before anything is sent.
pub fn request(
    m: &Message,
    secrets: &crate::config::Secrets,
    timeout: Duration,
) -> Result<crate::exec::HttpRequest, String> {
    let fill = |text: &str, encode: bool| -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("{secret:") {
            let end = rest[i..]
                .find('}')
                .ok_or("an unclosed {secret: placeholder")?;
            let name = &rest[i + 8..i + end];
            let v = secrets.get(name)?;
            out.push_str(&rest[..i]);
            if encode {
                out.push_str(&crate::config::secrets::encode(v));
            } else {
                out.push_str(v);
            }
            rest = &rest[i + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    };
    let mut body = m.body.clone();
    for (pointer, name) in &m.fill {
        let slot = body
            .pointer_mut(pointer)
            .ok_or_else(|| format!("the body has no {pointer} to fill"))?;
        *slot = Value::String(secrets.get(name)?.to_string());
    }
    let method = reqwest::Method::from_bytes(m.method.as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", m.method))?;
    let mut req = crate::exec::HttpRequest::get(fill(&m.url, true)?, timeout);
    req.method = method;
    for (k, v) in &m.headers {
        req = req.header(k, &fill(v, false)?);
    }
    req.body = Some(serde_json::to_vec(&body).map_err(|e| e.to_string())?);
    Ok(req)
}

/// The key of a message without an idempotency key: the same words to the same place for the
/// same incident are the same message.
pub fn once_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// When every step of `plan` is a keyed message already delivered: one line per message.
pub fn all_delivered(state_dir: &Path, plan: &super::plan::Plan) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    for step in plan.stages.iter().flat_map(|s| &s.steps) {
        let super::plan::Step::Send(m) = step else {
            return None;
        };
        let s = sent(state_dir, m.once.as_deref()?).filter(|s| s.status == "delivered")?;
        lines.push(format!(
            "{} {} at {} by {} ({})",
            m.destination.name(),
            m.to,
            s.at,
            s.request_id,
            s.answer
        ));
    }
    (!lines.is_empty()).then_some(lines)
}

/// What the server's own record says about one keyed message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sent {
    pub at: String,
    pub request_id: String,
    /// `delivered` or `unknown` (the request went out and no answer came).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The answer's identity (Slack `ts`, Statuspage id, Telegram message id).
    #[serde(default)]
    pub answer: String,
}

/// An incident-less message counts as a repeat for this long only (an incident's, always).
const LOOSE_REPEAT_SECS: u64 = 3600;

fn record_path(state_dir: &Path, key: &str) -> Option<PathBuf> {
    key.chars()
        .all(|c| c.is_ascii_hexdigit())
        .then(|| state_dir.join("notify").join(format!("{key}.json")))
}

/// The record of `key`, if it still counts.
pub fn sent(state_dir: &Path, key: &str) -> Option<Sent> {
    let text = std::fs::read_to_string(record_path(state_dir, key)?).ok()?;
    let s: Sent = serde_json::from_str(&text).ok()?;
    if s.incident.is_some() {
        return Some(s);
    }
    let at = humantime::parse_rfc3339_weak(&s.at).ok()?;
    let age = std::time::SystemTime::now()
        .duration_since(at)
        .unwrap_or_default();
    (age < Duration::from_secs(LOOSE_REPEAT_SECS)).then_some(s)
}

fn remember(state_dir: &Path, key: &str, s: &Sent) -> std::io::Result<()> {
    let Some(path) = record_path(state_dir, key) else {
        return Ok(());
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = serde_json::to_vec(s).map_err(std::io::Error::other)?;
    crate::audit::store::replace_private(&path, &bytes)
}

/// The earliest time the next message to `(destination, to)` may go, reserved now.
fn reserve(d: Destination, to: &str) -> Instant {
    static NEXT: LazyLock<Mutex<HashMap<(Destination, String), Instant>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let now = Instant::now();
    let Ok(mut next) = NEXT.lock() else {
        return now;
    };
    let slot = next.entry((d, to.to_string())).or_insert(now);
    let at = (*slot).max(now);
    *slot = at + d.spacing();
    at
}

/// How one attempt went.
enum Verdict {
    Delivered(Value),
    /// Not delivered; worth another attempt after this long.
    Retry(Duration, String),
    Rejected(String),
}

const ATTEMPTS: u32 = 4;
/// The longest `Retry-After` honoured; a longer one fails the step rather than hold the plan.
const MAX_RETRY_AFTER: u64 = 10;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 << attempt.min(4))
}

fn judge(d: Destination, r: &HttpReply, attempt: u32) -> Verdict {
    let json: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    let wait = |hint: Option<u64>| {
        hint.map(|s| Duration::from_secs(s.min(MAX_RETRY_AFTER)))
            .unwrap_or_else(|| backoff(attempt))
    };
    let hint = r.retry_after.or_else(|| {
        json.pointer("/parameters/retry_after")
            .and_then(Value::as_u64)
    });
    if r.status == 429 || r.status >= 500 {
        return Verdict::Retry(wait(hint), format!("HTTP {}", r.status));
    }
    let said = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| json.pointer(k).map(|v| v.to_string()))
            .unwrap_or_else(|| crate::digest::clip(&r.body, 200))
    };
    match d {
        Destination::Slack | Destination::Telegram => {
            if r.status == 200 && json.get("ok") == Some(&Value::Bool(true)) {
                Verdict::Delivered(json)
            } else {
                Verdict::Rejected(format!(
                    "HTTP {}, ok: false: {}",
                    r.status,
                    said(&["/error", "/description"])
                ))
            }
        }
        Destination::Pagerduty | Destination::Statuspage => {
            if (200..300).contains(&r.status) {
                Verdict::Delivered(json)
            } else {
                Verdict::Rejected(format!(
                    "HTTP {}: {}",
                    r.status,
                    said(&["/errors", "/error", "/message"])
                ))
            }
        }
    }
}

/// What a send step reports.
pub struct Delivery {
    pub status: StepStatus,
    pub detail: String,
    /// The API's answer (for the structured result).
    pub answer: Option<String>,
}

/// Delivers `m`: from the record if it was delivered, else through the rate limit and up to
/// four attempts.
pub async fn deliver(
    exec: &dyn Executor,
    m: &Message,
    state_dir: &Path,
    request_id: &str,
) -> Delivery {
    let earlier = m.once.as_deref().and_then(|k| sent(state_dir, k));
    if let Some(s) = earlier.as_ref().filter(|s| s.status == "delivered") {
        return Delivery {
            status: StepStatus::Ok,
            detail: format!(
                "already delivered at {} by {} ({}); not sent again",
                s.at, s.request_id, s.answer
            ),
            answer: None,
        };
    }
    let mut notes = Vec::new();
    if let Some(s) = &earlier {
        notes.push(format!(
            "an earlier attempt ({}, {}) has an unknown outcome: that message may have been sent",
            s.request_id, s.at
        ));
    }
    let mut attempt = 0;
    let verdict = loop {
        tokio::time::sleep_until(reserve(m.destination, &m.to).into()).await;
        attempt += 1;
        let v = match exec.send(m).await {
            Ok(r) => judge(m.destination, &r, attempt),
            // Nothing reached the server: safe to try again.
            Err(ExecError::Unreachable(e)) => Verdict::Retry(backoff(attempt), e),
            Err(e @ ExecError::TimedOut(_)) => {
                break Err(format!(
                    "{e}: the outcome is unknown: the message may have been sent"
                ));
            }
            Err(e) => Verdict::Rejected(e.to_string()),
        };
        match v {
            Verdict::Retry(wait, why) if attempt < ATTEMPTS => {
                notes.push(format!("attempt {attempt}: {why}"));
                tokio::time::sleep(wait).await;
            }
            Verdict::Retry(_, why) => break Ok(Verdict::Rejected(why)),
            other => break Ok(other),
        }
    };
    let record = |status: &str, answer: String| {
        if let Some(k) = &m.once {
            let s = Sent {
                at: crate::audit::now_ms(),
                request_id: request_id.to_string(),
                status: status.into(),
                incident: m.keep.as_ref().map(|k| k.incident.clone()),
                answer,
            };
            if let Err(e) = remember(state_dir, k, &s) {
                tracing::warn!("notify record {k}: {e}");
            }
        }
    };
    let with_notes = |head: String| {
        if notes.is_empty() {
            head
        } else {
            format!("{head} ({})", notes.join("; "))
        }
    };
    match verdict {
        Err(unknown) => {
            record("unknown", String::new());
            Delivery {
                status: StepStatus::Unknown,
                detail: with_notes(unknown),
                answer: None,
            }
        }
        Ok(Verdict::Delivered(answer)) => {
            let id = identity(m.destination, &answer);
            record("delivered", id.clone());
            let kept = keep(state_dir, m, &answer);
            Delivery {
                status: StepStatus::Ok,
                detail: with_notes(format!(
                    "delivered ({id}) after {attempt} attempt{}{kept}",
                    if attempt == 1 { "" } else { "s" }
                )),
                answer: Some(crate::digest::clip(&answer.to_string(), 2000)),
            }
        }
        Ok(Verdict::Rejected(why)) | Ok(Verdict::Retry(_, why)) => Delivery {
            status: StepStatus::Failed,
            detail: with_notes(format!("not delivered: {why}")),
            answer: None,
        },
    }
}

/// The answer's name for what was delivered.
fn identity(d: Destination, a: &Value) -> String {
    let s = |p: &str| {
        a.pointer(p).map(|v| match v {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        })
    };
    match d {
        Destination::Slack => s("/ts")
            .map(|t| format!("ts {t}"))
            .or_else(|| s("/channel/id").map(|c| format!("channel {c}"))),
        Destination::Telegram => s("/result/message_id").map(|i| format!("message {i}")),
        Destination::Statuspage => s("/id").map(|i| format!("incident {i}")),
        Destination::Pagerduty => s("/dedup_key").map(|k| format!("dedup key {k}")),
    }
    .unwrap_or_else(|| "accepted".into())
}

/// Sets the incident's link from the answer; says so (or why not) for the detail.
fn keep(state_dir: &Path, m: &Message, answer: &Value) -> String {
    let Some(k) = &m.keep else {
        return String::new();
    };
    let Some(value) = answer.pointer(&k.from).and_then(Value::as_str) else {
        return format!("; the answer has no {} to keep", k.from);
    };
    let set = crate::incident::store::Store::open(state_dir).and_then(|s| {
        s.update(&k.incident, |i| {
            i.links.insert(k.link.clone(), value.to_string());
            Ok(())
        })
    });
    match set {
        Ok(Ok(_)) => format!("; {} keeps {} = {value}", k.incident, k.link),
        Ok(Err(e)) => format!("; not kept: {e}"),
        Err(e) => format!("; not kept: {e}"),
    }
}
