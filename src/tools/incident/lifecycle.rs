//! The tools that write incident records: open, join, note, check off, resolve. Each call
//! is on the timeline by itself (the engine writes it); these change only the record.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{load, store, which};
use crate::digest::Digest;
use crate::engine::{CallCtx, Ctx, Effect, Tool, ToolError, ToolMeta, Toolset};
use crate::incident::{Done, Incident, Kind, Severity, Status, tables};
use crate::tools::metrics::api;

pub(crate) fn text(field: &str, v: &str, max: usize) -> Result<String, ToolError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(ToolError::invalid(field, format!("1..={max} characters")));
    }
    crate::screen::check_text(v).map_err(|e| ToolError::invalid(field, e))?;
    Ok(v.to_string())
}

/// A compact view of an incident for the tools' answers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Brief {
    pub incident: Incident,
    /// The runbook's escalation level reached now (`L1`…`L3`).
    pub escalation: String,
    pub minutes_open: u64,
}

pub(crate) fn brief(i: Incident) -> Brief {
    let minutes = minutes_since(&i.opened_at);
    let level = tables::LEVELS[tables::level_at(i.severity, minutes)].0;
    Brief {
        incident: i,
        escalation: level.into(),
        minutes_open: minutes,
    }
}

pub(crate) fn minutes_since(ts: &str) -> u64 {
    api::epoch(ts).map_or(0, |t| ((api::now() - t) / 60.0).max(0.0) as u64)
}

pub(crate) fn line(b: &Brief) -> String {
    let i = &b.incident;
    format!(
        "{} [{:?} {:?}] {} — {}, commander {}, open {} min, respond by {}, escalation {}",
        i.id,
        i.severity,
        i.status,
        i.title,
        serde_json::to_value(i.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        i.commander,
        b.minutes_open,
        i.deadline,
        b.escalation
    )
}

pub struct OpenIncident;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenParams {
    pub title: String,
    /// P0 (outage, 15 min) … P3 (next business day); classify_incident suggests one.
    pub severity: Severity,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Incident commander (default: whoever opens it).
    #[serde(default)]
    pub commander: Option<String>,
}

impl Tool for OpenIncident {
    const META: ToolMeta = ToolMeta {
        name: "open_incident",
        title: "Open an incident",
        description: "Opens an incident record (title, severity P0–P3 with the runbook's \
            response deadline, type, commander) and binds this session to it: from now on every \
            call of this session is on its timeline, written by the server. Use it first when \
            something is wrong. Returns the incident with its deadline.",
        effect: Effect::Record,
        toolset: Toolset::Incident,
    };
    type Params = OpenParams;
    type Output = Brief;

    async fn run(_ctx: Arc<Ctx>, _p: OpenParams) -> Result<Brief, ToolError> {
        Err(ToolError::internal(
            "open_incident runs with its call context",
        ))
    }

    async fn run_in(ctx: Arc<Ctx>, call: CallCtx, p: OpenParams) -> Result<Brief, ToolError> {
        let title = text("title", &p.title, 200)?;
        let commander = match &p.commander {
            Some(c) => text("commander", c, 100)?,
            None => call.principal.clone(),
        };
        let now = api::now();
        let stamp = api::rfc3339(now);
        let day = stamp[..10].replace('-', "");
        let id = crate::engine::hooks::id_with(&format!("INC-{day}-"), 3);
        let incident = Incident {
            id: id.clone(),
            title,
            severity: p.severity,
            kind: p.kind,
            status: Status::Investigating,
            commander,
            opened_by: call.principal.clone(),
            opened_at: crate::audit::now_ms(),
            deadline: api::rfc3339(now + p.severity.response_minutes() as f64 * 60.0),
            members: vec![call.principal.clone()],
            checklist: Default::default(),
            resolution: None,
            detection: detection(&ctx).await,
            links: Default::default(),
        };
        store(&ctx)?
            .create(&incident)
            .map_err(|e| ToolError::internal(format!("incident store: {e}")))?;
        if let Some(s) = &call.session {
            s.bind(&id);
        }
        Ok(brief(incident))
    }

    fn summary(b: &Brief) -> String {
        let mut d = Digest::new(format!("opened {}", line(b)));
        if let Some(det) = &b.incident.detection {
            d.figure(format!(
                "detected {} (firing: {})",
                det.at,
                det.alerts.join(", ")
            ));
        }
        d.ok("this session is bound: every call from now on is on the incident's timeline");
        d.next("get_alerts and run_diagnostics; classify_incident if the severity is unsure");
        d.render()
    }
}

/// The firing alerts now (best effort: no Prometheus or no answer is no detection).
async fn detection(ctx: &Ctx) -> Option<crate::incident::Detection> {
    ctx.config.prometheus.as_ref()?;
    let data = api::get(ctx, "alerts", &[]).await.ok()?;
    let mut firing: Vec<(String, String)> = data["alerts"]
        .as_array()?
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| {
            let name = a["labels"]["alertname"].as_str().unwrap_or("alert");
            let host = a["labels"]["host"]
                .as_str()
                .map(|h| format!(" host={h}"))
                .unwrap_or_default();
            (
                a["activeAt"].as_str().unwrap_or_default().to_string(),
                crate::screen::escape(&format!("{name}{host}")),
            )
        })
        .collect();
    firing.sort();
    let at = firing.first()?.0.clone();
    Some(crate::incident::Detection {
        at,
        alerts: firing.into_iter().map(|f| f.1).collect(),
    })
}

pub struct JoinIncident;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdParams {
    /// The incident id (`INC-…`).
    pub incident: String,
}

impl Tool for JoinIncident {
    const META: ToolMeta = ToolMeta {
        name: "join_incident",
        title: "Join an incident",
        description: "Binds this session to an open incident (list_incidents shows them) and \
            adds you to its members: this session's calls go on that incident's timeline. Use \
            it when you help with an incident someone else opened. Returns the incident.",
        effect: Effect::Record,
        toolset: Toolset::Incident,
    };
    type Params = IdParams;
    type Output = Brief;

    async fn run(_ctx: Arc<Ctx>, _p: IdParams) -> Result<Brief, ToolError> {
        Err(ToolError::internal(
            "join_incident runs with its call context",
        ))
    }

    async fn run_in(ctx: Arc<Ctx>, call: CallCtx, p: IdParams) -> Result<Brief, ToolError> {
        let id = which(&call, &Some(p.incident))?;
        let who = call.principal.clone();
        let (i, ()) = store(&ctx)?
            .update(&id, |i| {
                if !i.is_open() {
                    return Err(format!("{} is resolved", i.id));
                }
                if !i.members.contains(&who) {
                    i.members.push(who);
                }
                Ok(())
            })
            .map_err(|e| ToolError::internal(e.to_string()))?
            .map_err(|e| ToolError::invalid("incident", e))?;
        if let Some(s) = &call.session {
            s.bind(&id);
        }
        Ok(brief(i))
    }

    fn summary(b: &Brief) -> String {
        format!("joined {}", line(b))
    }
}

pub struct RecordEvent;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteParams {
    /// What a person observed or decided, for the timeline (tool calls are recorded anyway).
    pub note: String,
    /// Default: this session's incident.
    #[serde(default)]
    pub incident: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Noted {
    pub incident: String,
    pub note: String,
}

impl Tool for RecordEvent {
    const META: ToolMeta = ToolMeta {
        name: "record_event",
        title: "Record an event",
        description: "Adds a person's note to the incident's timeline (a customer report, a \
            decision, a hand-over). Tool calls need no note: the server records every call of \
            a bound session itself. Returns the note as recorded.",
        effect: Effect::Record,
        toolset: Toolset::Incident,
    };
    type Params = NoteParams;
    type Output = Noted;

    async fn run(_ctx: Arc<Ctx>, _p: NoteParams) -> Result<Noted, ToolError> {
        Err(ToolError::internal(
            "record_event runs with its call context",
        ))
    }

    async fn run_in(ctx: Arc<Ctx>, call: CallCtx, p: NoteParams) -> Result<Noted, ToolError> {
        let id = which(&call, &p.incident)?;
        let note = text("note", &p.note, 2000)?;
        load(&ctx, &id)?;
        // The note is on the timeline as this call's arguments (the engine writes the line).
        Ok(Noted { incident: id, note })
    }

    fn summary(n: &Noted) -> String {
        format!(
            "noted on {}: {}",
            n.incident,
            crate::digest::clip(&n.note, 200)
        )
    }
}

pub struct UpdateChecklist;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckParams {
    /// A checklist item, exactly as the runbook words it (e.g. `Service logs analyzed`).
    pub item: String,
    /// True: done; false: not done after all.
    #[serde(default = "yes")]
    pub done: bool,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub incident: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Checklist {
    pub incident: String,
    /// Every item of the runbook's checklist, in order, with who did it.
    pub items: Vec<ChecklistItem>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ChecklistItem {
    pub phase: String,
    pub item: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done: Option<Done>,
}

pub(crate) fn checklist_of(i: &Incident) -> Checklist {
    let items = tables::CHECKLIST
        .iter()
        .flat_map(|(phase, items)| {
            items.iter().map(move |it| ChecklistItem {
                phase: phase.to_string(),
                item: it.to_string(),
                done: i.checklist.get(*it).cloned(),
            })
        })
        .collect();
    Checklist {
        incident: i.id.clone(),
        items,
    }
}

impl Tool for UpdateChecklist {
    const META: ToolMeta = ToolMeta {
        name: "update_checklist",
        title: "Update the checklist",
        description: "Checks off (or un-checks) one item of the runbook's incident checklist \
            (Detection & Response, Investigation & Mitigation, Resolution & Recovery, \
            Post-Incident) for the incident. Returns the whole checklist with what is still open.",
        effect: Effect::Record,
        toolset: Toolset::Incident,
    };
    type Params = CheckParams;
    type Output = Checklist;

    async fn run(_ctx: Arc<Ctx>, _p: CheckParams) -> Result<Checklist, ToolError> {
        Err(ToolError::internal(
            "update_checklist runs with its call context",
        ))
    }

    async fn run_in(ctx: Arc<Ctx>, call: CallCtx, p: CheckParams) -> Result<Checklist, ToolError> {
        let id = which(&call, &p.incident)?;
        let item = tables::checklist_items()
            .find(|i| i.eq_ignore_ascii_case(p.item.trim()))
            .ok_or_else(|| {
                ToolError::invalid(
                    "item",
                    format!(
                        "not a checklist item; items are: {}",
                        tables::checklist_items().collect::<Vec<_>>().join("; ")
                    ),
                )
            })?;
        let note = p
            .note
            .as_deref()
            .map(|n| text("note", n, 500))
            .transpose()?;
        let done = Done {
            by: call.principal.clone(),
            at: crate::audit::now_ms(),
            note,
        };
        let (i, ()) = store(&ctx)?
            .update(&id, |i| {
                if p.done {
                    i.checklist.insert(item.to_string(), done);
                } else {
                    i.checklist.remove(item);
                }
                Ok(())
            })
            .map_err(|e| ToolError::internal(e.to_string()))?
            .map_err(|e| ToolError::invalid("incident", e))?;
        Ok(checklist_of(&i))
    }

    fn summary(c: &Checklist) -> String {
        let done = c.items.iter().filter(|i| i.done.is_some()).count();
        let mut d = Digest::new(format!(
            "{}: checklist {done}/{} done",
            c.incident,
            c.items.len()
        ));
        let mut phase = "";
        for i in c.items.iter().filter(|i| i.done.is_none()) {
            if i.phase != phase {
                phase = &i.phase;
                d.figure(format!(
                    "open in {}: {}",
                    phase,
                    c.items
                        .iter()
                        .filter(|x| x.phase == phase && x.done.is_none())
                        .map(|x| x.item.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        d.render()
    }
}
