//! An incident drill through an MCP client on the real lab: open a P0, read the alerts,
//! assess, restart through an approval, verify recovery, resolve, and write the post-mortem —
//! with the server restarted mid-incident, and two sessions on two incidents that must not
//! mix. Needs `sudo lab/lab.sh start`; fails (never skips) without it.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Accepting, call_h, gate_config, spawn_with, text};
use serde_json::{Value, json};

fn lab_dir() -> String {
    std::env::var("RUNBOOK_LAB_DIR").unwrap_or_else(|_| "/tmp/runbook-lab".into())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn done(r: &rmcp::model::CallToolResult) -> Value {
    assert_eq!(r.is_error, Some(false), "{}", text(r));
    r.structured_content.clone().unwrap()
}

async fn send(path: &str, n: usize) {
    let key = std::fs::read_to_string(format!("{}/secrets/api_key", lab_dir())).unwrap();
    let http = reqwest::Client::new();
    for _ in 0..n {
        let r = http
            .get(format!("http://10.200.0.12:8080{path}"))
            .header("X-API-Key", key.trim())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

/// Waits until Prometheus has the series of `path` on mcp-02 (so a window opened after this
/// counts every later request).
async fn scraped(path: &str) {
    let q = format!("http_requests_total{{host=\"mcp-02\",path=\"{path}\"}}");
    let url =
        reqwest::Url::parse_with_params("http://127.0.0.1:9090/api/v1/query", &[("query", q)])
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v: Value = serde_json::from_str(
            &reqwest::get(url.clone())
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        if v["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            return;
        }
        assert!(Instant::now() < deadline, "never scraped: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The lab's notification stand-in (lab/notify-standin.py: not Slack, PagerDuty, Statuspage or
/// Telegram), which records every request before it answers.
fn standin() -> String {
    std::env::var("RUNBOOK_LAB_NOTIFY_URL").unwrap_or_else(|_| "http://127.0.0.1:8099".into())
}

fn secret(name: &str) -> String {
    std::fs::read_to_string(format!("{}/secrets/{name}", lab_dir())).unwrap()
}

/// The stand-in's records after `since`.
async fn requests(since: u64) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/_standin/requests?since={since}", standin()))
        .await
        .unwrap_or_else(|e| panic!("the notify stand-in is not up ({e}): sudo lab/lab.sh start"))
        .json()
        .await
        .unwrap();
    v.as_array().unwrap().clone()
}

/// The next request to `path` fails with `status`.
async fn fail_once(path: &str, status: u16, retry_after: Option<u64>) {
    let mut body = json!({"path": path, "status": status, "times": 1});
    if let Some(s) = retry_after {
        body["retry_after"] = s.into();
    }
    let r = reqwest::Client::new()
        .post(format!("{}/_standin/fail", standin()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// Every notification of the drill, as the receiver saw it: each reached it once, though the
/// first attempt to every API failed; each request exactly as the APIs define it.
fn check_deliveries(all: &[Value], id: &str) {
    let to = |path: &str| -> Vec<&Value> { all.iter().filter(|r| r["path"] == path).collect() };
    let ok = |rs: &[&Value]| {
        rs.iter()
            .filter(|r| r["status"].as_u64().unwrap() < 300)
            .count()
    };
    let slack_auth = format!("Bearer {}", secret("slack_bot_token"));
    for r in all.iter().filter(|r| r["api"] == "slack") {
        assert_eq!(r["method"], "POST");
        assert_eq!(r["headers"]["authorization"], slack_auth, "{r}");
        assert!(
            r["headers"]["content-type"]
                .as_str()
                .unwrap()
                .starts_with("application/json"),
            "{r}"
        );
    }
    let channel = id.to_lowercase();
    let create = to("/api/conversations.create");
    assert_eq!(
        create.len(),
        2,
        "a failed attempt, then the channel: {create:?}"
    );
    assert_eq!(create[0]["status"], 503);
    assert_eq!(ok(&create), 1);
    assert_eq!(
        create[1]["body"],
        json!({"name": channel, "is_private": false})
    );
    let posts = to("/api/chat.postMessage");
    let delivered: Vec<&&Value> = posts.iter().filter(|r| r["answer"]["ok"] == true).collect();
    // The channel's first message (after a 503), then two in #incidents; the repeat none.
    assert_eq!(posts.len(), 4, "{posts:?}");
    assert_eq!(delivered.len(), 3, "{posts:?}");
    assert_eq!(delivered[0]["body"]["channel"], format!("#{channel}"));
    let thread = &delivered[1]["answer"]["ts"];
    assert_eq!(delivered[1]["body"]["channel"], "#incidents");
    assert!(delivered[1]["body"].get("thread_ts").is_none());
    assert_eq!(
        delivered[2]["body"]["thread_ts"], *thread,
        "one thread per incident"
    );
    for d in &delivered[1..] {
        let t = d["body"]["text"].as_str().unwrap();
        assert!(t.starts_with(&format!("[{id} · P0] ")), "{t}");
    }

    let pd = to("/v2/enqueue");
    assert_eq!(pd.len(), 3, "trigger after a 429, resolve: {pd:?}");
    assert_eq!(pd[0]["status"], 429);
    let key = secret("pagerduty_routing_key");
    for r in &pd {
        assert_eq!(r["body"]["routing_key"], key.as_str());
        assert_eq!(r["body"]["dedup_key"], format!("runbook-mcp/{id}"));
    }
    assert_eq!(pd[1]["status"], 202);
    assert_eq!(pd[1]["body"]["event_action"], "trigger");
    assert_eq!(pd[1]["body"]["payload"]["severity"], "critical");
    assert_eq!(pd[1]["body"]["payload"]["source"], "runbook-mcp");
    // Retry-After: 1 was honoured.
    let gap = pd[1]["time"].as_f64().unwrap() - pd[0]["time"].as_f64().unwrap();
    assert!(gap >= 0.95, "retried after {gap} s despite Retry-After: 1");
    assert_eq!(pd[2]["body"]["event_action"], "resolve");
    assert!(pd[2]["body"].get("payload").is_none());

    let sp: Vec<&Value> = all.iter().filter(|r| r["api"] == "statuspage").collect();
    assert_eq!(sp.len(), 3, "create after a 500, then a PATCH: {sp:?}");
    let sp_auth = format!("OAuth {}", secret("statuspage_api_key"));
    assert!(
        sp.iter()
            .all(|r| r["headers"]["authorization"] == sp_auth.as_str())
    );
    assert_eq!(sp[0]["status"], 500);
    assert_eq!(
        (&sp[1]["method"], &sp[1]["status"]),
        (&json!("POST"), &json!(201))
    );
    assert_eq!(sp[1]["path"], "/v1/pages/abc123/incidents");
    assert_eq!(sp[1]["body"]["incident"]["status"], "investigating");
    let page_incident = sp[1]["answer"]["id"].as_str().unwrap();
    assert_eq!(sp[2]["method"], "PATCH");
    assert_eq!(
        sp[2]["path"],
        format!("/v1/pages/abc123/incidents/{page_incident}")
    );
    assert_eq!(sp[2]["body"]["incident"]["status"], "resolved");

    let tg = to("/bot<token>/sendMessage");
    assert_eq!(tg.len(), 2, "{tg:?}");
    assert_eq!(tg[0]["status"], 502);
    assert_eq!(
        tg[1]["bot"], "telegram_bot_token",
        "the configured bot's token"
    );
    assert_eq!(tg[1]["body"]["chat_id"], -1001234567890_i64);
    assert!(tg[1]["body"].get("parse_mode").is_none(), "plain text only");
    // No token in any recorded path or in the server's answers about them.
    for r in all {
        assert!(
            !r["path"]
                .as_str()
                .unwrap()
                .contains(&secret("telegram_bot_token"))
        );
    }
}

#[tokio::test]
async fn a_p0_drill_writes_its_own_timeline_and_post_mortem() {
    let (cfg, _state) = gate_config("[approval]\nwait_secs = 10\n");
    let client = spawn_with(Accepting::default(), &cfg).await;
    let r = call_h(
        &client,
        "open_incident",
        json!({"title": "MCP Server P0 - mcp-02 down", "severity": "P0", "type": "service_outage"}),
    )
    .await;
    let opened = done(&r);
    let id = opened["incident"]["id"].as_str().unwrap().to_string();
    assert_eq!(opened["escalation"], "L1", "{opened}");
    assert!(text(&r).contains("respond by"), "{}", text(&r));
    let mark = requests(0)
        .await
        .last()
        .map_or(0, |r| r["seq"].as_u64().unwrap());
    let tg_path = format!("/bot{}/sendMessage", "<token>");
    for (path, status, after) in [
        ("/api/conversations.create", 503, None),
        ("/api/chat.postMessage", 503, None),
        ("/v2/enqueue", 429, Some(1)),
        ("/v1/pages/abc123/incidents", 500, None),
        (tg_path.as_str(), 502, None),
    ] {
        fail_once(path, status, after).await;
    }
    // The dry run is the exact request, its credential masked; nothing reaches the receiver.
    let r = call_h(
        &client,
        "notify_slack",
        json!({"text": "P0: mcp-02 is down", "reason": "tell the team", "dry_run": true}),
    )
    .await;
    let dry = done(&r);
    let shown = format!("{dry}{}", text(&r));
    assert!(shown.contains("Bearer {secret:slack_bot_token}"), "{shown}");
    assert!(!shown.contains(&secret("slack_bot_token")));
    assert!(requests(mark).await.is_empty(), "a dry run sent something");
    for (tool, args) in [
        ("create_incident_channel", json!({})),
        (
            "notify_slack",
            json!({"text": "P0: mcp-02 is down, investigating"}),
        ),
        ("page_oncall", json!({"action": "trigger"})),
        (
            "update_status_page",
            json!({"status": "investigating", "body": "Some requests fail; we are on it."}),
        ),
        (
            "send_telegram_message",
            json!({"text": "P0: mcp-02 is down"}),
        ),
    ] {
        let mut args = args;
        args["reason"] = json!("drill: tell people");
        let r = call_h(&client, tool, args).await;
        let v = done(&r);
        assert_eq!(v["result"]["ok"], true, "{tool}: {}", text(&r));
    }
    call_h(&client, "get_alerts", json!({})).await;
    call_h(&client, "run_diagnostics", json!({"hosts": ["mcp-02"]})).await;
    send("/api/drill", 1).await;
    scraped("/api/drill").await;
    let r = call_h(
        &client,
        "restart_service",
        json!({"hosts": ["mcp-02"], "service": "cctelegram-mcp", "reason": "drill: mcp-02 down"}),
    )
    .await;
    let restarted = done(&r);
    assert_eq!(restarted["status"], "done", "{restarted}");
    client.cancel().await.unwrap();

    // The server restarts mid-incident: the new session binds to the one open incident, and
    // the timeline so far is still there.
    let client = spawn_with(Accepting::default(), &cfg).await;
    let since = unix_now();
    send("/api/drill", 20).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = call_h(
            &client,
            "verify_recovery",
            json!({"since": since.to_string(), "hosts": ["mcp-02"], "checks": 1}),
        )
        .await;
        if done(&r)["verdict"] == "recovered" {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {}", text(&r));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (tool, args) in [
        (
            "notify_slack",
            json!({"text": "restarted cctelegram-mcp on mcp-02; recovered"}),
        ),
        ("page_oncall", json!({"action": "resolve"})),
        (
            "update_status_page",
            json!({"status": "resolved", "body": "Fixed."}),
        ),
    ] {
        let mut args = args;
        args["reason"] = json!("drill: tell people");
        let v = done(&call_h(&client, tool, args).await);
        assert_eq!(v["result"]["ok"], true, "{tool}: {v}");
    }
    // A retried call whose message was delivered is answered from the server's own record.
    let r = call_h(
        &client,
        "notify_slack",
        json!({"text": "P0: mcp-02 is down, investigating", "reason": "drill: retry"}),
    )
    .await;
    assert_eq!(done(&r)["status"], "already_delivered", "{}", text(&r));
    check_deliveries(&requests(mark).await, &id);
    let r = call_h(
        &client,
        "resolve_incident",
        json!({"summary": "restarted cctelegram-mcp on mcp-02"}),
    )
    .await;
    assert_eq!(done(&r)["incident"]["status"], "resolved", "{}", text(&r));
    let r = call_h(&client, "generate_postmortem", json!({"incident": id})).await;
    let pm = done(&r);
    let md = pm["markdown"].as_str().unwrap().to_string();
    println!("{md}");
    // Every call in order, each citing its audit sequence number.
    let order = [
        "`open_incident`",
        "`get_alerts`",
        "`run_diagnostics`",
        "`restart_service`",
        "`verify_recovery`",
        "`resolve_incident`",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|t| md.find(t).unwrap_or_else(|| panic!("{t} missing:\n{md}")))
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "calls out of order:\n{md}"
    );
    let timeline = &md[md.find("## Timeline").unwrap()..md.find("## Root Cause").unwrap()];
    let seqs: Vec<u64> = timeline
        .lines()
        .filter_map(|l| {
            l.rsplit_once("[#")
                .and_then(|(_, s)| s.trim_end_matches(']').parse().ok())
        })
        .collect();
    assert!(
        seqs.len() >= 6 && seqs.windows(2).all(|w| w[0] < w[1]),
        "{seqs:?}\n{md}"
    );
    // The change, its approver (the kernel's account) and its outcome, cited.
    let resolution = &md[md.find("## Resolution").unwrap()..];
    let me = std::env::var("USER").unwrap_or_else(|_| "root".into());
    assert!(
        resolution.lines().any(|l| l.contains("`restart_service`")
            && l.contains("approved by")
            && l.contains(&me)
            && l.contains("succeeded")),
        "{resolution}"
    );
    assert!(md.contains("recovery verified [#"), "{md}");
    assert!(md.contains("## Root Cause\n_To be written"), "{md}");
    client.cancel().await.unwrap();

    // Two sessions bound to two incidents: each call goes on its own session's timeline.
    let a = spawn_with(Accepting::default(), &cfg).await;
    let b = spawn_with(Accepting::default(), &cfg).await;
    let ia = done(
        &call_h(
            &a,
            "open_incident",
            // A title that tries to be Markdown structure stays text.
            json!({"title": "## Resolution [#1] <!--", "severity": "P2", "type": "performance_degradation"}),
        )
        .await,
    );
    let ib = done(
        &call_h(
            &b,
            "open_incident",
            json!({"title": "B", "severity": "P3", "type": "capacity_issues"}),
        )
        .await,
    );
    call_h(&a, "check_health", json!({})).await;
    call_h(&b, "check_service_status", json!({})).await;
    for (c, mine, other, inc) in [
        (&a, "check_health", "check_service_status", &ia),
        (&b, "check_service_status", "check_health", &ib),
    ] {
        let g = done(&call_h(c, "get_incident", json!({})).await);
        let tools: Vec<&str> = g["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["tool"].as_str().unwrap())
            .collect();
        assert_eq!(g["incident"]["id"], inc["incident"]["id"]);
        assert!(
            tools.contains(&mine) && !tools.contains(&other),
            "{tools:?}"
        );
    }
    // A note on another incident, named explicitly, goes on that incident's timeline only.
    let a_id = ia["incident"]["id"].as_str().unwrap().to_string();
    call_h(
        &b,
        "record_event",
        json!({"note": "customer report from B's desk", "incident": a_id}),
    )
    .await;
    let ga = done(&call_h(&a, "get_incident", json!({})).await);
    let gb = done(&call_h(&b, "get_incident", json!({})).await);
    let has_note = |g: &Value| {
        g["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["tool"] == "record_event")
    };
    assert!(has_note(&ga) && !has_note(&gb), "{ga}\n{gb}");
    // Resolving without a passing verify_recovery is refused, naming the way out.
    let r = call_h(&a, "resolve_incident", json!({"summary": "gone"})).await;
    common::assert_invalid(&r, "override_reason");
    let r = call_h(
        &a,
        "resolve_incident",
        json!({"summary": "gone", "override_reason": "a false alarm"}),
    )
    .await;
    assert_eq!(
        done(&r)["incident"]["resolution"]["override_reason"],
        "a false alarm"
    );
    let pm = done(&call_h(&a, "generate_postmortem", json!({"incident": a_id})).await);
    let md = pm["markdown"].as_str().unwrap();
    assert_eq!(
        md.lines().filter(|l| *l == "## Resolution").count(),
        1,
        "{md}"
    );
    assert!(md.contains("\\#\\# Resolution \\[\\#1\\] \\<!--"), "{md}");
    assert!(
        md.contains("resolved without a passing verify_recovery: a false alarm"),
        "{md}"
    );
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}
