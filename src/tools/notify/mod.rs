//! Notifications (effect `notify`): messages to people as planned actions. Each tool plans one
//! or two exact requests (`send` steps) to an API configured under `[notify.*]`; the engine
//! delivers them — rate limit, retries, Slack's `ok: false`, the record that stops a repeat —
//! and the approver sees every request, credentials masked. A message tied to an incident
//! carries its id and severity, and is on its timeline like every call.

mod pagerduty;
mod slack;
mod statuspage;
mod telegram;

pub use pagerduty::PageOncall;
pub use slack::{CreateIncidentChannel, NotifySlack};
pub use statuspage::UpdateStatusPage;
pub use telegram::SendTelegramMessage;

use crate::engine::Action;
use crate::engine::plan::{At, Stage, Step};
use crate::engine::runner::RunOutcome;
use crate::engine::send::{self, Message, tag};
use crate::engine::{Ctx, Draft, ToolError};
use crate::incident::Incident;

/// The notification tools: messages to people, never changes to the fleet (the resolve gate
/// and the post-mortem tell them apart by these names).
pub const NAMES: [&str; 5] = [
    NotifySlack::META.name,
    CreateIncidentChannel::META.name,
    PageOncall::META.name,
    UpdateStatusPage::META.name,
    SendTelegramMessage::META.name,
];

/// The incident a message is about: named (or filled from the session by the engine).
fn incident(ctx: &Ctx, id: &Option<String>) -> Result<Option<Incident>, ToolError> {
    match id {
        None => Ok(None),
        Some(id) => {
            if !crate::incident::store::valid_id(id) {
                return Err(ToolError::invalid(
                    "incident",
                    format!("`{}` is not an incident id (INC-…)", id.escape_debug()),
                ));
            }
            crate::tools::incident::load(ctx, id).map(Some)
        }
    }
}

/// A message's own text: 1..=`max` characters, plain lines only (it reaches people's
/// screens).
fn text(field: &str, v: &str, max: usize) -> Result<(), ToolError> {
    let n = v.chars().count();
    if n == 0 || n > max || v.trim().is_empty() {
        return Err(ToolError::invalid(
            field,
            format!("must be 1..={max} characters (got {n})"),
        ));
    }
    crate::screen::check_message(v).map_err(|e| ToolError::invalid(field, e))
}

/// One stage on this server holding the messages, in order.
fn draft(messages: Vec<Message>, note: String) -> Draft {
    let at = At::server();
    Draft {
        stages: vec![Stage {
            name: at.host.clone(),
            via: at.via.clone(),
            steps: messages.into_iter().map(Step::Send).collect(),
        }],
        notes: vec![note, "a delivered message cannot be unsent".into()],
        ..Draft::default()
    }
}

/// For the approver: messages already delivered (this call sends them no more).
fn already(ctx: &Ctx, d: &Draft) -> Vec<String> {
    d.stages
        .iter()
        .flat_map(|s| &s.steps)
        .filter_map(|s| match s {
            Step::Send(m) => m.once.as_deref().map(|k| (m, k)),
            _ => None,
        })
        .filter_map(|(m, k)| {
            send::sent(&ctx.config.server.state_dir, k).map(|s| match s.status.as_str() {
                "delivered" => format!(
                    "already delivered to {} {} at {} by {}: not sent again",
                    m.destination.name(),
                    m.to,
                    s.at,
                    s.request_id
                ),
                _ => format!(
                    "an earlier attempt ({}) has an unknown outcome: the message may have been sent",
                    s.request_id
                ),
            })
        })
        .collect()
}

/// `tool: delivered (ts 1.2) after 2 attempts` from each send step.
fn summary(tool: &str, out: &RunOutcome) -> String {
    let details: Vec<&str> = out
        .stages
        .iter()
        .flat_map(|s| &s.steps)
        .map(|s| s.detail.as_str())
        .filter(|d| !d.is_empty())
        .collect();
    format!("{tool}: {}; {}", out.line(), details.join("; "))
}
