//! The aftermath tools against the real lab: Prometheus with seven days of generated history
//! of known shape (lab/history.py, its facts in `$LAB/prometheus/history.json`) and alerting
//! rules installed through the gate. Needs `sudo lab/lab.sh start`; fails (never skips)
//! without it.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{call, done, gate_config, lab_config, ok, spawn, text};
use serde_json::{Value, json};

fn lab_dir() -> String {
    std::env::var("RUNBOOK_LAB_DIR").unwrap_or_else(|_| "/tmp/runbook-lab".into())
}

/// What the history generator wrote down about the shapes it generated.
fn facts() -> Value {
    let path = format!("{}/prometheus/history.json", lab_dir());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (start the lab: sudo lab/lab.sh start)"));
    serde_json::from_str(&text).unwrap()
}

fn metric<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

fn within(x: f64, want: f64, tol: f64, what: &str) {
    assert!((x - want).abs() <= tol, "{what}: {x}, want {want} ± {tol}");
}

#[tokio::test]
async fn impact_finds_the_generated_incident_and_its_figures() {
    let f = facts();
    let (start, end) = (
        f["incident"]["start"].as_f64().unwrap(),
        f["incident"]["end"].as_f64().unwrap(),
    );
    let client = spawn(Some(&lab_config()), &[]).await;
    let r = call(
        &client,
        "analyze_incident_impact",
        json!({"start": (start - 7200.0).to_string(), "end": (end + 7200.0).to_string()}),
    )
    .await;
    let v = ok(&r);
    let step = v["step_secs"].as_f64().unwrap();
    let bad = &v["bad_period"];
    let t = |s: &Value| {
        humantime::parse_rfc3339(s.as_str().unwrap())
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    // A rate window of four steps lags the edges by at most that much.
    within(t(&bad["start"]), start, 5.0 * step, "bad period start");
    within(t(&bad["end"]), end, 5.0 * step, "bad period end");
    within(
        metric(v, "error_ratio")["peak"].as_f64().unwrap(),
        0.30,
        0.01,
        "5xx ratio peak",
    );
    within(
        metric(v, "p95_ms")["peak"].as_f64().unwrap(),
        2000.0,
        100.0,
        "p95 peak",
    );
    // Three hosts at 0.5 cores in the incident, 0.2 outside it.
    within(
        metric(v, "cpu_cores")["peak"].as_f64().unwrap(),
        1.5,
        0.05,
        "cpu peak",
    );
    let above = metric(v, "error_ratio")["above_secs"].as_f64().unwrap();
    within(above, 3600.0, 5.0 * step, "time above the error threshold");
    let txt = text(&r);
    assert!(txt.starts_with("bad period"), "{txt}");
    assert!(
        txt.lines()
            .any(|l| l.starts_with("- error_ratio: peak 0.3")),
        "{txt}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn capacity_report_reads_the_generated_trends() {
    let f = facts();
    let client = spawn(Some(&lab_config()), &[]).await;
    let r = call(
        &client,
        "generate_capacity_report",
        json!({"end": f["end"].as_f64().unwrap().to_string(), "memory_limit_mib": 400}),
    )
    .await;
    let v = ok(&r);
    let trend = |metric: &str, host: &str| {
        v["trends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["metric"] == metric && t["host"] == host)
            .unwrap_or_else(|| panic!("no {metric} of {host} in {v}"))
            .clone()
    };
    let slope = f["memory"]["slope_bytes_per_day"].as_f64().unwrap();
    for host in ["mcp-01", "mcp-02", "mcp-03"] {
        let m = trend("memory_bytes", host);
        within(
            m["slope_per_day"].as_f64().unwrap(),
            slope,
            slope * 0.02,
            "memory slope",
        );
        let peak = f["memory"]["end_bytes"][host].as_f64().unwrap();
        within(
            m["peak"].as_f64().unwrap(),
            peak,
            peak * 0.01,
            "memory peak",
        );
        let headroom = (400.0 * 1_048_576.0 - m["last"].as_f64().unwrap()) / slope;
        within(
            m["days_of_headroom"].as_f64().unwrap(),
            headroom,
            0.5,
            "headroom",
        );
        let cpu = trend("cpu_cores", host);
        within(cpu["mean"].as_f64().unwrap(), 0.2018, 0.01, "cpu mean");
        let rps = trend("requests_per_sec", host);
        within(
            rps["mean"].as_f64().unwrap(),
            10.0,
            0.5,
            "request rate mean",
        );
    }
    // 400 MiB at 10 MiB/day is weeks away at most: a problem line names it.
    let txt = text(&r);
    assert!(
        txt.lines()
            .any(|l| l.starts_with("- mcp-03 memory_bytes") && l.contains("days to the limit")),
        "{txt}"
    );
    client.cancel().await.unwrap();
}

/// `promtool`'s own verdict on a rules file (and on unit tests of it, when given).
fn promtool(args: &[&str]) -> String {
    let out = std::process::Command::new("promtool")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const RULE_TESTS: &str = r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'http_requests_total{status="500",path="/api",host="mcp-01"}'
        values: '0+20x30'
      - series: 'http_requests_total{status="200",path="/api",host="mcp-01"}'
        values: '0+20x30'
      - series: 'process_memory_heap_used_bytes{host="mcp-01"}'
        values: '0+10485760x60'
    alert_rule_test:
      - eval_time: 10m
        alertname: ConsecutiveErrors
        exp_alerts:
          - exp_labels: {severity: high, host: mcp-01}
            exp_annotations: {summary: "High number of consecutive errors on mcp-01"}
      - eval_time: 15m
        alertname: High5xxRatio
        exp_alerts:
          - exp_labels: {severity: critical, host: mcp-01}
            exp_annotations: {summary: "More than the allowed share of 5xx answers on mcp-01"}
      - eval_time: 50m
        alertname: MemoryLeakDetection
        exp_alerts:
          - exp_labels: {severity: warning, host: mcp-01}
            exp_annotations: {summary: "Potential memory leak on mcp-01"}
"#;

async fn prometheus_rules() -> Value {
    let body = reqwest::get("http://127.0.0.1:9090/api/v1/rules")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn group<'a>(rules: &'a Value, name: &str) -> Option<&'a Value> {
    rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
}

#[tokio::test]
async fn alert_rules_pass_promtool_and_install_through_the_gate_with_a_restore() {
    let client = spawn(Some(&lab_config()), &[]).await;
    let r = call(&client, "generate_alert_rules", json!({"errors_in_5m": 50})).await;
    let v = ok(&r);
    assert_eq!(v["missing_series"], json!([]), "{}", text(&r));
    assert_eq!(v["series_checked"], true);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), v["yaml"].as_str().unwrap()).unwrap();
    std::fs::write(dir.path().join("tests.yml"), RULE_TESTS).unwrap();
    promtool(&[
        "check",
        "rules",
        dir.path().join("rules.yml").to_str().unwrap(),
    ]);
    promtool(&[
        "test",
        "rules",
        dir.path().join("tests.yml").to_str().unwrap(),
    ]);
    client.cancel().await.unwrap();

    // Installed through the gate (allowed by policy here), the group appears in Prometheus.
    let (cfg, _state) = gate_config("[policy]\ntools = { install_alert_rules = \"allow\" }\n");
    let client = spawn(Some(&cfg), &[]).await;
    let dry = call(
        &client,
        "install_alert_rules",
        json!({"reason": "test", "dry_run": true}),
    )
    .await;
    let plan = serde_json::to_string(&ok(&dry)["plan"]).unwrap();
    assert!(
        plan.contains("tee") && plan.contains("stdin") && plan.contains("ConsecutiveErrors"),
        "{plan}"
    );
    let r = call(
        &client,
        "install_alert_rules",
        json!({"reason": "add the runbook's alerts"}),
    )
    .await;
    let v = done(&r);
    assert_eq!(v["result"]["ok"], true, "{}", text(&r));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rules = prometheus_rules().await;
        if let Some(g) = group(&rules, "runbook-mcp") {
            assert_eq!(g["rules"].as_array().unwrap().len(), 4, "{g}");
            break;
        }
        assert!(Instant::now() < deadline, "group never loaded: {rules}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    client.cancel().await.unwrap();
    let file = format!("{}/prometheus/rules/runbook-mcp.yml", lab_dir());
    let installed = std::fs::read_to_string(&file).unwrap();

    // A reload that fails puts the previous file back.
    let (cfg, _state2) = gate_config("[policy]\ntools = { install_alert_rules = \"allow\" }\n");
    let broken = std::fs::read_to_string(&cfg).unwrap().replace(
        "\nrules_file = ",
        "\nrules_reload = [\"false\"]\nrules_file = ",
    );
    std::fs::write(&cfg, broken).unwrap();
    let client = spawn(Some(&cfg), &[]).await;
    let r = call(
        &client,
        "install_alert_rules",
        json!({"reason": "tighter", "errors_in_5m": 5}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    let v = r.structured_content.clone().unwrap();
    assert_eq!(v["result"]["ok"], false, "{}", text(&r));
    assert_eq!(v["result"]["stages"][0]["status"], "compensated", "{v}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        installed,
        "the previous file is back"
    );
    client.cancel().await.unwrap();
}

/// The demo limits each client to 50 requests a second: tests that send traffic take turns.
static TRAFFIC: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn api_key() -> String {
    std::fs::read_to_string(format!("{}/secrets/api_key", lab_dir()))
        .unwrap()
        .trim()
        .to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn recovery_is_judged_on_traffic_since_the_fix_and_no_traffic_is_unknown() {
    let _turn = TRAFFIC.lock().await;
    let client = spawn(Some(&lab_config()), &[]).await;
    // Nothing but probes in the last second: no traffic to judge by.
    let r = call(
        &client,
        "verify_recovery",
        json!({"since": (unix_now() - 1).to_string(), "checks": 1, "hosts": ["mcp-01"]}),
    )
    .await;
    assert_eq!(ok(&r)["verdict"], "unknown", "{}", text(&r));
    assert!(
        text(&r).contains("no requests since the fix"),
        "{}",
        text(&r)
    );

    // Real requests on every host after the "fix": recovered, with the counts quoted. The
    // series exists before the window opens: `increase()` counts nothing for the first sample
    // of a series that is new inside the window.
    let http = reqwest::Client::new();
    let addrs = ["10.200.0.11", "10.200.0.12", "10.200.0.13"];
    let send = |n: usize| {
        let http = http.clone();
        async move {
            for addr in addrs {
                for _ in 0..n {
                    let r = http
                        .get(format!("http://{addr}:8080/api/recovery-check"))
                        .header("X-API-Key", api_key())
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "{addr}: {}", r.status());
                }
            }
        }
    };
    send(1).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let q = "http://127.0.0.1:9090/api/v1/query?query=count(http_requests_total%7Bpath%3D%22%2Fapi%2Frecovery-check%22%7D)";
        let v: Value =
            serde_json::from_str(&http.get(q).send().await.unwrap().text().await.unwrap()).unwrap();
        if v["data"]["result"][0]["value"][1] == "3" {
            break;
        }
        assert!(Instant::now() < deadline, "the series never appeared: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let since = unix_now();
    send(20).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = call(
            &client,
            "verify_recovery",
            json!({"since": since.to_string(), "checks": 2, "interval_secs": 0}),
        )
        .await;
        let v = ok(&r);
        // Until Prometheus scraped all 20, fewer are counted.
        let counted = v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["requests"].as_f64().is_some_and(|n| n >= 20.0));
        if counted {
            assert_eq!(v["verdict"], "recovered", "{}", text(&r));
            for h in v["hosts"].as_array().unwrap() {
                assert_eq!(h["errors_5xx"].as_f64().unwrap(), 0.0, "{h}");
            }
            assert!(text(&r).starts_with("RECOVERED"), "{}", text(&r));
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {}", text(&r));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn what_changed_names_a_touched_file_and_the_swarm_deploy() {
    let client = spawn(Some(&lab_config()), &[]).await;
    let since = unix_now() - 2;
    common::lab_exec("mcp-02", &["touch", "/etc/nginx/nginx.conf"]);
    let r = call(&client, "what_changed", json!({"since": since.to_string()})).await;
    let v = ok(&r);
    let t = text(&r);
    assert!(
        t.lines()
            .any(|l| l.contains("mcp-02: /etc/nginx/nginx.conf modified")),
        "{t}"
    );
    assert!(!t.contains("mcp-01: /etc/nginx/nginx.conf"), "{t}");
    // The Swarm stand-in's service is read (deployed before this test's window: not changed).
    let deploys = v["deploys"].as_array().unwrap();
    assert_eq!(deploys.len(), 1, "{v}");
    assert!(
        !deploys[0]["updated_at"].as_str().unwrap().is_empty(),
        "{v}"
    );
    let r = call(&client, "what_changed", json!({"since": "7d"})).await;
    assert!(
        text(&r).contains("deploy cctelegram_mcp-server"),
        "{}",
        text(&r)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_load_test_runs_its_sealed_count_and_reports_latency() {
    let _turn = TRAFFIC.lock().await;
    let (cfg, _state) = gate_config("[policy]\ntools = { run_load_test = \"allow\" }\n");
    let client = spawn(Some(&cfg), &[]).await;
    let r = call(
        &client,
        "run_load_test",
        json!({"host": "mcp-01", "service": "cctelegram-mcp", "requests": 40, "concurrency": 4,
               "reason": "post-incident light load"}),
    )
    .await;
    let v = done(&r);
    let detail = v["result"]["stages"][0]["steps"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.starts_with("40 of 40 2xx"), "{detail}");
    assert!(text(&r).contains("p95"), "{}", text(&r));
    // Bad bounds are refused naming the field, and nothing runs.
    let r = call(
        &client,
        "run_load_test",
        json!({"requests": 5000, "reason": "too much"}),
    )
    .await;
    common::assert_invalid(&r, "requests");
    client.cancel().await.unwrap();
}
