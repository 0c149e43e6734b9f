//! A press (or a reply) from Telegram, decided. It counts only when every one of these holds:
//! the presser is an allowlisted Telegram user id; the button's record exists, is pending and
//! was sent on exactly the message pressed (a forged `callback_data` naming another record
//! decides nothing); the record still holds the digest that message showed; a destructive plan
//! gets the target typed back in a reply by the same user; a second approval comes from a
//! different user. Anything else is answered and audited as ignored — never as a decision.
//! Every press is answered (`answerCallbackQuery`), or the phone keeps spinning.

use serde_json::{Value, json};

use super::poll::Poller;
use super::{Awaiting, Sent, load, save};
use crate::audit::{Record, Verdict};
use crate::engine::approval::{ApprovalRecord, ApprovalState, DecisionRec, now_ms};

pub(super) async fn on_update(p: &Poller, u: &Value) {
    if let Some(q) = u.get("callback_query") {
        on_press(p, q).await;
    } else if let Some(m) = u.get("message") {
        on_reply(p, m).await;
    }
}

/// Who pressed, as the approval records it: the stable user id (a username can change).
fn who(user: i64) -> String {
    format!("telegram:{user}")
}

fn approver(p: &Poller, user: i64) -> bool {
    p.config
        .approval
        .telegram
        .as_ref()
        .is_some_and(|t| t.approvers.contains(&user))
}

async fn on_press(p: &Poller, q: &Value) {
    let qid = q["id"].as_str().unwrap_or_default().to_string();
    let user = q["from"]["id"].as_i64().unwrap_or(0);
    let chat = q["message"]["chat"]["id"].as_i64().unwrap_or(0);
    let msg = q["message"]["message_id"].as_i64().unwrap_or(0);
    let data = q["data"].as_str().unwrap_or_default();
    let answer = press(p, user, chat, msg, data).await;
    let body = json!({"callback_query_id": qid, "text": crate::digest::clip(&answer, 190)});
    if let Err(e) = p
        .bot
        .call("answerCallbackQuery", body, p.config.server.http_timeout)
        .await
    {
        tracing::warn!("telegram approvals: answering a press: {e}");
    }
}

/// The press's effect, as the words that answer it.
async fn press(p: &Poller, user: i64, chat: i64, msg: i64, data: &str) -> String {
    let Some((verb, id)) = data.split_once(':').filter(|(v, _)| *v == "y" || *v == "n") else {
        return "not a button of this server".into();
    };
    let state_dir = &p.config.server.state_dir;
    let record = p.approvals.get(id).ok().flatten();
    let sent = load(state_dir, id);
    let (Some(r), Some(mut sent)) = (record, sent) else {
        return "no such approval request".into();
    };
    if !approver(p, user) {
        ignore(p, &r, user, "not an approver").await;
        return "not an approver: nothing was decided".into();
    }
    if !sent.messages.contains(&(chat, msg)) {
        ignore(
            p,
            &r,
            user,
            "the button was not on the message sent for this request",
        )
        .await;
        return "this button is not for that request: nothing was decided".into();
    }
    if r.state != ApprovalState::Pending {
        ignore(p, &r, user, &format!("pressed while {}", word(r.state))).await;
        return format!("{} is {}: nothing was decided", r.id, word(r.state));
    }
    if r.digest != sent.digest {
        ignore(
            p,
            &r,
            user,
            "the record's digest is not the one this message showed",
        )
        .await;
        return "the plan changed since this message: nothing was decided".into();
    }
    if verb == "n" {
        return decide(p, &r, &sent, user, false).await;
    }
    if r.out_of_band_only {
        if r.approvers().contains(&who(user).as_str()) {
            return "you already approved; another approver is needed".into();
        }
        // The target typed back, as at the terminal: a reply to the bot's question.
        let ask = json!({
            "chat_id": chat,
            "text": format!(
                "Reply to this message with the target ({}) to approve {}.",
                crate::screen::escape(&r.confirm_text),
                r.id
            ),
            "reply_markup": {"force_reply": true, "selective": true},
            "reply_parameters": {"message_id": msg},
        });
        return match p
            .bot
            .call("sendMessage", ask, p.config.server.http_timeout)
            .await
        {
            Ok(m) => {
                sent.awaiting.retain(|a| a.user != user);
                sent.awaiting.push(Awaiting {
                    user,
                    chat,
                    prompt: m["message_id"].as_i64().unwrap_or(0),
                });
                if let Err(e) = save(state_dir, &r.id, &sent) {
                    tracing::warn!("telegram approvals: {e}");
                }
                "destructive: reply with the target's name to approve".into()
            }
            Err(e) => format!("could not ask for the target: {e}"),
        };
    }
    decide(p, &r, &sent, user, true).await
}

/// A reply typing a destructive plan's target.
async fn on_reply(p: &Poller, m: &Value) {
    let user = m["from"]["id"].as_i64().unwrap_or(0);
    let chat = m["chat"]["id"].as_i64().unwrap_or(0);
    let Some(to) = m["reply_to_message"]["message_id"].as_i64() else {
        return;
    };
    let typed = m["text"].as_str().unwrap_or_default().trim().to_string();
    let state_dir = &p.config.server.state_dir;
    let Ok(records) = p.approvals.list() else {
        return;
    };
    for r in records {
        let Some(mut sent) = load(state_dir, &r.id) else {
            continue;
        };
        let wanted = Awaiting {
            user,
            chat,
            prompt: to,
        };
        if !sent.awaiting.contains(&wanted) {
            continue;
        }
        sent.awaiting.retain(|a| *a != wanted);
        if let Err(e) = save(state_dir, &r.id, &sent) {
            tracing::warn!("telegram approvals: {e}");
        }
        let said = if !approver(p, user) {
            ignore(p, &r, user, "not an approver").await;
            "not an approver: nothing was decided".to_string()
        } else if r.state != ApprovalState::Pending || r.digest != sent.digest {
            ignore(p, &r, user, "the request is no longer the one asked about").await;
            format!("{} is {}: nothing was decided", r.id, word(r.state))
        } else if typed != r.confirm_text {
            ignore(p, &r, user, "the typed target did not match").await;
            "the target does not match: nothing was approved".to_string()
        } else {
            decide(p, &r, &sent, user, true).await
        };
        let body = json!({"chat_id": chat, "text": said, "reply_parameters": {"message_id": to}});
        if let Err(e) = p
            .bot
            .call("sendMessage", body, p.config.server.http_timeout)
            .await
        {
            tracing::warn!("telegram approvals: {e}");
        }
        return;
    }
}

/// Delivers the decision to the store, audits it, and edits the messages to show it.
async fn decide(p: &Poller, r: &ApprovalRecord, sent: &Sent, user: i64, approved: bool) -> String {
    let d = DecisionRec {
        approver: who(user),
        channel: "telegram".into(),
        approved,
        at_ms: now_ms(),
        note: String::new(),
    };
    let decided = p.approvals.decide(&r.id, d.clone(), ApprovalState::Denied);
    let r = match decided {
        Ok(r) => r,
        Err(e) => {
            ignore(p, r, user, &e).await;
            return format!("nothing was decided: {e}");
        }
    };
    let verdict = if approved {
        Verdict::Approved
    } else {
        Verdict::Denied
    };
    if let Err(e) = p.audit.append(Record::Decision {
        request_id: r.request_id.clone(),
        approval_id: r.id.clone(),
        decision: verdict,
        approver: Some(d.approver.clone()),
        channel: Some("telegram".into()),
        wait_ms: now_ms().saturating_sub(r.created_ms),
        note: None,
    }) {
        tracing::warn!("telegram approvals: audit: {e}");
    }
    let (said, last) = match r.state {
        ApprovalState::Approved => (
            format!("Approved by {}: the same call runs it once.", who(user)),
            true,
        ),
        ApprovalState::Pending => (
            format!(
                "Approved by {}; {} more approver(s) needed.",
                who(user),
                r.approvals_required as usize - r.approvers().len()
            ),
            false,
        ),
        s => (format!("{} by {}.", cap(word(s)), who(user)), true),
    };
    for (chat, msg) in &sent.messages {
        let mut body = json!({
            "chat_id": chat,
            "message_id": msg,
            "text": crate::digest::clip(&format!("{}\n{said}", sent.text), 4000),
        });
        if !last {
            body["reply_markup"] = json!({"inline_keyboard": [[
                {"text": "Approve", "callback_data": format!("y:{}", r.id)},
                {"text": "Deny", "callback_data": format!("n:{}", r.id)},
            ]]});
        }
        if let Err(e) = p
            .bot
            .call("editMessageText", body, p.config.server.http_timeout)
            .await
        {
            tracing::warn!("telegram approvals: editing the message: {e}");
        }
    }
    said
}

/// A press that decided nothing, in the audit log as such.
async fn ignore(p: &Poller, r: &ApprovalRecord, user: i64, why: &str) {
    tracing::info!(id = %r.id, "telegram press by {user} ignored: {why}");
    if let Err(e) = p.audit.append(Record::Ignored {
        request_id: r.request_id.clone(),
        approval_id: r.id.clone(),
        channel: "telegram".into(),
        who: who(user),
        why: why.to_string(),
    }) {
        tracing::warn!("telegram approvals: audit: {e}");
    }
}

fn word(s: ApprovalState) -> &'static str {
    match s {
        ApprovalState::Pending => "pending",
        ApprovalState::Approved => "approved",
        ApprovalState::Declined => "declined",
        ApprovalState::Cancelled => "cancelled",
        ApprovalState::Denied => "denied",
        ApprovalState::Expired => "expired",
        ApprovalState::Consumed => "already used",
    }
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
