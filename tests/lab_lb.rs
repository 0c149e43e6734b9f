//! The load balancer tools drive the REAL `aws` CLI (PyPI awscli, in the lab's venv) against
//! the lab's MOTO SERVER on 127.0.0.1:5000 — a local emulator of the ELBv2 and EC2 APIs, not
//! AWS. The CLI parses and validates its own arguments (so a malformed command fails as it
//! would against AWS) and moto keeps the target group `cctelegram-tg` with mcp-01..03's
//! instances. Each test resets the group first (all three registered and running, health check
//! 30 s / 5 s / `/health`) and checks the outcome with the same CLI, independently of the
//! tools. Serial: one emulator.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;

use common::{approval_id, call_h as call, done, gate_config, in_terminal, refused, text};
use serde_json::{Value, json};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ALLOW: &str = "[approval]\nwait_secs = 2\n[policy]\ntools = { update_health_check = \"allow\", restore_instance = \"allow\" }\n";
const FAST: &str = "[approval]\nwait_secs = 2\n";

/// The lab's `[aws]` table and the fake keys its CLI uses.
struct Lab {
    cli: String,
    endpoint: String,
    region: String,
    arn: String,
    /// mcp-01..03 → instance id.
    instances: Vec<(String, String)>,
    key_id: String,
    secret: String,
}

impl Lab {
    fn load() -> Self {
        let cfg = common::lab_config(); // fails loudly when the lab is down
        let t: toml::Table = std::fs::read_to_string(&cfg).unwrap().parse().unwrap();
        let aws = t["aws"].as_table().expect("the lab config has no [aws]");
        let s = |k: &str| aws[k].as_str().unwrap().to_string();
        let secrets = PathBuf::from(cfg.parent().unwrap()).join("secrets");
        let read = |f: &str| std::fs::read_to_string(secrets.join(f)).unwrap();
        Self {
            cli: s("cli"),
            endpoint: s("endpoint_url"),
            region: s("region"),
            arn: s("target_group_arn"),
            instances: aws["instances"]
                .as_table()
                .unwrap()
                .iter()
                .map(|(h, id)| (h.clone(), id.as_str().unwrap().to_string()))
                .collect(),
            key_id: read("aws_access_key_id"),
            secret: read("aws_secret_access_key"),
        }
    }

    fn id(&self, host: &str) -> &str {
        &self.instances.iter().find(|(h, _)| h == host).unwrap().1
    }

    /// The real CLI against the emulator: (success, stdout, stderr).
    fn aws(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.cli)
            .args(["--endpoint-url", &self.endpoint, "--region", &self.region])
            .args(["--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn aws_ok(&self, args: &[&str]) -> Value {
        let (ok, out, err) = self.aws(args);
        assert!(ok, "aws {args:?}: {err}");
        if out.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&out).unwrap()
        }
    }

    fn targets(&self, hosts: &[&str]) -> Vec<String> {
        hosts
            .iter()
            .map(|h| format!("Id={},Port=8080", self.id(h)))
            .collect()
    }

    /// All three instances running and registered, the health check as lab.sh made it.
    fn reset(&self) {
        let ids: Vec<&str> = self.instances.iter().map(|(_, id)| id.as_str()).collect();
        let mut args = vec!["ec2", "start-instances", "--instance-ids"];
        args.extend(&ids);
        self.aws_ok(&args);
        let targets = self.targets(&["mcp-01", "mcp-02", "mcp-03"]);
        let mut args = vec!["elbv2", "register-targets", "--target-group-arn", &self.arn];
        args.push("--targets");
        args.extend(targets.iter().map(String::as_str));
        self.aws_ok(&args);
        self.aws_ok(&[
            "elbv2",
            "modify-target-group",
            "--target-group-arn",
            &self.arn,
            "--health-check-interval-seconds",
            "30",
            "--health-check-timeout-seconds",
            "5",
            "--health-check-path",
            "/health",
        ]);
        assert_eq!(self.registered().len(), 3);
    }

    /// Instance ids registered now (describe-target-health lists only registered targets).
    fn registered(&self) -> Vec<String> {
        let v = self.aws_ok(&[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            &self.arn,
        ]);
        let mut ids: Vec<String> = v["TargetHealthDescriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["Target"]["Id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// (interval, timeout, path) of the health check now.
    fn health_check(&self) -> (u64, u64, String) {
        let v = self.aws_ok(&[
            "elbv2",
            "describe-target-groups",
            "--target-group-arns",
            &self.arn,
        ]);
        let g = &v["TargetGroups"][0];
        (
            g["HealthCheckIntervalSeconds"].as_u64().unwrap(),
            g["HealthCheckTimeoutSeconds"].as_u64().unwrap(),
            g["HealthCheckPath"].as_str().unwrap().to_string(),
        )
    }
}

#[tokio::test]
async fn check_load_balancer_lists_the_three_targets_with_their_hosts() {
    let _g = SERIAL.lock().await;
    let lab = Lab::load();
    lab.reset();
    let (cfg, _state) = gate_config("");
    let client = common::spawn(Some(&cfg), &[]).await;
    let r = call(&client, "check_load_balancer", json!({})).await;
    let v = done(&r);
    assert!(
        text(&r).starts_with("cctelegram-tg: 3/3 registered targets healthy (mcp-01 healthy, mcp-02 healthy, mcp-03 healthy)"),
        "{}",
        text(&r)
    );
    let targets = v["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3, "{v}");
    for (t, host) in targets.iter().zip(["mcp-01", "mcp-02", "mcp-03"]) {
        assert_eq!(t["host"], host);
        assert_eq!(t["instance_id"], lab.id(host), "the configured instance");
        assert_eq!(t["port"], 8080);
        assert_eq!(t["state"], "healthy");
        assert_eq!(t["registered"], true);
    }
    assert_eq!(
        (v["healthy"].as_u64(), v["registered"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(v["health_check"]["path"], "/health");
    assert_eq!(v["health_check"]["interval_seconds"], 30);
    assert!(
        v["load_balancers"][0]
            .as_str()
            .unwrap()
            .contains("loadbalancer/app/cctelegram-alb/"),
        "{v}"
    );

    // A host out of the group is still listed, as AWS reports it.
    lab.aws_ok(&[
        "elbv2",
        "deregister-targets",
        "--target-group-arn",
        &lab.arn,
        "--targets",
        &lab.targets(&["mcp-03"])[0],
    ]);
    let v = done(&call(&client, "check_load_balancer", json!({})).await);
    assert_eq!(v["targets"][2]["host"], "mcp-03");
    assert_eq!(v["targets"][2]["registered"], false);
    assert_eq!(v["targets"][2]["reason"], "Target.NotRegistered");
    assert_eq!(v["registered"], 2);
    let r = call(&client, "check_load_balancer", json!({"hosts": ["mcp-01"]})).await;
    common::assert_invalid(&r, "hosts");
    client.cancel().await.unwrap();
    lab.reset();
}

#[tokio::test]
async fn update_health_check_changes_the_interval_and_bad_values_change_nothing() {
    let _g = SERIAL.lock().await;
    let lab = Lab::load();
    lab.reset();
    let (cfg, _state) = gate_config(ALLOW);
    let client = common::spawn(Some(&cfg), &[]).await;
    let r = call(
        &client,
        "update_health_check",
        json!({"interval_seconds": 10, "timeout_seconds": 5, "reason": "flapping checks"}),
    )
    .await;
    let v = done(&r);
    assert_eq!(
        lab.health_check(),
        (10, 5, "/health".into()),
        "the CLI sees it"
    );
    let argv = common::planned_steps(&v)[0]["argv"]
        .as_array()
        .unwrap()
        .clone();
    assert!(argv.contains(&json!("modify-target-group")), "{argv:?}");
    assert!(
        !argv
            .iter()
            .any(|a| a.as_str().unwrap().contains(&lab.key_id)),
        "credentials never on the command line"
    );
    let st = common::stage(&v, "cctelegram-tg");
    assert_eq!(
        st["captured"]["after"]["interval_seconds"], 10,
        "read back: {st}"
    );
    // The settings before → after, and the undo as a ready call.
    assert_eq!(v["plan"]["changes"][0]["before"], "30 s", "{v}");
    assert_eq!(v["plan"]["changes"][0]["after"], "10 s");
    assert_eq!(v["plan"]["undo"][0]["tool"], "update_health_check");
    assert_eq!(v["plan"]["undo"][0]["arguments"]["interval_seconds"], 30);

    // Interval 1: OUR validation refuses it first (AWS's documented 5..=300), before any
    // approval, so the CLI never runs; nothing changed.
    let r = call(
        &client,
        "update_health_check",
        json!({"interval_seconds": 1, "timeout_seconds": 5, "reason": "r"}),
    )
    .await;
    common::assert_invalid(&r, "interval_seconds");
    assert_eq!(lab.health_check(), (10, 5, "/health".into()));
    // ...and the CLI itself rejects the same value (botocore's parameter validation, before any
    // request): our bound is the CLI's own.
    let (ok, _, err) = lab.aws(&[
        "elbv2",
        "modify-target-group",
        "--target-group-arn",
        &lab.arn,
        "--health-check-interval-seconds",
        "1",
        "--health-check-timeout-seconds",
        "5",
    ]);
    assert!(!ok);
    assert!(
        err.contains(
            "Invalid value for parameter HealthCheckIntervalSeconds, value: 1, valid min value: 5"
        ),
        "{err}"
    );
    assert_eq!(lab.health_check(), (10, 5, "/health".into()));
    // A timeout not shorter than the interval: AWS refuses it server-side, moto does not, so
    // our validation is what stops it here.
    let r = call(
        &client,
        "update_health_check",
        json!({"interval_seconds": 10, "timeout_seconds": 10, "reason": "r"}),
    )
    .await;
    common::assert_invalid(&r, "timeout_seconds");

    // P0 option B: the path too. A new path can fail every target at once: destructive, so
    // the `allow` policy does not apply; an operator approves, typing the target group.
    let args =
        json!({"interval_seconds": 15, "timeout_seconds": 4, "path": "/healthz", "reason": "r"});
    let r = call(&client, "update_health_check", args.clone()).await;
    refused(&r, "pending");
    assert!(text(&r).contains("typing the target back"), "{}", text(&r));
    let id = approval_id(&text(&r));
    let (ok, out) = in_terminal(&cfg, &["approve", &id], "cctelegram-tg\n");
    assert!(ok, "{out}");
    done(&call(&client, "update_health_check", args).await);
    assert_eq!(lab.health_check(), (15, 4, "/healthz".into()));
    client.cancel().await.unwrap();
    lab.reset();
}

#[tokio::test]
async fn drain_waits_for_the_operator_then_deregisters_and_restore_registers_back() {
    let _g = SERIAL.lock().await;
    let lab = Lab::load();
    lab.reset();
    let all = {
        let mut v: Vec<String> = lab.instances.iter().map(|(_, id)| id.clone()).collect();
        v.sort();
        v
    };
    let (cfg, _state) = gate_config(FAST);
    let h = common::Accepting::default();
    let client = common::spawn_with(h.clone(), &cfg).await;
    let drain = json!({"hosts": ["mcp-02"], "reason": "mcp-02 returns 502s"});
    let r = call(&client, "drain_instance", drain.clone()).await;
    refused(&r, "pending");
    assert_eq!(
        h.asked.load(Ordering::SeqCst),
        0,
        "destructive: an accepting client is not even asked"
    );
    assert_eq!(lab.registered(), all, "pending: still registered");
    let id = approval_id(&text(&r));

    // The operator sees the exact command and types the host back.
    let (ok, out) = in_terminal(&cfg, &["approve", &id], "mcp-03\n");
    assert!(!ok, "the wrong host does not approve: {out}");
    let (ok, out) = in_terminal(&cfg, &["approve", &id], "mcp-02\n");
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "deregister-targets --target-group-arn {}",
            lab.arn
        )),
        "{out}"
    );
    let r = call(&client, "drain_instance", drain.clone()).await;
    let v = done(&r);
    assert_eq!(v["approval"]["channels"], json!(["terminal"]));
    assert_eq!(v["result"]["ok"], true);
    let after = &common::stage(&v, "mcp-02")["captured"]["after"];
    assert!(
        after
            .get(lab.id("mcp-02"))
            .is_none_or(|t| t["registered"] == false),
        "{after}"
    );
    assert_eq!(v["plan"]["undo"][0]["tool"], "restore_instance");
    assert_eq!(
        v["plan"]["undo"][0]["arguments"]["hosts"],
        json!(["mcp-02"])
    );
    let left: Vec<String> = all
        .iter()
        .filter(|i| *i != lab.id("mcp-02"))
        .cloned()
        .collect();
    assert_eq!(lab.registered(), left, "the CLI shows 2 targets");
    assert!(text(&r).starts_with("draining mcp-02"), "{}", text(&r));
    // Once out, a second drain has nothing to do (and the approval was used anyway).
    let r = call(&client, "drain_instance", drain).await;
    common::assert_invalid(&r, "hosts");
    assert!(text(&r).contains("not registered"), "{}", text(&r));
    client.cancel().await.unwrap();

    // restore_instance (allow policy) puts it back.
    let (cfg, _state) = gate_config(ALLOW);
    let client = common::spawn(Some(&cfg), &[]).await;
    // The old single `host` is gone: one name per concept, `hosts` as on every mutating tool.
    let r = call(
        &client,
        "restore_instance",
        json!({"host": "mcp-02", "reason": "fixed"}),
    )
    .await;
    common::assert_invalid(&r, "host");
    let restore = json!({"hosts": ["mcp-02"], "reason": "fixed"});
    let v = done(&call(&client, "restore_instance", restore.clone()).await);
    let after = &common::stage(&v, "mcp-02")["captured"]["after"];
    assert_eq!(after[lab.id("mcp-02")]["registered"], true, "{after}");
    assert_eq!(lab.registered(), all, "3 targets again");
    let r = call(&client, "restore_instance", restore).await;
    common::assert_invalid(&r, "hosts[0]");
    assert!(text(&r).contains("already registered"), "{}", text(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn drain_never_empties_the_group_and_cli_errors_are_quoted() {
    let _g = SERIAL.lock().await;
    let lab = Lab::load();
    lab.reset();
    // mcp-01 and mcp-03 out of the group (by the CLI directly): mcp-02 is the last target.
    let mut args = vec![
        "elbv2",
        "deregister-targets",
        "--target-group-arn",
        &lab.arn,
    ];
    let others = lab.targets(&["mcp-01", "mcp-03"]);
    args.push("--targets");
    args.extend(others.iter().map(String::as_str));
    lab.aws_ok(&args);
    let (cfg, state) = gate_config(FAST);
    let client = common::spawn(Some(&cfg), &[]).await;
    let r = call(
        &client,
        "drain_instance",
        json!({"hosts": ["mcp-02"], "reason": "r"}),
    )
    .await;
    refused(&r, "blast_radius");
    assert!(
        text(&r).contains("without a healthy target"),
        "{}",
        text(&r)
    );
    assert_eq!(lab.registered(), [lab.id("mcp-02").to_string()]);
    let approvals = state.path().join("state/approvals");
    assert!(
        std::fs::read_dir(&approvals)
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "refused before anyone was asked"
    );
    let r = call(
        &client,
        "drain_instance",
        json!({"hosts": ["db-01"], "reason": "r"}),
    )
    .await;
    common::assert_invalid(&r, "hosts[0]");
    client.cancel().await.unwrap();

    // A stopped instance cannot be registered: the emulator refuses through the real CLI, and
    // the tool quotes it; nothing changed.
    lab.aws_ok(&["ec2", "stop-instances", "--instance-ids", lab.id("mcp-01")]);
    let (cfg, _state) = gate_config(ALLOW);
    let client = common::spawn(Some(&cfg), &[]).await;
    let r = call(
        &client,
        "restore_instance",
        json!({"hosts": ["mcp-01"], "reason": "r"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    assert!(text(&r).contains("FAILED at `"), "{}", text(&r));
    assert!(
        text(&r).contains(&format!(
            "The following targets are not in a running state and cannot be registered: '{}'",
            lab.id("mcp-01")
        )),
        "the CLI's own message: {}",
        text(&r)
    );
    let v = r.structured_content.unwrap();
    assert_eq!(
        common::steps_with(common::stage(&v, "mcp-01"), "register-targets")[0]["exit_code"],
        255
    );
    assert_eq!(lab.registered(), [lab.id("mcp-02").to_string()]);
    client.cancel().await.unwrap();
    lab.reset(); // the lab is shared: leave it whole
}
