//! `resolve_incident`: the one way an incident closes — after a passing `verify_recovery` on
//! its own timeline, or with a reason on record why not.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::lifecycle::{Brief, brief, line, text};
use super::{store, timeline, which};
use crate::audit::Record;
use crate::digest::Digest;
use crate::engine::{CallCtx, Ctx, Effect, Tool, ToolError, ToolMeta, Toolset};
use crate::incident::{Resolution, Status};
use crate::tools::metrics::api;

/// `resolve_incident` needs a passing `verify_recovery` on the timeline this recent.
const RECOVERY_WITHIN_SECS: f64 = 30.0 * 60.0;

pub struct ResolveIncident;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveParams {
    /// What fixed it, in a sentence.
    pub summary: String,
    /// Resolve without a passing verify_recovery in the last 30 minutes, and why.
    #[serde(default)]
    pub override_reason: Option<String>,
    #[serde(default)]
    pub incident: Option<String>,
}

impl Tool for ResolveIncident {
    const META: ToolMeta = ToolMeta {
        name: "resolve_incident",
        title: "Resolve the incident",
        description: "Marks the incident resolved — only after verify_recovery passed on its \
            timeline within the last 30 minutes, unless `override_reason` says why not. Use it \
            when the fix held. Returns the incident; generate_postmortem comes next.",
        effect: Effect::Record,
        toolset: Toolset::Incident,
    };
    type Params = ResolveParams;
    type Output = Brief;

    async fn run(_ctx: Arc<Ctx>, _p: ResolveParams) -> Result<Brief, ToolError> {
        Err(ToolError::internal(
            "resolve_incident runs with its call context",
        ))
    }

    async fn run_in(ctx: Arc<Ctx>, call: CallCtx, p: ResolveParams) -> Result<Brief, ToolError> {
        let id = which(&call, &p.incident)?;
        let summary = text("summary", &p.summary, 1000)?;
        let override_reason = p
            .override_reason
            .as_deref()
            .map(|r| text("override_reason", r, 500))
            .transpose()?;
        let verified = verification(&timeline(&ctx, &id)?);
        if verified.is_none() && override_reason.is_none() {
            return Err(ToolError::invalid(
                "override_reason",
                "no verify_recovery passed on this incident's timeline in the last 30 minutes, after its \
                 last change, over every host it changed and with the default error ratio: \
                 run verify_recovery (since = when the fix finished), or give override_reason",
            ));
        }
        let resolution = Resolution {
            at: crate::audit::now_ms(),
            by: call.principal.clone(),
            summary,
            verified_by_seq: verified,
            override_reason,
        };
        let (i, ()) = store(&ctx)?
            .update(&id, |i| {
                if !i.is_open() {
                    return Err(format!("{} is already resolved", i.id));
                }
                i.status = Status::Resolved;
                i.resolution = Some(resolution);
                Ok(())
            })
            .map_err(|e| ToolError::internal(e.to_string()))?
            .map_err(|e| ToolError::invalid("incident", e))?;
        // The session's later calls are no longer this incident's.
        if let Some(s) = &call.session {
            s.unbind(&id);
        }
        Ok(brief(i))
    }

    fn summary(b: &Brief) -> String {
        let how = b.incident.resolution.as_ref().map_or(String::new(), |r| {
            match (r.verified_by_seq, &r.override_reason) {
                (Some(seq), _) => format!("; recovery verified (audit #{seq})"),
                (None, Some(why)) => format!("; NOT verified, override: {why}"),
                _ => String::new(),
            }
        });
        let mut d = Digest::new(format!("resolved {}{how}", line(b)));
        d.next("generate_postmortem");
        d.render()
    }
}

/// The audit sequence number of the verification a resolution may rest on: a passing
/// `verify_recovery` of the last 30 minutes, made after the incident's last change, covering
/// every host a change named, with an error ratio no looser than the default. The caller picks
/// `verify_recovery`'s arguments; these rules keep it from picking an easy pass.
fn verification(entries: &[crate::audit::Entry]) -> Option<u64> {
    let mut changed_hosts: Vec<String> = Vec::new();
    let mut last_change = 0.0_f64;
    // A message to people changes nothing on the fleet: it needs no verification after it.
    let notify = crate::tools::notify::NAMES;
    let mut messages = std::collections::BTreeSet::new();
    for e in entries {
        match &e.record {
            Record::Intent {
                tool, request_id, ..
            } if notify.contains(&tool.as_str()) => {
                messages.insert(request_id.clone());
            }
            Record::Outcome { request_id, .. } if messages.contains(request_id) => {}
            Record::Intent { arguments, .. } => {
                for h in arguments["hosts"].as_array().into_iter().flatten() {
                    if let Some(h) = h.as_str()
                        && !changed_hosts.iter().any(|c| c == h)
                    {
                        changed_hosts.push(h.to_string());
                    }
                }
            }
            Record::Outcome {
                status: crate::audit::Status::Succeeded,
                ..
            } => {
                last_change = last_change.max(api::epoch(&e.ts).unwrap_or(0.0));
            }
            _ => {}
        }
    }
    entries.iter().rev().find_map(|e| {
        let Record::Call {
            tool,
            summary,
            is_error,
            arguments,
            ..
        } = &e.record
        else {
            return None;
        };
        let at = api::epoch(&e.ts)?;
        let hosts: Option<Vec<&str>> = arguments["hosts"]
            .as_array()
            .map(|a| a.iter().filter_map(|h| h.as_str()).collect());
        let covers = hosts.is_none_or(|h| changed_hosts.iter().all(|c| h.contains(&c.as_str())));
        let strict = arguments["max_error_ratio"]
            .as_f64()
            .is_none_or(|r| r <= 0.01);
        let fresh = api::now() - at <= RECOVERY_WITHIN_SECS && at >= last_change;
        (tool == "verify_recovery"
            && !is_error
            && summary.starts_with("RECOVERED")
            && covers
            && strict
            && fresh)
            .then_some(e.seq)
    })
}
