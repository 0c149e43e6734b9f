//! The operator's commands, outside any MCP client: `approvals`, `approve`, `deny`, `freeze`,
//! `unfreeze`, `audit show`, `audit verify`. Decisions and unfreezing need an interactive
//! terminal: an assistant running commands through a tool or a pipe cannot approve its own
//! action.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use crate::audit::{AuditLog, Record, Verdict};
use crate::config::Config;
use crate::engine::Effect;
use crate::engine::approval::{ApprovalRecord, ApprovalState, ApprovalStore, DecisionRec, now_ms};
use crate::engine::guards;

/// Refuses unless stdin and stdout are a terminal.
fn require_terminal(what: &str) -> anyhow::Result<()> {
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        Ok(())
    } else {
        anyhow::bail!(
            "`{what}` needs an interactive terminal: decisions are made by a person, not by a program or an assistant's tool"
        )
    }
}

/// The operator: the kernel's account of this process (the sudo caller only where sudo alone
/// could have set it; see `engine::identity`).
fn operator(config: &Config) -> String {
    crate::engine::identity::account(config.approval.service_account.as_deref())
}

fn ask(prompt: &str) -> anyhow::Result<String> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// The serde name of a unit enum value (`pending`, `destructive`).
fn word<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// A record for the terminal: every field escaped, the reason quoted (a caller's text can
/// neither add a plan line nor hide one).
fn show(r: &ApprovalRecord) -> String {
    use crate::screen::escape;
    let left = r.expires_ms.saturating_sub(now_ms()) / 1000;
    let mut s = format!(
        "{}  {}  {}  ({}, asked by {}, expires in {left} s)\n  reason: \"{}\"\n",
        escape(&r.id),
        word(r.state),
        escape(&r.tool),
        word(r.effect),
        escape(&r.principal),
        escape(&r.reason)
    );
    for l in &r.plan {
        s.push_str(&format!("  - {}\n", escape(l)));
    }
    if r.approvals_required > 1 {
        s.push_str(&format!(
            "  approvals: {}/{} ({})\n",
            r.approvers().len(),
            r.approvals_required,
            r.approvers().join(", ")
        ));
    }
    s
}

fn store(config: &Config) -> anyhow::Result<ApprovalStore> {
    Ok(ApprovalStore::open(&config.server.state_dir)?)
}

fn audit(config: &Config) -> anyhow::Result<AuditLog> {
    AuditLog::open(&config.server.state_dir, config.secrets.values())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `runbook-mcp approvals`: pending requests with their plans.
pub fn list(config: &Config, all: bool) -> anyhow::Result<ExitCode> {
    let records = store(config)?.list()?;
    let shown: Vec<&ApprovalRecord> = records
        .iter()
        .filter(|r| all || r.state == ApprovalState::Pending)
        .collect();
    if shown.is_empty() {
        println!("no {}approval requests", if all { "" } else { "pending " });
    }
    for r in shown {
        println!("{}", show(r));
    }
    Ok(ExitCode::SUCCESS)
}

/// `runbook-mcp approve ID` / `deny ID --reason`.
pub fn decide(
    config: &Config,
    id: &str,
    approve: bool,
    note: Option<String>,
) -> anyhow::Result<ExitCode> {
    require_terminal(if approve { "approve" } else { "deny" })?;
    let store = store(config)?;
    let r = store
        .get(id)?
        .ok_or_else(|| anyhow::anyhow!("no approval request {id}"))?;
    if r.state != ApprovalState::Pending {
        anyhow::bail!("{id} is {}, not pending", word(r.state));
    }
    // Policy may leave the terminal out (e.g. `destructive = ["telegram"]`): then no typing
    // here, under a pseudo-terminal or not, approves this plan.
    if approve && !r.counts("terminal") {
        anyhow::bail!(
            "{id}: a decision through the terminal does not count for this plan (policy allows: {})",
            r.allowed().join(", ")
        );
    }
    println!("{}", show(&r));
    if approve {
        if r.effect == Effect::Destructive {
            let typed = ask(&format!(
                "This is destructive. Type the target ({}) to approve: ",
                r.confirm_text
            ))?;
            if typed != r.confirm_text {
                println!("the target does not match; nothing was approved");
                return Ok(ExitCode::FAILURE);
            }
        } else if !matches!(
            ask("Approve exactly this plan? [y/N] ")?.as_str(),
            "y" | "Y" | "yes"
        ) {
            println!("nothing was approved");
            return Ok(ExitCode::FAILURE);
        }
    }
    let d = DecisionRec {
        approver: operator(config),
        channel: "terminal".into(),
        approved: approve,
        at_ms: now_ms(),
        note: note.clone().unwrap_or_default(),
    };
    let r = store
        .decide(id, d.clone(), ApprovalState::Denied)
        .map_err(|e| anyhow::anyhow!(e))?;
    audit(config)?
        .append(Record::Decision {
            request_id: r.request_id.clone(),
            approval_id: r.id.clone(),
            decision: if approve {
                Verdict::Approved
            } else {
                Verdict::Denied
            },
            approver: Some(d.approver),
            channel: Some("terminal".into()),
            wait_ms: now_ms().saturating_sub(r.created_ms),
            note,
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match r.state {
        ApprovalState::Approved => println!(
            "{id} approved: the same call from {} runs it once, before it expires",
            r.principal
        ),
        ApprovalState::Pending => println!(
            "{id}: your approval is recorded; {} more approver(s) needed",
            r.approvals_required as usize - r.approvers().len()
        ),
        s => println!("{id} is now {}", word(s)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `runbook-mcp freeze --reason`: stops every mutating action (tightening needs no terminal).
pub fn freeze(config: &Config, reason: &str) -> anyhow::Result<ExitCode> {
    crate::screen::check_text(reason).map_err(|e| anyhow::anyhow!("--reason {e}"))?;
    let notice = format!(
        "frozen by {} at {}: {reason}",
        operator(config),
        crate::engine::hooks::clock()
    );
    guards::freeze(&config.server.state_dir, &notice)?;
    println!("{notice}");
    Ok(ExitCode::SUCCESS)
}

/// `runbook-mcp abort R-…`: the kill switch for one action in flight — it stops before its next
/// stage (the stage in flight finishes), and its outcome in the audit log says what ran.
pub fn abort(config: &Config, request: &str) -> anyhow::Result<ExitCode> {
    require_terminal("abort")?;
    let ok = request.len() == 10
        && request.starts_with("R-")
        && request[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        anyhow::bail!(
            "`{}` is not a request id like R-1f2e3d4c",
            crate::screen::escape(request)
        );
    }
    let notice = format!(
        "aborted by {} at {}",
        operator(config),
        crate::engine::hooks::clock()
    );
    guards::abort(&config.server.state_dir, request, &notice)?;
    println!("{request}: {notice}; it stops before its next stage");
    Ok(ExitCode::SUCCESS)
}

/// `runbook-mcp unfreeze`: loosening needs a person at a terminal.
pub fn unfreeze(config: &Config) -> anyhow::Result<ExitCode> {
    require_terminal("unfreeze")?;
    if guards::unfreeze(&config.server.state_dir)? {
        println!("the freeze is lifted");
    } else {
        println!("there was no freeze");
    }
    Ok(ExitCode::SUCCESS)
}

/// `runbook-mcp audit show [--tail N]`.
pub fn audit_show(config: &Config, tail: Option<usize>) -> anyhow::Result<ExitCode> {
    let log = audit(config)?;
    let entries = match tail {
        Some(n) => log.tail(n),
        None => log.entries(),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    for e in entries {
        println!("{}", crate::screen::escape(&e.to_string()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `runbook-mcp audit verify`: exit 1 when the chain is broken.
pub fn audit_verify(config: &Config) -> anyhow::Result<ExitCode> {
    let report = audit(config)?
        .verify()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{report}");
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
