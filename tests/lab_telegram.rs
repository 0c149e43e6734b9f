//! Approval from a phone, against the lab's Telegram Bot API stand-in (lab/notify-standin.py:
//! not Telegram; it answers sendMessage, getUpdates with long polling and 409 for a concurrent
//! poller, answerCallbackQuery, editMessageText, and has a hook to press a button as a given
//! user id). Every bypass attempt of the issue has its assertion here. Needs
//! `sudo lab/lab.sh start`; fails (never skips) without it.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{approval_id, call, gate_config, in_terminal, spawn, text};
use serde_json::{Value, json};

const BOT: &str = "telegram_approval_bot_token";
const CHAT: i64 = 123456789;
const ALICE: i64 = 111111111;
const BOB: i64 = 222222222;
const MALLORY: i64 = 999999999;

/// One bot, one poller at a time: these tests take turns.
static BOT_IN_USE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn standin() -> String {
    std::env::var("RUNBOOK_LAB_NOTIFY_URL").unwrap_or_else(|_| "http://127.0.0.1:8099".into())
}

/// A gate whose `change` and `destructive` plans count only Telegram decisions.
fn config(extra: &str) -> (std::path::PathBuf, common::StateDir) {
    gate_config(&format!(
        "[approval]\nwait_secs = 0\n{extra}\n[approval.channels]\nchange = [\"telegram\"]\n\
         destructive = [\"telegram\"]\n[approval.telegram]\napi_base_url = \"{}\"\n\
         bot_token_secret = \"{BOT}\"\nchat_ids = [{CHAT}]\napprovers = [{ALICE}, {BOB}]\n\
         poll_timeout_secs = 2\n",
        standin()
    ))
}

async fn get(path: &str) -> Value {
    reqwest::get(format!("{}{path}", standin()))
        .await
        .unwrap_or_else(|e| panic!("the Telegram stand-in is not up ({e}): sudo lab/lab.sh start"))
        .json()
        .await
        .unwrap()
}

async fn post(path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", standin()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

async fn poll<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bot's message for approval `id`, once the server sent it.
async fn message_for(id: &str) -> Value {
    poll(&format!("a Telegram message for {id}"), async || {
        get(&format!("/_standin/telegram?bot={BOT}")).await["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["text"].as_str().unwrap_or("").contains(id))
            .cloned()
    })
    .await
}

/// Presses `data` on `message` as `user`; waits for the server's answer to the press.
async fn press(message: &Value, user: i64, data: &str) -> String {
    let r = post(
        "/_standin/telegram/press",
        json!({"bot": BOT, "chat_id": CHAT, "message_id": message["message_id"],
               "from_id": user, "username": format!("u{user}"), "data": data}),
    )
    .await;
    let qid = r["callback_query_id"].as_str().unwrap().to_string();
    poll("the press answered", async || {
        get(&format!("/_standin/telegram?bot={BOT}")).await["callback_queries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["id"] == qid.as_str() && q["answered"] == true)
            .map(|q| q["answer_text"].as_str().unwrap_or("").to_string())
    })
    .await
}

/// Replies `text` to the bot's latest message asking `user` for the target of `id`.
async fn reply_target(id: &str, user: i64, typed: &str) -> String {
    let ask = poll("the bot asks for the target", async || {
        get(&format!("/_standin/telegram?bot={BOT}")).await["messages"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| {
                let t = m["text"].as_str().unwrap_or("");
                t.starts_with("Reply to this message") && t.contains(id)
            })
            .cloned()
    })
    .await;
    let seen = get(&format!("/_standin/telegram?bot={BOT}")).await["messages"]
        .as_array()
        .unwrap()
        .len();
    post(
        "/_standin/telegram/reply",
        json!({"bot": BOT, "chat_id": CHAT, "from_id": user, "username": format!("u{user}"),
               "text": typed, "reply_to_message_id": ask["message_id"]}),
    )
    .await;
    poll("the bot answers the reply", async || {
        let all = get(&format!("/_standin/telegram?bot={BOT}")).await["messages"].clone();
        let all = all.as_array().unwrap();
        (all.len() > seen).then(|| all[all.len() - 1]["text"].as_str().unwrap().to_string())
    })
    .await
}

/// The approval record `id` (its file is `ID~DIGEST12~ARGS12.json`).
fn record(state: &common::StateDir, id: &str) -> Value {
    let dir = state.path().join("state/approvals");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{id}~"))
        })
        .unwrap_or_else(|| panic!("no record {id} in {}", dir.display()));
    serde_json::from_str(&std::fs::read_to_string(file.path()).unwrap()).unwrap()
}

fn audit(state: &common::StateDir) -> Vec<Value> {
    std::fs::read_to_string(state.path().join("state/audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn restart(host: &str, service: &str) -> Value {
    json!({"hosts": [host], "service": service, "reason": "telegram approval drill"})
}

#[tokio::test]
async fn a_press_approves_exactly_its_plan_and_nothing_else() {
    let _turn = BOT_IN_USE.lock().await;
    let (cfg, state) = config("");
    let a = spawn(Some(&cfg), &[]).await;
    let r = call(
        &a,
        "restart_service",
        restart("mcp-02", "cctelegram-bridge"),
    )
    .await;
    let id_a = approval_id(&text(&r));
    let msg_a = message_for(&id_a).await;
    // The buttons carry the opaque id, never the plan; the message shows the plan and digest.
    let buttons = &msg_a["reply_markup"]["inline_keyboard"][0];
    assert_eq!(buttons[0]["callback_data"], format!("y:{id_a}"));
    assert_eq!(buttons[1]["callback_data"], format!("n:{id_a}"));
    let shown = msg_a["text"].as_str().unwrap();
    assert!(
        shown.contains("restart") && shown.contains("mcp-02"),
        "{shown}"
    );
    assert!(shown.contains(record(&state, &id_a)["digest"].as_str().unwrap()));
    let r = call(
        &a,
        "restart_service",
        restart("mcp-03", "cctelegram-bridge"),
    )
    .await;
    let id_b = approval_id(&text(&r));
    let msg_b = message_for(&id_b).await;

    // A stranger's press decides nothing.
    let said = press(&msg_a, MALLORY, &format!("y:{id_a}")).await;
    assert!(said.contains("not an approver"), "{said}");
    assert_eq!(record(&state, &id_a)["state"], "pending");
    // A press carrying another record's id, on this record's message, approves neither.
    let said = press(&msg_a, ALICE, &format!("y:{id_b}")).await;
    assert!(said.contains("not for that request"), "{said}");
    assert_eq!(record(&state, &id_b)["state"], "pending");
    assert_eq!(record(&state, &id_a)["state"], "pending");
    // The approver's press approves exactly A, which then runs once.
    let said = press(&msg_a, ALICE, &format!("y:{id_a}")).await;
    assert!(said.contains("Approved by telegram:111111111"), "{said}");
    let r = call(
        &a,
        "restart_service",
        restart("mcp-02", "cctelegram-bridge"),
    )
    .await;
    assert_eq!(common::done(&r)["status"], "done", "{}", text(&r));
    assert_eq!(
        record(&state, &id_b)["state"],
        "pending",
        "B stays undecided"
    );
    let edited = message_for(&id_a).await;
    assert!(
        edited["text"]
            .as_str()
            .unwrap()
            .contains("Approved by telegram:111111111"),
        "{edited}"
    );
    assert!(
        edited.get("reply_markup").is_none_or(Value::is_null),
        "buttons gone"
    );
    // A replayed press for the consumed record is refused.
    let said = press(&msg_a, ALICE, &format!("y:{id_a}")).await;
    assert!(said.contains("nothing was decided"), "{said}");
    let r = call(
        &a,
        "restart_service",
        restart("mcp-02", "cctelegram-bridge"),
    )
    .await;
    common::refused(&r, "pending");

    // A second server on the same state directory: still one poller (no 409), and a press
    // on a plan the second server asked for is seen there.
    // (A poll left over from an earlier test's server may have met a 409 before this point.)
    let mark = get("/_standin/requests?since=0")
        .await
        .as_array()
        .unwrap()
        .last()
        .map_or(0, |r| r["seq"].as_u64().unwrap());
    let b = spawn(Some(&cfg), &[]).await;
    let r = call(
        &b,
        "restart_service",
        restart("mcp-01", "cctelegram-bridge"),
    )
    .await;
    let id_c = approval_id(&text(&r));
    let msg_c = message_for(&id_c).await;
    let said = press(&msg_c, BOB, &format!("y:{id_c}")).await;
    assert!(said.contains("Approved"), "{said}");
    let r = call(
        &b,
        "restart_service",
        restart("mcp-01", "cctelegram-bridge"),
    )
    .await;
    assert_eq!(common::done(&r)["status"], "done", "{}", text(&r));
    let polls: Vec<Value> = get(&format!("/_standin/requests?since={mark}"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/bot<token>/getUpdates")
        .cloned()
        .collect();
    assert!(!polls.is_empty(), "nobody polled");
    assert!(
        polls.iter().all(|r| r["status"] == 200),
        "a second poller ran: {:?}",
        polls.iter().map(|r| &r["status"]).collect::<Vec<_>>()
    );
    // Deny from the phone.
    let said = press(&msg_b, BOB, &format!("n:{id_b}")).await;
    assert!(said.contains("Denied"), "{said}");
    assert_eq!(record(&state, &id_b)["state"], "denied");

    // The audit log: one decision per press that counted, the rest ignored, never decisions.
    let log = audit(&state);
    let decisions: Vec<&Value> = log
        .iter()
        .filter(|e| e["kind"] == "decision" && e["channel"] == "telegram")
        .collect();
    assert_eq!(decisions.len(), 3, "{decisions:?}");
    let ignored: Vec<&str> = log
        .iter()
        .filter(|e| e["kind"] == "ignored")
        .map(|e| e["why"].as_str().unwrap())
        .collect();
    assert!(ignored.contains(&"not an approver"), "{ignored:?}");
    assert!(
        ignored.iter().any(|w| w.contains("not on the message")),
        "{ignored:?}"
    );
    assert!(
        ignored.iter().any(|w| w.contains("pressed while")),
        "{ignored:?}"
    );
    let token = std::fs::read_to_string(format!(
        "{}/secrets/{BOT}",
        std::env::var("RUNBOOK_LAB_DIR").unwrap_or_else(|_| "/tmp/runbook-lab".into())
    ))
    .unwrap();
    let raw = std::fs::read_to_string(state.path().join("state/audit.jsonl")).unwrap();
    assert!(
        !raw.contains(token.trim()),
        "the bot token in the audit log"
    );
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

/// A destructive plan needs the target typed back and, by this policy, two different Telegram
/// users; the same user twice is one. The terminal, excluded by policy, cannot approve it even
/// through a pseudo-terminal.
#[tokio::test]
async fn destructive_needs_the_target_and_two_different_approvers() {
    let _turn = BOT_IN_USE.lock().await;
    let (cfg, state) = config("destructive_approvers = 2");
    let a = spawn(Some(&cfg), &[]).await;
    let args = json!({"hosts": ["mcp-03"], "service": "cctelegram-bridge", "mode": "stop_start",
                      "reason": "telegram two-approver drill"});
    let r = call(&a, "restart_service", args.clone()).await;
    let id = approval_id(&text(&r));
    let msg = message_for(&id).await;
    assert!(
        msg["text"]
            .as_str()
            .unwrap()
            .contains("reply with the target (mcp-03)")
    );

    // The terminal is not a channel for this plan: `script -c "runbook-mcp approve"` fails.
    let (ok, out) = in_terminal(&cfg, &["approve", &id], "mcp-03\n");
    assert!(!ok, "{out}");
    assert!(out.contains("does not count"), "{out}");
    assert_eq!(record(&state, &id)["state"], "pending");

    let said = press(&msg, ALICE, &format!("y:{id}")).await;
    assert!(said.contains("reply with the target"), "{said}");
    let said = reply_target(&id, ALICE, "mcp-02").await;
    assert!(said.contains("does not match"), "{said}");
    assert!(
        record(&state, &id)["decisions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    press(&msg, ALICE, &format!("y:{id}")).await;
    let said = reply_target(&id, ALICE, "mcp-03").await;
    assert!(said.contains("1 more approver"), "{said}");
    // The same user again is still one approver.
    let said = press(&msg, ALICE, &format!("y:{id}")).await;
    assert!(said.contains("already approved"), "{said}");
    assert_eq!(record(&state, &id)["state"], "pending");
    press(&msg, BOB, &format!("y:{id}")).await;
    let said = reply_target(&id, BOB, "mcp-03").await;
    assert!(said.contains("Approved by telegram:222222222"), "{said}");
    let r = call(&a, "restart_service", args).await;
    assert_eq!(common::done(&r)["status"], "done", "{}", text(&r));
    a.cancel().await.unwrap();
}

/// `doctor` checks the bot: `getMe` answers, and no webhook is set (polling would get 409).
#[tokio::test]
async fn doctor_checks_the_approval_bot() {
    let _turn = BOT_IN_USE.lock().await;
    let (cfg, _state) = config("");
    let row = |out: &std::process::Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("telegram approvals"))
            .unwrap_or_else(|| panic!("no telegram row: {}", String::from_utf8_lossy(&out.stdout)))
            .to_string()
    };
    let out = common::cli(&cfg, &["doctor"]);
    let ok = row(&out);
    assert!(ok.contains("_lab_bot") && ok.contains("no webhook"), "{ok}");
    post(
        "/_standin/telegram/webhook",
        json!({"bot": BOT, "url": "https://hooks.example/secret-path"}),
    )
    .await;
    let out = common::cli(&cfg, &["doctor"]);
    post("/_standin/telegram/webhook", json!({"bot": BOT, "url": ""})).await;
    let bad = row(&out);
    assert!(bad.contains("webhook is set"), "{bad}");
    assert!(!out.status.success());
    assert!(!bad.contains("secret-path"), "{bad}");
}
