//! The database toolset against the lab's real PostgreSQL on db-01 (10.200.0.21:5432), through
//! the real binary: live numbers from `check_database` (this test's own sessions show up),
//! a vacuum that really reclaims dead tuples, SQL injection refused by field, a restart that
//! needs an operator at the terminal, and a stopped database reported as such. Serial: these
//! tests restart and stop the database.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{
    approval_id, call, call_h, gate_config, in_terminal, lab_config, lab_exec, main_pid, ok, text,
};
use rmcp::model::CallToolResult;
use rmcp::service::RunningService;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TARGET: &str = "10.200.0.21:5432/cctelegram";

fn db_url() -> String {
    let dir = std::env::var("RUNBOOK_LAB_DIR").unwrap_or_else(|_| "/tmp/runbook-lab".into());
    std::fs::read_to_string(format!("{dir}/secrets/database_url"))
        .unwrap()
        .trim()
        .to_string()
}

/// The password inside the URL: it must never reach a client.
fn db_password() -> String {
    let url = db_url();
    let rest = url.strip_prefix("postgres://runbook:").unwrap();
    rest[..rest.find('@').unwrap()].to_string()
}

fn assert_no_secret(r: &CallToolResult) {
    let all = serde_json::to_string(r).unwrap();
    assert!(
        !all.contains(&db_password()),
        "the database password leaked: {all}"
    );
}

/// A session of the test itself, as the lab's `runbook` role.
async fn pg() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&db_url(), tokio_postgres::NoTls)
        .await
        .expect("the test connects to the lab database");
    tokio::spawn(connection);
    client
}

async fn dead_tuples(c: &tokio_postgres::Client) -> i64 {
    c.query_one(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'messages'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Polls `check_database` until the database answers again (after a stop or a restart).
async fn wait_answering<H: ClientHandler>(client: &RunningService<RoleClient, H>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = call_h(client, "check_database", json!({})).await;
        if r.is_error == Some(false) {
            return r.structured_content.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "database did not come back: {}",
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn check_database_reports_this_tests_own_sessions() {
    let _g = SERIAL.lock().await;
    let client = common::spawn(Some(&lab_config()), &[]).await;
    // One idle session, and one running `pg_sleep(5)`.
    let idle = pg().await;
    idle.simple_query("SELECT 1").await.unwrap();
    let sleeper = pg().await;
    let sleeper_pid: i32 = sleeper
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let sleep = tokio::spawn(async move {
        sleeper.simple_query("SELECT pg_sleep(5)").await.unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = idle
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                &[&sleeper_pid],
            )
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "pg_sleep never became active");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let r = call(&client, "check_database", json!({})).await;
    let took = started.elapsed();
    let v = ok(&r).clone();
    assert_no_secret(&r);
    assert_eq!(v["target"], TARGET);
    let c = &v["connections"];
    assert!(
        c["by_state"]["idle"].as_i64().unwrap() >= 1,
        "our idle session: {c}"
    );
    // pg_sleep and the server's own session
    assert!(c["by_state"]["active"].as_i64().unwrap() >= 2, "{c}");
    assert!(c["total"].as_i64().unwrap() >= 3, "{c}");
    assert_eq!(c["max_connections"], 100);
    assert!(c["usage_percent"].as_f64().unwrap() >= 3.0, "{c}");

    let q = v["active_queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["pid"] == sleeper_pid)
        .unwrap_or_else(|| panic!("pg_sleep not listed: {v}"))
        .clone();
    assert_eq!(q["query"], "SELECT pg_sleep(5)");
    assert_eq!(q["state"], "active");
    assert_eq!(q["user"], "runbook");
    assert_eq!(q["database"], "cctelegram");
    assert_eq!(q["wait_event"], "Timeout:PgSleep");
    let secs = q["runtime_secs"].as_f64().unwrap();
    assert!(secs > 0.0 && secs < 6.0, "{q}");
    assert_eq!(v["longest_query"]["pid"], sleeper_pid, "{v}");
    assert!(
        v["active_queries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| !q["query"].as_str().unwrap().contains("pg_stat_activity")),
        "the server's own session is left out: {v}"
    );
    assert!(v["size_bytes"].as_i64().unwrap() > 1 << 20, "{v}");
    let messages = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.messages")
        .unwrap_or_else(|| panic!("the seeded table: {v}"));
    assert!(
        messages["live_tuples"].as_i64().unwrap() >= 15_000,
        "{messages}"
    );
    assert!(text(&r).contains("SELECT pg_sleep(5)"), "{}", text(&r));
    eprintln!(
        "check_database: {took:?} (server side {} ms)",
        v["elapsed_ms"]
    );

    let r = call(&client, "check_database", json!({"limit": 0})).await;
    common::assert_invalid(&r, "limit");
    sleep.await.unwrap();
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn vacuum_reclaims_the_seeded_tables_dead_tuples() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config("[policy]\ntools = { run_database_maintenance = \"allow\" }\n");
    let client = common::spawn(Some(&cfg), &[]).await;
    // Dead tuples to reclaim (autovacuum is off for this table): the updated rows' old
    // versions. The session ends so its statistics are flushed.
    {
        let c = pg().await;
        c.simple_query("UPDATE messages SET body = body WHERE id % 4 = 0")
            .await
            .unwrap();
    }
    let c = pg().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let before = loop {
        let n = dead_tuples(&c).await;
        if n > 0 {
            break n;
        }
        assert!(Instant::now() < deadline, "no dead tuples to reclaim");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Dry run: the exact SQL, nothing run.
    let args = json!({"operation": "vacuum_analyze", "table": "messages", "reason": "dead tuples", "dry_run": true});
    let r = call(&client, "run_database_maintenance", args).await;
    let v = ok(&r).clone();
    assert_eq!(v["status"], "dry_run");
    let sql: Vec<&Value> = common::planned_steps(&v)
        .into_iter()
        .filter(|s| s["step"] == "sql")
        .collect();
    assert_eq!(
        sql,
        [&json!({"step": "sql", "target": TARGET, "statement": "VACUUM ANALYZE \"messages\""})]
    );
    assert!(v.get("result").is_none());
    assert!(
        v["current_health"][1]
            .as_str()
            .unwrap()
            .starts_with("messages: "),
        "{v}"
    );
    assert_eq!(dead_tuples(&c).await, before, "a dry run runs nothing");

    let r = call(
        &client,
        "run_database_maintenance",
        json!({"operation": "vacuum_analyze", "table": "messages", "reason": "dead tuples"}),
    )
    .await;
    let v = ok(&r).clone();
    assert_no_secret(&r);
    let st = common::stage(&v, "database");
    let vacuum = common::steps_with(st, "VACUUM ANALYZE");
    assert_eq!(vacuum[0]["status"], "ok", "{st}");
    assert!(
        vacuum[0]["step"].as_str().unwrap().contains(TARGET),
        "the statement names the database it runs on: {st}"
    );
    let before: i64 = st["captured"]["dead_tuples_before"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(before > 0, "{st}");
    assert_eq!(st["captured"]["dead_tuples_after"], "0", "{st}");
    assert_eq!(dead_tuples(&c).await, 0, "seen from another session too");
    let vacuumed: bool = c
        .query_one(
            "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'messages'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(vacuumed);
    assert!(text(&r).contains("-> 0"), "{}", text(&r));

    // REINDEX DATABASE of the configured database.
    let r = call(
        &client,
        "run_database_maintenance",
        json!({"operation": "reindex", "reason": "suspected index corruption"}),
    )
    .await;
    let v = ok(&r);
    let reindex = common::steps_with(
        common::stage(v, "database"),
        "REINDEX DATABASE \"cctelegram\"",
    );
    assert_eq!(reindex.len(), 1, "{v}");
    assert_eq!(reindex[0]["status"], "ok", "{v}");

    // Arguments that would reach SQL are identifiers or nothing.
    for (args, field) in [
        (
            json!({"operation": "vacuum_analyze", "table": "x; drop table y", "reason": "r"}),
            "table",
        ),
        (
            json!({"operation": "reindex", "table": "messages", "reason": "r"}),
            "table",
        ),
        (
            json!({"operation": "vacuum_analyze", "table": "no_such_table", "reason": "r"}),
            "table",
        ),
        (
            json!({"operation": "vacuum_full", "reason": "r"}),
            "operation",
        ),
        (
            json!({"operation": "reindex", "reason": "r", "hosts": ["db-01"]}),
            "hosts",
        ),
    ] {
        let r = call(&client, "run_database_maintenance", args.clone()).await;
        common::assert_invalid(&r, field);
    }
    let tables: i64 = c
        .query_one("SELECT count(*) FROM pg_stat_user_tables", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "nothing was dropped or created");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn restart_database_runs_only_after_an_operator_typed_the_host() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config("[approval]\nwait_secs = 2\n");
    let h = common::Accepting::default();
    let client = common::spawn_with(h.clone(), &cfg).await;
    let args = json!({"hosts": ["db-01"], "reason": "connection pool exhausted"});

    let mut dry = args.clone();
    dry["dry_run"] = json!(true);
    let r = call_h(&client, "restart_database", dry).await;
    let v = ok(&r).clone();
    let run = common::planned_steps(&v)
        .into_iter()
        .find(|s| s["step"] == "run")
        .unwrap()
        .clone();
    assert_eq!(run["host"], "db-01");
    assert_eq!(run["argv"], json!(["systemctl", "restart", "postgresql"]));
    assert_eq!(run["sudo"], true);
    assert!(
        run["via"].as_str().unwrap().starts_with("ssh runbook@"),
        "{run}"
    );
    assert_eq!(run["timeout_secs"], 90);
    let wait = common::planned_steps(&v)
        .into_iter()
        .find(|s| s["step"] == "wait_until")
        .unwrap()
        .clone();
    assert_eq!(wait["within_secs"], 60);
    assert_eq!(
        wait["probe"]["what"],
        format!("PostgreSQL at {TARGET} accepts connections")
    );
    let health = v["current_health"][0].as_str().unwrap();
    assert!(health.contains("accepting connections"), "{health}");
    let r = call_h(
        &client,
        "restart_database",
        json!({"hosts": ["mcp-01"], "reason": "r"}),
    )
    .await;
    common::assert_invalid(&r, "hosts[0]");

    let before = main_pid("db-01", "postgresql");
    assert!(before > 1);
    let r = call_h(&client, "restart_database", args.clone()).await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    assert!(text(&r).starts_with("refused (pending)"), "{}", text(&r));
    assert!(text(&r).contains("typing the target back"), "{}", text(&r));
    assert_eq!(
        h.asked.load(Ordering::SeqCst),
        0,
        "destructive: the client is not even asked"
    );
    assert_eq!(
        main_pid("db-01", "postgresql"),
        before,
        "pending: nothing ran"
    );

    let id = approval_id(&text(&r));
    let (approved, out) = in_terminal(&cfg, &["approve", &id], "mcp-01\n");
    assert!(!approved, "the wrong host typed back: {out}");
    let (approved, out) = in_terminal(&cfg, &["approve", &id], "db-01\n");
    assert!(approved, "{out}");

    let r = call_h(&client, "restart_database", args).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let v = r.structured_content.clone().unwrap();
    let st = common::stage(&v, "db-01");
    assert_eq!(st["status"], "ok", "{st}");
    let (b, a) = (
        &st["captured"]["started_before"],
        &st["captured"]["started_after"],
    );
    assert!(a.is_string() && a != b, "the postmaster restarted: {st}");
    assert!(text(&r).contains("it really restarted"), "{}", text(&r));
    assert_eq!(
        common::steps_with(st, "accepts connections")[0]["status"],
        "ok",
        "{st}"
    );
    assert_eq!(v["approval"]["id"], id);
    assert_eq!(v["approval"]["channels"], json!(["terminal"]));
    let after = main_pid("db-01", "postgresql");
    assert!(
        after > 1 && after != before,
        "postmaster {before} -> {after}"
    );
    let v = wait_answering(&client).await;
    assert_eq!(v["target"], TARGET);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_stopped_database_is_a_clear_error() {
    let _g = SERIAL.lock().await;
    let (cfg, _state) = gate_config("[policy]\ntools = { run_database_maintenance = \"allow\" }\n");
    let client = common::spawn(Some(&cfg), &[]).await;
    lab_exec("db-01", &["systemctl", "stop", "postgresql"]);
    let check = call(&client, "check_database", json!({})).await;
    let vacuum = call(
        &client,
        "run_database_maintenance",
        json!({"operation": "vacuum_analyze", "reason": "r"}),
    )
    .await;
    let status = call(&client, "check_service_status", json!({"hosts": ["db-01"]})).await;
    lab_exec("db-01", &["systemctl", "start", "postgresql"]);

    for r in [&check, &vacuum] {
        assert_eq!(r.is_error, Some(true), "{}", text(r));
        assert!(
            text(r).starts_with(&format!(
                "unavailable: PostgreSQL at {TARGET} is not accepting connections"
            )),
            "{}",
            text(r)
        );
        assert_no_secret(r);
    }
    assert!(
        text(&check).contains("check_service_status"),
        "{}",
        text(&check)
    );
    assert_eq!(
        ok(&status)["down"],
        json!(["db-01/postgresql"]),
        "{}",
        text(&status)
    );

    // Restored: it answers again, with the seeded table.
    let deadline = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let r = call(&client, "check_database", json!({})).await;
        if r.is_error == Some(false) {
            break r.structured_content.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "database did not come back: {}",
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        v["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["table"] == "public.messages")
    );
    let r = call(&client, "check_service_status", json!({"hosts": ["db-01"]})).await;
    assert_eq!(ok(&r)["down"], json!([]), "{}", text(&r));
    client.cancel().await.unwrap();
}
