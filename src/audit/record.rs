//! What one line of the audit log records, and the masking of secret values in it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One audited event. Serialized with a `kind` tag (`intent | decision | outcome`) next to the
/// chain fields of its line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// Written before anything runs: a mutating call whose intent cannot be written does not run.
    Intent {
        request_id: String,
        tool: String,
        arguments: Value,
        /// SHA-256 of the plan the approval applies to (absent for calls without a plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan_digest: Option<String>,
        principal: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_id: Option<String>,
        /// The plan as the approver saw it: every step with where it runs, what changes, the
        /// undo.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        plan: Vec<String>,
    },
    /// One decision on the approval record of a request.
    Decision {
        request_id: String,
        approval_id: String,
        decision: Verdict,
        /// Who decided; absent when nobody did (`expired`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approver: Option<String>,
        /// `terminal`, `elicitation`, `input_required`, ...; absent when nobody decided.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// How long the call waited for this decision.
        wait_ms: u64,
        /// The approver's reason, if they gave one (`deny ID --reason ...`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// One call of a session bound to an incident, reads included: the incident's timeline
    /// is these lines (and the intents, decisions and outcomes of the same request ids).
    Call {
        request_id: String,
        incident_id: String,
        tool: String,
        /// As the caller sent them, masked like every record.
        arguments: Value,
        principal: String,
        /// The result's text, as the model read it (bounded).
        summary: String,
        is_error: bool,
        duration_ms: u64,
        /// `A-… approved by alice via terminal`, for a mutating call that was approved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval: Option<String>,
    },
    /// A decision attempt that decided nothing (a press by someone not allowlisted, a replay,
    /// a button not on the record's own message): kept, never counted as a decision.
    Ignored {
        request_id: String,
        approval_id: String,
        /// `telegram`.
        channel: String,
        /// `telegram:111111111`.
        who: String,
        why: String,
    },
    /// Written after the action (or instead of it, when refused).
    Outcome {
        request_id: String,
        status: Status,
        /// The refusal's reason code (`declined`, `busy`, `blast_radius`, ...) when `refused`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        detail: String,
    },
}

/// The decision on an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approved,
    Declined,
    Cancelled,
    Expired,
    Denied,
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed,
    /// Timed out mid-action: it may or may not have taken effect.
    Unknown,
    /// Never ran (see `code`).
    Refused,
}

impl Record {
    pub fn request_id(&self) -> &str {
        match self {
            Record::Intent { request_id, .. }
            | Record::Decision { request_id, .. }
            | Record::Call { request_id, .. }
            | Record::Ignored { request_id, .. }
            | Record::Outcome { request_id, .. } => request_id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Record::Intent { .. } => "intent",
            Record::Decision { .. } => "decision",
            Record::Call { .. } => "call",
            Record::Ignored { .. } => "ignored",
            Record::Outcome { .. } => "outcome",
        }
    }

    /// Masks every free-text field. Enum fields are fixed words and stay as they are, so a
    /// secret that happens to equal one cannot make the record unreadable. A new text field
    /// must be added here (the masking test fills every field with a secret).
    pub(super) fn mask(&mut self, m: &Masker) {
        match self {
            Record::Intent {
                request_id,
                tool,
                arguments,
                plan_digest,
                principal,
                reason,
                incident_id,
                plan,
            } => {
                for s in [request_id, tool, principal] {
                    m.text(s);
                }
                for s in plan.iter_mut() {
                    m.text(s);
                }
                for s in [plan_digest, reason, incident_id].into_iter().flatten() {
                    m.text(s);
                }
                m.value(arguments);
            }
            Record::Decision {
                request_id,
                approval_id,
                approver,
                channel,
                note,
                ..
            } => {
                m.text(request_id);
                m.text(approval_id);
                for s in [approver, channel, note].into_iter().flatten() {
                    m.text(s);
                }
            }
            Record::Ignored {
                request_id,
                approval_id,
                channel,
                who,
                why,
            } => {
                for s in [request_id, approval_id, channel, who, why] {
                    m.text(s);
                }
            }
            Record::Outcome {
                request_id,
                code,
                detail,
                ..
            } => {
                m.text(request_id);
                m.text(detail);
                if let Some(s) = code {
                    m.text(s);
                }
            }
            Record::Call {
                request_id,
                incident_id,
                tool,
                arguments,
                principal,
                summary,
                approval,
                ..
            } => {
                for s in [request_id, incident_id, tool, principal, summary] {
                    m.text(s);
                }
                if let Some(s) = approval {
                    m.text(s);
                }
                m.value(arguments);
            }
        }
    }
}

/// Secret values to remove from records, longest first so a secret containing another is
/// masked whole.
pub(super) struct Masker {
    values: Vec<String>,
}

/// Shorter values are ignored: they would mask ordinary words (same rule as `config::Secrets`).
const MIN_MASKED_LEN: usize = 4;
const MASK: &str = "****";

impl Masker {
    pub(super) fn new(mut values: Vec<String>) -> Self {
        values.retain(|v| v.len() >= MIN_MASKED_LEN);
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Self { values }
    }

    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    fn hit(&self, s: &str) -> bool {
        self.values.iter().any(|v| s.contains(v.as_str()))
    }

    pub(super) fn text(&self, s: &mut String) {
        for v in &self.values {
            if s.contains(v.as_str()) {
                *s = s.replace(v.as_str(), MASK);
            }
        }
    }

    /// Masks strings, object keys and numbers (a PIN passed as a number is still a secret).
    pub(super) fn value(&self, v: &mut Value) {
        match v {
            Value::String(s) => self.text(s),
            Value::Number(n) => {
                let mut s = n.to_string();
                if self.hit(&s) {
                    self.text(&mut s);
                    *v = Value::String(s);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.value(x)),
            Value::Object(map) => {
                for (mut k, mut x) in std::mem::take(map) {
                    self.text(&mut k);
                    self.value(&mut x);
                    map.insert(k, x);
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }
}

/// One line of the log as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// 1-based position in the chain.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// Hex SHA-256 of the previous line's exact bytes (64 zeros for the first line).
    pub prev: String,
    #[serde(flatten)]
    pub record: Record,
    /// Hex SHA-256 of this line's exact bytes (without its newline); computed, never stored.
    #[serde(skip_deserializing, default)]
    pub hash: String,
}

/// The bytes of a line as written: chain fields first, then the record.
#[derive(Serialize)]
pub(super) struct Line<'a> {
    pub seq: u64,
    pub ts: &'a str,
    pub prev: &'a str,
    #[serde(flatten)]
    pub record: &'a Record,
}

/// Longest summary shown by `audit show`, so each entry stays on one line.
const SUMMARY_MAX: usize = 160;

/// One line for `runbook-mcp audit show`: seq, time, kind, request id, summary.
impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summary = match &self.record {
            Record::Intent {
                tool,
                principal,
                plan_digest,
                reason,
                incident_id,
                ..
            } => {
                let mut s = format!("{tool} by {principal}");
                if let Some(d) = plan_digest {
                    s.push_str(&format!(" plan {}", d.get(..12).unwrap_or(d)));
                }
                if let Some(i) = incident_id {
                    s.push_str(&format!(" incident {i}"));
                }
                if let Some(r) = reason {
                    s.push_str(&format!(": {r}"));
                }
                s
            }
            Record::Decision {
                approval_id,
                decision,
                approver,
                channel,
                wait_ms,
                note,
                ..
            } => {
                let mut s = format!("{approval_id} {}", word(decision));
                if let Some(a) = approver {
                    s.push_str(&format!(" by {a}"));
                }
                if let Some(c) = channel {
                    s.push_str(&format!(" via {c}"));
                }
                s.push_str(&format!(" after {:.1} s", *wait_ms as f64 / 1000.0));
                if let Some(n) = note {
                    s.push_str(&format!(": {n}"));
                }
                s
            }
            Record::Ignored {
                approval_id,
                channel,
                who,
                why,
                ..
            } => format!("{approval_id} press by {who} via {channel} ignored: {why}"),
            Record::Call {
                tool,
                principal,
                incident_id,
                is_error,
                duration_ms,
                approval,
                ..
            } => {
                let mut s = format!(
                    "{tool} by {principal} incident {incident_id} {} in {duration_ms} ms",
                    if *is_error { "failed" } else { "ok" }
                );
                if let Some(a) = approval {
                    s.push_str(&format!(" ({a})"));
                }
                s
            }
            Record::Outcome {
                status,
                code,
                detail,
                ..
            } => {
                let mut s = word(status);
                if let Some(c) = code {
                    s.push_str(&format!(" ({c})"));
                }
                if !detail.is_empty() {
                    s.push_str(&format!(": {detail}"));
                }
                s
            }
        };
        write!(
            f,
            "{:>6}  {}  {:<8}  {}  {}",
            self.seq,
            self.ts,
            self.record.kind(),
            self.record.request_id(),
            one_line(&summary, SUMMARY_MAX)
        )
    }
}

/// The serialized word of a unit enum variant (`approved`, `refused`, ...).
fn word<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => "?".into(),
    }
}

/// Control characters (newlines of a multi-line detail) become spaces; long text is cut.
pub(super) fn one_line(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}
