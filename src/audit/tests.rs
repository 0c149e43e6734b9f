use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::json;

use super::store::{self, HeadState};
use super::*;

fn intent(request_id: &str, tool: &str) -> Record {
    Record::Intent {
        request_id: request_id.into(),
        tool: tool.into(),
        arguments: json!({"hosts": ["mcp-02"], "service": "cctelegram-mcp"}),
        plan_digest: Some("ab".repeat(32)),
        principal: "alice".into(),
        reason: Some("502s on mcp-02".into()),
        incident_id: Some("INC-1".into()),
        plan: vec![
            "mcp-02 (ssh runbook@10.0.0.2:22): sudo systemctl restart cctelegram-mcp".into(),
        ],
    }
}

fn decision(request_id: &str) -> Record {
    Record::Decision {
        request_id: request_id.into(),
        approval_id: "A-1".into(),
        decision: Verdict::Approved,
        approver: Some("bob".into()),
        channel: Some("terminal".into()),
        wait_ms: 4200,
        note: None,
    }
}

fn outcome(request_id: &str) -> Record {
    Record::Outcome {
        request_id: request_id.into(),
        status: Status::Succeeded,
        code: None,
        detail: "restarted on mcp-02".into(),
    }
}

/// A log of `n` entries: intent / decision / outcome triples of requests R-1, R-2, ...
fn log_with(dir: &Path, n: usize) -> AuditLog {
    let log = AuditLog::open(dir, vec![]).unwrap();
    for i in 0..n {
        let r = format!("R-{}", i / 3 + 1);
        let rec = match i % 3 {
            0 => intent(&r, "restart_service"),
            1 => decision(&r),
            _ => outcome(&r),
        };
        log.append(rec).unwrap();
    }
    log
}

fn lines(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    text.lines().map(str::to_string).collect()
}

fn write_lines(dir: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(dir.join("audit.jsonl"), text).unwrap();
}

#[test]
fn round_trip_masks_secret_values_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let token = "s3cr3t-token-value";
    let pin = "12345678";
    let log = AuditLog::open(
        dir.path(),
        vec![token.into(), pin.into(), "abc".into(), "hunter22".into()],
    )
    .unwrap();
    let args = json!({
        "hosts": ["mcp-01"],
        "nested": {"deep": ["x", {"header": format!("Bearer {token}!")}]},
        token: "a key that is itself the secret",
        "pin": 12345678,
        "short": "abc stays: shorter secrets would mask ordinary words",
    });
    let written = vec![
        log.append(Record::Intent {
            request_id: format!("R-{token}"),
            tool: format!("t{token}"),
            arguments: args,
            plan_digest: Some(format!("d{token}")),
            principal: format!("p{token}"),
            reason: Some(format!("reason hunter22 {token}")),
            incident_id: Some(format!("i{token}")),
            plan: vec![format!("mcp-02: run {token}")],
        })
        .unwrap(),
        log.append(Record::Decision {
            request_id: format!("R-{token}"),
            approval_id: format!("A-{token}"),
            decision: Verdict::Denied,
            approver: Some(format!("a{token}")),
            channel: Some(format!("c{token}")),
            wait_ms: 7,
            note: Some(format!("n{token}")),
        })
        .unwrap(),
        log.append(Record::Call {
            request_id: format!("C-{token}"),
            incident_id: format!("i{token}"),
            tool: format!("t{token}"),
            arguments: json!({"q": format!("x{token}")}),
            principal: format!("p{token}"),
            summary: format!("s{token}"),
            is_error: false,
            duration_ms: 3,
            approval: Some(format!("a{token}")),
        })
        .unwrap(),
        log.append(Record::Outcome {
            request_id: format!("R-{token}"),
            status: Status::Refused,
            code: Some(format!("c{token}")),
            detail: format!("curl -H 'X-API-Key: {token}'\nfailed"),
        })
        .unwrap(),
    ];

    let raw = fs::read(dir.path().join("audit.jsonl")).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    for secret in [token, pin, "hunter22"] {
        assert!(!raw.contains(secret), "{secret} reached the file:\n{raw}");
    }
    assert!(raw.contains("Bearer ****!"), "{raw}");
    assert!(raw.contains(r#""pin":"****""#), "{raw}");
    assert!(raw.contains("abc stays"), "short values are not masked");
    assert_eq!(raw.lines().count(), 4);

    // What append returned is what is read back, hash included.
    let read = log.entries().unwrap();
    assert_eq!(read, written);
    assert_eq!(read[0].seq, 1);
    assert_eq!(read[0].prev, store::GENESIS);
    assert_eq!(read[1].prev, read[0].hash);
    assert_eq!(
        read[0].hash,
        store::line_hash(raw.lines().next().unwrap().as_bytes())
    );
    match &read[0].record {
        Record::Intent {
            principal,
            arguments,
            plan,
            ..
        } => {
            assert_eq!(principal, "p****");
            assert_eq!(
                plan,
                &vec!["mcp-02: run ****".to_string()],
                "plan lines are masked too"
            );
            assert_eq!(arguments["****"], "a key that is itself the secret");
        }
        other => panic!("{other:?}"),
    }
    // The line starts with the chain fields, then the record's kind.
    assert!(raw.starts_with(r#"{"seq":1,"ts":""#), "{raw}");
    assert!(raw.contains(r#""kind":"intent""#));
    assert!(!format!("{log:?}").contains(token));
}

#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let log = log_with(&state, 1);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    for f in ["audit.jsonl", "audit.head", "audit.lock"] {
        assert_eq!(mode(&state.join(f)), 0o600, "{f}");
    }
    drop(log);
}

#[test]
fn clean_log_verifies_and_shows() {
    let dir = tempfile::tempdir().unwrap();
    // An empty log is fine too.
    let empty = AuditLog::open(dir.path(), vec![])
        .unwrap()
        .verify()
        .unwrap();
    assert!(empty.is_ok(), "{empty}");
    let log = log_with(dir.path(), 9);
    let report = log.verify().unwrap();
    assert_eq!(report.entries, 9);
    assert_eq!(report.problems, vec![]);
    assert_eq!(report.open_intents, vec![]);
    assert!(report.to_string().starts_with("OK: 9 entries"), "{report}");
    assert!(
        report.to_string().ends_with("open intents: none"),
        "{report}"
    );

    let entries = log.entries().unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
    let shown: Vec<String> = entries.iter().map(ToString::to_string).collect();
    assert!(shown[0].contains("intent") && shown[0].contains("R-1"));
    assert!(shown[0].contains("restart_service by alice plan abababababab incident INC-1"));
    assert!(
        shown[1].contains("A-1 approved by bob via terminal after 4.2 s"),
        "{}",
        shown[1]
    );
    assert!(
        shown[2].contains("succeeded: restarted on mcp-02"),
        "{}",
        shown[2]
    );
    assert!(shown.iter().all(|s| !s.contains('\n')));
}

#[test]
fn tail_reads_from_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 5);
    // A line far larger than the first backwards read, so the reader has to grow.
    log.append(Record::Outcome {
        request_id: "R-big".into(),
        status: Status::Failed,
        code: None,
        detail: "x".repeat(200_000),
    })
    .unwrap();
    log.append(outcome("R-last")).unwrap();
    let all = log.entries().unwrap();
    assert_eq!(log.tail(2).unwrap(), all[5..]);
    assert_eq!(log.tail(3).unwrap(), all[4..]);
    assert_eq!(log.tail(100).unwrap(), all);
    assert_eq!(log.tail(0).unwrap(), vec![]);
}

#[test]
fn edited_middle_byte_breaks_the_next_link() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 6);
    let mut l = lines(dir.path());
    // One byte, and the line is still valid JSON: only the chain can tell.
    l[2] = l[2].replacen("mcp-02", "mcp-03", 1);
    write_lines(dir.path(), &l);
    let report = log.verify().unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::BrokenLink { line: 4 }],
        "{report}"
    );
    assert!(report.to_string().starts_with("FAILED"));
    assert!(report.to_string().contains("line 4: broken chain"));

    // An edit that leaves invalid JSON is reported at its own line as well.
    l[2] = l[2].replacen('{', "[", 1);
    write_lines(dir.path(), &l);
    let p = log.verify().unwrap().problems;
    assert!(matches!(p[0], Problem::BadLine { line: 3, .. }), "{p:?}");
    assert_eq!(p[1], Problem::BrokenLink { line: 4 });
    assert!(log.entries().is_err());
}

#[test]
fn edited_last_line_is_caught_by_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 6);
    let mut l = lines(dir.path());
    l[5] = l[5].replacen("mcp-02", "mcp-03", 1);
    write_lines(dir.path(), &l);
    let report = log.verify().unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::HeadMismatch { line: 6, seq: 6 }]
    );

    // The next append chains from the head, so the edit stays visible.
    log.append(intent("R-9", "reload_nginx")).unwrap();
    let report = log.verify().unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::BrokenLink { line: 7 }],
        "{report}"
    );
}

#[test]
fn swapped_lines_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 6);
    let mut l = lines(dir.path());
    l.swap(2, 3);
    write_lines(dir.path(), &l);
    let p = log.verify().unwrap().problems;
    assert_eq!(
        p,
        vec![
            Problem::SeqGap {
                line: 3,
                expected: 3,
                found: 4
            },
            Problem::BrokenLink { line: 3 },
            Problem::SeqGap {
                line: 4,
                expected: 5,
                found: 3
            },
            Problem::BrokenLink { line: 4 },
            Problem::BrokenLink { line: 5 },
        ]
    );
}

#[test]
fn swapped_last_two_lines_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 4);
    let mut l = lines(dir.path());
    l.swap(2, 3);
    write_lines(dir.path(), &l);
    let p = log.verify().unwrap().problems;
    assert!(p.contains(&Problem::BrokenLink { line: 4 }), "{p:?}");
    assert!(
        p.contains(&Problem::TruncatedVsHead {
            head_seq: 4,
            last_seq: 3
        }),
        "{p:?}"
    );
}

#[test]
fn truncated_log_is_detected_and_stays_detected() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 6);
    let l = lines(dir.path());
    write_lines(dir.path(), &l[..5]);
    let report = log.verify().unwrap();
    assert_eq!(
        report.problems,
        vec![Problem::TruncatedVsHead {
            head_seq: 6,
            last_seq: 5
        }]
    );
    assert!(report.to_string().contains("lines cut from the end"));

    // Appending does not launder the truncation: the new line follows the head, not the file.
    log.append(intent("R-9", "reload_nginx")).unwrap();
    let p = log.verify().unwrap().problems;
    assert_eq!(
        p,
        vec![
            Problem::SeqGap {
                line: 6,
                expected: 6,
                found: 7
            },
            Problem::BrokenLink { line: 6 },
        ]
    );

    // Emptied entirely, or deleted.
    let emptied = vec![Problem::TruncatedVsHead {
        head_seq: 7,
        last_seq: 0,
    }];
    fs::write(dir.path().join("audit.jsonl"), "").unwrap();
    assert_eq!(log.verify().unwrap().problems, emptied);
    fs::remove_file(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(log.verify().unwrap().problems, emptied);
    assert_eq!(log.entries().unwrap(), vec![]);
}

#[test]
fn deleted_middle_line_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 6);
    let mut l = lines(dir.path());
    l.remove(2);
    write_lines(dir.path(), &l);
    let p = log.verify().unwrap().problems;
    assert_eq!(
        p,
        vec![
            Problem::SeqGap {
                line: 3,
                expected: 3,
                found: 4
            },
            Problem::BrokenLink { line: 3 },
        ]
    );
}

#[test]
fn missing_or_unreadable_head_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 3);
    fs::write(dir.path().join("audit.head"), "garbage").unwrap();
    let p = log.verify().unwrap().problems;
    assert!(matches!(p.as_slice(), [Problem::BadHead { .. }]), "{p:?}");
    fs::remove_file(dir.path().join("audit.head")).unwrap();
    assert_eq!(log.verify().unwrap().problems, vec![Problem::MissingHead]);
    // Appending continues the log's own chain and writes a new head.
    log.append(outcome("R-2")).unwrap();
    assert!(log.verify().unwrap().is_ok());
}

#[test]
fn intents_without_outcome_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 3);
    log.append(intent("R-7", "restart_bridge")).unwrap();
    log.append(decision("R-7")).unwrap();
    log.append(intent("R-8", "rolling_restart")).unwrap();
    log.append(outcome("R-8")).unwrap();
    let report = log.verify().unwrap();
    assert!(report.is_ok());
    let open: Vec<(&str, &str, u64, u64)> = report
        .open_intents
        .iter()
        .map(|o| (o.request_id.as_str(), o.tool.as_str(), o.line, o.seq))
        .collect();
    assert_eq!(open, vec![("R-7", "restart_bridge", 4, 4)]);
    let text = report.to_string();
    assert!(text.contains("R-7  restart_bridge by alice"), "{text}");
}

#[test]
fn crash_between_line_and_head_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 3);
    let head_before = fs::read(dir.path().join("audit.head")).unwrap();
    log.append(intent("R-2", "reload_nginx")).unwrap();
    // As if the process died after fsyncing the line, before replacing the head.
    fs::write(dir.path().join("audit.head"), head_before).unwrap();
    assert_eq!(
        log.verify().unwrap().problems,
        vec![Problem::HeadBehind {
            head_seq: 3,
            last_seq: 4
        }]
    );
    log.append(outcome("R-2")).unwrap();
    let report = log.verify().unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.entries, 5);
}

#[test]
fn write_cut_short_is_removed_by_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 3);
    let path = dir.path().join("audit.jsonl");
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"seq":4,"ts":"2026-"#);
    fs::write(&path, bytes).unwrap();
    let p = log.verify().unwrap().problems;
    assert!(
        matches!(p.as_slice(), [Problem::BadLine { line: 4, .. }]),
        "{p:?}"
    );
    // Readers skip the fragment; the next append removes it and carries on.
    assert_eq!(log.entries().unwrap().len(), 3);
    let e = log.append(intent("R-2", "reload_nginx")).unwrap();
    assert_eq!(e.seq, 4);
    assert!(log.verify().unwrap().is_ok());
    assert_eq!(lines(dir.path()).len(), 4);
}

#[test]
fn timestamps_are_rfc3339_utc_millis() {
    let at = |ms: u64| store::rfc3339_ms(UNIX_EPOCH + Duration::from_millis(ms));
    assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(at(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    assert_eq!(at(1_735_689_599_123), "2024-12-31T23:59:59.123Z");
    assert_eq!(at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    let now = store::rfc3339_ms(std::time::SystemTime::now());
    assert_eq!(now.len(), 24, "{now}");
}

#[test]
fn threads_and_separate_handles_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(AuditLog::open(dir.path(), vec![]).unwrap());
    let per_thread = 100;
    let handles: Vec<_> = (0..4)
        .map(|t| {
            // Two threads share one handle, two open their own (separate lock descriptions).
            let log = if t < 2 {
                Arc::clone(&shared)
            } else {
                Arc::new(AuditLog::open(dir.path(), vec![]).unwrap())
            };
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    log.append(intent(&format!("T{t}-{i}"), "x")).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_chain(&shared, 4, per_thread, 'T');
}

/// Set to `<dir>|<id>` in the children of `processes_keep_one_chain`.
const CHILD_ENV: &str = "RUNBOOK_MCP_AUDIT_TEST_CHILD";
const PER_PROCESS: usize = 200;
const PROCESSES: usize = 4;

/// Does nothing in a normal run. Re-run by `processes_keep_one_chain` as a separate process,
/// it waits for the start signal, then appends `PER_PROCESS` records.
#[test]
fn child_appender() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, id) = spec.split_once('|').unwrap();
    let dir = Path::new(dir);
    let log = AuditLog::open(dir, vec![]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("go").exists() {
        assert!(Instant::now() < deadline, "no start signal");
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..PER_PROCESS {
        log.append(intent(&format!("P{id}-{i}"), "x")).unwrap();
    }
}

#[test]
fn processes_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|id| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "audit::tests::child_appender",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{}|{id}", dir.path().display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // All children start appending at once, so their appends contend for the lock.
    fs::write(dir.path().join("go"), "").unwrap();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Guards against the filter matching nothing (a child that appended nothing).
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
    let log = AuditLog::open(dir.path(), vec![]).unwrap();
    let interleavings = assert_chain(&log, PROCESSES, PER_PROCESS, 'P');
    assert!(interleavings > 0, "the processes never ran concurrently");
}

/// Checks `writers * per_writer` entries with seq 1..=N, no problems, and each writer's
/// records in its own order. Returns how often consecutive entries come from different
/// writers.
fn assert_chain(log: &AuditLog, writers: usize, per_writer: usize, prefix: char) -> usize {
    let report = log.verify().unwrap();
    let total = writers * per_writer;
    assert_eq!(report.problems, vec![], "{report}");
    assert_eq!(report.entries, total as u64);
    let entries = log.entries().unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>());
    let ids: Vec<(usize, usize)> = entries
        .iter()
        .map(|e| {
            let id = e.record.request_id().strip_prefix(prefix).unwrap();
            let (w, i) = id.split_once('-').unwrap();
            (w.parse().unwrap(), i.parse().unwrap())
        })
        .collect();
    for w in 0..writers {
        let mine: Vec<usize> = ids.iter().filter(|(x, _)| *x == w).map(|p| p.1).collect();
        assert_eq!(mine, (0..per_writer).collect::<Vec<_>>(), "writer {w}");
    }
    assert!(matches!(
        store::read_head(&log.head).unwrap(),
        HeadState::Ok(h) if h.seq == total as u64
    ));
    ids.windows(2).filter(|w| w[0].0 != w[1].0).count()
}
