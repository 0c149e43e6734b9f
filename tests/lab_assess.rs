//! Every assessment tool against the real lab (three network-namespace hosts with sshd, the
//! daemonless systemctl, the demo service, its bridge and nginx; Prometheus; the load
//! balancer), driven through the real binary by rmcp's client. Needs `sudo lab/lab.sh start`;
//! fails (never skips) without it.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{call, host, lab_config, ok, spawn, text};
use serde_json::json;

const HOSTS: [&str; 3] = ["mcp-01", "mcp-02", "mcp-03"];
/// Every inventory host, in the order results come (by name): the database host first.
const ALL_HOSTS: [&str; 4] = ["db-01", "mcp-01", "mcp-02", "mcp-03"];
const SERVICES: [&str; 3] = ["cctelegram-bridge", "cctelegram-mcp", "nginx"];
const ADDRS: [&str; 3] = ["10.200.0.11", "10.200.0.12", "10.200.0.13"];

fn secret(name: &str) -> String {
    let dir = std::env::var("RUNBOOK_LAB_DIR").unwrap_or_else(|_| "/tmp/runbook-lab".into());
    std::fs::read_to_string(format!("{dir}/secrets/{name}"))
        .unwrap()
        .trim()
        .to_string()
}

/// The hosts of a per-host result, in order.
fn hosts_of(v: &serde_json::Value) -> Vec<&str> {
    v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect()
}

/// No secret may appear anywhere in what the client sees.
fn assert_no_secret(r: &rmcp::model::CallToolResult) {
    let all = serde_json::to_string(r).unwrap();
    for name in ["api_key", "telegram_bot_token", "database_url"] {
        assert!(
            !all.contains(&secret(name)),
            "secret {name} leaked into a tool result"
        );
    }
}

#[tokio::test]
async fn check_service_status_reads_every_service_on_every_host() {
    let client = spawn(Some(&lab_config()), &[]).await;
    let r = call(&client, "check_service_status", json!({})).await;
    let v = ok(&r);
    assert_eq!(v["down"], json!([]), "{}", text(&r));
    assert_eq!(hosts_of(v), ALL_HOSTS);
    for h in ALL_HOSTS {
        let hr = host(v, h);
        assert_eq!(hr["status"], "ok", "{hr}");
        let services = hr["result"]["services"].as_array().unwrap();
        let names: Vec<&str> = services
            .iter()
            .map(|s| s["service"].as_str().unwrap())
            .collect();
        // Each host runs only its own services: db-01 the database, the others the app.
        if h == "db-01" {
            assert_eq!(names, ["postgresql"]);
        } else {
            assert_eq!(names, SERVICES);
        }
        for s in services {
            assert_eq!(s["state"], "running", "{h}: {s}");
            assert!(s["main_pid"].as_u64().unwrap() > 1, "{h}: {s}");
        }
    }
    assert!(text(&r).contains("every service is running"));

    let r = call(
        &client,
        "check_service_status",
        json!({"hosts": ["mcp-02"], "services": ["nginx"]}),
    )
    .await;
    let v = ok(&r);
    assert_eq!(v["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(
        host(v, "mcp-02")["result"]["services"][0]["service"],
        "nginx"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn check_health_covers_instances_and_the_load_balancer_without_showing_the_key() {
    let client = spawn(Some(&lab_config()), &[]).await;
    let r = call(&client, "check_health", json!({})).await;
    let v = ok(&r);
    assert_eq!(v["unhealthy"], json!([]), "{}", text(&r));
    assert_eq!(hosts_of(v), ALL_HOSTS);
    // PostgreSQL has no HTTP health endpoint (check_database covers it): db-01 answers empty.
    assert_eq!(host(v, "db-01")["status"], "ok");
    assert_eq!(host(v, "db-01")["result"]["checks"], json!([]));
    for (h, addr) in HOSTS.iter().zip(ADDRS) {
        let checks = host(v, h)["result"]["checks"].as_array().unwrap().clone();
        assert_eq!(checks.len(), 3, "{h}: {checks:?}");
        let app = checks
            .iter()
            .find(|c| c["service"] == "cctelegram-mcp")
            .unwrap();
        assert_eq!(app["status_code"], 200);
        assert_eq!(app["url"], format!("http://{addr}:8080/health"));
        // The demo answers 401 without the key: a 200 proves the key was sent.
        assert!(app["detail"].as_str().unwrap().contains("healthy"));
    }
    assert_eq!(v["load_balancer"]["status_code"], 200);
    assert_no_secret(&r);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn check_system_resources_reads_each_hosts_own_filesystems() {
    let client = spawn(Some(&lab_config()), &[]).await;
    let r = call(&client, "check_system_resources", json!({"top": 5})).await;
    let v = ok(&r);
    assert_eq!(hosts_of(v), ALL_HOSTS);
    for h in ALL_HOSTS {
        let res = &host(v, h)["result"];
        assert!(res["memory"]["total_bytes"].as_u64().unwrap() > 1 << 30);
        assert!(res["cpus"].as_u64().unwrap() >= 1);
        assert_eq!(res["top_processes"].as_array().unwrap().len(), 5);
        let disks = res["disks"].as_array().unwrap();
        // Each host has its own 16 MiB tmpfs at /var/lib/cctelegram.
        let lib = disks
            .iter()
            .find(|d| d["mounted_on"] == "/var/lib/cctelegram")
            .unwrap_or_else(|| panic!("{h}: {disks:?}"));
        assert_eq!(lib["size_bytes"].as_u64().unwrap(), 16 << 20);
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn get_recent_logs_finds_a_request_made_now_on_each_host() {
    let client = spawn(Some(&lab_config()), &[]).await;
    let marker = format!("probe-{}", std::process::id());
    let http = reqwest::Client::new();
    for addr in ADDRS {
        let resp = http
            .get(format!("http://{addr}:8080/api/{marker}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let r = call(
        &client,
        "get_recent_logs",
        json!({"service": "cctelegram-mcp", "pattern": marker, "lines": 5}),
    )
    .await;
    let v = ok(&r);
    // By default only the hosts that run the service.
    assert_eq!(hosts_of(v), HOSTS);
    for h in HOSTS {
        let log = &host(v, h)["result"];
        assert_eq!(log["matched"], 1, "{h}: {log}");
        let e = &log["entries"][0];
        assert_eq!(e["level"], "info");
        assert!(e["message"].as_str().unwrap().contains(&marker));
    }
    let r = call(
        &client,
        "get_recent_logs",
        json!({"hosts": ["mcp-01"], "log": "security", "level": "error"}),
    )
    .await;
    let v = ok(&r);
    for e in host(v, "mcp-01")["result"]["entries"].as_array().unwrap() {
        assert!(
            matches!(e["level"].as_str(), Some("error" | "critical")),
            "{e}"
        );
    }
    let r = call(&client, "get_recent_logs", json!({"log": "audit"})).await;
    common::assert_invalid(&r, "log");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn get_bridge_status_reports_the_telegram_connection() {
    let client = spawn(Some(&lab_config()), &[]).await;
    let r = call(&client, "get_bridge_status", json!({})).await;
    let v = ok(&r);
    assert_eq!(v["service"], "cctelegram-bridge");
    assert_eq!(hosts_of(v), HOSTS, "only the hosts running a bridge");
    for h in HOSTS {
        let b = &host(v, h)["result"];
        assert_eq!(b["service"]["state"], "running", "{b}");
        assert_eq!(b["health"]["status_code"], 200);
        assert_eq!(b["reported"]["telegram"], "connected");
    }
    assert_no_secret(&r);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn run_diagnostics_covers_step_two_on_all_hosts_in_one_call() {
    let client = spawn(Some(&lab_config()), &[]).await;
    let started = Instant::now();
    let r = call(&client, "run_diagnostics", json!({})).await;
    let took = started.elapsed();
    let v = ok(&r);
    assert_eq!(hosts_of(v), ALL_HOSTS);
    let db = &host(v, "db-01")["result"];
    assert_eq!(db["system"]["hostname"], "db-01");
    assert_eq!(db["services"].as_array().unwrap().len(), 1, "{db}");
    assert_eq!(db["services"][0]["service"], "postgresql");
    assert_eq!(db["services"][0]["state"], "running");
    assert_eq!(db["health"], json!([]));
    assert!(
        db["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["command"].as_str().unwrap().contains("postgres")),
        "{db}"
    );
    let ports: Vec<u64> = db["listening"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["port"].as_u64())
        .collect();
    for p in [22, 5432, 9100] {
        assert!(ports.contains(&p), "db-01: port {p} not in {ports:?}");
    }
    for h in HOSTS {
        let d = &host(v, h)["result"];
        assert_eq!(d["system"]["hostname"], h, "each host has its own hostname");
        assert_eq!(d["services"].as_array().unwrap().len(), 3);
        assert!(
            d["services"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["state"] == "running")
        );
        assert_eq!(d["health"].as_array().unwrap().len(), 3);
        assert!(d["findings"].as_array().unwrap().len() >= 8);
        assert!(
            d["processes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["command"].as_str().unwrap().contains("cctelegram"))
        );
        let ports: Vec<u64> = d["listening"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["port"].as_u64())
            .collect();
        for p in [22, 80, 8080, 8081] {
            assert!(ports.contains(&p), "{h}: port {p} not in {ports:?}");
        }
        let metrics = d["metrics"].as_array().unwrap();
        assert!(
            metrics.iter().any(|m| m["name"] == "http_requests_total"),
            "{h}: {metrics:?}"
        );
    }
    assert_eq!(v["load_balancer"]["status_code"], 200);
    // The Telegram API stand-in answers 200 only to the lab's token: the secret was sent, and
    // the URL shown keeps its placeholder.
    let tg = &v["endpoints"][0];
    assert_eq!(tg["service"], "telegram_api");
    assert_eq!(tg["status_code"], 200, "{tg}");
    assert!(
        tg["url"]
            .as_str()
            .unwrap()
            .contains("{secret:telegram_bot_token}")
    );
    assert!(
        v["overall"] == "ok" || v["overall"] == "warn",
        "{}",
        text(&r)
    );
    assert_no_secret(&r);
    // Not a timing assertion (benchmarks measure speed): a sanity bound far above the target.
    assert!(took < Duration::from_secs(15), "{took:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn query_metrics_presets_and_ranges_come_from_prometheus() {
    let client = spawn(Some(&lab_config()), &[]).await;
    // Traffic so request_rate has something to say, then poll until Prometheus has scraped it.
    let http = reqwest::Client::new();
    for addr in ADDRS {
        for _ in 0..5 {
            http.get(format!("http://{addr}:8080/api/metrics-probe"))
                .send()
                .await
                .unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let r = call(
            &client,
            "query_metrics",
            json!({"preset": "request_rate", "window": "1m"}),
        )
        .await;
        let v = ok(&r).clone();
        let hosts: Vec<&str> = v["series"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["labels"]["host"].as_str())
            .collect();
        if HOSTS.iter().all(|h| hosts.contains(h)) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "request_rate never covered every host: {v}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(v["kind"], "instant");
    assert!(v["query"].as_str().unwrap().contains("[1m]"));

    let r = call(
        &client,
        "query_metrics",
        json!({"query": "up", "range": "1m", "step": "5s"}),
    )
    .await;
    let v = ok(&r);
    assert_eq!(v["kind"], "range");
    assert_eq!(v["result_type"], "matrix");
    let series = v["series"].as_array().unwrap();
    assert!(
        series.len() >= 11,
        "every target, db-01's node exporter too: {series:?}"
    );
    assert!(
        series
            .iter()
            .all(|s| !s["points"].as_array().unwrap().is_empty())
    );

    let r = call(
        &client,
        "query_metrics",
        json!({"query": "sum(rate(http_requests_total[5m]"}),
    )
    .await;
    common::assert_invalid(&r, "query");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn unknown_hosts_and_services_are_refused_by_name() {
    let client = spawn(Some(&lab_config()), &[]).await;
    let r = call(
        &client,
        "check_service_status",
        json!({"hosts": ["mcp-01", "mcp-04"]}),
    )
    .await;
    common::assert_invalid(&r, "hosts[1]");
    assert!(
        text(&r).contains("db-01, mcp-01, mcp-02, mcp-03"),
        "{}",
        text(&r)
    );
    let r = call(
        &client,
        "check_service_status",
        json!({"services": ["nginx", "nginx;id"]}),
    )
    .await;
    common::assert_invalid(&r, "services[1]");
    let r = call(&client, "check_health", json!({"services": ["postgres"]})).await;
    common::assert_invalid(&r, "services[0]");
    client.cancel().await.unwrap();
}
