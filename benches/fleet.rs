//! Benchmarks against the running lab (`sudo lab/lab.sh start`): prints a table of medians.
//! Run: `cargo bench --bench fleet` (release build). Speed is measured here, never in tests.
//!
//! Compares, in the same run: runbook-mcp's calls through the engine (warm ssh masters) with the
//! runbook's own way (a serial bash loop, a new ssh connection per command), plus cold start to
//! an answered `initialize`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runbook_mcp::config::Config;
use runbook_mcp::engine::Mode;
use serde_json::{Map, Value, json};

const RUNS: usize = 15;
/// The three app hosts the runbook's loop covers (the lab also has db-01).
const APP_HOSTS: [&str; 3] = ["mcp-01", "mcp-02", "mcp-03"];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn args(v: Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

fn main() {
    let lab = std::env::var("RUNBOOK_LAB_DIR").unwrap_or_else(|_| "/tmp/runbook-lab".into());
    let cfg_path = std::path::PathBuf::from(&lab).join("runbook-mcp.toml");
    assert!(
        cfg_path.exists(),
        "start the lab first: sudo lab/lab.sh start"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(8 << 20)
        .enable_all()
        .build()
        .unwrap();
    let engine =
        runbook_mcp::runtime::engine(Config::load(Some(&cfg_path)).unwrap(), Mode::default())
            .unwrap();
    let mut rows: Vec<(String, Duration)> = Vec::new();

    rt.block_on(async {
        // Warm every master.
        engine
            .call("check_service_status", args(json!({})))
            .await
            .unwrap();
        let time = |name: &str, tool: &'static str, a: Value| {
            let engine = &engine;
            let name = name.to_string();
            async move {
                let mut v = Vec::new();
                for _ in 0..RUNS {
                    let t = Instant::now();
                    let out = engine.call(tool, args(a.clone())).await.unwrap();
                    v.push(t.elapsed());
                    assert!(!out.is_error, "{tool}: {}", out.summary);
                }
                (name, median(v))
            }
        };
        rows.push(
            time(
                "run_diagnostics, 3 hosts (warm)",
                "run_diagnostics",
                json!({"hosts": APP_HOSTS}),
            )
            .await,
        );
        rows.push(
            time(
                "run_diagnostics, 1 host (warm)",
                "run_diagnostics",
                json!({"hosts": ["mcp-01"]}),
            )
            .await,
        );
        rows.push(
            time(
                "check_service_status, 3 hosts (warm)",
                "check_service_status",
                json!({"hosts": APP_HOSTS}),
            )
            .await,
        );
        rows.push(
            time(
                "check_system_resources, 3 hosts (warm)",
                "check_system_resources",
                json!({"hosts": APP_HOSTS}),
            )
            .await,
        );
        rows.push(
            time(
                "check_health, 3 hosts + LB",
                "check_health",
                json!({"hosts": APP_HOSTS}),
            )
            .await,
        );
        // A new PostgreSQL session per call (SCRAM login included), then four statements.
        rows.push(
            time(
                "check_database (connect + read)",
                "check_database",
                json!({}),
            )
            .await,
        );
        // One command on one host over the warm master.
        let host = engine.ctx().config.host("mcp-01").unwrap().clone();
        let mut v = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            engine
                .ctx()
                .fleet
                .run(&host, &runbook_mcp::exec::Cmd::new(["true"]))
                .await
                .unwrap();
            v.push(t.elapsed());
        }
        rows.push(("one command on one host (warm)".into(), median(v)));
    });

    // The runbook's way: serial loop, new ssh per command (as root, like the runbook).
    let key = format!("{lab}/ssh/client_key");
    let kh = format!("{lab}/ssh/known_hosts");
    let api_key = std::fs::read_to_string(format!("{lab}/secrets/api_key")).unwrap();
    let ssh = |host: &str, cmd: &str| {
        let st = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-i",
                &key,
                "-o",
                &format!("UserKnownHostsFile={kh}"),
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
            ])
            .arg(format!("root@{host}"))
            .arg(cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let _ = st;
    };
    let mut v = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        for h in ["10.200.0.11", "10.200.0.12", "10.200.0.13"] {
            ssh(h, "systemctl status cctelegram-mcp");
            ssh(
                h,
                &format!(
                    "curl -s -H 'X-API-Key: {}' http://localhost:8080/health",
                    api_key.trim()
                ),
            );
        }
        let _ = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-I",
                "http://10.200.0.1:8088/health",
            ])
            .status();
        ssh(
            "10.200.0.11",
            "tail -50 /var/log/cctelegram/application.log | grep -i error",
        );
        ssh("10.200.0.11", "top -bn1 | head -20");
        ssh("10.200.0.11", "df -h");
        ssh("10.200.0.11", "free -h");
        v.push(t.elapsed());
    }
    rows.push((
        "runbook's P0 step 2: serial loop, new ssh each".into(),
        median(v),
    ));

    // Cold start to an answered initialize.
    let bin = env!("CARGO_BIN_EXE_runbook-mcp");
    let mut v = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut child = Command::new(bin)
            .args(["--config", cfg_path.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"bench","version":"0"}}}}}}"#).unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        v.push(t.elapsed());
        assert!(line.contains("\"result\""), "{line}");
        drop(stdin);
        let _ = child.wait();
    }
    rows.push(("cold start to initialize answered".into(), median(v)));

    println!("| work (median of {RUNS}, serial loop: of 3) | time |");
    println!("|---|---|");
    for (name, d) in &rows {
        println!("| {name} | {} |", ms(*d));
    }
    let serial = rows
        .iter()
        .find(|r| r.0.starts_with("runbook's"))
        .unwrap()
        .1;
    let diag = rows[0].1;
    println!(
        "\nrun_diagnostics (3 hosts, covers all of step 2) vs the serial loop: {:.1}x faster",
        serial.as_secs_f64() / diag.as_secs_f64()
    );
}
