//! Asking for a decision: find an approved record for exactly this plan and principal (or
//! refuse `stale` when the same call was approved under another plan), else a pending record
//! that rings the operator and is offered to the channels policy allows, then wait briefly and
//! settle into "run" or a refusal. Store operations run off the async threads.

use std::time::{Duration, Instant};

use super::approval::{ApprovalRecord, ApprovalState, DecisionRec, NewRequest, now_ms};
use super::call::{Answer, CallCtx, Outcome};
use super::plan::Plan;
use super::{Ctx, Effect, Refusal, ToolError, hooks};

pub(super) enum Obtained {
    Approved(Box<ApprovalRecord>),
    Ask(Outcome),
}

/// Finds or waits for an approval of exactly this plan for this principal.
#[allow(clippy::too_many_arguments)]
pub(super) async fn obtain(
    ctx: &Ctx,
    call: &CallCtx,
    plan: &Plan,
    health: &[String],
    effect: Effect,
    reason: &str,
    confirm: &str,
    request_id: &str,
) -> Result<Obtained, ToolError> {
    let store = ctx.approvals()?;
    let args_key = plan.args_key();
    let (principal, digest) = (call.principal.clone(), plan.digest.clone());
    // The same call, approved under another plan: the fleet or the configuration changed.
    // An approval of exactly this plan first; only then is another plan's approval stale.
    let (s, p, d) = (store.clone(), principal.clone(), digest.clone());
    if let Some(r) = off(move || s.take_approved(&d, &p)).await? {
        return Ok(Obtained::Approved(Box::new(r)));
    }
    let (s, k, p, d) = (
        store.clone(),
        args_key.clone(),
        principal.clone(),
        digest.clone(),
    );
    if let Some(old) = off(move || s.supersede(&k, &p, &d)).await? {
        return Err(ToolError::refused(
            Refusal::Stale,
            format!(
                "approval {} was for this call under another plan; {}. It no longer applies: call \
                 again to ask for approval of the plan as it is now.",
                old.id,
                what_changed(&old.plan, &plan.review_lines())
            ),
        ));
    }

    // A 2026-07-28 retry carrying the client's answer.
    if let Some(round) = &call.input_required
        && let (Some(token), Some(answer)) = (&round.request_state, &round.answer)
    {
        let id = store.unseal(token).ok_or_else(|| {
            ToolError::refused(
                Refusal::Denied,
                "the requestState is not one this server issued.",
            )
        })?;
        let (s, i) = (store.clone(), id.clone());
        let r = off(move || s.get(&i))
            .await?
            .ok_or_else(|| ToolError::refused(Refusal::Denied, "unknown approval request."))?;
        if r.digest != plan.digest || r.principal != call.principal {
            return Err(ToolError::refused(
                Refusal::Denied,
                "that approval belongs to another plan or caller.",
            ));
        }
        if r.state == ApprovalState::Pending {
            deliver(
                ctx,
                &r,
                answer,
                "input_required",
                &call.principal,
                request_id,
            )
            .await?;
        }
        return settle(ctx, plan, &call.principal, &r.id)
            .await
            .map(|r| Obtained::Approved(Box::new(r)));
    }

    let ttl = ctx.config.approval.ttl;
    let ch = &ctx.config.approval.channels;
    let channels = match effect {
        Effect::Destructive => &ch.destructive,
        Effect::Notify => &ch.notify,
        _ => &ch.change,
    };
    let required = if effect == Effect::Destructive {
        ctx.config.approval.destructive_approvers
    } else {
        1
    };
    let s = store.clone();
    let (tool, reason, rid, lines, confirm, chans) = (
        plan.tool.clone(),
        reason.to_string(),
        request_id.to_string(),
        plan.review_lines(),
        confirm.to_string(),
        channels.clone(),
    );
    let (rec, created) = off(move || {
        s.pending(NewRequest {
            digest: &digest,
            args_key: &args_key,
            tool: &tool,
            effect,
            principal: &principal,
            reason: &reason,
            request_id: &rid,
            plan: lines,
            confirm_text: confirm,
            ttl,
            approvals_required: required,
            channels: chans,
        })
    })
    .await?;
    let message = prompt(&rec, health);
    let phone = ctx.config.approval.telegram.is_some() && rec.counts("telegram");
    if phone {
        // Also for a record made before a restart: its presses need a poller in this process.
        super::telegram::ensure_polling(&ctx.config, &ctx.http, store.clone(), ctx.audit()?);
    }
    if created {
        hooks::ring(&rec);
        if phone {
            super::telegram::announce(&ctx.config, &ctx.http, &rec, &message).await;
        }
    }

    // The session's own client decides only where policy lets it (by default change and
    // notify, never destructive).
    if channels.iter().any(|c| c == "client") {
        if call.input_required.is_some() {
            return Ok(Obtained::Ask(Outcome::InputRequired {
                request_state: store.seal(&rec.id),
                message,
            }));
        }
        if let Some(asker) = &call.asker {
            let wait = ctx.config.approval.wait;
            let started = Instant::now();
            let answer = tokio::select! {
                a = asker.ask(&message) => Some(a),
                () = wait_decided(ctx, call, &rec.id, wait) => None,
            };
            if let Some(a) = answer {
                deliver(ctx, &rec, &a, "elicitation", &call.principal, request_id).await?;
                if let Answer::Failed(why) = &a {
                    tracing::info!(id = %rec.id, "elicitation failed: {why}; waiting for the terminal");
                    let left = wait.saturating_sub(started.elapsed());
                    wait_decided(ctx, call, &rec.id, left).await;
                }
            }
            return settle(ctx, plan, &call.principal, &rec.id)
                .await
                .map(|r| Obtained::Approved(Box::new(r)));
        }
    }
    wait_decided(ctx, call, &rec.id, ctx.config.approval.wait).await;
    settle(ctx, plan, &call.principal, &rec.id)
        .await
        .map(|r| Obtained::Approved(Box::new(r)))
}

/// The first plan line that differs: `approved: "…", now: "…"`.
fn what_changed(approved: &[String], now: &[String]) -> String {
    let n = approved.len().max(now.len());
    (0..n)
        .find_map(|i| {
            let (a, b) = (approved.get(i), now.get(i));
            (a != b).then(|| {
                let show = |l: Option<&String>| {
                    l.map_or("(nothing)".to_string(), |l| {
                        format!("\"{}\"", crate::screen::escape(l))
                    })
                };
                format!("approved: {}, now: {}", show(a), show(b))
            })
        })
        .unwrap_or_else(|| "the configuration it was made from changed".into())
}

/// Runs an approval-store operation off the async threads: it takes a file lock (waited for at
/// most a few seconds) and may fsync.
async fn off<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError::internal(format!("approval store: {e}")))?
        .map_err(|e| ToolError::internal(format!("approval store: {e}")))
}

/// Records a client-channel answer on the record.
async fn deliver(
    ctx: &Ctx,
    r: &ApprovalRecord,
    a: &Answer,
    channel: &str,
    principal: &str,
    request_id: &str,
) -> Result<(), ToolError> {
    let store = ctx.approvals()?;
    let (approved, refusal) = match a {
        Answer::Approve => (true, ApprovalState::Declined),
        Answer::Decline => (false, ApprovalState::Declined),
        Answer::Cancel => (false, ApprovalState::Cancelled),
        Answer::Failed(_) => return Ok(()),
    };
    let d = DecisionRec {
        approver: format!("client:{principal}"),
        channel: channel.into(),
        approved,
        at_ms: now_ms(),
        note: String::new(),
    };
    let waited = now_ms().saturating_sub(r.created_ms);
    let (s, id, dd) = (store.clone(), r.id.clone(), d.clone());
    let decided = tokio::task::spawn_blocking(move || s.decide(&id, dd, refusal))
        .await
        .map_err(|e| ToolError::internal(format!("approval store: {e}")))?;
    match decided {
        Ok(_) => hooks::decision(ctx, request_id, &r.id, &d, refusal, waited).await,
        // e.g. destructive via a client channel: not a decision; the terminal still can.
        Err(e) => tracing::info!(id = %r.id, "client answer not applied: {e}"),
    }
    Ok(())
}

/// Turns the record's state into "run" or a refusal.
async fn settle(
    ctx: &Ctx,
    plan: &Plan,
    principal: &str,
    id: &str,
) -> Result<ApprovalRecord, ToolError> {
    let store = ctx.approvals()?;
    let (s, d, p) = (store.clone(), plan.digest.clone(), principal.to_string());
    if let Some(r) = off(move || s.take_approved(&d, &p)).await? {
        return Ok(r);
    }
    let (s, i) = (store.clone(), id.to_string());
    let r = off(move || s.get(&i))
        .await?
        .ok_or_else(|| ToolError::internal("approval record vanished"))?;
    let why = |who: &str| {
        r.decisions
            .last()
            .map(|d| {
                format!(
                    " by {} via {}{}",
                    d.approver,
                    d.channel,
                    if d.note.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", d.note)
                    }
                )
            })
            .unwrap_or_else(|| who.to_string())
    };
    Err(match r.state {
        ApprovalState::Declined => ToolError::refused(
            Refusal::Declined,
            format!("approval {id} was declined{}.", why("")),
        ),
        ApprovalState::Cancelled => ToolError::refused(
            Refusal::Cancelled,
            format!("approval {id} was cancelled{}.", why("")),
        ),
        ApprovalState::Denied => ToolError::refused(
            Refusal::Denied,
            format!("approval {id} was denied{}.", why("")),
        ),
        ApprovalState::Expired => ToolError::refused(
            Refusal::Expired,
            format!("approval {id} expired before anyone decided."),
        ),
        ApprovalState::Consumed => ToolError::refused(
            Refusal::Denied,
            format!("approval {id} was already used; a new run needs a new approval."),
        ),
        ApprovalState::Approved | ApprovalState::Pending => {
            let left = r.expires_ms.saturating_sub(now_ms()) / 1000;
            let more = if r.out_of_band_only {
                " typing the target back when asked"
            } else {
                ""
            };
            // Say only the ways policy lets this plan be decided.
            let mut ways = Vec::new();
            if r.counts("terminal") {
                ways.push(format!(
                    "an operator runs `runbook-mcp approve {id}`{more} (or `runbook-mcp deny {id} --reason ...`) in a terminal"
                ));
            }
            if r.counts("telegram") {
                ways.push(format!(
                    "an approver presses Approve on the Telegram message for {id}{}",
                    if r.out_of_band_only {
                        " and replies with the target"
                    } else {
                        ""
                    }
                ));
            }
            if ways.is_empty() {
                ways.push("an approver decides through the session's client".into());
            }
            ToolError::refused(
                Refusal::Pending,
                format!(
                    "approval {id} waits for an operator (expires in {left} s): {}; then call this tool again with the same arguments.",
                    ways.join(", or ")
                ),
            )
        }
    })
}

/// Polls the record until it leaves `pending` or `wait` passes.
/// While waiting, a client that gave a progress token hears every few seconds what it waits for
/// (and some clients reset their request timeout on progress).
async fn wait_decided(ctx: &Ctx, call: &CallCtx, id: &str, wait: Duration) {
    let Ok(store) = ctx.approvals() else { return };
    let started = Instant::now();
    let deadline = started + wait;
    let mut next_progress = started;
    loop {
        if let Some(p) = &call.progress
            && Instant::now() >= next_progress
        {
            let waited = started.elapsed().as_secs();
            p.report(
                waited as f64,
                Some(wait.as_secs() as f64),
                format!("waiting for approval {id}: an operator runs `runbook-mcp approve {id}`"),
            )
            .await;
            next_progress += Duration::from_secs(5);
        }
        let (s, i) = (store.clone(), id.to_string());
        match off(move || s.get(&i)).await {
            Ok(Some(r)) if r.state != ApprovalState::Pending => return,
            Ok(None) | Err(_) => return,
            _ => {}
        }
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// What the human sees: the exact plan (with what changes and the undo), the current health.
/// Every line is escaped: remote error text in the health lines, or anything else, cannot
/// add a line or hide one.
fn prompt(r: &ApprovalRecord, health: &[String]) -> String {
    use crate::screen::escape;
    let mut s = format!(
        "Approve {} ({})?\nReason: \"{}\"\nPlan:\n",
        escape(&r.tool),
        escape(&r.id),
        escape(&r.reason)
    );
    for l in &r.plan {
        s.push_str(&format!("  - {}\n", escape(l)));
    }
    if !health.is_empty() {
        s.push_str("Current health:\n");
        for l in health {
            s.push_str(&format!("  - {}\n", escape(l)));
        }
    }
    s
}
