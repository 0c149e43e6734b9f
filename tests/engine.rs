//! The whole gate at engine level, with no root and no lab: an engine over the project's
//! registry acting through the recording executor, which records every command, request and
//! statement and answers from a small model of the fleet (a Swarm service, a target group, an
//! nginx file, processes). Policy, approval, blast radius, audit, stage order, halting,
//! compensation and cancellation are exercised here; the lab tests prove the real executors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use runbook_mcp::config::Config;
use runbook_mcp::engine::call::CallCtx;
use runbook_mcp::engine::executor::{Recorded, Recording, SqlReply, output, reply};
use runbook_mcp::engine::plan::{Command, Plan};
use runbook_mcp::engine::{Engine, Executors, Kind, Mode, Outcome, ToolError};
use runbook_mcp::exec::{Fleet, HttpClient};
use serde_json::{Value, json};

/// The Swarm service of the model.
struct Swarm {
    version: u64,
    image: String,
    previous: Option<String>,
    replicas: u64,
    memory: i64,
    state: String,
}

/// The fleet the recording executor answers for.
struct Model {
    swarm: Mutex<Swarm>,
    /// instance id → (state, reason)
    targets: Mutex<Vec<(String, String, Option<String>)>>,
    rate: Mutex<String>,
    fail_reload: AtomicBool,
    main_pid: AtomicU64,
    /// `service inspect` reads so far, and the read at which someone else deploys.
    inspect_reads: AtomicU64,
    deploy_at_read: AtomicU64,
    /// mcp-01's app answers 503 until it is restarted.
    down_until_restart: AtomicBool,
    /// The target group's health-check path.
    hc_path: Mutex<String>,
}

fn inspect(s: &Swarm) -> String {
    let spec = |image: &str| {
        json!({"Name": "web_app", "TaskTemplate": {"ContainerSpec": {"Image": image},
            "Resources": {"Limits": {"MemoryBytes": s.memory}}},
            "Mode": {"Replicated": {"Replicas": s.replicas}}})
    };
    let mut v = json!({"ID": "svc1", "Version": {"Index": s.version}, "Spec": spec(&s.image),
        "UpdateStatus": {"State": s.state}});
    if let Some(p) = &s.previous {
        v["PreviousSpec"] = spec(p);
    }
    json!([v]).to_string()
}

fn target_health(t: &[(String, String, Option<String>)]) -> String {
    let d: Vec<Value> = t
        .iter()
        .map(|(id, state, reason)| {
            let mut h = json!({"State": state});
            if let Some(r) = reason {
                h["Reason"] = json!(r);
            }
            json!({"Target": {"Id": id, "Port": 8080}, "TargetHealth": h})
        })
        .collect();
    json!({"TargetHealthDescriptions": d}).to_string()
}

const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1";

/// Scripts the recording executor from the model.
fn script(rec: &Recording, m: Arc<Model>) {
    let m1 = m.clone();
    rec.on_run(move |c: &Command| {
        let a = c.argv.join(" ");
        let mut s = m1.swarm.lock().unwrap();
        if a.contains("service inspect") {
            if m1.inspect_reads.fetch_add(1, Ordering::SeqCst)
                == m1.deploy_at_read.load(Ordering::SeqCst)
            {
                s.version += 1;
            }
            return Some(Ok(output(0, &inspect(&s))));
        }
        if a.contains("--rollback") {
            let prev = s.previous.take();
            s.previous = Some(s.image.clone());
            s.image = prev.unwrap_or_default();
            s.version += 1;
            s.state = "rollback_completed".into();
            return Some(Ok(output(0, "")));
        }
        if a.contains("service scale") {
            s.replicas = a.rsplit('=').next().unwrap().parse().unwrap();
            s.version += 1;
            return Some(Ok(output(0, "")));
        }
        if a.contains("--limit-memory") {
            s.memory = 512 << 20;
            s.version += 1;
            return Some(Ok(output(0, "")));
        }
        None
    });
    let m2 = m.clone();
    rec.on_run(move |c: &Command| {
        let a = c.argv.join(" ");
        let mut t = m2.targets.lock().unwrap();
        if a.contains("describe-target-health") {
            return Some(Ok(output(0, &target_health(&t))));
        }
        if a.contains("describe-target-groups") {
            let g = json!({"TargetGroups": [{"TargetGroupArn": ARN, "TargetGroupName": "tg",
                "HealthCheckIntervalSeconds": 30, "HealthCheckTimeoutSeconds": 5,
                "HealthCheckPath": *m2.hc_path.lock().unwrap(), "LoadBalancerArns": []}]});
            return Some(Ok(output(0, &g.to_string())));
        }
        for (op, state, reason) in [
            ("deregister-targets", "draining", None),
            ("register-targets", "initial", None),
        ] {
            if a.contains(op) {
                for x in t.iter_mut() {
                    if a.contains(&x.0) {
                        x.1 = state.into();
                        x.2 = reason.clone();
                    }
                }
                return Some(Ok(output(0, "{}")));
            }
        }
        None
    });
    let m4 = m.clone();
    rec.on_get(move |u| {
        (u.contains("127.0.0.11:8080") && m4.down_until_restart.load(Ordering::SeqCst))
            .then(|| Ok(reply(503)))
    });
    let m3 = m;
    rec.on_run(move |c: &Command| {
        let a = c.argv.join(" ");
        if a == "cat -- /etc/nginx/conf.d/ratelimit.conf" {
            let r = m3.rate.lock().unwrap();
            let t = format!("limit_req_zone $binary_remote_addr zone=api:1m rate={r};\n");
            return Some(Ok(output(0, &t)));
        }
        if a.starts_with("sed -i") {
            *m3.rate.lock().unwrap() = "10r/s".into();
        }
        if a.starts_with("cp -p -- /etc/nginx/conf.d/ratelimit.conf.runbook-") {
            *m3.rate.lock().unwrap() = "30r/s".into();
        }
        if a == "systemctl reload nginx" && m3.fail_reload.load(Ordering::SeqCst) {
            return Some(Ok(output(1, "")));
        }
        if a == "ps -eo pid=,lstart=,args=" {
            let main = m3.main_pid.load(Ordering::SeqCst);
            let ps = format!(
                " 101 Tue Dec 1 15:00:00 2026 /opt/bin/cctelegram-bridge --role bridge\n \
                 {main} Tue Dec 1 15:30:00 2026 /opt/bin/cctelegram-bridge --role bridge\n"
            );
            return Some(Ok(output(0, &ps)));
        }
        if a == "systemctl restart cctelegram-mcp" && c.at.host == "mcp-01" {
            m3.down_until_restart.store(false, Ordering::SeqCst);
        }
        if a == "systemctl restart cctelegram-bridge" {
            m3.main_pid.fetch_add(1, Ordering::SeqCst);
        }
        if a == "systemctl show cctelegram-bridge" {
            let main = m3.main_pid.load(Ordering::SeqCst);
            return Some(Ok(output(0, &format!("MainPID={main}\n"))));
        }
        None
    });
    rec.on_sql(|q| {
        let v = if q.contains("pg_postmaster_start_time") {
            "2026-12-01T00:00:00Z"
        } else {
            "3"
        };
        Some(Ok(SqlReply {
            rows: vec![vec![Some(v.into())]],
            notices: vec![],
        }))
    });
}

/// The notification credentials of the bench (files of these values).
const NOTIFY_SECRETS: [(&str, &str); 4] = [
    ("slack_bot_token", "xoxb-bench-slack-token-7f3a"),
    ("pagerduty_routing_key", "0123456789abcdef0123456789abcdef"),
    ("statuspage_api_key", "sp-bench-key-91c2"),
    ("telegram_bot_token", "123456:bench/token+x"),
];

struct Bench {
    engine: Engine,
    rec: Arc<Recording>,
    model: Arc<Model>,
    state: PathBuf,
    _dir: tempfile::TempDir,
}

fn bench(extra: &str) -> Bench {
    bench_at(extra, None, 10)
}

/// A bench whose hosts are at 127.0.0.(base+1..3), with its state in `state` (shared between
/// benches: several servers, one state directory) or its own.
fn bench_at(extra: &str, state: Option<&std::path::Path>, base: u8) -> Bench {
    bench_slack(extra, "", state, base)
}

/// [`bench_at`] with lines added to `[notify.slack]`.
fn bench_slack(extra: &str, slack: &str, state: Option<&std::path::Path>, base: u8) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = state.map_or_else(|| d.join("state"), PathBuf::from);
    for f in ["kh", "key", "db_url"] {
        std::fs::write(d.join(f), "postgres://u:p@127.0.0.9:5432/app").unwrap();
    }
    for (f, v) in NOTIFY_SECRETS {
        std::fs::write(d.join(f), v).unwrap();
    }
    let hosts: String = (1..=3)
        .map(|i| format!("[hosts.mcp-0{i}]\naddress = \"127.0.0.{}\"\nssh = {{ user = \"runbook\" }}\nsudo = false\n", base + i))
        .collect();
    let toml = format!(
        r##"[server]
state_dir = "{state}"
[ssh]
known_hosts = "{d}/kh"
identity_file = "{d}/key"
[secrets]
database_url = {{ file = "{d}/db_url" }}
slack_bot_token = {{ file = "{d}/slack_bot_token" }}
pagerduty_routing_key = {{ file = "{d}/pagerduty_routing_key" }}
statuspage_api_key = {{ file = "{d}/statuspage_api_key" }}
telegram_bot_token = {{ file = "{d}/telegram_bot_token" }}
[approval]
wait_secs = 0
[limits]
max_hosts_per_call = 3
{hosts}[hosts.db-01]
address = "127.0.0.21"
ssh = {{ user = "runbook" }}
sudo = false
[services.cctelegram-mcp]
manager = "systemd"
hosts = ["mcp-01", "mcp-02", "mcp-03"]
health_url = "http://{{address}}:8080/health"
tmp_pattern = "cctelegram-*"
[services.cctelegram-bridge]
manager = "systemd"
role = "bridge"
hosts = ["mcp-01", "mcp-02", "mcp-03"]
health_url = "http://{{address}}:8081/health"
[services.nginx]
manager = "systemd"
role = "proxy"
hosts = ["mcp-01", "mcp-02", "mcp-03"]
rate_limit_file = "/etc/nginx/conf.d/ratelimit.conf"
[services.postgresql]
manager = "systemd"
role = "database"
hosts = ["db-01"]
[database]
url_secret = "database_url"
service = "postgresql"
[prometheus]
url = "http://127.0.0.1:9"
rules_file = "/etc/prometheus/rules/runbook-mcp.yml"
[swarm]
docker_host = "tcp://127.0.0.1:23750"
services = ["web_app"]
max_replicas = 10
[aws]
cli = "aws"
region = "us-east-1"
target_group_arn = "{ARN}"
instances = {{ mcp-01 = "i-00000001", mcp-02 = "i-00000002", mcp-03 = "i-00000003" }}
[notify.slack]
api_base_url = "https://slack.test"
token_secret = "slack_bot_token"
channel = "#incidents"
{slack}
[notify.pagerduty]
events_url = "https://events.pagerduty.test"
routing_key_secret = "pagerduty_routing_key"
[notify.statuspage]
api_base_url = "https://api.statuspage.test"
page_id = "abc123"
api_key_secret = "statuspage_api_key"
[notify.telegram]
api_base_url = "https://api.telegram.test"
bot_token_secret = "telegram_bot_token"
chat_id = -1001234567890
{extra}"##,
        d = d.display(),
        state = state.display()
    );
    let path = d.join("config.toml");
    std::fs::write(&path, toml).unwrap();
    let config = Arc::new(Config::load(Some(&path)).unwrap());
    let rec = Recording::new();
    let model = Arc::new(Model {
        swarm: Mutex::new(Swarm {
            version: 7,
            image: "app:2".into(),
            previous: Some("app:1".into()),
            replicas: 3,
            memory: 2 << 30,
            state: "completed".into(),
        }),
        targets: Mutex::new(vec![
            ("i-00000001".into(), "healthy".into(), None),
            ("i-00000002".into(), "healthy".into(), None),
            (
                "i-00000003".into(),
                "unused".into(),
                Some("Target.NotRegistered".into()),
            ),
        ]),
        rate: Mutex::new("30r/s".into()),
        fail_reload: AtomicBool::new(false),
        main_pid: AtomicU64::new(500),
        inspect_reads: AtomicU64::new(0),
        deploy_at_read: AtomicU64::new(u64::MAX),
        down_until_restart: AtomicBool::new(false),
        hc_path: Mutex::new("/health".into()),
    });
    script(&rec, model.clone());
    let exec = Executors {
        fleet: Fleet::new(&config).unwrap(),
        http: HttpClient::new(1 << 20).unwrap(),
        actions: rec.clone(),
    };
    let engine = Engine::new(config, Mode::default(), runbook_mcp::tools::registry, exec);
    Bench {
        engine,
        rec,
        model,
        state,
        _dir: dir,
    }
}

fn args(v: Value) -> Option<serde_json::Map<String, Value>> {
    let Value::Object(m) = v else { panic!() };
    Some(m)
}

async fn call(b: &Bench, tool: &str, a: Value) -> Result<Value, ToolError> {
    match b
        .engine
        .call_with(CallCtx::local("tester"), tool, args(a))
        .await?
    {
        Outcome::Done(o) => Ok(o.structured),
        Outcome::InputRequired { .. } => panic!("no client channel here"),
    }
}

/// Approves the pending record the way an operator at a terminal does.
fn operator_approves(b: &Bench) {
    let store = b.engine.ctx().approvals().unwrap();
    let r = store
        .list()
        .unwrap()
        .into_iter()
        .find(|r| r.state == runbook_mcp::engine::approval::ApprovalState::Pending)
        .expect("a pending record");
    store
        .decide(
            &r.id,
            runbook_mcp::engine::approval::DecisionRec {
                approver: "operator".into(),
                channel: "terminal".into(),
                approved: true,
                at_ms: runbook_mcp::engine::approval::now_ms(),
                note: String::new(),
            },
            runbook_mcp::engine::approval::ApprovalState::Declined,
        )
        .unwrap();
}

/// Denies the pending record the way an operator at a terminal does (`runbook-mcp deny`).
fn operator_declines(b: &Bench) {
    let store = b.engine.ctx().approvals().unwrap();
    let r = store
        .list()
        .unwrap()
        .into_iter()
        .find(|r| r.state == runbook_mcp::engine::approval::ApprovalState::Pending)
        .expect("a pending record");
    store
        .decide(
            &r.id,
            runbook_mcp::engine::approval::DecisionRec {
                approver: "operator".into(),
                channel: "terminal".into(),
                approved: false,
                at_ms: runbook_mcp::engine::approval::now_ms(),
                note: String::new(),
            },
            runbook_mcp::engine::approval::ApprovalState::Denied,
        )
        .unwrap();
}

/// A declined plan of any action runs nothing: no command, no statement, no request of a
/// load test (the reads that made the plan are all the executor saw).
#[tokio::test]
async fn every_registered_action_declined_runs_nothing() {
    let planned: Vec<_> = runbook_mcp::tools::registry()
        .into_iter()
        .filter(|t| t.kind == Kind::Planned)
        .collect();
    for t in planned {
        let name = t.meta.name;
        let mut a = sample(name).unwrap_or_else(|| panic!("add `{name}` to sample()"));
        a["reason"] = json!("every-action decline test");
        let b = bench("");
        let a = with_incident(&b, a).await;
        let e = call(&b, name, a.clone()).await.unwrap_err();
        if e.refusal.map(|r| r.code()) != Some("pending") {
            // Destructive plans ask the terminal only; the recording bench has none.
            continue;
        }
        let seen = b.rec.log().len();
        operator_declines(&b);
        // The retry is refused again (a denied plan never turns into an approval).
        let e = call(&b, name, a).await.unwrap_err();
        assert!(e.refusal.is_some(), "{name}: {e}");
        // The retry reads what the first call read to make the plan (facts, current health),
        // and nothing more: no step of the plan ran.
        let log = b.rec.log();
        let (planning, after) = log.split_at(seen);
        for r in after {
            assert!(planning.contains(r), "{name} ran {r:?} after a decline");
        }
        let gets = |v: &[Recorded]| v.iter().filter(|r| matches!(r, Recorded::Get(_))).count();
        assert!(
            gets(after) <= gets(planning),
            "{name}: requests after a decline"
        );
    }
}

/// A call as the assistant makes it: pending, the operator approves, the same call runs.
async fn approved(b: &Bench, tool: &str, a: Value) -> Value {
    let e = call(b, tool, a.clone()).await.unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"), "{tool}: {e}");
    operator_approves(b);
    call(b, tool, a)
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// In a sample: replaced by a newly opened incident's id.
const OPEN_ONE: &str = "(open one)";

/// The sample with `OPEN_ONE` replaced by an incident opened on the bench.
async fn with_incident(b: &Bench, mut a: Value) -> Value {
    if a.get("incident") == Some(&json!(OPEN_ONE)) {
        let i = call(
            b,
            "open_incident",
            json!({"title": "web is down", "severity": "P1", "type": "service_outage"}),
        )
        .await
        .unwrap();
        a["incident"] = i["incident"]["id"].clone();
    }
    a
}

/// Arguments each planned action is exercised with. A new action fails the every-action test
/// until it is listed here.
fn sample(tool: &str) -> Option<Value> {
    Some(match tool {
        "restart_service" => {
            json!({"hosts": ["mcp-01"], "service": "cctelegram-mcp", "mode": "stop_start", "clean_tmp": true})
        }
        "rolling_restart" => json!({"hosts": ["mcp-01", "mcp-02"], "service": "cctelegram-mcp"}),
        "restart_bridge" => json!({"hosts": ["mcp-01"]}),
        "auto_recover" => json!({"hosts": ["mcp-01"], "service": "cctelegram-mcp"}),
        "reload_nginx" => json!({"hosts": ["mcp-01"]}),
        "adjust_rate_limit" => json!({"hosts": ["mcp-01"], "rate": "10r/s"}),
        "rollback_deployment" => json!({"service": "web_app"}),
        "scale_service" => json!({"service": "web_app", "replicas": 6}),
        "set_memory_limit" => json!({"service": "web_app", "limit": "512m"}),
        "run_database_maintenance" => json!({"operation": "vacuum_analyze"}),
        "restart_database" => json!({"hosts": ["db-01"]}),
        "update_health_check" => json!({"interval_seconds": 10, "timeout_seconds": 5}),
        "drain_instance" => json!({"hosts": ["mcp-02"]}),
        "restore_instance" => json!({"hosts": ["mcp-03"]}),
        "run_command" => json!({"hosts": ["mcp-01"], "argv": ["touch", "/var/tmp/marker"]}),
        "install_alert_rules" => json!({"p95_ms": 800}),
        "run_load_test" => json!({"host": "mcp-01", "requests": 20, "concurrency": 5}),
        "notify_slack" => json!({"text": "web is down; restarting"}),
        "create_incident_channel" => json!({"incident": OPEN_ONE}),
        "page_oncall" => json!({"action": "trigger", "summary": "web is down"}),
        "update_status_page" => {
            json!({"status": "investigating", "body": "Errors on web", "name": "Web errors"})
        }
        "send_telegram_message" => json!({"text": "web is down"}),
        _ => return None,
    })
}

#[tokio::test]
async fn every_registered_action_runs_only_its_sealed_steps() {
    let planned: Vec<_> = runbook_mcp::tools::registry()
        .into_iter()
        .filter(|t| t.kind == Kind::Planned)
        .collect();
    assert!(planned.len() >= 14);
    for t in planned {
        let name = t.meta.name;
        let mut a = sample(name).unwrap_or_else(|| panic!("add `{name}` to sample()"));
        a["reason"] = json!("every-action test");
        let b = bench("");
        if name == "auto_recover" {
            b.model.down_until_restart.store(true, Ordering::SeqCst);
        }
        let a = with_incident(&b, a).await;
        let v = approved(&b, name, a).await;
        let plan: Plan = serde_json::from_value(v["plan"].clone()).unwrap();
        let rid = v["request_id"].as_str().unwrap();
        let ran = b.rec.commands();
        // Statements that change something: only the plan's `sql` steps (reads are SELECTs).
        let changes: Vec<String> = b
            .rec
            .log()
            .into_iter()
            .filter_map(|r| match r {
                Recorded::Sql(q) if !q.starts_with("SELECT") => Some(q),
                _ => None,
            })
            .collect();
        for q in &changes {
            assert!(
                plan.statements().contains(&q.as_str()),
                "{name} ran `{q}`, not in its plan"
            );
        }
        // A load test's effect is its GETs, all of them to the URL its plan names.
        let load_urls: Vec<&str> = plan
            .stages
            .iter()
            .flat_map(|s| &s.steps)
            .filter_map(|s| match s {
                runbook_mcp::engine::plan::Step::Load { url, .. } => Some(url.as_str()),
                _ => None,
            })
            .collect();
        let loaded = b
            .rec
            .log()
            .into_iter()
            .filter(|r| matches!(r, Recorded::Get(u) if load_urls.contains(&u.as_str())))
            .count();
        if !load_urls.is_empty() {
            assert_eq!(loaded, 20, "{name}: the sealed request count");
        }
        // A notification's effect is its messages, each exactly a `send` step of the plan.
        let messages = b.rec.messages();
        for m in &messages {
            let planned = plan
                .stages
                .iter()
                .flat_map(|s| &s.steps)
                .any(|s| matches!(s, runbook_mcp::engine::plan::Step::Send(p) if p == m));
            assert!(planned, "{name} sent {m:?}, not in its plan");
        }
        assert!(
            !ran.is_empty() || !changes.is_empty() || loaded > 0 || !messages.is_empty(),
            "{name}: nothing ran"
        );
        for c in &ran {
            assert!(
                plan.permits(c, rid),
                "{name} ran `{}` on {}, which is not in its sealed plan",
                c.argv.join(" "),
                c.at.host
            );
        }
        assert_eq!(v["result"]["ok"], true, "{name}: {}", v["result"]);
    }
}

#[test]
fn every_tool_that_changes_something_is_a_planned_action() {
    for t in runbook_mcp::tools::registry() {
        if !t.meta.effect.is_read_only() {
            assert_eq!(
                t.kind,
                Kind::Planned,
                "{} must be registered with of_action",
                t.meta.name
            );
        }
    }
}

#[tokio::test]
async fn a_failed_stage_halts_the_plan_and_the_rest_never_starts() {
    let b = bench("");
    b.rec
        .on_get(|u| u.contains("127.0.0.12").then(|| Ok(reply(503))));
    let v = approved(
        &b,
        "rolling_restart",
        json!({"hosts": ["mcp-01", "mcp-02", "mcp-03"], "service": "cctelegram-mcp",
               "health_timeout_secs": 1, "reason": "leak"}),
    )
    .await;
    let r = &v["result"];
    assert_eq!(r["ok"], false);
    let st: Vec<&str> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(st, ["ok", "failed", "skipped"], "{r}");
    let restarts: Vec<String> = b
        .rec
        .commands()
        .iter()
        .filter(|c| c.argv.contains(&"restart".to_string()))
        .map(|c| c.at.host.clone())
        .collect();
    assert_eq!(restarts, ["mcp-01", "mcp-02"], "mcp-03 untouched");
}

#[tokio::test]
async fn a_failed_reload_puts_the_backup_back() {
    let b = bench("");
    b.model.fail_reload.store(true, Ordering::SeqCst);
    let v = approved(
        &b,
        "adjust_rate_limit",
        json!({"hosts": ["mcp-01"], "rate": "10r/s", "reason": "spike"}),
    )
    .await;
    let stage = &v["result"]["stages"][0];
    assert_eq!(stage["status"], "compensated", "{stage}");
    let last = stage["steps"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["step"]
            .as_str()
            .unwrap()
            .starts_with("compensate: cp -p --"),
        "{last}"
    );
    assert_eq!(*b.model.rate.lock().unwrap(), "30r/s", "file restored");
    let rid = v["request_id"].as_str().unwrap();
    let backup = format!("/etc/nginx/conf.d/ratelimit.conf.runbook-{rid}.bak");
    assert!(
        b.rec.commands().iter().any(|c| c.argv.contains(&backup)),
        "backup named by request"
    );
    assert_eq!(v["plan"]["changes"][0]["before"], "30r/s");
    assert_eq!(v["plan"]["undo"][0]["arguments"]["rate"], "30r/s");
}

#[tokio::test]
async fn a_changed_service_is_stale_and_nothing_runs() {
    let b = bench("");
    let a = json!({"service": "web_app", "reason": "bad deploy"});
    let e = call(&b, "rollback_deployment", a.clone())
        .await
        .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"));
    operator_approves(&b);
    // Someone deploys meanwhile: the service the plan was bound to is gone.
    b.model.swarm.lock().unwrap().version += 1;
    let e = call(&b, "rollback_deployment", a.clone())
        .await
        .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("stale"), "{e}");
    assert!(e.message.contains("\"version\":8"), "what changed: {e}");
    let e = call(&b, "rollback_deployment", a).await.unwrap_err();
    assert_eq!(
        e.refusal.map(|r| r.code()),
        Some("pending"),
        "a new plan, a new approval: {e}"
    );
    assert!(
        !b.rec
            .commands()
            .iter()
            .any(|c| c.argv.contains(&"--rollback".to_string())),
        "nothing rolled back"
    );
}

#[tokio::test]
async fn an_expect_that_changed_between_approval_and_run_refuses_as_stale() {
    let b = bench("");
    // Reads: the first call's fact (0), the second call's fact (1), its expect (2): someone
    // deploys right between the approved plan and its run.
    b.model.deploy_at_read.store(2, Ordering::SeqCst);
    let e = call(
        &b,
        "scale_service",
        json!({"service": "web_app", "replicas": 6, "reason": "load"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"));
    operator_approves(&b);
    let e = call(
        &b,
        "scale_service",
        json!({"service": "web_app", "replicas": 6, "reason": "load"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("stale"), "{e}");
    assert!(
        !b.rec
            .commands()
            .iter()
            .any(|c| c.argv.join(" ").contains("service scale"))
    );
}

#[tokio::test]
async fn policy_blast_radius_and_freeze_refuse_before_anything_runs() {
    let b = bench("[policy]\ntools = { reload_nginx = \"deny\" }\n");
    let e = call(
        &b,
        "reload_nginx",
        json!({"hosts": ["mcp-01"], "reason": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.code,
        runbook_mcp::engine::ErrorCode::UnknownTool,
        "denied tools are hidden"
    );
    let b = bench("");
    runbook_mcp::engine::guards::freeze(&b.state, "release").unwrap();
    let e = call(
        &b,
        "restart_service",
        json!({"hosts": ["mcp-01"], "service": "cctelegram-mcp", "reason": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("frozen"));
    assert!(b.rec.commands().is_empty(), "nothing ran while frozen");
    // Every other instance is down and mcp-01 is up: never the last healthy one.
    let b2 = bench("");
    b2.rec
        .on_get(|u| (!u.contains("127.0.0.11")).then(|| Ok(reply(503))));
    let e = call(
        &b2,
        "restart_service",
        json!({"hosts": ["mcp-01"], "service": "cctelegram-mcp", "reason": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("blast_radius"), "{e}");
    let e = call(&b2, "restart_service", json!({"hosts": ["mcp-01", "mcp-02", "mcp-03", "db-01"], "service": "cctelegram-mcp", "reason": "x"}))
        .await
        .unwrap_err();
    assert!(e.refusal.is_some() || e.field.is_some(), "{e}");
    assert!(b2.rec.commands().is_empty(), "nothing ran");
    let e = call(
        &b2,
        "rollback_deployment",
        json!({"service": "web_app", "hosts": ["mcp-01"], "reason": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.field.as_deref(),
        Some("hosts"),
        "one name per concept: {e}"
    );
}

#[tokio::test]
async fn the_audit_log_says_what_ran() {
    let b = bench("");
    let v = approved(
        &b,
        "reload_nginx",
        json!({"hosts": ["mcp-02"], "reason": "config change"}),
    )
    .await;
    let rid = v["request_id"].as_str().unwrap();
    let log = std::fs::read_to_string(b.state.join("audit.jsonl")).unwrap();
    let mine: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r.to_string().contains(rid))
        .collect();
    let kinds: Vec<String> = mine
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or("?").to_string())
        .collect();
    assert!(
        kinds.contains(&"intent".to_string()) && kinds.contains(&"outcome".to_string()),
        "{kinds:?}"
    );
    assert!(log.contains(&v["plan"]["digest"].as_str().unwrap().to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_starts_no_further_stage() {
    let b = bench("[policy]\ntools = { rolling_restart = \"allow\" }\n");
    let entered = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(AtomicBool::new(false));
    let (e2, r2) = (entered.clone(), release.clone());
    b.rec.on_run(move |c| {
        if c.at.host == "mcp-01" && c.argv.contains(&"restart".to_string()) {
            e2.notify_one();
            // The step in flight finishes: a moment later than the caller leaves.
            while !r2.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        None
    });
    let a = json!({"hosts": ["mcp-01", "mcp-02"], "service": "cctelegram-mcp", "reason": "leak"});
    let call = b
        .engine
        .call_with(CallCtx::local("tester"), "rolling_restart", args(a));
    tokio::select! {
        _ = call => panic!("the call should still be running"),
        () = entered.notified() => {}
    }
    release.store(true, Ordering::SeqCst);
    // The call future is dropped: the plan stops before mcp-02.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let audit = b.state.join("audit.jsonl");
    loop {
        let log = std::fs::read_to_string(&audit).unwrap_or_default();
        if log.contains("\"outcome\"") {
            assert!(log.contains("the caller went away"), "{log}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no outcome in the audit log"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        !b.rec
            .commands()
            .iter()
            .any(|c| c.at.host == "mcp-02" && c.argv.contains(&"restart".to_string()))
    );
}

/// Blocks the first restart on `host` until released, telling the test it started.
fn hold_restart(b: &Bench, host: &'static str) -> (Arc<tokio::sync::Notify>, Arc<AtomicBool>) {
    let entered = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(AtomicBool::new(false));
    let (e2, r2) = (entered.clone(), release.clone());
    b.rec.on_run(move |c| {
        if c.at.host == host && c.argv.contains(&"restart".to_string()) {
            e2.notify_one();
            while !r2.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        None
    });
    (entered, release)
}

/// An operator's abort and a freeze both stop a plan in flight before its next stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_and_freeze_stop_a_plan_in_flight_at_its_next_stage() {
    for how in ["abort", "freeze"] {
        let b = bench("[policy]\ntools = { rolling_restart = \"allow\" }\n");
        let (entered, release) = hold_restart(&b, "mcp-01");
        let a =
            json!({"hosts": ["mcp-01", "mcp-02"], "service": "cctelegram-mcp", "reason": "leak"});
        let engine = &b.engine;
        let run = engine.call_with(CallCtx::local("tester"), "rolling_restart", args(a));
        let stopper = async {
            entered.notified().await;
            if how == "abort" {
                let log = std::fs::read_to_string(b.state.join("audit.jsonl")).unwrap();
                let rid = log.split("\"request_id\":\"").nth(1).unwrap()[..10].to_string();
                runbook_mcp::engine::guards::abort(&b.state, &rid, "aborted by operator").unwrap();
            } else {
                runbook_mcp::engine::guards::freeze(&b.state, "release").unwrap();
            }
            release.store(true, Ordering::SeqCst);
        };
        let (out, ()) = tokio::join!(run, stopper);
        let Outcome::Done(o) = out.unwrap() else {
            panic!()
        };
        let r = &o.structured["result"];
        assert_eq!(r["stages"][1]["status"], "skipped", "{how}: {r}");
        let why = r["halted"].as_str().unwrap();
        assert!(
            why.contains(if how == "abort" {
                "aborted by operator"
            } else {
                "freeze"
            }),
            "{why}"
        );
        assert!(
            !b.rec
                .commands()
                .iter()
                .any(|c| c.at.host == "mcp-02" && c.argv.contains(&"restart".to_string()))
        );
    }
}

/// A busy target refuses before the approval is consumed: it is still there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_refuses_before_an_approval_is_consumed() {
    let b = bench("");
    let a = json!({"hosts": ["mcp-01"], "service": "cctelegram-mcp", "reason": "leak"});
    let e = call(&b, "restart_service", a.clone()).await.unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"));
    operator_approves(&b);
    let t = vec![runbook_mcp::engine::Target {
        host: "mcp-01".into(),
        service: Some("cctelegram-mcp".into()),
    }];
    let held = runbook_mcp::engine::guards::lock_targets(&b.state, &t, "other_tool", "R-00000000")
        .unwrap();
    let e = call(&b, "restart_service", a.clone()).await.unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("busy"), "{e}");
    drop(held);
    let v = call(&b, "restart_service", a).await.unwrap();
    assert_eq!(v["status"], "done", "the approval was still there: {v}");
}

/// The reason a human reads is one line of plain text.
#[tokio::test]
async fn a_reason_that_could_forge_the_prompt_is_refused() {
    let b = bench("");
    let forged =
        "disk full\nPlan:\n  - mcp-02: systemctl status cctelegram-mcp (read only)\n\u{1b}[8m";
    for reason in [
        forged,
        "a\u{9b}8m",
        "a\u{2028}b",
        "a\u{202e}b",
        "a\u{200b}b",
    ] {
        let e = call(
            &b,
            "restart_service",
            json!({"hosts": ["mcp-01"], "service": "cctelegram-mcp", "reason": reason}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("reason"), "{reason:?}: {e}");
    }
    assert!(b.rec.log().is_empty(), "nothing was read or run");
}

/// Two servers, two configurations naming the same hosts at different addresses, one state
/// directory: an approval given to one is never consumed by the same call on the other — it
/// is refused as stale, saying what changed, and the next call asks anew.
#[tokio::test]
async fn an_approval_is_bound_to_where_the_plan_runs() {
    let shared = tempfile::tempdir().unwrap();
    let a = bench_at("", Some(shared.path()), 10);
    let b = bench_at("", Some(shared.path()), 30);
    let args = json!({"hosts": ["mcp-01"], "service": "cctelegram-mcp", "reason": "leak"});
    let e = call(&a, "restart_service", args.clone()).await.unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"));
    operator_approves(&a);
    let e = call(&b, "restart_service", args.clone()).await.unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("stale"), "{e}");
    assert!(
        e.message.contains("127.0.0.11") && e.message.contains("127.0.0.31"),
        "what changed: {e}"
    );
    assert!(
        b.rec.commands().is_empty() && a.rec.commands().is_empty(),
        "nothing ran anywhere"
    );
    let e = call(&b, "restart_service", args.clone()).await.unwrap_err();
    assert_eq!(
        e.refusal.map(|r| r.code()),
        Some("pending"),
        "asks anew: {e}"
    );
    let e = call(&a, "restart_service", args).await.unwrap_err();
    assert_eq!(
        e.refusal.map(|r| r.code()),
        Some("pending"),
        "the old approval is gone: {e}"
    );
}

/// A plan whose facts show it lowers capacity is destructive: the record needs the terminal.
#[tokio::test]
async fn plans_that_lower_capacity_are_destructive() {
    let b = bench("");
    for (tool, a, destructive) in [
        (
            "set_memory_limit",
            json!({"service": "web_app", "limit": "4g"}),
            false,
        ),
        (
            "set_memory_limit",
            json!({"service": "web_app", "limit": "512m"}),
            true,
        ),
        (
            "scale_service",
            json!({"service": "web_app", "replicas": 6}),
            false,
        ),
        (
            "update_health_check",
            json!({"interval_seconds": 10, "timeout_seconds": 5}),
            false,
        ),
        (
            "update_health_check",
            json!({"interval_seconds": 10, "timeout_seconds": 5, "path": "/ready"}),
            true,
        ),
    ] {
        let mut a = a;
        a["reason"] = json!("capacity");
        let e = call(&b, tool, a.clone()).await.unwrap_err();
        assert_eq!(
            e.refusal.map(|r| r.code()),
            Some("pending"),
            "{tool} {a}: {e}"
        );
        assert_eq!(
            e.message.contains("typing the target back"),
            destructive,
            "{tool} {a}: {e}"
        );
    }
}

/// Names in `[policy]` are checked against the registry: a typo is an error naming the field.
#[test]
fn a_policy_that_names_no_tool_is_an_error() {
    let b = bench("[policy]\ntools = { restrat_service = \"deny\" }\n");
    let e = b.engine.check_policy().unwrap_err();
    assert_eq!(e.field, "policy.tools.restrat_service", "{e}");
    let b = bench("[policy]\ntoolsets = { remediation = \"deny\" }\n");
    assert_eq!(
        b.engine.check_policy().unwrap_err().field,
        "policy.toolsets.remediation"
    );
    assert!(
        bench("[policy]\ntools = { restart_service = \"deny\" }\n")
            .engine
            .check_policy()
            .is_ok()
    );
}

/// Answers yes, counting the questions.
#[derive(Default)]
struct Yes(std::sync::atomic::AtomicUsize);

impl runbook_mcp::engine::call::Asker for Yes {
    fn ask<'a>(
        &'a self,
        _m: &'a str,
    ) -> runbook_mcp::engine::call::BoxFuture<'a, runbook_mcp::engine::call::Answer> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { runbook_mcp::engine::call::Answer::Approve })
    }
}

/// Policy decides which channels count per effect: with `change = ["terminal"]` an eager
/// client is never asked, and with `change = ["client"]` the terminal's approval does not count.
#[tokio::test]
async fn policy_decides_which_channels_count() {
    let a = json!({"hosts": ["mcp-01"], "service": "cctelegram-mcp", "reason": "leak"});
    let b = bench("[approval.channels]\nchange = [\"terminal\"]\n");
    let yes = Arc::new(Yes::default());
    let mut ctx = CallCtx::local("tester");
    ctx.asker = Some(yes.clone());
    let e = b
        .engine
        .call_with(ctx, "restart_service", args(a.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"), "{e}");
    assert_eq!(
        yes.0.load(Ordering::SeqCst),
        0,
        "the client is not a channel for this plan"
    );
    let b = bench("[approval.channels]\nchange = [\"client\"]\n");
    call(&b, "restart_service", a.clone()).await.unwrap_err();
    let store = b.engine.ctx().approvals().unwrap();
    let r = store.list().unwrap().pop().unwrap();
    let d = runbook_mcp::engine::approval::DecisionRec {
        approver: "operator".into(),
        channel: "terminal".into(),
        approved: true,
        at_ms: runbook_mcp::engine::approval::now_ms(),
        note: String::new(),
    };
    let e = store
        .decide(
            &r.id,
            d,
            runbook_mcp::engine::approval::ApprovalState::Declined,
        )
        .unwrap_err();
    assert!(e.contains("does not count"), "{e}");
}

/// `run_command`: an allowlisted read runs at once (audited, its output returned); anything
/// else is a change that waits for approval; argv words are checked like any text.
#[tokio::test]
async fn run_command_reads_at_once_and_asks_for_anything_else() {
    let b = bench("");
    b.rec.on_run(|c| {
        (c.argv == ["cat", "/proc/loadavg"]).then(|| Ok(output(0, "0.42 0.30 0.20 1/99 1234\n")))
    });
    let v = call(
        &b,
        "run_command",
        json!({"hosts": ["mcp-01", "mcp-02"], "argv": ["cat", "/proc/loadavg"], "reason": "load?"}),
    )
    .await
    .unwrap();
    assert_eq!(v["status"], "done");
    assert_eq!(
        v["result"]["stages"][1]["steps"][0]["output"],
        "0.42 0.30 0.20 1/99 1234\n"
    );
    let log = std::fs::read_to_string(b.state.join("audit.jsonl")).unwrap();
    assert!(
        log.contains("\"tool\":\"run_command\""),
        "audited like every action"
    );
    let e = call(
        &b,
        "run_command",
        json!({"hosts": ["mcp-01"], "argv": ["systemctl", "restart", "nginx"], "reason": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"), "{e}");
    let e = call(
        &b,
        "run_command",
        json!({"hosts": ["mcp-01"], "argv": ["cat", "/proc/loadavg"], "sudo": true, "reason": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.refusal.map(|r| r.code()),
        Some("pending"),
        "sudo is never a read: {e}"
    );
    for (argv, field) in [
        (json!(["rm;", "x"]), "argv[0]"),
        (json!(["cat", "a\nb"]), "argv[1]"),
        (json!([]), "argv"),
    ] {
        let e = call(
            &b,
            "run_command",
            json!({"hosts": ["mcp-01"], "argv": argv, "reason": "x"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{e}");
    }
    let restarts = b
        .rec
        .commands()
        .iter()
        .filter(|c| c.argv.contains(&"restart".to_string()))
        .count();
    assert_eq!(restarts, 0, "nothing unapproved ran");
}

/// The effect is part of what is approved: an approval given while a call was a change never
/// runs it once its facts make it destructive.
#[tokio::test]
async fn an_approval_for_a_weaker_effect_never_runs_a_stronger_one() {
    let b = bench("");
    let a =
        json!({"interval_seconds": 10, "timeout_seconds": 5, "path": "/health", "reason": "flap"});
    // The path is already /health: setting it is a change.
    let e = call(&b, "update_health_check", a.clone())
        .await
        .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"), "{e}");
    assert!(!e.message.contains("typing the target back"), "{e}");
    operator_approves(&b);
    // Someone moves the path: the same call would now change it, and is destructive.
    *b.model.hc_path.lock().unwrap() = "/status".into();
    let e = call(&b, "update_health_check", a).await.unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("stale"), "{e}");
    assert!(
        !b.rec
            .commands()
            .iter()
            .any(|c| c.argv.join(" ").contains("modify-target-group")),
        "the change-level approval did not run the destructive call"
    );
}

/// `stop_start` never leaves a service stopped: a failure after the stop starts it again.
#[tokio::test]
async fn a_failed_clean_after_stop_starts_the_service_again() {
    let b = bench("");
    b.rec.on_run(|c| {
        (c.argv.first().map(String::as_str) == Some("find")).then(|| Ok(output(1, "")))
    });
    let v = approved(
        &b,
        "restart_service",
        json!({"hosts": ["mcp-01"], "service": "cctelegram-mcp", "mode": "stop_start", "clean_tmp": true, "reason": "wedged"}),
    )
    .await;
    let st = &v["result"]["stages"][0];
    assert_eq!(st["status"], "compensated", "{st}");
    let ran: Vec<String> = b
        .rec
        .commands()
        .iter()
        .map(|c| c.argv.join(" "))
        .filter(|a| a.starts_with("systemctl"))
        .collect();
    assert_eq!(
        ran,
        [
            "systemctl stop cctelegram-mcp",
            "systemctl start cctelegram-mcp"
        ],
        "started again"
    );
}

/// A toolset-wide `allow` never makes `run_command` arbitrary command execution.
#[tokio::test]
async fn run_command_changes_need_a_human_even_under_allow() {
    let b = bench("[policy]\ntoolsets = { remediate = \"allow\" }\n");
    let e = call(
        &b,
        "run_command",
        json!({"hosts": ["mcp-01"], "argv": ["touch", "/etc/x"], "reason": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"), "{e}");
    let v = call(
        &b,
        "run_command",
        json!({"hosts": ["mcp-01"], "argv": ["uptime"], "reason": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(v["status"], "done", "reads still run at once");
}

/// Draining several hosts is judged stage by stage on the group as the earlier stages leave
/// it: two healthy targets cannot both be drained, refused before anyone is asked.
#[tokio::test]
async fn draining_every_healthy_target_is_refused_before_asking() {
    let b = bench("");
    let e = call(
        &b,
        "drain_instance",
        json!({"hosts": ["mcp-01", "mcp-02"], "reason": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("blast_radius"), "{e}");
    assert!(
        b.engine
            .ctx()
            .approvals()
            .unwrap()
            .list()
            .unwrap()
            .is_empty(),
        "nobody was asked"
    );
}

/// The `send` step of a plan (its one message, for the notify tools).
fn message(v: &Value, i: usize) -> runbook_mcp::engine::send::Message {
    let plan: Plan = serde_json::from_value(v["plan"].clone()).unwrap();
    let sends: Vec<_> = plan
        .stages
        .into_iter()
        .flat_map(|s| s.steps)
        .filter_map(|s| match s {
            runbook_mcp::engine::plan::Step::Send(m) => Some(m),
            _ => None,
        })
        .collect();
    sends[i].clone()
}

/// The dry run shows the exact request with every credential a placeholder; only the
/// executor fills them — in the places the tool chose, never from a caller's text.
#[tokio::test]
async fn a_message_is_planned_exactly_and_its_secrets_never_show() {
    let b = bench("");
    let text = "deploy {secret:slack_bot_token} <!channel> & <http://x|y>";
    let v = call(
        &b,
        "notify_slack",
        json!({"text": text, "reason": "tell the team", "dry_run": true}),
    )
    .await
    .unwrap();
    let shown = v.to_string();
    for (_, secret) in NOTIFY_SECRETS {
        assert!(!shown.contains(secret), "a secret in the dry run: {shown}");
    }
    let m = message(&v, 0);
    assert_eq!(m.method, "POST");
    assert_eq!(m.url, "https://slack.test/api/chat.postMessage");
    assert_eq!(
        m.headers,
        vec![(
            "Authorization".to_string(),
            "Bearer {secret:slack_bot_token}".to_string()
        )]
    );
    // Slack markup is shown as typed: no @channel ping, no hidden link.
    assert_eq!(
        m.body["text"],
        "deploy {secret:slack_bot_token} &lt;!channel&gt; &amp; &lt;http://x|y&gt;"
    );
    assert!(b.rec.messages().is_empty(), "a dry run sent something");

    let config = &b.engine.ctx().config;
    let req =
        runbook_mcp::engine::send::request(&m, &config.secrets, std::time::Duration::from_secs(1))
            .unwrap();
    assert_eq!(
        req.headers,
        vec![(
            "Authorization".to_string(),
            "Bearer xoxb-bench-slack-token-7f3a".to_string()
        )]
    );
    let body: Value = serde_json::from_slice(req.body.as_ref().unwrap()).unwrap();
    assert_eq!(body, m.body, "a caller's placeholder stays text");

    // Telegram's token is in the path, percent-encoded; PagerDuty's key is filled in the body.
    let v = call(
        &b,
        "send_telegram_message",
        json!({"text": "hello", "reason": "r", "dry_run": true}),
    )
    .await
    .unwrap();
    let m = message(&v, 0);
    assert_eq!(
        m.url,
        "https://api.telegram.test/bot{secret:telegram_bot_token}/sendMessage"
    );
    let req =
        runbook_mcp::engine::send::request(&m, &config.secrets, std::time::Duration::from_secs(1))
            .unwrap();
    assert_eq!(
        req.url,
        "https://api.telegram.test/bot123456:bench%2Ftoken%2Bx/sendMessage"
    );
    let v = call(
        &b,
        "page_oncall",
        json!({"action": "trigger", "summary": "web down", "reason": "r", "dry_run": true}),
    )
    .await
    .unwrap();
    let m = message(&v, 0);
    assert_eq!(m.body["routing_key"], "{secret:pagerduty_routing_key}");
    let req =
        runbook_mcp::engine::send::request(&m, &config.secrets, std::time::Duration::from_secs(1))
            .unwrap();
    let body: Value = serde_json::from_slice(req.body.as_ref().unwrap()).unwrap();
    assert_eq!(body["routing_key"], "0123456789abcdef0123456789abcdef");
}

/// A 503 is retried and the message delivered once; the same call again is answered from the
/// server's record: nothing is sent and no approval is asked.
#[tokio::test]
async fn a_retried_message_is_answered_from_the_record() {
    let b = bench("");
    let failed = Arc::new(AtomicBool::new(false));
    let f = failed.clone();
    b.rec.on_send(move |_| {
        (!f.swap(true, Ordering::SeqCst)).then(|| {
            let mut r = reply(503);
            r.body = r#"{"ok":false,"error":"unavailable"}"#.into();
            Ok(r)
        })
    });
    let a = json!({"text": "web is down", "reason": "tell the team"});
    let v = approved(&b, "notify_slack", a.clone()).await;
    assert_eq!(v["result"]["ok"], true, "{}", v["result"]);
    assert_eq!(
        b.rec.messages().len(),
        2,
        "one failed attempt, one delivery"
    );
    let detail = v["result"]["stages"][0]["steps"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("after 2 attempts"), "{detail}");
    assert!(detail.contains("attempt 1: HTTP 503"), "{detail}");

    let again = call(&b, "notify_slack", a).await.unwrap();
    assert_eq!(again["status"], "already_delivered", "{again}");
    assert_eq!(b.rec.messages().len(), 2, "a repeat was sent");
}

/// Slack answers errors with HTTP 200 and `ok: false`: that is a failed step, not a delivery.
#[tokio::test]
async fn slack_ok_false_is_a_failure() {
    let b = bench("");
    b.rec.on_send(|_| {
        let mut r = reply(200);
        r.body = r#"{"ok":false,"error":"channel_not_found"}"#.into();
        Some(Ok(r))
    });
    let v = approved(&b, "notify_slack", json!({"text": "x", "reason": "r"})).await;
    assert_eq!(v["result"]["ok"], false);
    let detail = v["result"]["stages"][0]["steps"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("channel_not_found"), "{detail}");
    assert_eq!(b.rec.messages().len(), 1, "a refusal is not retried");
    // Not delivered: the next call asks again rather than answering from the record.
    let e = call(&b, "notify_slack", json!({"text": "x", "reason": "r"}))
        .await
        .unwrap_err();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"));
}

/// A request with no answer may have been delivered: the step says so, and the next attempt
/// says so again instead of claiming a clean first send.
#[tokio::test]
async fn an_unknown_outcome_says_the_message_may_have_been_sent() {
    let b = bench("");
    let once = Arc::new(AtomicBool::new(false));
    let o = once.clone();
    b.rec.on_send(move |_| {
        (!o.swap(true, Ordering::SeqCst)).then(|| {
            Err(runbook_mcp::exec::ExecError::TimedOut(
                std::time::Duration::from_secs(5),
            ))
        })
    });
    let a = json!({"text": "web is down", "reason": "r"});
    let v = approved(&b, "send_telegram_message", a.clone()).await;
    let step = &v["result"]["stages"][0]["steps"][0];
    assert_eq!(step["status"], "unknown", "{step}");
    assert!(
        step["detail"]
            .as_str()
            .unwrap()
            .contains("may have been sent")
    );
    assert_eq!(
        b.rec.messages().len(),
        1,
        "an unknown outcome is not blindly retried"
    );
    let v = approved(&b, "send_telegram_message", a).await;
    let step = &v["result"]["stages"][0]["steps"][0];
    assert_eq!(step["status"], "ok");
    assert!(
        step["detail"]
            .as_str()
            .unwrap()
            .contains("may have been sent"),
        "{step}"
    );
}

/// An incident's Slack messages form one thread; PagerDuty gets one dedup key per incident;
/// the first status-page update creates, the next patches what it created.
#[tokio::test]
async fn an_incident_keeps_its_thread_its_alert_and_its_page() {
    let b = bench("");
    let id = with_incident(&b, json!({"incident": OPEN_ONE})).await["incident"]
        .as_str()
        .unwrap()
        .to_string();
    let first = approved(
        &b,
        "notify_slack",
        json!({"text": "investigating", "incident": id, "reason": "r"}),
    )
    .await;
    assert!(message(&first, 0).body.get("thread_ts").is_none());
    let second = approved(
        &b,
        "notify_slack",
        json!({"text": "restarted web", "incident": id, "reason": "r"}),
    )
    .await;
    let m = message(&second, 0);
    assert_eq!(m.body["thread_ts"], "1.000001", "{}", m.body);
    assert!(
        m.body["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("[{id} · P1] "))
    );

    let v = approved(
        &b,
        "page_oncall",
        json!({"action": "trigger", "incident": id, "reason": "r"}),
    )
    .await;
    let m = message(&v, 0);
    assert_eq!(m.body["dedup_key"], format!("runbook-mcp/{id}"));
    assert_eq!(m.body["payload"]["severity"], "error");
    let v = approved(
        &b,
        "page_oncall",
        json!({"action": "resolve", "incident": id, "reason": "r"}),
    )
    .await;
    let m = message(&v, 0);
    assert_eq!(m.body["dedup_key"], format!("runbook-mcp/{id}"));
    assert!(m.body.get("payload").is_none());

    let v = approved(
        &b,
        "update_status_page",
        json!({"status": "investigating", "body": "Looking into errors", "incident": id, "reason": "r"}),
    )
    .await;
    let m = message(&v, 0);
    assert_eq!(m.method, "POST");
    assert_eq!(m.body["incident"]["name"], "web is down");
    let v = approved(
        &b,
        "update_status_page",
        json!({"status": "resolved", "body": "Fixed", "incident": id, "reason": "r"}),
    )
    .await;
    let m = message(&v, 0);
    assert_eq!(m.method, "PATCH");
    assert_eq!(
        m.url,
        "https://api.statuspage.test/v1/pages/abc123/incidents/sp1"
    );
}

/// Bad input names its field and sends nothing.
#[tokio::test]
async fn bad_messages_name_the_field() {
    let b = bench("");
    for (tool, a, field) in [
        ("notify_slack", json!({"text": ""}), "text"),
        ("notify_slack", json!({"text": "a\u{202E}b"}), "text"),
        (
            "notify_slack",
            json!({"text": "x", "channel": "#general"}),
            "channel",
        ),
        (
            "notify_slack",
            json!({"text": "x", "incident": "INC-nope"}),
            "incident",
        ),
        ("page_oncall", json!({"action": "resolve"}), "incident"),
        ("page_oncall", json!({"action": "trigger"}), "summary"),
        (
            "update_status_page",
            json!({"status": "resolved", "body": "x"}),
            "name",
        ),
        ("create_incident_channel", json!({}), "incident"),
        (
            "send_telegram_message",
            json!({"text": "a\u{1b}[8m"}),
            "text",
        ),
    ] {
        let mut a = a;
        a["reason"] = json!("r");
        let e = call(&b, tool, a.clone()).await.unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{tool} {a}: {e}");
    }
    assert!(b.rec.messages().is_empty());
}

/// `mirror_actions`: an approved change of a bound session is posted to its incident's thread
/// (after the answer, in the background); a message is never mirrored again.
#[tokio::test]
async fn approved_actions_are_mirrored_to_the_incident_thread() {
    let b = bench_slack("", "mirror_actions = true", None, 10);
    let id = with_incident(&b, json!({"incident": OPEN_ONE})).await["incident"]
        .as_str()
        .unwrap()
        .to_string();
    let session = Arc::new(runbook_mcp::engine::Session::default());
    session.bind(&id);
    let mut call_ctx = CallCtx::local("tester");
    call_ctx.session = Some(session);
    let a = args(json!({"hosts": ["mcp-01"], "reason": "mirror test"}));
    let e = b
        .engine
        .call_with(call_ctx.clone(), "reload_nginx", a.clone())
        .await
        .err()
        .unwrap();
    assert_eq!(e.refusal.map(|r| r.code()), Some("pending"));
    operator_approves(&b);
    let Ok(Outcome::Done(_)) = b.engine.call_with(call_ctx, "reload_nginx", a).await else {
        panic!("the approved reload did not run");
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let m = loop {
        if let Some(m) = b.rec.messages().first().cloned() {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "nothing mirrored");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(m.body["channel"], "#incidents");
    let t = m.body["text"].as_str().unwrap();
    assert!(
        t.starts_with(&format!("[{id} · P1] reload_nginx (R-")),
        "{t}"
    );
    assert!(t.contains("approved by"), "{t}");
}
