//! The approval gate against the real lab, through real MCP clients: for every channel,
//! approve → the action happened; decline / cancel / expiry / deny → it did not (the service's
//! main PID is unchanged); pending → operator → the repeated call runs once; and the bypasses
//! of docs/SECURITY.md. Serial: these tests restart the lab's services.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{approval_id, cli, gate_config, in_terminal, main_pid, text};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::{Value, json};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const FAST: &str = "[approval]\nwait_secs = 2\n";

/// A client that declares elicitation and answers every request the same way.
#[derive(Clone)]
struct Answering {
    action: ElicitationAction,
    approve: bool,
    asked: Arc<AtomicUsize>,
}

impl Answering {
    fn new(action: ElicitationAction, approve: bool) -> Self {
        Self {
            action,
            approve,
            asked: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl ClientHandler for Answering {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("gate-test", "0.0.1"),
        )
    }

    async fn create_elicitation(
        &self,
        req: ElicitRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let ElicitRequestParams::FormElicitationParams { message, .. } = req else {
            panic!("form expected")
        };
        assert!(
            message.contains("systemctl restart cctelegram-mcp"),
            "the prompt shows the exact plan: {message}"
        );
        let r = ElicitResult::new(self.action.clone());
        Ok(if self.action == ElicitationAction::Accept {
            r.with_content(json!({"approve": self.approve}))
        } else {
            r
        })
    }
}

async fn call<H: ClientHandler>(
    c: &RunningService<RoleClient, H>,
    tool: &str,
    args: Value,
) -> CallToolResult {
    let Value::Object(m) = args else { panic!() };
    c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(m))
        .await
        .unwrap()
}

fn restart(host: &str) -> Value {
    json!({"hosts": [host], "service": "cctelegram-mcp", "reason": "gate test"})
}

fn refused(r: &CallToolResult, code: &str) {
    assert_eq!(
        r.is_error,
        Some(true),
        "expected a refusal, got {}",
        text(r)
    );
    assert!(
        text(r).starts_with(&format!("refused ({code})")),
        "expected `{code}`: {}",
        text(r)
    );
    assert!(text(r).contains("Do not retry blindly"));
}

#[tokio::test]
async fn elicitation_accept_runs_the_plan_decline_and_cancel_do_not() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config(FAST);
    for (action, approve, expect) in [
        (ElicitationAction::Decline, false, Some("declined")),
        (ElicitationAction::Cancel, false, Some("cancelled")),
        (ElicitationAction::Accept, false, Some("declined")),
        (ElicitationAction::Accept, true, None),
    ] {
        let h = Answering::new(action.clone(), approve);
        let client = common::spawn_with(h.clone(), &cfg).await;
        let before = main_pid("mcp-02", "cctelegram-mcp");
        let r = call(&client, "restart_service", restart("mcp-02")).await;
        let after = main_pid("mcp-02", "cctelegram-mcp");
        assert_eq!(h.asked.load(Ordering::SeqCst), 1, "{action:?}: asked once");
        match expect {
            Some(code) => {
                refused(&r, code);
                assert_eq!(before, after, "{action:?}/{approve}: nothing may run");
            }
            None => {
                assert_eq!(r.is_error, Some(false), "{}", text(&r));
                assert_ne!(before, after, "approved: the service restarted");
                let v = r.structured_content.unwrap();
                assert_eq!(v["approval"]["channels"], json!(["elicitation"]));
                let st = common::stage(&v, "mcp-02");
                assert_eq!(st["status"], "ok", "{st}");
                assert_eq!(
                    common::steps_with(st, "wait until")[0]["status"],
                    "ok",
                    "healthy after: {st}"
                );
            }
        }
        client.cancel().await.unwrap();
    }
    let out = cli(&cfg, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn without_elicitation_pending_then_operator_then_once() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config(FAST);
    let h = Counting::default();
    let client = common::spawn_with(h.clone(), &cfg).await;
    let before = main_pid("mcp-02", "cctelegram-mcp");
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    refused(&r, "pending");
    let id = approval_id(&text(&r));
    assert!(text(&r).contains(&format!("runbook-mcp approve {id}")));
    assert!(
        h.progress.load(Ordering::SeqCst) >= 1,
        "the wait was announced by progress"
    );
    assert_eq!(
        main_pid("mcp-02", "cctelegram-mcp"),
        before,
        "pending: nothing ran"
    );

    // The assistant cannot approve through a pipe or its own tools.
    let out = cli(&cfg, &["approve", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs an interactive terminal"));
    let r = call(&client, "restart_service", json!({"hosts": ["mcp-02"], "service": "cctelegram-mcp", "reason": "gate test", "approved": true})).await;
    common::assert_invalid(&r, "approved");

    // An approval for one plan cannot run another.
    let (ok, out) = in_terminal(&cfg, &["approve", &id], "y\n");
    assert!(ok, "{out}");
    let r = call(&client, "restart_service", restart("mcp-01")).await;
    refused(&r, "pending");
    assert_ne!(approval_id(&text(&r)), id);

    // The same call runs, once.
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let after = main_pid("mcp-02", "cctelegram-mcp");
    assert_ne!(before, after);
    let v = r.structured_content.unwrap();
    assert_eq!(v["approval"]["id"], id);
    assert_eq!(v["approval"]["channels"], json!(["terminal"]));
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    refused(&r, "pending");
    assert_ne!(
        approval_id(&text(&r)),
        id,
        "a third call needs a new approval"
    );
    assert_eq!(main_pid("mcp-02", "cctelegram-mcp"), after);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn deny_and_expiry_refuse() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config(FAST);
    let client = common::spawn(Some(&cfg), &[]).await;
    let before = main_pid("mcp-02", "cctelegram-mcp");
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    let id = approval_id(&text(&r));
    let (ok, out) = in_terminal(&cfg, &["deny", &id, "--reason", "not-now"], "");
    assert!(ok, "{out}");
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    // The denied record stays denied; the repeated call opens a new request and waits.
    refused(&r, "pending");
    assert_ne!(approval_id(&text(&r)), id);
    assert_eq!(main_pid("mcp-02", "cctelegram-mcp"), before);
    client.cancel().await.unwrap();

    let (cfg, _state) = gate_config("[approval]\nwait_secs = 2\nttl_secs = 1\n");
    let client = common::spawn(Some(&cfg), &[]).await;
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    refused(&r, "expired");
    assert_eq!(main_pid("mcp-02", "cctelegram-mcp"), before);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn elicitation_alone_cannot_run_a_destructive_action() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config(FAST);
    let h = Answering::new(ElicitationAction::Accept, true);
    let client = common::spawn_with(h.clone(), &cfg).await;
    let before = main_pid("mcp-02", "cctelegram-mcp");
    let mut args = restart("mcp-02");
    args["mode"] = json!("stop_start");
    let r = call(&client, "restart_service", args.clone()).await;
    refused(&r, "pending");
    assert_eq!(
        h.asked.load(Ordering::SeqCst),
        0,
        "destructive: the client is not even asked"
    );
    assert!(text(&r).contains("typing the target back"));
    let id = approval_id(&text(&r));
    // The operator must type the target back.
    let (ok, out) = in_terminal(&cfg, &["approve", &id], "mcp-03\n");
    assert!(!ok, "{out}");
    let (ok, out) = in_terminal(&cfg, &["approve", &id], "mcp-02\n");
    assert!(ok, "{out}");
    let r = call(&client, "restart_service", args).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_ne!(main_pid("mcp-02", "cctelegram-mcp"), before);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn blast_radius_freeze_and_busy() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config(
        "[approval]\nwait_secs = 2\n[policy]\ntools = { restart_service = \"allow\" }\n",
    );
    let client = common::spawn(Some(&cfg), &[]).await;

    // More hosts than the limit (1).
    let r = call(
        &client,
        "restart_service",
        json!({"hosts": ["mcp-01", "mcp-02"], "service": "cctelegram-mcp", "reason": "x"}),
    )
    .await;
    refused(&r, "blast_radius");

    // Never the last healthy instance.
    common::lab_exec("mcp-01", &["systemctl", "stop", "cctelegram-mcp"]);
    common::lab_exec("mcp-03", &["systemctl", "stop", "cctelegram-mcp"]);
    let before = main_pid("mcp-02", "cctelegram-mcp");
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    common::lab_exec("mcp-01", &["systemctl", "start", "cctelegram-mcp"]);
    common::lab_exec("mcp-03", &["systemctl", "start", "cctelegram-mcp"]);
    refused(&r, "blast_radius");
    assert!(text(&r).contains("last healthy instance"), "{}", text(&r));
    assert_eq!(main_pid("mcp-02", "cctelegram-mcp"), before);

    // Freeze: refused; unfreeze needs a terminal.
    assert!(
        cli(&cfg, &["freeze", "--reason", "release in progress"])
            .status
            .success()
    );
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    refused(&r, "frozen");
    assert!(text(&r).contains("release in progress"));
    assert!(!cli(&cfg, &["unfreeze"]).status.success());
    let (ok, out) = in_terminal(&cfg, &["unfreeze"], "");
    assert!(ok, "{out}");

    // Busy: two restarts of the same target at once; one waits for nobody and is refused.
    common::lab_exec("mcp-01", &["true"]);
    let (a, b) = tokio::join!(
        call(&client, "restart_service", restart("mcp-02")),
        call(&client, "restart_service", restart("mcp-02")),
    );
    let busy: Vec<&CallToolResult> = [&a, &b]
        .into_iter()
        .filter(|r| r.is_error == Some(true))
        .collect();
    assert_eq!(busy.len(), 1, "{} / {}", text(&a), text(&b));
    refused(busy[0], "busy");
    assert!(text(busy[0]).contains("restart_service on mcp-02.cctelegram-mcp since"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn adjust_rate_limit_changes_nginx_or_restores_the_old_file() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config("[policy]\ntools = { adjust_rate_limit = \"allow\" }\n");
    let client = common::spawn(Some(&cfg), &[]).await;
    let file = "/etc/nginx/conf.d/ratelimit.conf";
    let original = common::lab_exec("mcp-01", &["cat", file]);
    assert!(original.contains("rate=30r/s"), "{original}");

    // An invalid rate passes our syntax check but not `nginx -t`: the old file comes back.
    let r = call(
        &client,
        "adjust_rate_limit",
        json!({"hosts": ["mcp-01"], "rate": "0r/s", "reason": "t"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    assert!(text(&r).contains("compensated"), "{}", text(&r));
    assert_eq!(common::lab_exec("mcp-01", &["cat", file]), original);
    let v = r.structured_content.unwrap();
    let st = common::stage(&v, "mcp-01");
    assert_eq!(st["status"], "compensated", "{st}");
    assert_eq!(st["captured"]["previous_rate"], "30r/s");
    assert_eq!(v["plan"]["changes"][0]["before"], "30r/s");
    assert_eq!(v["plan"]["changes"][0]["after"], "0r/s");

    let r = call(
        &client,
        "adjust_rate_limit",
        json!({"hosts": ["mcp-01"], "rate": "10r/s", "reason": "t"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert!(common::lab_exec("mcp-01", &["cat", file]).contains("rate=10r/s"));
    let r = call(
        &client,
        "adjust_rate_limit",
        json!({"hosts": ["mcp-01"], "rate": "30r/s", "reason": "restore"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(common::lab_exec("mcp-01", &["cat", file]), original);

    let r = call(
        &client,
        "adjust_rate_limit",
        json!({"hosts": ["mcp-01"], "rate": "10r/s; reboot", "reason": "t"}),
    )
    .await;
    common::assert_invalid(&r, "rate");
    client.cancel().await.unwrap();
}

/// A 2026-07-28 session (`server/discover`, no server-to-client requests): the approval is
/// asked with `InputRequiredResult`, answered by the client's elicitation handler.
async fn modern<H: ClientHandler>(h: H, cfg: &std::path::Path) -> RunningService<RoleClient, H> {
    use rmcp::ClientServiceExt;
    use rmcp::model::ProtocolVersion;
    use rmcp::service::ClientLifecycleMode;
    use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
    let cmd = tokio::process::Command::new(common::bin()).configure(|c| {
        c.env_remove("RUNBOOK_MCP_CONFIG").arg("--config").arg(cfg);
    });
    let client = h
        .serve_with_lifecycle(
            TokioChildProcess::new(cmd).unwrap(),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2026_07_28
    );
    client
}

fn accept() -> std::collections::BTreeMap<String, Value> {
    [(
        "approval".to_string(),
        json!({"action": "accept", "content": {"approve": true}}),
    )]
    .into()
}

#[tokio::test]
async fn input_required_round_approves_once_and_refuses_forged_or_replayed_state() {
    use rmcp::model::CallToolResponse;
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config(FAST);

    // Decline through the round: nothing runs.
    let h = Answering::new(ElicitationAction::Decline, false);
    let client = modern(h.clone(), &cfg).await;
    let before = main_pid("mcp-02", "cctelegram-mcp");
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    refused(&r, "declined");
    assert_eq!(h.asked.load(Ordering::SeqCst), 1);
    assert_eq!(main_pid("mcp-02", "cctelegram-mcp"), before);
    client.cancel().await.unwrap();

    // Accept: the client's own retry carries the answer; the plan runs.
    let h = Answering::new(ElicitationAction::Accept, true);
    let client = modern(h.clone(), &cfg).await;
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(
        r.structured_content.unwrap()["approval"]["channels"],
        json!(["input_required"])
    );
    let after = main_pid("mcp-02", "cctelegram-mcp");
    assert_ne!(before, after);

    // By hand: first round, then answer it, then replay the same state and answer.
    let Value::Object(args) = restart("mcp-02") else {
        panic!()
    };
    let first = client
        .call_tool_once(CallToolRequestParams::new("restart_service").with_arguments(args.clone()))
        .await
        .unwrap();
    let CallToolResponse::InputRequired(ir) = first else {
        panic!("expected input required, got {first:?}")
    };
    let state = ir.request_state.clone().unwrap();
    let answered = CallToolRequestParams::new("restart_service")
        .with_arguments(args.clone())
        .with_request_state(state.clone())
        .with_input_responses(accept());
    let CallToolResponse::Complete(done) = client.call_tool_once(answered.clone()).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(done.is_error, Some(false), "{}", text(&done));
    let after2 = main_pid("mcp-02", "cctelegram-mcp");
    assert_ne!(after, after2);
    let CallToolResponse::Complete(replayed) = client.call_tool_once(answered).await.unwrap()
    else {
        panic!()
    };
    refused(&replayed, "denied");
    assert!(
        text(&replayed).contains("already used"),
        "{}",
        text(&replayed)
    );

    // A forged state (wrong seal) and a state for another plan are refused.
    let forged = CallToolRequestParams::new("restart_service")
        .with_arguments(args.clone())
        .with_request_state(format!("{}.{}", &state[..10], "00".repeat(32)))
        .with_input_responses(accept());
    let CallToolResponse::Complete(r) = client.call_tool_once(forged).await.unwrap() else {
        panic!()
    };
    refused(&r, "denied");
    assert!(
        text(&r).contains("not one this server issued"),
        "{}",
        text(&r)
    );
    let Value::Object(other) = restart("mcp-01") else {
        panic!()
    };
    let swapped = CallToolRequestParams::new("restart_service")
        .with_arguments(other)
        .with_request_state(state)
        .with_input_responses(accept());
    let CallToolResponse::Complete(r) = client.call_tool_once(swapped).await.unwrap() else {
        panic!()
    };
    refused(&r, "denied");
    assert_eq!(main_pid("mcp-02", "cctelegram-mcp"), after2);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn audit_verify_catches_edits_reordering_and_truncation() {
    let _g = SERIAL.lock().await;
    let (cfg, state) = gate_config("[policy]\ntools = { reload_nginx = \"allow\" }\n");
    // Two servers sharing one state directory append at once.
    let a = common::spawn(Some(&cfg), &[]).await;
    let b = common::spawn(Some(&cfg), &[]).await;
    let (ra, rb) = tokio::join!(
        call(
            &a,
            "reload_nginx",
            json!({"hosts": ["mcp-01"], "reason": "audit test a"})
        ),
        call(
            &b,
            "reload_nginx",
            json!({"hosts": ["mcp-03"], "reason": "audit test b"})
        ),
    );
    assert_eq!(ra.is_error, Some(false), "{}", text(&ra));
    assert_eq!(rb.is_error, Some(false), "{}", text(&rb));
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
    let out = cli(&cfg, &["audit", "verify"]);
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("4 entries"),
        "two intents and two outcomes: {report}"
    );

    let log = state.path().join("state/audit.jsonl");
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let check = |content: String, what: &str| {
        std::fs::write(&log, content).unwrap();
        let out = cli(&cfg, &["audit", "verify"]);
        assert!(
            !out.status.success(),
            "{what} went unnoticed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    };
    check(
        original.replacen("audit test a", "audit test X", 1),
        "an edited line",
    );
    check(
        format!("{}\n{}\n{}\n{}\n", lines[1], lines[0], lines[2], lines[3]),
        "a reordered pair",
    );
    check(
        format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]),
        "a truncated file",
    );
    std::fs::write(&log, &original).unwrap();
    assert!(cli(&cfg, &["audit", "verify"]).status.success());
}

/// A client without elicitation that counts progress notifications.
#[derive(Clone, Default)]
struct Counting {
    progress: Arc<AtomicUsize>,
}

impl ClientHandler for Counting {
    async fn on_progress(
        &self,
        _p: rmcp::model::ProgressNotificationParam,
        _ctx: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.progress.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn rolling_restart_halts_when_the_second_host_fails_its_health_check() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config("[policy]\ntools = { rolling_restart = \"allow\" }\n");
    let h = Counting::default();
    let client = common::spawn_with(h.clone(), &cfg).await;
    let hosts = ["mcp-01", "mcp-02", "mcp-03"];
    let before: Vec<u32> = hosts
        .iter()
        .map(|x| main_pid(x, "cctelegram-mcp"))
        .collect();
    // mcp-02's instance answers its health check with 503 (the demo's fault switch).
    common::lab_exec(
        "mcp-02",
        &["sh", "-c", "echo fail > /run/cctelegram/mcp.mode"],
    );
    let r = call(
        &client,
        "rolling_restart",
        json!({"hosts": hosts, "service": "cctelegram-mcp", "health_timeout_secs": 3, "reason": "leak"}),
    )
    .await;
    common::lab_exec(
        "mcp-02",
        &["sh", "-c", "echo ok > /run/cctelegram/mcp.mode"],
    );
    let after: Vec<u32> = hosts
        .iter()
        .map(|x| main_pid(x, "cctelegram-mcp"))
        .collect();

    assert_eq!(
        r.is_error,
        Some(true),
        "a halted roll is a failed call: {}",
        text(&r)
    );
    assert!(text(&r).contains("HALTED"), "{}", text(&r));
    let v = r.structured_content.unwrap();
    assert_eq!(common::stage(&v, "mcp-01")["status"], "ok");
    let two = common::stage(&v, "mcp-02");
    assert_eq!(two["status"], "failed");
    assert_eq!(
        common::steps_with(two, "wait until")[0]["status"],
        "failed",
        "{two}"
    );
    assert_eq!(common::stage(&v, "mcp-03")["status"], "skipped");
    assert_ne!(before[0], after[0], "mcp-01 restarted");
    assert_ne!(
        before[1], after[1],
        "mcp-02 restarted (and failed its check)"
    );
    assert_eq!(before[2], after[2], "mcp-03 untouched after the halt");
    assert!(
        h.progress.load(Ordering::SeqCst) >= 2,
        "progress notifications arrived"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn restart_bridge_terminates_stale_bridge_processes_by_pid() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config("[policy]\ntools = { restart_bridge = \"allow\" }\n");
    let client = common::spawn(Some(&cfg), &[]).await;
    // A stale bridge left behind on mcp-01 (same executable, another port).
    common::lab_exec(
        "mcp-01",
        &[
            "sh",
            "-c",
            "setsid /opt/cctelegram/bin/cctelegram-bridge --role bridge --listen 127.0.0.1:18081 --name stale \
          --api-key-file /etc/cctelegram/api_key --log-dir /tmp/stale-bridge --control-file /tmp/stale.mode </dev/null >/dev/null 2>&1 &",
        ],
    );
    let stale_pid = {
        let mut pid = String::new();
        for _ in 0..50 {
            pid = common::lab_exec(
                "mcp-01",
                &["sh", "-c", "pgrep -f 'listen 127.0.0.1:18081' || true"],
            )
            .trim()
            .to_string();
            if !pid.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        pid.lines().next().unwrap().parse::<u32>().unwrap()
    };
    let before = main_pid("mcp-01", "cctelegram-bridge");
    let r = call(
        &client,
        "restart_bridge",
        json!({"hosts": ["mcp-01"], "reason": "bridge stuck"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let v = r.structured_content.unwrap();
    let st = common::stage(&v, "mcp-01");
    let kills: Vec<&Value> = common::steps_with(st, "kill -TERM -- ")
        .into_iter()
        .filter(|s| !s["step"].as_str().unwrap().starts_with("for each"))
        .collect();
    assert_eq!(kills.len(), 1, "only the stale one: {st}");
    assert!(
        kills[0]["step"]
            .as_str()
            .unwrap()
            .ends_with(&format!(" {stale_pid}")),
        "{st}"
    );
    assert_eq!(kills[0]["status"], "ok");
    assert_eq!(st["status"], "ok", "healthy after: {st}");
    assert_ne!(main_pid("mcp-01", "cctelegram-bridge"), before);
    // Gone, or a zombie waiting for the host's init to reap it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let state = common::lab_exec(
            "mcp-01",
            &[
                "sh",
                "-c",
                &format!("ps -o stat= -p {stale_pid} | grep -qv Z && echo alive || echo gone"),
            ],
        );
        if state.trim() == "gone" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stale bridge {stale_pid} still alive"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn auto_recover_restarts_only_what_is_unhealthy() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config("[policy]\ntools = { auto_recover = \"allow\" }\n");
    let client = common::spawn(Some(&cfg), &[]).await;
    let healthy_pid = main_pid("mcp-01", "cctelegram-mcp");
    let r = call(
        &client,
        "auto_recover",
        json!({"hosts": ["mcp-01"], "service": "cctelegram-mcp", "reason": "cron"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert!(text(&r).contains("nothing to do"));
    assert_eq!(
        main_pid("mcp-01", "cctelegram-mcp"),
        healthy_pid,
        "healthy: left alone"
    );

    common::lab_exec("mcp-03", &["systemctl", "stop", "cctelegram-mcp"]);
    let r = call(
        &client,
        "auto_recover",
        json!({"hosts": ["mcp-03"], "service": "cctelegram-mcp", "reason": "cron"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let v = r.structured_content.clone().unwrap();
    let st = common::stage(&v, "mcp-03");
    assert_eq!(st["status"], "ok", "restarted, not `nothing_to_do`: {st}");
    assert_eq!(
        common::steps_with(st, "systemctl restart")[0]["status"],
        "ok"
    );
    assert!(
        text(&r).contains("Auto-recovery successful"),
        "{}",
        text(&r)
    );
    assert!(main_pid("mcp-03", "cctelegram-mcp") > 0, "running again");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn two_different_operators_when_policy_asks_for_them() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config("[approval]\nwait_secs = 2\ndestructive_approvers = 2\n");
    let client = common::spawn(Some(&cfg), &[]).await;
    let before = main_pid("mcp-02", "cctelegram-mcp");
    let mut args = restart("mcp-02");
    args["mode"] = json!("stop_start");
    args["clean_tmp"] = json!(true);
    // Temporary files of the service in mcp-02's own /tmp, and one that is not its.
    common::lab_exec(
        "mcp-02",
        &[
            "sh",
            "-c",
            "mkdir -p /tmp/cctelegram-cache && touch /tmp/cctelegram-x.sock /tmp/keep-me",
        ],
    );
    let r = call(&client, "restart_service", args.clone()).await;
    let id = approval_id(&text(&r));
    let (ok, out) = common::in_terminal_as(Some("alice"), &cfg, &["approve", &id], "mcp-02\n");
    assert!(ok, "{out}");
    assert!(out.contains("1 more approver"), "{out}");
    let (ok, out) = common::in_terminal_as(Some("alice"), &cfg, &["approve", &id], "mcp-02\n");
    assert!(!ok, "the same person twice: {out}");
    // Claiming to be someone else is not being someone else: `SUDO_USER` is never believed.
    let alice = common::account("alice").to_string();
    let (ok, out) = common::in_terminal_env(
        &[("SUDO_USER", "bob"), ("SUDO_UID", &alice)],
        &cfg,
        &["approve", &id],
        "mcp-02\n",
    );
    assert!(
        !ok && out.contains("alice already approved"),
        "SUDO_USER=bob is not bob: {out}"
    );
    let r = call(&client, "restart_service", args.clone()).await;
    refused(&r, "pending");
    assert_eq!(
        main_pid("mcp-02", "cctelegram-mcp"),
        before,
        "one approval of two: nothing ran"
    );
    let (ok, out) = common::in_terminal_as(Some("bob"), &cfg, &["approve", &id], "mcp-02\n");
    assert!(ok, "{out}");
    let r = call(&client, "restart_service", args).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let v = r.structured_content.unwrap();
    assert_eq!(v["approval"]["approvers"], json!(["alice", "bob"]));
    assert_ne!(main_pid("mcp-02", "cctelegram-mcp"), before);
    // clean_tmp removed the service's temp files (find -name, no shell glob), nothing else.
    let left = common::lab_exec("mcp-02", &["sh", "-c", "ls /tmp"]);
    assert!(!left.contains("cctelegram-"), "{left}");
    assert!(left.contains("keep-me"), "{left}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn forbidden_hidden_and_unauditable_actions_do_not_run() {
    let _g = SERIAL.lock().await;
    // A forbidden service: refused before anyone is asked.
    let (cfg, _state) = gate_config(
        "[limits]\nforbidden_services = [\"nginx\"]\n[policy]\ntools = { restart_service = \"deny\" }\n",
    );
    let client = common::spawn(Some(&cfg), &[]).await;
    let r = call(
        &client,
        "reload_nginx",
        json!({"hosts": ["mcp-01"], "reason": "x"}),
    )
    .await;
    refused(&r, "blast_radius");
    assert!(text(&r).contains("forbidden"), "{}", text(&r));
    // A denied tool is hidden and uncallable.
    let tools = client.list_all_tools().await.unwrap();
    assert!(!tools.iter().any(|t| t.name == "restart_service"));
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains("not offered here: denied by [policy]"),
        "{}",
        text(&r)
    );
    client.cancel().await.unwrap();

    // --read-only hides every mutating tool, and a hidden tool cannot be called.
    let (cfg, _state) = gate_config("[policy]\ntools = { restart_service = \"allow\" }\n");
    let client = common::spawn(Some(&cfg), &["--read-only"]).await;
    let before = main_pid("mcp-02", "cctelegram-mcp");
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    assert!(
        text(&r).contains("not offered here: --read-only"),
        "{}",
        text(&r)
    );
    client.cancel().await.unwrap();

    // No intent record, no action: an audit log that cannot be written refuses the call.
    let (cfg, state) = gate_config("[policy]\ntools = { restart_service = \"allow\" }\n");
    std::fs::create_dir_all(state.path().join("state/audit.jsonl")).unwrap();
    let client = common::spawn(Some(&cfg), &[]).await;
    let r = call(&client, "restart_service", restart("mcp-02")).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("audit log"), "{}", text(&r));
    assert_eq!(
        main_pid("mcp-02", "cctelegram-mcp"),
        before,
        "nothing ran without an intent record"
    );
    client.cancel().await.unwrap();
}

/// Wait until `f` holds (the lab's processes start asynchronously).
async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The runbook's bridge runs under `node`: its stale processes are found by `process_name`
/// (and `process_args`), not by the unit's name — which never matched `node`. An unrelated
/// `node` process is left alone.
#[tokio::test]
async fn restart_bridge_cleans_up_a_bridge_that_runs_under_node() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config("[policy]\ntools = { restart_bridge = \"allow\" }\n");
    let text_cfg = std::fs::read_to_string(&cfg).unwrap().replacen(
        "role = \"bridge\"\n",
        "role = \"bridge\"\nprocess_name = \"node\"\nprocess_args = \"--name stale-node\"\n",
        1,
    );
    std::fs::write(&cfg, text_cfg).unwrap();
    let start = |name: &str, port: u16| {
        common::lab_exec(
            "mcp-01",
            &[
                "sh",
                "-c",
                &format!(
                    "mkdir -p /tmp/nodebin && ln -sf /opt/cctelegram/bin/cctelegram-demo /tmp/nodebin/node && \
                     setsid /tmp/nodebin/node --role bridge --listen 127.0.0.1:{port} --name {name} \
                     --api-key-file /etc/cctelegram/api_key --log-dir /tmp/{name} --control-file /tmp/{name}.mode \
                     </dev/null >/dev/null 2>&1 &"
                ),
            ],
        );
    };
    start("stale-node", 18091);
    start("other-node", 18092);
    let pid_of = |name: &str| {
        common::lab_exec(
            "mcp-01",
            &["sh", "-c", &format!("pgrep -f 'name {name}' || true")],
        )
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
    };
    until("both node processes", || {
        pid_of("stale-node").is_some() && pid_of("other-node").is_some()
    })
    .await;
    let (stale, other) = (pid_of("stale-node").unwrap(), pid_of("other-node").unwrap());
    let client = common::spawn(Some(&cfg), &[]).await;
    let r = call(
        &client,
        "restart_bridge",
        json!({"hosts": ["mcp-01"], "reason": "bridge stuck"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let v = r.structured_content.unwrap();
    let st = common::stage(&v, "mcp-01");
    let kills: Vec<&Value> = common::steps_with(st, "kill -TERM -- ")
        .into_iter()
        .filter(|s| !s["step"].as_str().unwrap().starts_with("for each"))
        .collect();
    assert_eq!(kills.len(), 1, "{st}");
    assert!(
        kills[0]["step"]
            .as_str()
            .unwrap()
            .ends_with(&format!(" {stale}")),
        "{st}"
    );
    let alive = |pid: u32| {
        common::lab_exec(
            "mcp-01",
            &[
                "sh",
                "-c",
                &format!("ps -o stat= -p {pid} | grep -qv Z && echo alive || echo gone"),
            ],
        )
        .trim()
            == "alive"
    };
    until("the stale node bridge to go", || !alive(stale)).await;
    assert!(alive(other), "an unrelated node process survives");
    common::lab_exec("mcp-01", &["kill", &other.to_string()]);
    client.cancel().await.unwrap();
}

/// A reload that fails while `nginx -t` passes (here sudo refuses the reload on that host)
/// used to leave the new file on disk for the next reload; the backup is now put back. Each adjustment keeps its own backup,
/// named by its request, so a second adjustment never overwrites the first one's.
#[tokio::test]
async fn adjust_rate_limit_restores_the_file_when_the_reload_fails_and_keeps_each_backup() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config("[policy]\ntools = { adjust_rate_limit = \"allow\" }\n");
    let client = common::spawn(Some(&cfg), &[]).await;
    let file = "/etc/nginx/conf.d/ratelimit.conf";
    let host = "mcp-02";
    let original = common::lab_exec(host, &["cat", file]);
    assert!(original.contains("rate=30r/s"), "{original}");
    let deny = "/etc/sudoers.d/zz-no-nginx-reload";
    common::lab_exec(
        host,
        &[
            "sh",
            "-c",
            &format!(
                "printf 'runbook ALL=(root) !/usr/bin/systemctl reload nginx\\n' > {deny} && chmod 440 {deny}"
            ),
        ],
    );
    let r = call(
        &client,
        "adjust_rate_limit",
        json!({"hosts": [host], "rate": "10r/s", "reason": "spike"}),
    )
    .await;
    common::lab_exec(host, &["rm", "-f", deny]);
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    let v = r.structured_content.unwrap();
    let st = common::stage(&v, host);
    assert_eq!(st["status"], "compensated", "{st}");
    assert_eq!(
        common::steps_with(st, "systemctl reload nginx")[0]["status"],
        "failed",
        "{st}"
    );
    assert_eq!(
        common::lab_exec(host, &["cat", file]),
        original,
        "the refused file is gone"
    );

    // Two adjustments, two backups, each holding what its own adjustment replaced.
    let mut ids = Vec::new();
    for rate in ["20r/s", "15r/s"] {
        let r = call(
            &client,
            "adjust_rate_limit",
            json!({"hosts": [host], "rate": rate, "reason": "spike"}),
        )
        .await;
        let v = common::done(&r);
        ids.push(v["request_id"].as_str().unwrap().to_string());
        assert_eq!(v["plan"]["undo"][0]["tool"], "adjust_rate_limit");
    }
    let first = common::lab_exec(host, &["cat", &format!("{file}.runbook-{}.bak", ids[0])]);
    let second = common::lab_exec(host, &["cat", &format!("{file}.runbook-{}.bak", ids[1])]);
    assert!(first.contains("rate=30r/s"), "{first}");
    assert!(second.contains("rate=20r/s"), "{second}");
    let r = call(
        &client,
        "adjust_rate_limit",
        json!({"hosts": [host], "rate": "30r/s", "reason": "restore"}),
    )
    .await;
    common::done(&r);
    assert_eq!(common::lab_exec(host, &["cat", file]), original);
    common::lab_exec(host, &["sh", "-c", &format!("rm -f {file}.runbook-*.bak")]);
    client.cancel().await.unwrap();
}

/// A client that cancels mid-roll: the host in flight finishes, nothing new starts, and the
/// audit log says so. (mcp-01's health answers slowly, so the roll is still on mcp-01 when the
/// client gives up.)
#[tokio::test]
async fn a_client_cancelling_mid_rolling_restart_starts_nothing_new() {
    let _g = SERIAL.lock().await;
    let (cfg, state) = gate_config("[policy]\ntools = { rolling_restart = \"allow\" }\n");
    let client = common::spawn(Some(&cfg), &[]).await;
    let hosts = ["mcp-01", "mcp-02", "mcp-03"];
    let before: Vec<u32> = hosts
        .iter()
        .map(|h| main_pid(h, "cctelegram-mcp"))
        .collect();
    common::lab_exec(
        "mcp-01",
        &["sh", "-c", "echo slow 3000 > /run/cctelegram/mcp.mode"],
    );
    let Value::Object(args) = json!({"hosts": hosts, "service": "cctelegram-mcp",
        "health_timeout_secs": 20, "reason": "leak"})
    else {
        unreachable!()
    };
    let req = rmcp::model::ClientRequest::CallToolRequest(rmcp::model::Request::new(
        CallToolRequestParams::new("rolling_restart").with_arguments(args),
    ));
    let handle = client
        .send_cancellable_request(req, rmcp::service::PeerRequestOptions::no_options())
        .await
        .unwrap();
    until("mcp-01 restarted", || {
        main_pid("mcp-01", "cctelegram-mcp") != before[0]
    })
    .await;
    handle
        .cancel(Some("the engineer changed their mind".into()))
        .await
        .unwrap();
    let audit = state.path().join("state/audit.jsonl");
    let outcome = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let log = std::fs::read_to_string(&audit).unwrap_or_default();
            if let Some(l) = log.lines().find(|l| l.contains("\"kind\":\"outcome\"")) {
                break l.to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no outcome in the audit log"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    common::lab_exec(
        "mcp-01",
        &["sh", "-c", "echo ok > /run/cctelegram/mcp.mode"],
    );
    assert!(outcome.contains("the caller went away"), "{outcome}");
    assert!(
        outcome.contains("mcp-01: sudo systemctl restart cctelegram-mcp (ok)"),
        "what ran: {outcome}"
    );
    assert_eq!(
        main_pid("mcp-02", "cctelegram-mcp"),
        before[1],
        "mcp-02 never started"
    );
    assert_eq!(
        main_pid("mcp-03", "cctelegram-mcp"),
        before[2],
        "mcp-03 never started"
    );
    client.cancel().await.unwrap();
}
