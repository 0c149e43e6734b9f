//! The dedicated-user deployment (docs/SECURITY.md) with real accounts on this machine: the
//! server runs as its own account, which alone owns the state directory; an operator approves
//! through `sudo -u <service> runbook-mcp approve`, a rule that asks for the operator's own
//! password. The operator's account — with a pseudo-terminal but without the password — cannot
//! approve, and the record names the operator (SUDO_UID, believed under the service account).
//! Needs root (accounts, sudoers) and the lab's packages (sudo); no lab hosts.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SVC: &str = "runbook-svc-test";
const OP: &str = "oncall-test";
const PW: &str = "correct horse battery 7";

struct Setup {
    dir: std::path::PathBuf,
    cfg: std::path::PathBuf,
    sudoers: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output().unwrap()
}

fn setup() -> Setup {
    common::account(SVC);
    common::account(OP);
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(chpasswd.stdin.take().unwrap(), "{OP}:{PW}").unwrap();
    assert!(chpasswd.wait().unwrap().success(), "chpasswd");
    // A directory everyone may traverse; the state inside it is the service account's alone.
    let dir = std::path::PathBuf::from(format!("/var/tmp/runbook-deploy-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("state")).unwrap();
    assert!(
        run(Command::new("chown").args([&format!("{SVC}:"), dir.join("state").to_str().unwrap()]))
            .status
            .success()
    );
    let cfg = dir.join("fleet.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nstate_dir = \"{}\"\n[approval]\nwait_secs = 0\nservice_account = \"{SVC}\"\n\
             [hosts.local]\n[services.demo]\nmanager = \"systemd\"\nhosts = [\"local\"]\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    let bin = common::bin();
    let sudoers = std::path::PathBuf::from("/etc/sudoers.d/zz-runbook-deploy-test");
    let rule = format!(
        "{OP} ALL=({SVC}) {bin} --config {c} approve *, {bin} --config {c} deny *\n",
        c = cfg.display()
    );
    let tmp = dir.join("sudoers");
    std::fs::write(&tmp, rule).unwrap();
    assert!(
        run(Command::new("visudo").args(["-cqf", tmp.to_str().unwrap()]))
            .status
            .success(),
        "sudoers rule"
    );
    assert!(
        run(Command::new("install").args([
            "-m",
            "440",
            tmp.to_str().unwrap(),
            sudoers.to_str().unwrap()
        ]))
        .status
        .success()
    );
    Setup { dir, cfg, sudoers }
}

/// A pending approval made by the server running as the service account.
fn pending(s: &Setup) -> String {
    let out = run(Command::new("sudo")
        .args(["-u", SVC, "--", common::bin(), "--config"])
        .arg(&s.cfg)
        .args([
            "call",
            "restart_service",
            "--arg",
            "hosts=local",
            "--arg",
            "service=demo",
            "--arg",
            "reason=deploy test",
        ]));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("refused (pending)"), "{text}");
    common::approval_id(&text)
}

/// Runs `shell` as the operator in a pseudo-terminal, answering each prompt (a substring of
/// the output) with its line, in order; returns (success, everything printed). Under this
/// test harness the terminal does not become the command's *controlling* terminal (seen with
/// `script`, su and an explicit TIOCSCTTY alike), so the tests tell sudo to read the password
/// from the terminal on stdin (`sudo -S`): the same person typing the same password into the
/// same terminal `approve` checks.
fn as_operator(shell: &str, answers: &[(&str, &str)]) -> (bool, String) {
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("su -s /bin/sh {OP} -c \"{shell}\""),
            "/dev/null",
        ])
        .env_remove("SUDO_UID")
        .env_remove("SUDO_USER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                break;
            }
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = String::new();
    let mut transcript = String::new();
    for (prompt, answer) in answers {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !seen.contains(prompt) {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(chunk) => {
                    transcript.push_str(&chunk);
                    seen.push_str(&chunk)
                }
                Err(_) => break,
            }
        }
        if !seen.contains(prompt) {
            break;
        }
        // Only what follows this prompt counts for the next one.
        seen = seen
            .split_once(prompt)
            .map(|(_, r)| r.to_string())
            .unwrap_or_default();
        let _ = writeln!(stdin, "{answer}");
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let mut all = transcript;
    while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(500)) {
        all.push_str(&chunk);
    }
    let mut err = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    all.push_str(&err);
    (status.success(), all)
}

fn record(s: &Setup, id: &str) -> serde_json::Value {
    let file = std::fs::read_dir(s.dir.join("state/approvals"))
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{id}~"))
        })
        .unwrap()
        .path();
    let text = std::fs::read_to_string(file).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_operator_approves_through_sudo_with_their_password_and_their_account_alone_cannot() {
    let s = setup();
    let bin = common::bin();
    let cfg = s.cfg.display();

    // The operator's own account, with a terminal: the state directory is not theirs.
    let id = pending(&s);
    let (ok, out) = as_operator(&format!("{bin} --config {cfg} approve {id}"), &[]);
    assert!(!ok && out.contains("ermission denied"), "{out}");
    // Through sudo but without the password (what an assistant in their session can do).
    let (ok, out) = as_operator(
        &format!("sudo -n -u {SVC} {bin} --config {cfg} approve {id}"),
        &[],
    );
    assert!(!ok && out.contains("password"), "{out}");
    // A wrong password.
    let (ok, _) = as_operator(
        &format!("sudo -S -p password: -u {SVC} {bin} --config {cfg} approve {id}"),
        &[
            ("password", "not the password"),
            ("password", "no"),
            ("password", "nope"),
        ],
    );
    assert!(!ok);
    assert_eq!(record(&s, &id)["state"], "pending", "nothing was approved");

    // The operator, typing their password at sudo's prompt, then approving the plan.
    let (ok, out) = as_operator(
        &format!("sudo -S -p password: -u {SVC} {bin} --config {cfg} approve {id}"),
        &[("password", PW), ("Approve exactly this plan?", "y")],
    );
    assert!(ok, "{out}");
    let r = record(&s, &id);
    assert_eq!(r["state"], "approved", "{r}");
    assert_eq!(
        r["decisions"][0]["approver"], OP,
        "the operator, from SUDO_UID: {r}"
    );
    assert_eq!(r["decisions"][0]["channel"], "terminal");
}
