//! The gate's side effects: request ids, the audit records, and ringing the operator.

use super::Ctx;
use super::ToolError;
use super::approval::{ApprovalRecord, ApprovalState, DecisionRec};
use super::plan::Plan;
use crate::audit::{Record, Status, Verdict};

/// A new audit request id, `R-` and 8 hex digits.
pub fn request_id() -> String {
    id_with("R-", 4)
}

/// `prefix` and `bytes` random bytes in hex: the ids of requests, calls and incidents.
pub fn id_with(prefix: &str, bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    let _ = getrandom::fill(&mut b);
    format!("{prefix}{}", hex::encode(b))
}

/// Wall-clock time of day, UTC, `HH:MM:SS` (for busy notices and logs).
pub fn clock() -> String {
    let s = super::approval::now_ms() / 1000;
    format!(
        "{:02}:{:02}:{:02} UTC",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60
    )
}

/// Appends off the async threads: the log takes a file lock and fsyncs.
async fn append(ctx: &Ctx, record: Record) -> Result<(), String> {
    let log = ctx.audit().map_err(|e| e.message)?;
    tokio::task::spawn_blocking(move || log.append(record).map(|_| ()).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

/// The intent record. No record, no action: a failure here refuses the call.
pub async fn intent(
    ctx: &Ctx,
    request_id: &str,
    plan: &Plan,
    principal: &str,
    reason: &str,
    incident: Option<&str>,
) -> Result<(), ToolError> {
    let record = Record::Intent {
        request_id: request_id.into(),
        tool: plan.tool.clone(),
        arguments: plan.arguments.clone(),
        plan_digest: Some(plan.digest.clone()),
        principal: principal.into(),
        reason: Some(reason.into()),
        incident_id: incident.map(str::to_string),
        plan: plan.review_lines(),
    };
    append(ctx, record).await.map_err(|e| {
        ToolError::internal(format!(
            "the audit log cannot be written ({e}); nothing was run"
        ))
    })
}

/// A decision delivered through a client channel (the terminal records its own).
pub async fn decision(
    ctx: &Ctx,
    request_id: &str,
    approval_id: &str,
    d: &DecisionRec,
    refusal: ApprovalState,
    waited_ms: u64,
) {
    let verdict = match (d.approved, refusal) {
        (true, _) => Verdict::Approved,
        (false, ApprovalState::Cancelled) => Verdict::Cancelled,
        (false, ApprovalState::Denied) => Verdict::Denied,
        (false, _) => Verdict::Declined,
    };
    let record = Record::Decision {
        request_id: request_id.into(),
        approval_id: approval_id.into(),
        decision: verdict,
        approver: Some(d.approver.clone()),
        channel: Some(d.channel.clone()),
        wait_ms: waited_ms,
        note: (!d.note.is_empty()).then(|| d.note.clone()),
    };
    if let Err(e) = append(ctx, record).await {
        tracing::error!("audit log: {e}");
    }
}

/// The outcome record.
pub async fn outcome(
    ctx: &Ctx,
    request_id: &str,
    status: Status,
    code: Option<&str>,
    detail: String,
) {
    let record = Record::Outcome {
        request_id: request_id.into(),
        status,
        code: code.map(String::from),
        detail,
    };
    if let Err(e) = append(ctx, record).await {
        tracing::error!("audit log: {e}");
    }
}

/// Tells the operator a decision is waiting: a line on stderr (the server's log) and a desktop
/// notification where one exists.
pub fn ring(r: &ApprovalRecord) {
    // Only the ways this plan can be decided: a terminal command that would refuse helps no
    // one at 3 a.m.
    let mut ways = Vec::new();
    if r.counts("terminal") {
        ways.push(format!(
            "run `runbook-mcp approve {}` or `runbook-mcp deny {} --reason ...`",
            r.id, r.id
        ));
    }
    if r.counts("telegram") {
        ways.push("press Approve or Deny on its Telegram message".to_string());
    }
    if r.counts("client") {
        ways.push("answer the client's prompt".to_string());
    }
    let line = format!(
        "APPROVAL NEEDED {}: {} — \"{}\" — {}",
        r.id,
        r.tool,
        crate::screen::escape(&r.reason),
        ways.join(", or ")
    );
    // Plain stderr, whatever the log level: this line is for the operator.
    eprintln!("runbook-mcp: {line}");
    if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        let child = std::process::Command::new("notify-send")
            .arg("runbook-mcp: approval needed")
            .arg(format!("{} {}", r.id, r.tool))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        // Reaped, not left a zombie for the server's lifetime.
        if let Ok(mut c) = child {
            std::thread::spawn(move || {
                let _ = c.wait();
            });
        }
    }
}
