//! The Docker Swarm tools drive the REAL `docker` CLI against the lab's RECORDING STAND-IN of
//! the Engine API (`lab/docker-standin.py`, 127.0.0.1:23750; not Docker, no daemon). The CLI
//! parses and validates its own arguments and makes its real API calls; the stand-in keeps one
//! service (`cctelegram_mcp-server`, 3 replicas, image 1.4.2, previous spec 1.4.1), applies
//! updates, and records every request in `$LAB/docker/requests.jsonl`. So each test asserts
//! what the CLI actually sent (or that it sent no update at all). Serial: one stand-in.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use common::{approval_id, call_h as call, done, gate_config, in_terminal, refused, text};
use serde_json::{Value, json};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const STANDIN: &str = "127.0.0.1:23750";
const SERVICE: &str = "cctelegram_mcp-server";
const SERVICE_ID: &str = "q7xkmw3v0f2bk3j4h5g6f7d8z";
const ALLOW: &str = "[approval]\nwait_secs = 2\n[policy]\ntools = { scale_service = \"allow\", set_memory_limit = \"allow\" }\n";

/// One request to the stand-in's own endpoints (HTTP/1.0: the answer ends the connection).
fn standin(method: &str, path: &str, body: &str) -> Value {
    let mut s = std::net::TcpStream::connect(STANDIN)
        .expect("the docker stand-in is not running: `sudo lab/lab.sh start`");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: standin\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, json) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{answer}");
    serde_json::from_str(json).unwrap()
}

/// Back to 3 replicas of 1.4.2, no limit, an empty record: every test starts the same.
fn reset() {
    common::lab_config(); // fails loudly when the lab is down
    standin("POST", "/_standin/reset", "");
}

fn state() -> Value {
    standin("GET", "/_standin/state", "")
}

/// What the CLI sent since the reset.
fn records() -> Vec<Value> {
    let path = PathBuf::from(common::lab_config().parent().unwrap()).join("docker/requests.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The recorded `POST /vX/services/ID/update` requests.
fn updates() -> Vec<Value> {
    records()
        .into_iter()
        .filter(|r| r["method"] == "POST")
        .inspect(|r| {
            let path = r["path"].as_str().unwrap();
            assert!(
                path.ends_with(&format!("/services/{SERVICE_ID}/update")),
                "{r}"
            );
        })
        .collect()
}

#[tokio::test]
async fn scale_up_sends_the_new_count_and_reports_it() {
    let _g = SERIAL.lock().await;
    reset();
    let (cfg, _state) = gate_config(ALLOW);
    let client = common::spawn(Some(&cfg), &[]).await;
    let r = call(
        &client,
        "scale_service",
        json!({"service": SERVICE, "replicas": 6, "reason": "capacity"}),
    )
    .await;
    let v = done(&r);
    let up = updates();
    assert_eq!(up.len(), 1, "one update: {up:?}");
    assert_eq!(up[0]["body"]["Mode"]["Replicated"]["Replicas"], 6);
    assert_eq!(up[0]["query"]["version"], "41", "the version the CLI read");
    let health = v["current_health"][0].as_str().unwrap();
    assert!(
        health.starts_with(&format!("{SERVICE}: version 41,"))
            && health.contains("3 replicas wanted"),
        "{health}"
    );
    // What the approver saw: 3 → 6, and the undo as a ready call.
    assert_eq!(v["plan"]["changes"][0]["before"], "3");
    assert_eq!(v["plan"]["changes"][0]["after"], "6");
    assert_eq!(v["plan"]["undo"][0]["tool"], "scale_service");
    assert_eq!(v["plan"]["undo"][0]["arguments"]["replicas"], 3);
    assert_eq!(v["plan"]["undo"][0]["arguments"]["direction"], "down");
    let call_stage = common::stage(&v, "call");
    assert_eq!(
        common::steps_with(call_stage, "service scale")[0]["exit_code"],
        0
    );
    assert_eq!(call_stage["captured"]["after"]["replicas"], 6);
    assert_eq!(v["result"]["ok"], true);
    assert!(text(&r).contains("wants 6 replicas"), "{}", text(&r));
    assert_eq!(state()["Spec"]["Mode"]["Replicated"]["Replicas"], 6);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn scale_down_must_say_so_and_then_needs_an_operator() {
    let _g = SERIAL.lock().await;
    reset();
    let (cfg, _state) = gate_config(ALLOW);
    let client = common::spawn(Some(&cfg), &[]).await;
    let args = |replicas: u32, direction: Option<&str>| {
        let mut a = json!({"service": SERVICE, "replicas": replicas, "reason": "cost"});
        if let Some(d) = direction {
            a["direction"] = json!(d);
        }
        a
    };

    // 2 < 3 live replicas without `direction: down`: refused before anyone is asked.
    let r = call(&client, "scale_service", args(2, None)).await;
    refused(&r, "blast_radius");
    assert!(text(&r).contains("direction: down"), "{}", text(&r));
    // A `down` that is not one, 0, and more than max_replicas (10): refused too.
    refused(
        &call(&client, "scale_service", args(3, Some("down"))).await,
        "blast_radius",
    );
    refused(
        &call(&client, "scale_service", args(0, None)).await,
        "blast_radius",
    );
    refused(
        &call(&client, "scale_service", args(11, None)).await,
        "blast_radius",
    );

    // `down` is destructive: the `allow` policy does not apply, an operator must approve.
    let r = call(&client, "scale_service", args(2, Some("down"))).await;
    refused(&r, "pending");
    assert!(text(&r).contains("typing the target back"), "{}", text(&r));
    assert!(updates().is_empty(), "no update was sent: {:?}", records());
    assert_eq!(state()["Spec"]["Mode"]["Replicated"]["Replicas"], 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn set_memory_limit_sends_the_bytes_and_a_bad_limit_runs_nothing() {
    let _g = SERIAL.lock().await;
    reset();
    let (cfg, _state) = gate_config(ALLOW);
    let client = common::spawn(Some(&cfg), &[]).await;

    let r = call(
        &client,
        "set_memory_limit",
        json!({"service": SERVICE, "limit": "2X", "reason": "oom"}),
    )
    .await;
    common::assert_invalid(&r, "limit");
    assert!(records().is_empty(), "the CLI never ran: {:?}", records());

    // From no limit to 2 GiB lowers what a task may use: destructive, so the `allow` policy
    // does not apply and an operator approves at a terminal, typing the service.
    let args = json!({"service": SERVICE, "limit": "2G", "reason": "oom"});
    let r = call(&client, "set_memory_limit", args.clone()).await;
    refused(&r, "pending");
    assert!(text(&r).contains("typing the target back"), "{}", text(&r));
    let id = approval_id(&text(&r));
    let (ok, out) = in_terminal(&cfg, &["approve", &id], &format!("{SERVICE}\n"));
    assert!(ok, "{out}");
    let r = call(&client, "set_memory_limit", args).await;
    let v = done(&r);
    let up = updates();
    assert_eq!(up.len(), 1);
    assert_eq!(
        up[0]["body"]["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"],
        2147483648u64
    );
    assert_eq!(
        common::stage(&v, "call")["captured"]["after"]["memory_limit_bytes"],
        2147483648u64
    );
    assert_eq!(v["plan"]["changes"][0]["before"], "none");
    assert_eq!(v["plan"]["changes"][0]["after"], "2 GiB");
    assert_eq!(v["plan"]["undo"][0]["arguments"]["limit"], "0");
    assert!(text(&r).contains("memory limit now 2G"), "{}", text(&r));
    let health = v["current_health"][0].as_str().unwrap();
    assert!(health.contains("memory limit none"), "{health}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_refused_update_reports_the_clis_exit_code_and_message() {
    let _g = SERIAL.lock().await;
    reset();
    let (cfg, _state) = gate_config(ALLOW);
    let client = common::spawn(Some(&cfg), &[]).await;
    let why = "rpc error: code = Unknown desc = The swarm does not have a leader";
    standin("POST", "/_standin/fail-next-update", why);
    let r = call(
        &client,
        "scale_service",
        json!({"service": SERVICE, "replicas": 5, "reason": "capacity"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    let v = r.structured_content.clone().unwrap();
    let st = common::stage(&v, "call");
    let cmd = common::steps_with(st, "service scale")[0];
    assert_eq!(cmd["exit_code"], 1);
    assert!(
        cmd["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("Error response from daemon: {why}")),
        "{cmd}"
    );
    assert!(
        st["captured"].get("after").is_none(),
        "halted before the read-back: {st}"
    );
    assert!(text(&r).contains("FAILED"), "{}", text(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rollback_is_destructive_and_runs_only_after_the_operator_typed_the_service() {
    let _g = SERIAL.lock().await;
    reset();
    let (cfg, _state) = gate_config("[approval]\nwait_secs = 2\n");
    let h = common::Accepting::default();
    let client = common::spawn_with(h.clone(), &cfg).await;
    let args = json!({"service": SERVICE, "reason": "1.4.2 returns 502s"});

    let r = call(&client, "rollback_deployment", args.clone()).await;
    refused(&r, "pending");
    assert_eq!(
        h.asked.load(Ordering::SeqCst),
        0,
        "destructive: the client is not asked"
    );
    assert!(updates().is_empty(), "pending: nothing sent");
    let id = approval_id(&text(&r));
    let (ok, out) = in_terminal(&cfg, &["approve", &id], "mcp-02\n");
    assert!(!ok, "the wrong target approves nothing: {out}");
    let (ok, out) = in_terminal(&cfg, &["approve", &id], &format!("{SERVICE}\n"));
    assert!(ok, "{out}");
    assert!(updates().is_empty(), "approval alone runs nothing");

    let r = call(&client, "rollback_deployment", args).await;
    let v = done(&r);
    let up = updates();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0]["query"]["rollback"], "previous");
    let st = common::stage(&v, "call");
    assert_eq!(
        st["captured"]["after"]["image"],
        "cctelegram/mcp-server:1.4.1"
    );
    assert_eq!(
        st["captured"]["after"]["update_state"],
        "rollback_completed"
    );
    // "ok" means the manager reported the rollback completed with the previous image in force.
    let waited = common::steps_with(st, "reports rollback_completed");
    assert_eq!(waited.len(), 1, "{st}");
    assert_eq!(waited[0]["status"], "ok");
    assert_eq!(v["approval"]["channels"], json!(["terminal"]));
    assert!(
        text(&r).contains("rolled back, now image cctelegram/mcp-server:1.4.1"),
        "{}",
        text(&r)
    );
    let s = state();
    assert_eq!(
        s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        "cctelegram/mcp-server:1.4.1"
    );
    assert_eq!(
        s["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        "cctelegram/mcp-server:1.4.2"
    );
    client.cancel().await.unwrap();
}

/// The rollback bug: `--rollback` toggles between the two last specs, so a retry of the same
/// call swapped back to the broken one under the same digest. Now the plan binds the service
/// as it was read: after one rollback the same arguments make a different plan (another
/// digest, another expected version) that says it would restore the broken image.
#[tokio::test]
async fn a_retried_rollback_is_a_new_plan_that_shows_what_it_would_restore() {
    let _g = SERIAL.lock().await;
    reset();
    let (cfg, _state) = gate_config("[approval]\nwait_secs = 1\n");
    let client = common::spawn(Some(&cfg), &[]).await;
    let args = json!({"service": SERVICE, "reason": "1.4.2 returns 502s"});
    let preview = |a: &Value| {
        let mut a = a.clone();
        a["dry_run"] = json!(true);
        a
    };
    let first = done(&call(&client, "rollback_deployment", preview(&args)).await);
    assert_eq!(
        first["plan"]["changes"][0]["before"],
        "cctelegram/mcp-server:1.4.2"
    );
    assert_eq!(
        first["plan"]["changes"][0]["after"],
        "cctelegram/mcp-server:1.4.1"
    );
    let r = call(&client, "rollback_deployment", args.clone()).await;
    let id = approval_id(&text(&r));
    let (ok, out) = in_terminal(&cfg, &["approve", &id], &format!("{SERVICE}\n"));
    assert!(ok, "{out}");
    done(&call(&client, "rollback_deployment", args.clone()).await);

    // The retry: same arguments, a different plan.
    let again = done(&call(&client, "rollback_deployment", preview(&args)).await);
    assert_ne!(
        again["plan"]["digest"], first["plan"]["digest"],
        "bound to the version"
    );
    assert_eq!(
        again["plan"]["changes"][0]["after"], "cctelegram/mcp-server:1.4.2",
        "it would restore the broken image"
    );
    let r = call(&client, "rollback_deployment", args).await;
    refused(&r, "pending");
    assert_ne!(
        approval_id(&text(&r)),
        id,
        "a new approval, never the old one"
    );
    assert_eq!(updates().len(), 1, "one rollback only");
    client.cancel().await.unwrap();
}

/// The service changes while the human decides: the plan's `expect` no longer holds, the call
/// is refused as `stale`, and no update is sent.
#[tokio::test]
async fn a_service_changed_while_the_human_decided_is_stale() {
    let _g = SERIAL.lock().await;
    reset();
    let (cfg, _state) = gate_config("[approval]\nwait_secs = 5\n");
    let h = common::Accepting {
        meanwhile: Some(std::sync::Arc::new(|| {
            let out = std::process::Command::new("docker")
                .args([
                    "-H",
                    &format!("tcp://{STANDIN}"),
                    "service",
                    "update",
                    "--detach",
                ])
                .args(["--limit-memory", "1g", SERVICE])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        })),
        ..Default::default()
    };
    let client = common::spawn_with(h.clone(), &cfg).await;
    let r = call(
        &client,
        "scale_service",
        json!({"service": SERVICE, "replicas": 6, "reason": "capacity"}),
    )
    .await;
    assert_eq!(h.asked.load(Ordering::SeqCst), 1);
    refused(&r, "stale");
    assert!(text(&r).contains("version 41 -> 42"), "{}", text(&r));
    let up = updates();
    assert_eq!(up.len(), 1, "only the other party's update: {up:?}");
    assert_eq!(
        state()["Spec"]["Mode"]["Replicated"]["Replicas"],
        3,
        "not scaled"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn dry_runs_read_the_service_and_send_no_update() {
    let _g = SERIAL.lock().await;
    reset();
    let (cfg, _state) = gate_config("");
    let client = common::spawn(Some(&cfg), &[]).await;
    for (tool, extra) in [
        ("rollback_deployment", json!({})),
        ("scale_service", json!({"replicas": 6})),
        ("set_memory_limit", json!({"limit": "2g"})),
    ] {
        let mut args = json!({"service": SERVICE, "reason": "preview", "dry_run": true});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let v = done(&call(&client, tool, args).await);
        assert_eq!(v["status"], "dry_run", "{tool}");
        let health = v["current_health"][0].as_str().unwrap();
        assert!(
            health.starts_with(&format!("{SERVICE}: version 41,")),
            "{health}"
        );
        let steps = common::planned_steps(&v);
        assert_eq!(
            steps[0]["step"], "expect",
            "bound to the service as read: {tool}"
        );
        assert_eq!(steps[0]["value"]["version"], 41);
        let argv = &steps.iter().find(|s| s["step"] == "run").unwrap()["argv"];
        assert_eq!(
            argv.as_array().unwrap()[..3],
            [json!("docker"), json!("-H"), json!("tcp://127.0.0.1:23750")]
        );
    }
    assert!(
        records()
            .iter()
            .all(|r| r["method"] == "GET" || r["method"] == "HEAD"),
        "only reads: {:?}",
        records()
    );
    assert_eq!(state()["Version"]["Index"], 41, "unchanged");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_configured_service_missing_from_the_swarm_is_reported_not_run() {
    let _g = SERIAL.lock().await;
    reset();
    let (cfg, _state) = gate_config(ALLOW);
    let text_cfg = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("services = [\"{SERVICE}\"]"),
        &format!("services = [\"{SERVICE}\", \"cctelegram_ghost\"]"),
    );
    std::fs::write(&cfg, text_cfg).unwrap();
    let client = common::spawn(Some(&cfg), &[]).await;
    let r = call(
        &client,
        "set_memory_limit",
        json!({"service": "cctelegram_ghost", "limit": "1g", "reason": "t"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    assert!(
        text(&r).contains("no such service: cctelegram_ghost"),
        "the CLI's own words: {}",
        text(&r)
    );
    let r = call(
        &client,
        "set_memory_limit",
        json!({"service": "cctelegram_other", "limit": "1g", "reason": "t"}),
    )
    .await;
    common::assert_invalid(&r, "service");
    assert!(updates().is_empty());
    client.cancel().await.unwrap();
}

/// No value our schema allows was found that the real CLI rejects: `limit` is checked and parsed
/// here exactly as the CLI parses it (and bounded), `replicas` is bounded by `max_replicas`, and
/// service names are configured tokens. This shows the CLI's own check that stands behind ours:
/// it refuses `2X` itself (exit 125) before it asks the engine anything beyond the version
/// ping it makes first.
#[tokio::test]
async fn the_cli_itself_refuses_a_bad_limit_before_it_reads_or_sends_anything() {
    let _g = SERIAL.lock().await;
    reset();
    let out = std::process::Command::new("docker")
        .args([
            "-H",
            &format!("tcp://{STANDIN}"),
            "service",
            "update",
            "--detach",
        ])
        .args(["--limit-memory", "2X", SERVICE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid argument \"2X\" for \"--limit-memory\" flag"),
        "{err}"
    );
    let recorded = records();
    assert!(
        recorded.iter().all(|r| r["path"] == "/_ping"),
        "{recorded:?}"
    );
}
