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
