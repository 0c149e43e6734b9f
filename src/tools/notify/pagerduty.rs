//! `page_oncall`: PagerDuty Events API v2 — trigger, acknowledge, resolve — with one dedup key
//! per incident, so a repeat is PagerDuty's to fold (its own idempotency key) and the
//! acknowledge and resolve find the alert the trigger opened.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{draft, incident, summary, tag, text};
use crate::engine::plan::Change;
use crate::engine::runner::RunOutcome;
use crate::engine::send::{Destination, Message};
use crate::engine::{Action, Common, Ctx, Draft, Effect, Facts, ToolError, ToolMeta, Toolset};
use crate::incident::Severity;

/// What the event does to the alert.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// Open (or update) the alert: pages whoever is on call.
    Trigger,
    /// Someone is on it: stops the escalation.
    Acknowledge,
    /// It is over (the same key afterwards opens a new alert).
    Resolve,
}

/// PagerDuty's severities.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PdSeverity {
    Critical,
    Error,
    Warning,
    Info,
}

impl PdSeverity {
    /// The incident's severity as PagerDuty's.
    fn of(s: Severity) -> Self {
        match s {
            Severity::P0 => PdSeverity::Critical,
            Severity::P1 => PdSeverity::Error,
            Severity::P2 => PdSeverity::Warning,
            Severity::P3 => PdSeverity::Info,
        }
    }

    fn name(self) -> &'static str {
        match self {
            PdSeverity::Critical => "critical",
            PdSeverity::Error => "error",
            PdSeverity::Warning => "warning",
            PdSeverity::Info => "info",
        }
    }
}

pub struct PageOncall;

/// Parameters of `page_oncall` (besides `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub action: EventAction,
    /// For `trigger`: what is wrong, at most 1024 characters (default: the incident's
    /// title).
    #[serde(default)]
    pub summary: Option<String>,
    /// For `trigger` (default: from the incident's severity, P0 → critical … P3 → info).
    #[serde(default)]
    pub severity: Option<PdSeverity>,
    /// The incident (default: the session's); its id is the dedup key.
    #[serde(default)]
    pub incident: Option<String>,
    /// Only without an incident: the alert's key (letters, digits, `-_.:/`, at most 255).
    #[serde(default)]
    pub dedup_key: Option<String>,
}

impl Action for PageOncall {
    const META: ToolMeta = ToolMeta {
        name: "page_oncall",
        title: "Page the on-call engineer (PagerDuty)",
        description: "Sends a PagerDuty Events v2 event: `trigger` pages whoever is on call, \
            `acknowledge` stops the escalation, `resolve` closes the alert. One alert per \
            incident (its id is the dedup key), so repeating a trigger does not page twice. \
            Use trigger for a P0/P1 nobody has picked up (see get_escalation_path). Returns \
            PagerDuty's answer and the dedup key.",
        effect: Effect::Notify,
        toolset: Toolset::Notify,
    };
    const HOSTS: bool = false;
    const INCIDENT: bool = true;
    type Params = Params;

    fn plan(ctx: &Ctx, _c: &Common, p: &Params, _f: &Facts) -> Result<Draft, ToolError> {
        let cfg = ctx
            .config
            .notify
            .pagerduty
            .as_ref()
            .ok_or_else(|| ToolError::tool_off("page_oncall", "no [notify.pagerduty]"))?;
        let i = incident(ctx, &p.incident)?;
        let key = match (&i, &p.dedup_key) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid(
                    "dedup_key",
                    "an incident's key is its id: pass one or the other",
                ));
            }
            (Some(i), None) => Some(format!("runbook-mcp/{}", i.id)),
            (None, Some(k)) => {
                let ok = (1..=255).contains(&k.len())
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c));
                if !ok {
                    return Err(ToolError::invalid(
                        "dedup_key",
                        "letters, digits and -_.:/ only, at most 255",
                    ));
                }
                Some(k.clone())
            }
            (None, None) => None,
        };
        let mut body = json!({
            "routing_key": format!("{{secret:{}}}", cfg.routing_key_secret),
            "event_action": p.action,
        });
        if let Some(k) = &key {
            body["dedup_key"] = k.clone().into();
        }
        match p.action {
            EventAction::Trigger => {
                let words = match (&p.summary, &i) {
                    (Some(s), _) => s.clone(),
                    (None, Some(i)) => i.title.clone(),
                    (None, None) => {
                        return Err(ToolError::invalid("summary", "a trigger needs a summary"));
                    }
                };
                text("summary", &words, 1000)?;
                let severity = p
                    .severity
                    .or(i.as_ref().map(|i| PdSeverity::of(i.severity)))
                    .unwrap_or(PdSeverity::Error);
                let mut details = json!({});
                if let Some(i) = &i {
                    details = json!({
                        "incident": i.id, "title": i.title, "severity": i.severity,
                        "commander": i.commander, "respond_by": i.deadline,
                    });
                }
                body["payload"] = json!({
                    "summary": format!("{}{words}", tag(i.as_ref())),
                    "source": "runbook-mcp",
                    "severity": severity.name(),
                    "custom_details": details,
                });
                body["client"] = "runbook-mcp".into();
            }
            EventAction::Acknowledge | EventAction::Resolve => {
                if key.is_none() {
                    return Err(ToolError::invalid(
                        "incident",
                        "acknowledge and resolve need the alert: an incident or a dedup_key",
                    ));
                }
                for (f, v) in [
                    ("summary", p.summary.is_some()),
                    ("severity", p.severity.is_some()),
                ] {
                    if v {
                        return Err(ToolError::invalid(f, "only a trigger takes it"));
                    }
                }
            }
        }
        let verb = match p.action {
            EventAction::Trigger => "trigger",
            EventAction::Acknowledge => "acknowledge",
            EventAction::Resolve => "resolve",
        };
        let m = Message {
            destination: Destination::Pagerduty,
            to: cfg.routing_key_secret.clone(),
            method: "POST".into(),
            url: format!("{}/v2/enqueue", cfg.events_url),
            headers: Vec::new(),
            body,
            fill: [("/routing_key".to_string(), cfg.routing_key_secret.clone())].into(),
            once: None,
            keep: None,
        };
        let shown = key
            .clone()
            .unwrap_or_else(|| "a new key PagerDuty makes".into());
        let mut d = draft(
            vec![m],
            format!("PagerDuty {verb} of the alert with dedup key {shown}"),
        );
        d.changes.push(Change {
            what: format!("PagerDuty alert {shown}"),
            before: "as it is".into(),
            after: verb.into(),
        });
        Ok(d)
    }

    fn summary(_c: &Common, _p: &Params, out: &RunOutcome) -> String {
        summary("page_oncall", out)
    }
}
