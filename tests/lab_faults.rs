//! Faults injected for real into the lab, one at a time (a process-wide lock serializes them),
//! each restoring the lab and verifying it afterwards: a stopped service, a frozen host,
//! Prometheus down, and the page-cache drop that once fooled the daemonless systemctl.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Client, call, host, lab_cmd, lab_config, lab_exec, ok, spawn, text};
use serde_json::json;

/// Each test has its own runtime; this lock (runtime-agnostic) keeps faults one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Polls `check_service_status` until every service on every host runs again.
async fn wait_all_running(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = call(client, "check_service_status", json!({})).await;
        if r.is_error == Some(false)
            && ok(&r)["down"] == json!([])
            && ok(&r)["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["status"] == "ok")
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "lab did not recover: {}",
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_stopped_service_reads_as_down_and_unhealthy() {
    let _g = SERIAL.lock().await;
    let client = spawn(Some(&lab_config()), &[]).await;
    lab_exec("mcp-02", &["systemctl", "stop", "cctelegram-mcp"]);
    let r = call(&client, "check_service_status", json!({})).await;
    let v = ok(&r).clone();
    let h = call(&client, "check_health", json!({})).await;
    let health = ok(&h).clone();
    lab_exec("mcp-02", &["systemctl", "start", "cctelegram-mcp"]);

    // Its health endpoint is dead; the load balancer routes around it and stays healthy.
    assert_eq!(
        health["unhealthy"],
        json!(["mcp-02/cctelegram-mcp"]),
        "{}",
        text(&h)
    );
    assert_eq!(health["load_balancer"]["status_code"], 200);

    assert_eq!(v["down"], json!(["mcp-02/cctelegram-mcp"]), "{}", text(&r));
    let svc = host(&v, "mcp-02")["result"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "cctelegram-mcp")
        .unwrap()
        .clone();
    assert_eq!(svc["state"], "stopped", "{svc}");
    assert!(
        text(&r).contains("cctelegram-mcp on mcp-02 is stopped"),
        "{}",
        text(&r)
    );
    wait_all_running(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_frozen_host_times_out_while_the_others_answer() {
    let _g = SERIAL.lock().await;
    let client = spawn(Some(&lab_config()), &[]).await;
    // Warm every master first, so the freeze hits an established connection.
    ok(&call(&client, "check_service_status", json!({})).await);
    lab_cmd(&["freeze", "mcp-03"]);
    let started = Instant::now();
    let r = call(&client, "check_service_status", json!({})).await;
    let took = started.elapsed();
    lab_cmd(&["thaw", "mcp-03"]);

    let v = ok(&r).clone();
    assert_eq!(host(&v, "mcp-03")["status"], "timed_out", "{}", text(&r));
    assert!(
        host(&v, "mcp-03")["error"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
    for h in ["db-01", "mcp-01", "mcp-02"] {
        assert_eq!(
            host(&v, h)["status"],
            "ok",
            "{h} must answer while mcp-03 hangs"
        );
    }
    assert_eq!(v["hosts"].as_array().unwrap().len(), 4, "{v}");
    assert!(text(&r).contains("mcp-03 timed out"), "{}", text(&r));
    // The lab's command timeout is 5 s: a hung host costs that (plus 2 s of grace), never the
    // whole call. This bounds behaviour, it does not measure speed.
    assert!(took < Duration::from_secs(10), "{took:?}");
    wait_all_running(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn prometheus_down_is_a_clear_error() {
    let _g = SERIAL.lock().await;
    let client = spawn(Some(&lab_config()), &[]).await;
    lab_cmd(&["stop-component", "prometheus"]);
    let r = call(&client, "query_metrics", json!({"query": "up"})).await;
    lab_cmd(&["start-component", "prometheus"]);

    assert_eq!(r.is_error, Some(true));
    let t = text(&r);
    assert!(
        t.contains("Prometheus at http://127.0.0.1:9090 is not reachable"),
        "{t}"
    );
    // Restored: it answers again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = call(&client, "query_metrics", json!({"query": "up"})).await;
        if r.is_error == Some(false) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not come back: {}",
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn dropping_caches_does_not_make_services_look_dead() {
    let _g = SERIAL.lock().await;
    let client = spawn(Some(&lab_config()), &[]).await;
    std::fs::write("/proc/sys/vm/drop_caches", "2\n").expect("drop_caches (needs root)");
    let r = call(&client, "check_service_status", json!({})).await;
    assert_eq!(ok(&r)["down"], json!([]), "after drop_caches: {}", text(&r));
    client.cancel().await.unwrap();
}

/// ssh master processes of this test process's engine for `dest` (their command line names our
/// control directory, `ctl-<pid>/`, and the destination).
fn masters(dest: &str) -> Vec<u32> {
    let marker = format!("ctl-{}/", std::process::id());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("ssh"))
            && args.iter().any(|a| a == "-M")
            && args.iter().any(|a| a.contains(&marker))
            && args.last().is_some_and(|a| a == dest)
        {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn a_dead_ssh_master_is_reopened_on_the_next_call() {
    use runbook_mcp::config::Config;
    use runbook_mcp::engine::Mode;
    let _g = SERIAL.lock().await;
    let engine =
        runbook_mcp::runtime::engine(Config::load(Some(&lab_config())).unwrap(), Mode::default())
            .unwrap();
    let args = json!({"hosts": ["mcp-01"]}).as_object().cloned();
    let out = engine
        .call("check_service_status", args.clone())
        .await
        .unwrap();
    assert_eq!(
        out.structured["hosts"][0]["status"], "ok",
        "{}",
        out.summary
    );
    let before = masters("10.200.0.11");
    assert_eq!(before.len(), 1, "one master per host: {before:?}");

    std::process::Command::new("kill")
        .arg("-9")
        .arg(before[0].to_string())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{}/cmdline", before[0])).exists()
        && masters("10.200.0.11").contains(&before[0])
    {
        assert!(
            Instant::now() < deadline,
            "master {} did not die",
            before[0]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let out = engine.call("check_service_status", args).await.unwrap();
    assert_eq!(
        out.structured["hosts"][0]["status"], "ok",
        "after the master died: {}",
        out.summary
    );
    let after = masters("10.200.0.11");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after[0], before[0], "a new master was opened");
}
