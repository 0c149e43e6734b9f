//! The timeline writes itself (DESIGN §12): every call of a session bound to an incident —
//! reads included — is appended to the audit log as a `call` line with the incident id, so
//! the model never has to remember to take notes and every timeline line has a sequence
//! number a post-mortem can cite.

use std::time::Duration;

use serde_json::{Map, Value};

use super::call::{CallCtx, Outcome};
use super::{Ctx, ToolError};
use crate::audit::Record;

/// Characters of a result's text kept on the timeline.
const SUMMARY_MAX: usize = 2000;

/// The incident a call belongs to: its session's, or on a new session's first call the one
/// incident open now (when exactly one is).
pub fn incident_for(ctx: &Ctx, call: &CallCtx) -> Option<String> {
    let session = call.session.as_ref()?;
    if let Some(id) = session.bound() {
        return Some(id);
    }
    if !session.first_call() {
        return None;
    }
    let dir = ctx.config.server.state_dir.join("incidents");
    if !dir.exists() {
        return None;
    }
    let open: Vec<String> = crate::incident::Store::open(&ctx.config.server.state_dir)
        .and_then(|s| s.list())
        .ok()?
        .into_iter()
        .filter(|i| i.is_open())
        .map(|i| i.id)
        .collect();
    match open.as_slice() {
        [one] => {
            session.bind(one);
            Some(one.clone())
        }
        _ => None,
    }
}

/// The incident whose timeline a finished call goes on: the incident it names (`record_event`
/// on another incident), else the one the session had when the call began — except that
/// `open_incident` and `join_incident` start the timeline of the incident they bind. A call of
/// an unknown tool is on no timeline (its name is the caller's text, nothing this server did).
pub fn incident_of_call(
    call: &CallCtx,
    tool: &str,
    args: &Map<String, Value>,
    result: &Result<Outcome, ToolError>,
) -> Option<String> {
    if matches!(result, Err(e) if e.code == super::ErrorCode::UnknownTool) {
        return None;
    }
    let named = args
        .get("incident")
        .and_then(Value::as_str)
        .filter(|id| crate::incident::store::valid_id(id));
    if let (Some(id), Ok(_)) = (named, result) {
        return Some(id.to_string());
    }
    if matches!(tool, "open_incident" | "join_incident") {
        return call.session.as_ref().and_then(|s| s.bound());
    }
    call.incident.clone()
}

/// Arguments kept on a timeline line, at most (bigger ones are summarised by size).
const ARGUMENTS_MAX: usize = 8192;

/// Appends the finished call to the audit log under its incident. A timeline line that cannot
/// be written is logged, not fatal: the call itself already happened (mutating calls have
/// their own intent and outcome lines, written before and after they run).
pub async fn append(
    ctx: &Ctx,
    call: &CallCtx,
    incident: String,
    tool: &str,
    arguments: Map<String, Value>,
    result: &Result<Outcome, ToolError>,
    took: Duration,
) {
    let (summary, is_error, structured) = match result {
        Ok(Outcome::Done(out)) => (out.summary.clone(), out.is_error, Some(&out.structured)),
        Ok(Outcome::InputRequired { .. }) => return,
        Err(e) => (e.to_string(), true, None),
    };
    let request_id = structured
        .and_then(|s| s["request_id"].as_str())
        .map_or_else(|| super::hooks::id_with("C-", 8), str::to_string);
    let approval = structured.and_then(|s| {
        let a = s.get("approval")?;
        let id = a["id"].as_str()?;
        let who: Vec<&str> = a["approvers"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let via: Vec<&str> = a["channels"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        Some(format!(
            "{id} approved by {} via {}",
            who.join(", "),
            via.join(", ")
        ))
    });
    let arguments = Value::Object(arguments);
    let size = arguments.to_string().len();
    let arguments = if size > ARGUMENTS_MAX {
        serde_json::json!({"_omitted": format!("{size} bytes of arguments")})
    } else {
        arguments
    };
    let record = Record::Call {
        request_id,
        incident_id: incident,
        tool: tool.to_string(),
        arguments,
        principal: call.principal.clone(),
        summary: crate::digest::clip(&summary, SUMMARY_MAX),
        is_error,
        duration_ms: took.as_millis() as u64,
        approval,
    };
    let log = match ctx.audit() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("timeline: {e}");
            return;
        }
    };
    let written = tokio::task::spawn_blocking(move || log.append(record)).await;
    if !matches!(written, Ok(Ok(_))) {
        tracing::warn!(
            tool,
            "timeline: the call could not be appended to the audit log"
        );
    }
}
