//! The incident itself (DESIGN §12): open, classify, join, note, check off, escalate, resolve,
//! and the post-mortem — over `crate::incident` records and the timeline the engine writes
//! into the audit log for every call of a bound session.

mod lifecycle;
mod postmortem;
mod resolve;
mod views;

pub use lifecycle::{JoinIncident, OpenIncident, RecordEvent, UpdateChecklist};
pub use postmortem::GeneratePostmortem;
pub use resolve::ResolveIncident;
pub use views::{ClassifyIncident, GetEscalationPath, GetIncident, ListIncidents};

use crate::audit::{Entry, Record};
use crate::engine::{CallCtx, Ctx, ToolError};
use crate::incident::{Incident, Store};

pub(crate) fn store(ctx: &Ctx) -> Result<Store, ToolError> {
    Store::open(&ctx.config.server.state_dir)
        .map_err(|e| ToolError::internal(format!("incident store: {e}")))
}

/// The incident a call names, or the session's.
pub(crate) fn which(call: &CallCtx, named: &Option<String>) -> Result<String, ToolError> {
    if let Some(id) = named {
        if !crate::incident::store::valid_id(id) {
            return Err(ToolError::invalid(
                "incident",
                format!("`{}` is not an incident id (INC-…)", id.escape_debug()),
            ));
        }
        return Ok(id.clone());
    }
    call.session
        .as_ref()
        .and_then(|s| s.bound())
        .or_else(|| call.incident.clone())
        .ok_or_else(|| {
            ToolError::invalid(
                "incident",
                "this session is bound to no incident: pass `incident`, or open_incident / join_incident",
            )
        })
}

pub(crate) fn load(ctx: &Ctx, id: &str) -> Result<Incident, ToolError> {
    store(ctx)?
        .get(id)
        .map_err(|e| ToolError::internal(e.to_string()))?
        .ok_or_else(|| ToolError::invalid("incident", format!("no incident {id}")))
}

/// The incident's lines of the audit log: its calls, and the intents, decisions and
/// outcomes of its mutating calls (by incident id or by a call's request id).
pub(crate) fn timeline(ctx: &Ctx, id: &str) -> Result<Vec<Entry>, ToolError> {
    if !ctx.config.server.state_dir.join("audit.jsonl").exists() {
        return Ok(Vec::new());
    }
    let log = ctx.audit()?;
    let all = log
        .entries()
        .map_err(|e| ToolError::internal(format!("audit log: {e}")))?;
    let mut ids = std::collections::BTreeSet::new();
    for e in &all {
        match &e.record {
            Record::Call {
                incident_id,
                request_id,
                ..
            }
            | Record::Intent {
                incident_id: Some(incident_id),
                request_id,
                ..
            } if incident_id == id => {
                ids.insert(request_id.clone());
            }
            _ => {}
        }
    }
    Ok(all
        .into_iter()
        .filter(|e| match &e.record {
            // A call line is this incident's only by its own incident id.
            Record::Call { incident_id, .. } => incident_id == id,
            r => ids.contains(r.request_id()),
        })
        .collect())
}

/// Text for the post-mortem's Markdown: controls escaped, and every character Markdown gives
/// a meaning backslash-escaped — a title or a reason can never become a heading, a link, a
/// citation or a comment.
pub(crate) fn md(s: &str) -> String {
    let s = crate::screen::escape(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_[]<>#|~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `2026-12-01T17:39:13.123Z` → `17:39:13`.
pub(crate) fn clock(ts: &str) -> &str {
    ts.get(11..19).unwrap_or(ts)
}
