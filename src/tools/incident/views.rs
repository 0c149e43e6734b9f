//! Reading incidents: one with its timeline, the list, classification from symptoms, and the
//! escalation path.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lifecycle::{Brief, Checklist, brief, checklist_of, minutes_since};
use super::{clock, load, store, timeline, which};
use crate::audit::Record;
use crate::digest::Digest;
use crate::engine::{CallCtx, Ctx, Effect, Tool, ToolError, ToolMeta, Toolset};
use crate::incident::{Kind, Severity, tables};

/// Timeline lines shown in `get_incident`'s text (all are in `structuredContent`).
const SHOWN: usize = 25;

pub struct GetIncident;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// Default: this session's incident.
    #[serde(default)]
    pub incident: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Detail {
    #[serde(flatten)]
    pub brief: Brief,
    pub checklist: Checklist,
    /// The calls on its timeline, oldest first.
    pub timeline: Vec<Line>,
}

/// One call on a timeline.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Line {
    /// The audit log's sequence number.
    pub seq: u64,
    pub at: String,
    pub tool: String,
    pub principal: String,
    pub summary: String,
    pub is_error: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

pub(crate) fn lines(ctx: &Ctx, id: &str) -> Result<Vec<Line>, ToolError> {
    Ok(timeline(ctx, id)?
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Call {
                tool,
                principal,
                summary,
                is_error,
                approval,
                ..
            } => Some(Line {
                seq: e.seq,
                at: e.ts,
                tool,
                principal,
                summary,
                is_error,
                approval,
            }),
            _ => None,
        })
        .collect())
}

impl Tool for GetIncident {
    const META: ToolMeta = ToolMeta {
        name: "get_incident",
        title: "Get the incident",
        description: "Shows an incident: severity, deadline, escalation level, checklist, and \
            its timeline — every call made in sessions bound to it, with who, result and \
            approval, each with its audit sequence number. Use it to catch up on an incident.",
        effect: Effect::Read,
        toolset: Toolset::Incident,
    };
    type Params = GetParams;
    type Output = Detail;

    async fn run(_ctx: Arc<Ctx>, _p: GetParams) -> Result<Detail, ToolError> {
        Err(ToolError::internal(
            "get_incident runs with its call context",
        ))
    }

    async fn run_in(ctx: Arc<Ctx>, call: CallCtx, p: GetParams) -> Result<Detail, ToolError> {
        let id = which(&call, &p.incident)?;
        let i = load(&ctx, &id)?;
        Ok(Detail {
            checklist: checklist_of(&i),
            timeline: lines(&ctx, &id)?,
            brief: brief(i),
        })
    }

    fn summary(d: &Detail) -> String {
        let i = &d.brief.incident;
        let done = d
            .checklist
            .items
            .iter()
            .filter(|x| x.done.is_some())
            .count();
        let mut g = Digest::new(format!(
            "{} [{:?} {:?}] {} — open {} min, escalation {}, checklist {done}/{}, {} call(s) on the timeline",
            i.id,
            i.severity,
            i.status,
            i.title,
            d.brief.minutes_open,
            d.brief.escalation,
            d.checklist.items.len(),
            d.timeline.len()
        ));
        let skip = d.timeline.len().saturating_sub(SHOWN);
        for l in d.timeline.iter().skip(skip) {
            let first = l.summary.lines().next().unwrap_or_default();
            g.figure(format!(
                "#{} {} {} {}{}: {}",
                l.seq,
                clock(&l.at),
                l.principal,
                l.tool,
                if l.is_error { " FAILED" } else { "" },
                crate::digest::clip(first, 120)
            ));
        }
        g.render()
    }
}

pub struct ListIncidents;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Include resolved incidents (default: open ones only).
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct List {
    pub incidents: Vec<Brief>,
}

impl Tool for ListIncidents {
    const META: ToolMeta = ToolMeta {
        name: "list_incidents",
        title: "List incidents",
        description: "Lists the open incidents (or all, with `all`), newest first, with \
            severity, status, commander and deadline. Use it to find one to join.",
        effect: Effect::Read,
        toolset: Toolset::Incident,
    };
    type Params = ListParams;
    type Output = List;

    async fn run(ctx: Arc<Ctx>, p: ListParams) -> Result<List, ToolError> {
        let all = store(&ctx)?
            .list()
            .map_err(|e| ToolError::internal(e.to_string()))?;
        Ok(List {
            incidents: all
                .into_iter()
                .filter(|i| p.all || i.is_open())
                .map(brief)
                .collect(),
        })
    }

    fn summary(l: &List) -> String {
        let mut d = Digest::new(format!("{} incident(s)", l.incidents.len()));
        for b in &l.incidents {
            let i = &b.incident;
            d.figure(format!(
                "{} [{:?} {:?}] {} — commander {}",
                i.id, i.severity, i.status, i.title, i.commander
            ));
        }
        d.render()
    }
}

pub struct ClassifyIncident;

/// A symptom the runbook's severity table knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Symptom {
    ServiceDown,
    DataLoss,
    SecurityBreach,
    HighErrorRate,
    SevereLatency,
    ResourceExhaustion,
    DependencyFailure,
    IntermittentErrors,
    ModerateLatency,
    SuspiciousActivity,
    DocumentationError,
    Cosmetic,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyParams {
    /// What is seen; the most severe symptom decides.
    pub symptoms: Vec<Symptom>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Classification {
    pub severity: Severity,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub response_minutes: u64,
    pub why: Vec<String>,
}

impl Tool for ClassifyIncident {
    const META: ToolMeta = ToolMeta {
        name: "classify_incident",
        title: "Classify an incident",
        description: "Maps symptoms (service_down, high_error_rate, severe_latency, \
            resource_exhaustion, …) to the runbook's severity (P0–P3), incident type and \
            response time, with the reason. Use it before open_incident when unsure.",
        effect: Effect::Read,
        toolset: Toolset::Incident,
    };
    type Params = ClassifyParams;
    type Output = Classification;

    async fn run(_ctx: Arc<Ctx>, p: ClassifyParams) -> Result<Classification, ToolError> {
        if p.symptoms.is_empty() {
            return Err(ToolError::invalid("symptoms", "name at least one symptom"));
        }
        let names: Vec<String> = p
            .symptoms
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok()?.as_str().map(str::to_string))
            .collect();
        let matched: Vec<&tables::Rule> = tables::RULES
            .iter()
            .filter(|r| names.iter().any(|n| n == r.symptom))
            .collect();
        let top = matched
            .iter()
            .min_by_key(|r| r.severity)
            .ok_or_else(|| ToolError::internal("a symptom without a rule"))?;
        Ok(Classification {
            severity: top.severity,
            kind: top.kind,
            response_minutes: top.severity.response_minutes(),
            why: matched
                .iter()
                .map(|r| format!("{}: {:?} ({})", r.symptom, r.severity, r.why))
                .collect(),
        })
    }

    fn summary(c: &Classification) -> String {
        format!(
            "{:?} ({}), respond within {} min; {}",
            c.severity,
            c.severity.description(),
            c.response_minutes,
            c.why.join("; ")
        )
    }
}

pub struct GetEscalationPath;

#[derive(Debug, Serialize, JsonSchema)]
pub struct Escalation {
    pub incident: String,
    pub minutes_open: u64,
    /// The level to involve now.
    pub current: String,
    pub levels: Vec<Level>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Level {
    pub level: String,
    pub team: String,
    /// Minutes after opening this level is reached at this severity.
    pub from_minute: u64,
    pub contacts: Vec<String>,
}

impl Tool for GetEscalationPath {
    const META: ToolMeta = ToolMeta {
        name: "get_escalation_path",
        title: "Get the escalation path",
        description: "Says who to involve for the incident now: the runbook's L1 (operations), \
            L2 (engineering), L3 (leadership) by severity and time open, with the configured \
            contacts. Returns the current level and when each level is reached.",
        effect: Effect::Read,
        toolset: Toolset::Incident,
    };
    type Params = GetParams;
    type Output = Escalation;

    async fn run(_ctx: Arc<Ctx>, _p: GetParams) -> Result<Escalation, ToolError> {
        Err(ToolError::internal(
            "get_escalation_path runs with its call context",
        ))
    }

    async fn run_in(ctx: Arc<Ctx>, call: CallCtx, p: GetParams) -> Result<Escalation, ToolError> {
        let id = which(&call, &p.incident)?;
        let i = load(&ctx, &id)?;
        let minutes = minutes_since(&i.opened_at);
        let pace = match i.severity {
            Severity::P0 => Some(1),
            Severity::P1 => Some(2),
            _ => None,
        };
        let levels = tables::LEVELS
            .iter()
            .enumerate()
            .map(|(n, (level, team, from, _))| Level {
                level: level.to_string(),
                team: team.to_string(),
                from_minute: match (pace, n) {
                    (Some(p), _) => from * p,
                    (None, 0) => 0,
                    (None, _) => i.severity.response_minutes(),
                },
                contacts: ctx
                    .config
                    .escalation
                    .get(*level)
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Escalation {
            incident: id,
            minutes_open: minutes,
            current: tables::LEVELS[tables::level_at(i.severity, minutes)]
                .0
                .into(),
            levels,
        })
    }

    fn summary(e: &Escalation) -> String {
        let mut d = Digest::new(format!(
            "{}: open {} min, involve {} now",
            e.incident, e.minutes_open, e.current
        ));
        for l in &e.levels {
            let who = if l.contacts.is_empty() {
                "no contacts configured ([escalation])".to_string()
            } else {
                l.contacts.join(", ")
            };
            d.figure(format!(
                "{} {} from minute {}: {who}",
                l.level, l.team, l.from_minute
            ));
        }
        d.render()
    }
}
