//! The cost of one audit append (lock, head read, write, fsync, head replace): median, p90 and
//! p99 of 1000. Run: `cargo bench --bench audit` (AUDIT_BENCH_DIR picks the filesystem; the
//! default is a temporary directory under the current one, i.e. the real disk).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use runbook_mcp::audit::{AuditLog, Record};

fn main() {
    let base = std::env::var("AUDIT_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).unwrap();
    let log = AuditLog::open(dir.path(), vec!["s3cr3t-token-value".into()]).unwrap();
    let mut us: Vec<f64> = (0..1000)
        .map(|i| {
            let record = Record::Intent {
                request_id: format!("R-{i:08x}"),
                tool: "restart_service".into(),
                arguments: serde_json::json!({"hosts": ["mcp-02"], "service": "cctelegram-mcp", "reason": "bench"}),
                plan_digest: Some("0".repeat(64)),
                principal: "bench@root".into(),
                reason: Some("bench".into()),
                incident_id: None,
                plan: vec!["mcp-02 (ssh runbook@10.0.0.12:22): sudo systemctl restart cctelegram-mcp".into()],
            };
            let t = Instant::now();
            log.append(record).unwrap();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    us.sort_by(f64::total_cmp);
    println!("| audit append (1000) | median | p90 | p99 |\n|---|---|---|---|");
    println!(
        "| {} | {:.0} µs | {:.0} µs | {:.0} µs |",
        dir.path().display(),
        us[500],
        us[900],
        us[990]
    );
    assert!(log.verify().unwrap().is_ok());
}
