//! Shared test harness: spawn the real binary, talk to it with rmcp's client, find the lab.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command as StdCommand;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

pub type Client = RunningService<RoleClient, ()>;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_runbook-mcp")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The lab's runbook-mcp config. Fails loudly (never skips) when the lab is not running.
pub fn lab_config() -> PathBuf {
    let dir = std::env::var("RUNBOOK_LAB_DIR").unwrap_or_else(|_| "/tmp/runbook-lab".into());
    let cfg = PathBuf::from(&dir).join("runbook-mcp.toml");
    let status = StdCommand::new("ip").args(["netns", "list"]).output();
    let up = status
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("mcp-01"))
        .unwrap_or(false);
    assert!(
        cfg.exists() && up,
        "the lab is not running (no {} or no netns mcp-01). Start it with `sudo lab/lab.sh install && sudo lab/lab.sh start`, \
         or run the whole suite with `sudo scripts/test.sh`.",
        cfg.display()
    );
    cfg
}

/// Starts `runbook-mcp` with `config` (None: the embedded default) and connects a client.
pub async fn spawn(config: Option<&PathBuf>, extra: &[&str]) -> Client {
    let cmd = tokio::process::Command::new(bin()).configure(|c| {
        c.env_remove("RUNBOOK_MCP_CONFIG")
            .env("RUNBOOK_MCP_LOG", "warn");
        if let Some(p) = config {
            c.arg("--config").arg(p);
        }
        c.args(extra);
    });
    ().serve(TokioChildProcess::new(cmd).expect("spawn runbook-mcp"))
        .await
        .expect("initialize")
}

pub async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(map) = args else {
        panic!("args must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(map))
        .await
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

/// The structured content of a successful call (panics with the text otherwise).
pub fn ok(r: &CallToolResult) -> &Value {
    assert_eq!(r.is_error, Some(false), "call failed: {}", text(r));
    r.structured_content.as_ref().expect("structuredContent")
}

/// The first text block.
pub fn text(r: &CallToolResult) -> String {
    r.content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

/// Asserts a failed call whose message names `field`.
pub fn assert_invalid(r: &CallToolResult, field: &str) {
    assert_eq!(
        r.is_error,
        Some(true),
        "expected a failure, got {}",
        text(r)
    );
    let t = text(r);
    assert!(
        t.contains(&format!("`{field}`")),
        "message does not name `{field}`: {t}"
    );
    assert!(t.contains("Nothing was run"), "{t}");
}

/// Runs a command inside a lab host's namespaces (fault injection).
pub fn lab_exec(host: &str, argv: &[&str]) -> String {
    let out = StdCommand::new(repo().join("lab/lab.sh"))
        .arg("exec")
        .arg(host)
        .args(argv)
        .output()
        .expect("lab.sh exec");
    assert!(
        out.status.success(),
        "lab.sh exec {host} {argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn lab_cmd(args: &[&str]) {
    let out = StdCommand::new(repo().join("lab/lab.sh"))
        .args(args)
        .output()
        .expect("lab.sh");
    assert!(
        out.status.success(),
        "lab.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Result of `host` inside a per-host result list.
pub fn host<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["hosts"]
        .as_array()
        .and_then(|a| a.iter().find(|h| h["host"] == name))
        .unwrap_or_else(|| panic!("no host {name} in {v}"))
}

/// A copy of the lab config with its own (fresh) state directory and `extra` TOML appended —
/// each gate test gets its own approvals and audit log.
/// A test's state directory. When dropped, its audit log is kept where
/// `RUNBOOK_TEST_AUDIT_COPY` says (scripts/test.sh scans every kept log for secret values).
pub struct StateDir(tempfile::TempDir);

impl StateDir {
    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let Some(dest) = std::env::var_os("RUNBOOK_TEST_AUDIT_COPY") else {
            return;
        };
        let dest = PathBuf::from(dest);
        let _ = std::fs::create_dir_all(&dest);
        let name = self
            .0
            .path()
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .trim_start_matches('.')
            .to_string();
        let _ = std::fs::copy(
            self.0.path().join("state/audit.jsonl"),
            dest.join(format!("{name}-audit.jsonl")),
        );
        if let Ok(d) = std::fs::read_dir(self.0.path().join("state/approvals")) {
            for e in d.flatten() {
                let _ = std::fs::copy(
                    e.path(),
                    dest.join(format!("{name}-{}", e.file_name().to_string_lossy())),
                );
            }
        }
    }
}

pub fn gate_config(extra: &str) -> (PathBuf, StateDir) {
    let base = std::fs::read_to_string(lab_config()).unwrap();
    let state = StateDir(tempfile::tempdir().unwrap());
    let mut text: String = base
        .lines()
        .map(|l| {
            if l.starts_with("state_dir = ") {
                format!("state_dir = \"{}\"", state.path().join("state").display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text.push_str(extra);
    let path = state.path().join("runbook-mcp.toml");
    std::fs::write(&path, text).unwrap();
    (path, state)
}

/// Runs `runbook-mcp --config C ARGS...` under a pseudo-terminal (as an operator would), with
/// `input` typed at its prompt. Returns (success, output).
pub fn in_terminal(config: &std::path::Path, args: &[&str], input: &str) -> (bool, String) {
    in_terminal_as(None, config, args, input)
}

/// `in_terminal` as the operator `user` (what `approve` records as the approver).
pub fn in_terminal_as(
    user: Option<&str>,
    config: &std::path::Path,
    args: &[&str],
    input: &str,
) -> (bool, String) {
    // As sudo leaves it when the person `user` runs the command as root: `SUDO_UID` is theirs
    // (believed because this process is root); `SUDO_USER` is believed never.
    let uid = user.map(|u| account(u).to_string());
    let env: Vec<(&str, &str)> = uid.iter().map(|u| ("SUDO_UID", u.as_str())).collect();
    in_terminal_env(&env, config, args, input)
}

/// [`in_terminal`] with these environment variables (and no inherited `SUDO_*`).
pub fn in_terminal_env(
    env: &[(&str, &str)],
    config: &std::path::Path,
    args: &[&str],
    input: &str,
) -> (bool, String) {
    use std::io::Write;
    let cmdline = format!("{} --config {} {}", bin(), config.display(), args.join(" "));
    let mut cmd = StdCommand::new("script");
    cmd.env_remove("SUDO_UID").env_remove("SUDO_USER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `runbook-mcp --config C ARGS...` without a terminal.
pub fn cli(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    StdCommand::new(bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// The main PID of `unit` on a lab host (changes when the service restarts).
pub fn main_pid(host: &str, unit: &str) -> u32 {
    let out = lab_exec(host, &["systemctl", "show", "-p", "MainPID", unit]);
    out.trim()
        .trim_start_matches("MainPID=")
        .parse()
        .unwrap_or(0)
}

/// The approval id named in a refusal text (`approval A-1234abcd waits ...`).
pub fn approval_id(text: &str) -> String {
    let i = text
        .find("A-")
        .unwrap_or_else(|| panic!("no approval id in: {text}"));
    text[i..i + 10].to_string()
}

/// Starts `runbook-mcp --config C` and connects `handler` as the client.
pub async fn spawn_with<H: rmcp::ClientHandler>(
    handler: H,
    config: &std::path::Path,
) -> RunningService<RoleClient, H> {
    let cmd = tokio::process::Command::new(bin()).configure(|c| {
        c.env_remove("RUNBOOK_MCP_CONFIG")
            .env("RUNBOOK_MCP_LOG", "warn")
            .arg("--config")
            .arg(config);
    });
    handler
        .serve(TokioChildProcess::new(cmd).expect("spawn runbook-mcp"))
        .await
        .expect("initialize")
}

/// A client that declares elicitation and accepts (`approve: true`) whatever it is asked,
/// counting the questions — to prove destructive actions never ask it.
#[derive(Clone, Default)]
pub struct Accepting {
    pub asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Runs while the human "decides": what else happens to the fleet meanwhile.
    pub meanwhile: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

impl rmcp::ClientHandler for Accepting {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::builder()
                .enable_elicitation()
                .build(),
            rmcp::model::Implementation::new("accepting-test-client", "0.0.1"),
        )
    }

    async fn create_elicitation(
        &self,
        _req: rmcp::model::ElicitRequestParams,
        _ctx: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(f) = &self.meanwhile {
            f();
        }
        Ok(
            rmcp::model::ElicitResult::new(rmcp::model::ElicitationAction::Accept)
                .with_content(serde_json::json!({"approve": true})),
        )
    }
}

/// The uid of the local account `name`, made (no home, no login) when it does not exist yet:
/// approvals by different people need different kernel accounts.
pub fn account(name: &str) -> u32 {
    let uid = || {
        let out = StdCommand::new("id").args(["-u", name]).output().unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
    };
    if let Some(u) = uid() {
        return u;
    }
    let made = StdCommand::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ])
        .status()
        .unwrap();
    assert!(made.success(), "useradd {name}");
    uid().unwrap()
}

/// `call` for any client handler.
pub async fn call_h<H: rmcp::ClientHandler>(
    c: &RunningService<RoleClient, H>,
    tool: &str,
    args: Value,
) -> CallToolResult {
    let Value::Object(m) = args else {
        panic!("args must be an object")
    };
    c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(m))
        .await
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

/// Asserts a gate refusal with reason `code`, worded so the model does not retry blindly.
pub fn refused(r: &CallToolResult, code: &str) {
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
    assert!(text(r).contains("Do not retry blindly"), "{}", text(r));
}

/// The structured content of a call that succeeded.
pub fn done(r: &CallToolResult) -> Value {
    assert_eq!(r.is_error, Some(false), "{}", text(r));
    r.structured_content.clone().expect("structuredContent")
}

/// The stage called `name` (a host, `call`, a target group) of a mutating tool's result.
pub fn stage<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["result"]["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["stage"] == name))
        .unwrap_or_else(|| panic!("no stage {name} in {}", v["result"]))
}

/// The steps of `stage` whose text contains `needle`.
pub fn steps_with<'a>(stage: &'a Value, needle: &str) -> Vec<&'a Value> {
    stage["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|s| s["step"].as_str().unwrap_or("").contains(needle))
                .collect()
        })
        .unwrap_or_default()
}

/// The planned steps of a result's plan (every stage's, in order).
pub fn planned_steps(v: &Value) -> Vec<&Value> {
    v["plan"]["stages"]
        .as_array()
        .map(|s| {
            s.iter()
                .flat_map(|s| s["steps"].as_array().unwrap().iter())
                .collect()
        })
        .unwrap_or_default()
}
