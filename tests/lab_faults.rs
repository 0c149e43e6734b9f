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

/// Puts the three faults back the way the lab runs, also when an assertion fails.
struct ThreeFaults;

impl ThreeFaults {
    fn inject() -> Self {
        lab_exec("mcp-01", &["systemctl", "stop", "cctelegram-mcp"]);
        lab_exec(
            "mcp-02",
            &["sh", "-c", "echo 5xx > /run/cctelegram/mcp.mode"],
        );
        lab_exec(
            "mcp-03",
            &[
                "fallocate",
                "-l",
                "15M",
                "/var/lib/cctelegram/runbook-test-fill",
            ],
        );
        ThreeFaults
    }
}

impl Drop for ThreeFaults {
    fn drop(&mut self) {
        lab_exec("mcp-01", &["systemctl", "start", "cctelegram-mcp"]);
        lab_exec(
            "mcp-02",
            &["sh", "-c", "echo ok > /run/cctelegram/mcp.mode"],
        );
        lab_exec(
            "mcp-03",
            &["rm", "-f", "/var/lib/cctelegram/runbook-test-fill"],
        );
    }
}

/// DESIGN §9 on a lab with a fault on every app host (a healthy lab proves nothing): each
/// fault is named in the text the model reads, and the text stays within its budget.
#[tokio::test]
async fn every_fault_is_named_in_a_text_within_budget() {
    let _g = SERIAL.lock().await;
    let client = spawn(Some(&lab_config()), &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    let listed = serde_json::to_string(&tools).unwrap().len();
    assert!(listed <= 100_000, "tools/list is {listed} bytes");

    let faults = ThreeFaults::inject();
    let started = std::time::SystemTime::now();
    let app = json!({"hosts": ["mcp-01", "mcp-02", "mcp-03"]});
    let r = call(&client, "run_diagnostics", app.clone()).await;
    let t = text(&r);
    assert_eq!(r.content.len(), 1, "one text block, not the JSON again");
    assert!(t.len() <= 4_000, "{} characters on 3 hosts:\n{t}", t.len());
    let line = |host: &str, needle: &str| {
        assert!(
            t.lines().any(|l| l.contains(host) && l.contains(needle)),
            "no line names {host} and {needle}:\n{t}"
        )
    };
    line("mcp-01", "cctelegram-mcp");
    line("mcp-01", "stopped");
    line("mcp-02", "HTTP 503");
    line("mcp-03", "disk /var/lib/cctelegram");
    assert!(t.starts_with("CRITICAL"), "{t}");
    assert!(t.contains("next: "), "{t}");
    // One more host (db-01, healthy) costs at most 300 characters.
    let all = text(&call(&client, "run_diagnostics", json!({})).await);
    assert!(
        all.len() <= t.len() + 300,
        "{} -> {}:\n{all}",
        t.len(),
        all.len()
    );

    // The aftermath tools name the same faults.
    let perf = call(&client, "validate_performance", json!({"requests": 5})).await;
    let pt = text(&perf);
    assert!(
        pt.lines().any(|l| l.starts_with("- mcp-01 cctelegram-mcp")),
        "{pt}"
    );
    assert!(
        pt.lines()
            .any(|l| l.starts_with("- mcp-02 cctelegram-mcp") && l.contains("HTTP 503")),
        "{pt}"
    );
    let since = started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 5;
    let rec = call(
        &client,
        "verify_recovery",
        json!({"since": since.to_string(), "checks": 1, "hosts": ["mcp-01", "mcp-02"]}),
    )
    .await;
    assert_eq!(ok(&rec)["verdict"], "not_recovered", "{}", text(&rec));
    let logs = call(
        &client,
        "analyze_logs",
        json!({"since": since.to_string(), "hosts": ["mcp-02"]}),
    )
    .await;
    let lt = text(&logs);
    assert!(
        lt.contains("error line(s)") && lt.contains("GET /health 503"),
        "{lt}"
    );
    assert!(
        ok(&logs)["total"]["errors"]["total"].as_u64().unwrap() >= 5,
        "{lt}"
    );

    // Prometheus' alerting rules see the stopped service and the full disk.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = call(&client, "get_alerts", json!({})).await;
        let at = text(&a);
        let has =
            |name: &str, host: &str| {
                ok(&a)["alerts"].as_array().unwrap().iter().any(|x| {
                    x["name"] == name && x["labels"]["host"] == host && x["active_at"] != ""
                })
            };
        if has("ServiceDown", "mcp-01") && has("DiskNearlyFull", "mcp-03") {
            assert!(at.contains("ServiceDown host=mcp-01"), "{at}");
            break;
        }
        assert!(Instant::now() < deadline, "alerts never came: {at}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // An incident opened now records what monitoring knew: the firing alerts, the earliest
    // `activeAt` as the detection time (its own state directory: no other test binds to it).
    let (cfg, _state) = common::gate_config("");
    let inc = spawn(Some(&cfg), &[]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = call(
            &inc,
            "open_incident",
            json!({"title": "three faults", "severity": "P0", "type": "service_outage"}),
        )
        .await;
        let alerts = ok(&r)["incident"]["detection"]["alerts"].clone();
        let firing = |a: &str| alerts.as_array().is_some_and(|v| v.iter().any(|x| x == a));
        if firing("ServiceDown host=mcp-01") {
            assert!(text(&r).contains("detected "), "{}", text(&r));
            break;
        }
        // Pending alerts fire after their `for:`; a new incident is cheap.
        assert!(
            Instant::now() < deadline,
            "no firing ServiceDown: {}",
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    inc.cancel().await.unwrap();
    let res = text(&call(&client, "check_system_resources", json!({})).await);
    assert!(
        res.lines().any(|l| l.starts_with("- mcp-03: ")
            && l.contains("disk /var/lib/cctelegram 9")
            && l.contains("free")),
        "{res}"
    );
    for (tool, args) in [
        ("what_changed", json!({})),
        ("check_service_status", json!({})),
        ("check_health", json!({})),
        ("check_system_resources", json!({})),
    ] {
        let n = text(&call(&client, tool, args).await).len();
        assert!(n <= 40_000, "{tool}: {n} characters");
    }
    drop(faults);
    wait_all_running(&client).await;
    client.cancel().await.unwrap();
}
