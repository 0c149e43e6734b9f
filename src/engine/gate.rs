//! The approval gate: every mutating call passes here. In order — the sealed plan with its
//! blast-radius checks (`seal.rs`), policy for the call's effect, dry run, the audit intent, the
//! busy lock per target, the approval of exactly this plan (`ask.rs`), and only then the sealed
//! steps (`runner.rs`), whose outcome is audited whatever happens to the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};

use super::action::{Action, ActionResult, ActionStatus, ApprovalInfo};
use super::ask::{Obtained, obtain};
use super::call::{CallCtx, Outcome};
use super::{Ctx, Effect, Refusal, ToolError, ToolMeta, ToolOutput, guards, hooks, runner, seal};
use crate::audit::Status;
use crate::config::Rule;

/// The policy rule for a tool: its own, else its toolset's, else by effect.
pub fn rule_for(ctx: &Ctx, meta: &ToolMeta) -> Rule {
    rule_for_call(ctx, meta, meta.effect)
}

/// The rule for one call of the tool, whose effect may differ from the tool's.
fn rule_for_call(ctx: &Ctx, meta: &ToolMeta, effect: Effect) -> Rule {
    let (name, toolset) = (meta.name, meta.toolset.name());
    let p = &ctx.config.policy;
    let rule = p
        .tools
        .get(name)
        .or_else(|| p.toolsets.get(toolset))
        .copied();
    match (rule, effect) {
        (Some(r), _) => r,
        (None, Effect::Read | Effect::Record) => Rule::Allow,
        (None, _) => Rule::Approve,
    }
}

pub async fn run<A: Action>(
    ctx: Arc<Ctx>,
    call: CallCtx,
    raw: Map<String, Value>,
) -> Result<Outcome, ToolError> {
    let meta = A::META;
    let mut raw = raw;
    if A::INCIDENT
        && !raw.contains_key("incident")
        && let Some(id) = &call.incident
    {
        raw.insert("incident".into(), Value::String(id.clone()));
    }
    let sealed = seal::seal::<A>(&ctx, raw).await?;
    let mut rule = rule_for_call(&ctx, &meta, sealed.effect);
    // A call that escalates to destructive is never `allow`; nor is an ad-hoc command that is
    // not a read (a toolset-wide `allow` must not become arbitrary command execution).
    if rule == Rule::Allow
        && (sealed.effect == Effect::Destructive
            || (A::EFFECT_PER_CALL && !sealed.effect.is_read_only()))
    {
        rule = Rule::Approve;
    }
    if rule == Rule::Deny {
        return Err(ToolError::refused(
            Refusal::Denied,
            format!("policy denies `{}`.", meta.name),
        ));
    }
    if sealed.common.dry_run {
        return Ok(unrun(
            sealed,
            ActionStatus::DryRun,
            "dry run: nothing ran, no approval was asked".into(),
        ));
    }
    if let Some(lines) = super::send::all_delivered(&ctx.config.server.state_dir, &sealed.plan) {
        let summary = format!(
            "{}: already delivered, not sent again: {}",
            meta.name,
            lines.join("; ")
        );
        return Ok(unrun(sealed, ActionStatus::AlreadyDelivered, summary));
    }

    // From here on every call has an audit story: intent, decisions, outcome.
    let request_id = hooks::request_id();
    let reason = sealed.common.reason.clone();
    hooks::intent(
        &ctx,
        &request_id,
        &sealed.plan,
        &call.principal,
        &reason,
        call.incident.as_deref(),
    )
    .await?;
    let res = approve_and_run::<A>(&ctx, &call, sealed, rule, &request_id).await;
    let res = match res {
        Ok(o) => Ok(o),
        // Execution started: its task wrote the outcome, with what ran.
        Err(Failure {
            error,
            audited: true,
        }) => return Err(error),
        Err(Failure { error, .. }) => Err(error),
    };
    match &res {
        Ok(Outcome::InputRequired { .. }) => {
            hooks::outcome(
                &ctx,
                &request_id,
                Status::Refused,
                Some("input_required"),
                "asked the client for approval".into(),
            )
            .await;
        }
        Err(e) => {
            let code = e.refusal.map(|r| r.code());
            let status = if code.is_some() {
                Status::Refused
            } else {
                Status::Failed
            };
            hooks::outcome(&ctx, &request_id, status, code, e.message.clone()).await;
        }
        Ok(Outcome::Done(_)) => {} // written by the execution task itself
    }
    res
}

/// Why a call failed, and whether its outcome is already in the audit log (the execution task
/// writes it once the plan started).
struct Failure {
    error: ToolError,
    audited: bool,
}

impl From<ToolError> for Failure {
    fn from(error: ToolError) -> Self {
        Self {
            error,
            audited: false,
        }
    }
}

async fn approve_and_run<A: Action>(
    ctx: &Arc<Ctx>,
    call: &CallCtx,
    sealed: seal::Sealed<A>,
    rule: Rule,
    request_id: &str,
) -> Result<Outcome, Failure> {
    let seal::Sealed {
        common,
        params,
        effect,
        plan,
        draft,
        current_health,
    } = sealed;
    // Busy before anything is consumed: a target another action holds refuses now, and the
    // approval stays for when it is free.
    let _locks = guards::lock_targets(
        &ctx.config.server.state_dir,
        &draft.targets,
        &plan.tool,
        request_id,
    )?;
    let approval = match rule {
        Rule::Allow => None,
        _ => match obtain(
            ctx,
            call,
            &plan,
            &current_health,
            effect,
            &common.reason,
            &draft.confirm_text,
            request_id,
        )
        .await?
        {
            Obtained::Approved(r) => Some(*r),
            Obtained::Ask(outcome) => return Ok(outcome),
        },
    };

    // Execution runs in its own task: if the caller goes away, the stage in flight finishes,
    // nothing further starts, and the outcome still reaches the audit log.
    let stopped = Arc::new(AtomicBool::new(false));
    let state_dir = ctx.config.server.state_dir.clone();
    let rid_abort = request_id.to_string();
    let control = runner::Control {
        stopped: stopped.clone(),
        progress: call.progress.clone(),
        before_stage: Box::new(move || {
            guards::frozen(&state_dir)
                .map(|f| format!("a change freeze began ({f})"))
                .or_else(|| guards::aborted(&state_dir, &rid_abort))
        }),
        request_id: request_id.to_string(),
        state_dir: ctx.config.server.state_dir.clone(),
    };
    let task_ctx = ctx.clone();
    let rid = request_id.to_string();
    let sealed_plan = plan.clone();
    let task = tokio::spawn(async move {
        let out = runner::run(task_ctx.exec.as_ref(), &sealed_plan, &control).await;
        let summary = A::summary(&common, &params, &out);
        let status = if out.ok {
            Status::Succeeded
        } else if out.unknown() {
            Status::Unknown
        } else {
            Status::Failed
        };
        // Written here, whatever happens to the caller; a stale plan is a refusal.
        let (status, code) = match &out.stale {
            Some(_) => (Status::Refused, Some(Refusal::Stale.code())),
            None => (status, None),
        };
        let detail = format!("{summary} | ran: {}", out.ran());
        hooks::outcome(&task_ctx, &rid, status, code, detail).await;
        (out, summary)
    });
    let _stop_on_drop = StopOnDrop(stopped);
    let (res, summary) = task
        .await
        .map_err(|e| ToolError::internal(format!("action task: {e}")))?;
    if let Some(what) = &res.stale {
        return Err(Failure {
            error: ToolError::refused(
                Refusal::Stale,
                format!(
                    "the fleet changed since this plan was approved: {what}. Nothing of the plan \
                     ran after that check. Read the state again and call with a new plan (it needs \
                     a new approval)."
                ),
            ),
            audited: true,
        });
    }
    let failed = !res.ok;
    if let Some(a) = &approval {
        mirror(ctx, call, A::META.name, a, &summary, request_id);
    }
    let out = ActionResult {
        status: ActionStatus::Done,
        plan,
        current_health,
        approval: approval.map(|r| ApprovalInfo {
            id: r.id.clone(),
            approvers: r.approvers().iter().map(|s| s.to_string()).collect(),
            channels: r
                .decisions
                .iter()
                .filter(|d| d.approved)
                .map(|d| d.channel.clone())
                .collect(),
        }),
        request_id: Some(request_id.to_string()),
        result: Some(res),
    };
    Ok(Outcome::Done(finish(out, summary, failed)))
}

/// The answer of a call that runs nothing and asks no one (a dry run, a delivered message).
fn unrun<A: Action>(sealed: seal::Sealed<A>, status: ActionStatus, summary: String) -> Outcome {
    let out = ActionResult {
        status,
        plan: sealed.plan,
        current_health: sealed.current_health,
        approval: None,
        request_id: None,
        result: None,
    };
    Outcome::Done(finish(out, summary, false))
}

/// `[notify.slack] mirror_actions`: an approved action of a bound session goes to its
/// incident's Slack thread, in the background (the answer never waits for Slack). The
/// configuration is the consent: nothing but the action's own summary is sent.
fn mirror(
    ctx: &Arc<Ctx>,
    call: &CallCtx,
    tool: &str,
    approval: &super::approval::ApprovalRecord,
    summary: &str,
    request_id: &str,
) {
    let Some(slack) = ctx
        .config
        .notify
        .slack
        .as_ref()
        .filter(|s| s.mirror_actions)
    else {
        return;
    };
    let Some(id) = &call.incident else { return };
    if approval.effect == Effect::Notify {
        return;
    }
    let Ok(Some(incident)) =
        crate::incident::Store::open(&ctx.config.server.state_dir).and_then(|s| s.get(id))
    else {
        return;
    };
    let words = format!(
        "{tool} ({request_id}) approved by {}: {}",
        approval.approvers().join(", "),
        crate::digest::clip(summary, 1500)
    );
    let m = super::send::slack_post(slack, Some(&incident), &slack.channel, &words);
    let (ctx, rid) = (ctx.clone(), request_id.to_string());
    tokio::spawn(async move {
        let d =
            super::send::deliver(ctx.exec.as_ref(), &m, &ctx.config.server.state_dir, &rid).await;
        tracing::info!(request_id = %rid, "mirrored to Slack: {}", d.detail);
    });
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn finish(out: ActionResult, summary: String, failed: bool) -> ToolOutput {
    ToolOutput {
        structured: serde_json::to_value(&out).unwrap_or_default(),
        summary,
        is_error: failed,
    }
}
