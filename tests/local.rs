//! The binary with no config file: the embedded default describes this machine only, and every
//! tool runs through the local executor. Driven by rmcp's client over stdio.

mod common;

use common::{assert_invalid, call, ok, spawn, text};
use serde_json::json;

#[tokio::test]
async fn no_config_lists_tools_and_diagnoses_the_local_machine() {
    let client = spawn(None, &[]).await;
    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "runbook-mcp");
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    // Only what this machine's config can serve: no services, Prometheus or database here
    // (incidents need only the state directory).
    assert_eq!(
        names,
        [
            "open_incident",
            "classify_incident",
            "join_incident",
            "list_incidents",
            "get_incident",
            "record_event",
            "update_checklist",
            "get_escalation_path",
            "resolve_incident",
            "generate_postmortem",
            "run_diagnostics",
            "check_system_resources",
            "what_changed",
            "generate_alert_rules",
            "run_command"
        ],
        "{names:?}"
    );
    let r = call(&client, "check_database", json!({})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains("not offered here: no [database]"),
        "{}",
        text(&r)
    );
    let diag = tools.iter().find(|t| t.name == "run_diagnostics").unwrap();
    assert!(diag.output_schema.is_some());
    assert_eq!(
        diag.annotations.as_ref().unwrap().read_only_hint,
        Some(true)
    );

    let r = call(&client, "run_diagnostics", json!({})).await;
    let v = ok(&r);
    let local = common::host(v, "local");
    assert_eq!(local["status"], "ok", "{local}");
    let res = &local["result"];
    assert!(res["resources"]["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(res["resources"]["cpus"].as_u64().unwrap() >= 1);
    assert!(!res["system"]["kernel"].as_str().unwrap().is_empty());
    assert!(text(&r).contains("local"), "{}", text(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_arguments_name_the_field_and_run_nothing() {
    let client = spawn(None, &[]).await;
    let cases = [
        (
            "check_system_resources",
            json!({"hosts": ["mcp-09"]}),
            "hosts[0]",
        ),
        (
            "check_system_resources",
            json!({"hosts": ["local; reboot"]}),
            "hosts[0]",
        ),
        (
            "check_system_resources",
            json!({"hosts": ["-oProxyCommand=id"]}),
            "hosts[0]",
        ),
        (
            "check_system_resources",
            json!({"approved": true}),
            "approved",
        ),
        ("check_system_resources", json!({"top": 51}), "top"),
        ("check_system_resources", json!({"top": "ten"}), "top"),
    ];
    for (tool, args, field) in cases {
        let r = call(&client, tool, args.clone()).await;
        assert_invalid(&r, field);
    }
    client.cancel().await.unwrap();

    // Tools a service and a Prometheus bring (nothing is reached: arguments fail first).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        "[hosts.local]\naddress = \"127.0.0.1\"\n[prometheus]\nurl = \"http://127.0.0.1:9\"\n\
         [services.web]\nmanager = \"systemd\"\nhosts = [\"local\"]\n\
         health_url = \"http://127.0.0.1:9/health\"\n\
         logs = { application = \"/nonexistent/app.log\" }\n",
    )
    .unwrap();
    let client = spawn(Some(&config), &[]).await;
    let cases = [
        (
            "get_recent_logs",
            json!({"service": "$(reboot)"}),
            "service",
        ),
        ("get_recent_logs", json!({"lines": 0}), "lines"),
        (
            "query_metrics",
            json!({"preset": "cpu", "window": "5m; drop"}),
            "window",
        ),
        ("verify_recovery", json!({"since": "yesterday"}), "since"),
        ("get_alerts", json!({"state": "resolved"}), "state"),
        ("what_changed", json!({"since": "soon"}), "since"),
        ("what_changed", json!({"since": "300000000000"}), "since"),
        ("analyze_logs", json!({"since": "1e300"}), "since"),
        (
            "verify_recovery",
            json!({"since": "10m", "interval_secs": 86400}),
            "interval_secs",
        ),
        (
            "verify_recovery",
            json!({"since": "10m", "checks": 0}),
            "checks",
        ),
        (
            "generate_alert_rules",
            json!({"memory_growth_mib_in_30m": 17592186044416u64}),
            "memory_growth_mib_in_30m",
        ),
        ("generate_alert_rules", json!({"group": "a b"}), "group"),
        ("validate_performance", json!({"requests": 0}), "requests"),
    ];
    for (tool, args, field) in cases {
        let r = call(&client, tool, args.clone()).await;
        assert_invalid(&r, field);
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn read_only_mode_still_offers_every_read_tool() {
    let client = spawn(None, &["--read-only"]).await;
    let tools = client.list_all_tools().await.unwrap();
    // Reads, and the tools that write only this server's own incident records.
    const RECORDS: [&str; 5] = [
        "open_incident",
        "join_incident",
        "record_event",
        "update_checklist",
        "resolve_incident",
    ];
    for t in &tools {
        let read = t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true);
        assert!(
            read || RECORDS.contains(&t.name.as_ref()),
            "{} in --read-only",
            t.name
        );
    }
    assert!(!tools.iter().any(|t| t.name == "run_command"));
    assert!(tools.iter().any(|t| t.name == "run_diagnostics"));
    client.cancel().await.unwrap();
}

/// The command line for scripts: `call`, `check-config`, `config-schema`.
#[test]
fn cli_call_check_config_and_schema() {
    use std::process::Command;
    let run = |args: &[&str]| {
        Command::new(common::bin())
            .args(args)
            .env_remove("RUNBOOK_MCP_CONFIG")
            .output()
            .unwrap()
    };
    let out = run(&[
        "call",
        "check_system_resources",
        "--arg",
        "hosts=local",
        "--arg",
        "top=3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hosts"][0]["host"], "local");
    assert_eq!(
        v["hosts"][0]["result"]["top_processes"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let out = run(&["call", "check_system_resources", "--arg", "hosts=nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`hosts[0]`") && err.contains("unknown host `nowhere`"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("fleet.toml");
    std::fs::write(&bad, "[hosts.a]\nsudoo = true\n").unwrap();
    let out = run(&["--config", bad.to_str().unwrap(), "check-config"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fleet.toml")
            && err.contains("line 2")
            && err.contains("unknown field `sudoo`"),
        "{err}"
    );

    let out = run(&["config-schema"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["properties"]["hosts"].is_object());
}

/// Resources and prompts: the runbook from the tool catalog, the tables, an incident's
/// timeline and post-mortem, and prompts whose caller text is escaped.
#[tokio::test]
async fn resources_and_prompts_serve_the_runbook_and_the_incident() {
    use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nstate_dir = \"{}\"\n[hosts.local]\naddress = \"127.0.0.1\"\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let client = spawn(Some(&config), &[]).await;
    let read = |uri: &str| {
        let client = &client;
        let uri = uri.to_string();
        async move {
            let r = client
                .read_resource(ReadResourceRequestParams::new(uri.clone()))
                .await
                .unwrap_or_else(|e| panic!("{uri}: {e}"));
            match &r.contents[0] {
                rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
                other => panic!("{other:?}"),
            }
        }
    };
    let listed = client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = listed.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "runbook://runbook",
            "runbook://severity",
            "runbook://audit/tail"
        ]
    );
    let runbook = read("runbook://runbook").await;
    assert!(runbook.contains("- `open_incident` (record):"), "{runbook}");
    assert!(
        runbook.contains("| P0 | complete service outage | 15 min |"),
        "{runbook}"
    );
    // Only tools this config offers are in it.
    assert!(!runbook.contains("check_database"), "{runbook}");
    let templates = client.list_all_resource_templates().await.unwrap();
    assert_eq!(templates.len(), 2);

    let r = call(
        &client,
        "open_incident",
        json!({"title": "disk full", "severity": "P1", "type": "capacity_issues"}),
    )
    .await;
    let id = ok(&r)["incident"]["id"].as_str().unwrap().to_string();
    call(&client, "check_system_resources", json!({})).await;
    let timeline = read(&format!("incident://{id}/timeline")).await;
    assert!(timeline.contains("check_system_resources"), "{timeline}");
    let pm = read(&format!("incident://{id}/postmortem")).await;
    assert!(
        pm.starts_with(&format!("# Incident Post-Mortem: {id}")),
        "{pm}"
    );
    assert!(
        pm.contains("`check_system_resources`") && pm.contains("[#"),
        "{pm}"
    );
    let tail = read("runbook://audit/tail").await;
    assert!(tail.contains("call") && tail.contains(&id), "{tail}");
    assert!(
        client
            .read_resource(ReadResourceRequestParams::new(
                "incident://../../etc/passwd/timeline"
            ))
            .await
            .is_err()
    );

    let prompts = client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["triage", "postmortem"]);
    let mut args = serde_json::Map::new();
    args.insert("symptom".into(), json!("5xx on /api\u{1b}[2J since 10:40"));
    let p = client
        .get_prompt(GetPromptRequestParams::new("triage").with_arguments(args))
        .await
        .unwrap();
    let text = p.messages[0].content.as_text().unwrap().text.clone();
    assert!(
        text.contains("5xx on /api") && !text.contains('\u{1b}'),
        "{text}"
    );
    let mut bad = serde_json::Map::new();
    bad.insert("incident".into(), json!("../x"));
    assert!(
        client
            .get_prompt(GetPromptRequestParams::new("postmortem").with_arguments(bad))
            .await
            .is_err()
    );
    client.cancel().await.unwrap();
}
