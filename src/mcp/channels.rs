//! The engine's channel traits over rmcp: elicitation (sessions before 2026-07-28), progress
//! notifications, and the `InputRequiredResult` round of 2026-07-28 sessions.

use std::collections::BTreeMap;
use std::time::Duration;

use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema,
    InputRequest, InputRequiredResult, ProgressNotificationParam, ProgressToken,
};
use rmcp::{Peer, RoleServer};

use crate::engine::call::{Answer, Asker, BoxFuture, Progress};

/// The key of our one input request in an `InputRequiredResult`.
pub const APPROVAL_KEY: &str = "approval";

fn schema() -> Option<ElicitationSchema> {
    ElicitationSchema::builder()
        .required_bool("approve")
        .build()
        .ok()
}

fn params(message: &str) -> Option<ElicitRequestParams> {
    Some(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: format!("{message}\nSet `approve` to true to run exactly this plan."),
        requested_schema: schema()?,
    })
}

/// An elicitation answer as a decision: only an explicit `approve: true` approves.
pub fn answer_of(r: &ElicitResult) -> Answer {
    match r.action {
        ElicitationAction::Accept => {
            let yes = r
                .content
                .as_ref()
                .and_then(|c| c.get("approve"))
                .and_then(|v| v.as_bool())
                == Some(true);
            if yes {
                Answer::Approve
            } else {
                Answer::Decline
            }
        }
        ElicitationAction::Cancel => Answer::Cancel,
        // Decline, and anything a newer protocol adds: not an approval.
        _ => Answer::Decline,
    }
}

/// Elicitation over the session's peer.
pub struct ElicitAsker {
    pub peer: Peer<RoleServer>,
    pub timeout: Duration,
}

impl Asker for ElicitAsker {
    fn ask<'a>(&'a self, message: &'a str) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let Some(p) = params(message) else {
                return Answer::Failed("could not build the elicitation schema".into());
            };
            match self
                .peer
                .create_elicitation_with_timeout(p, Some(self.timeout))
                .await
            {
                Ok(r) => answer_of(&r),
                Err(e) => Answer::Failed(e.to_string()),
            }
        })
    }
}

/// `InputRequiredResult` asking for the approval, with the sealed state to echo back.
pub fn input_required(message: &str, request_state: String) -> InputRequiredResult {
    let mut reqs = BTreeMap::new();
    if let Some(p) = params(message) {
        reqs.insert(
            APPROVAL_KEY.to_string(),
            InputRequest::Elicitation(ElicitRequest::new(p)),
        );
    }
    InputRequiredResult::new(Some(reqs), Some(request_state))
}

/// The client's answer in a retried call's `inputResponses`.
pub fn answer_in(responses: Option<&BTreeMap<String, serde_json::Value>>) -> Option<Answer> {
    let v = responses?.get(APPROVAL_KEY)?;
    match serde_json::from_value::<ElicitResult>(v.clone()) {
        Ok(r) => Some(answer_of(&r)),
        Err(e) => Some(Answer::Failed(format!("unreadable input response: {e}"))),
    }
}

/// Progress notifications for one request.
pub struct PeerProgress {
    pub peer: Peer<RoleServer>,
    pub token: ProgressToken,
}

impl Progress for PeerProgress {
    fn report<'a>(&'a self, done: f64, total: Option<f64>, message: String) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut p =
                ProgressNotificationParam::new(self.token.clone(), done).with_message(message);
            if let Some(t) = total {
                p = p.with_total(t);
            }
            // Bounded: after stdin EOF a notification can block until the drain times out.
            let _ =
                tokio::time::timeout(Duration::from_secs(2), self.peer.notify_progress(p)).await;
        })
    }
}
