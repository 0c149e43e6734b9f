//! What the server publishes besides tools: MCP resources (the runbook rendered from the tool
//! catalog, the severity and escalation tables, the audit log's tail, each incident's
//! timeline and post-mortem) and prompts (`triage`, `postmortem`). Plain text built from the
//! engine and the incident records; `src/mcp/` only wraps it.

use std::fmt::Write as _;

use serde_json::json;

use crate::engine::{Engine, Toolset};
use crate::incident::{Severity, tables};

/// A resource or resource template.
pub struct Doc {
    pub uri: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub mime: &'static str,
}

pub const RESOURCES: [Doc; 3] = [
    Doc {
        uri: "runbook://runbook",
        name: "runbook",
        description: "The incident-response runbook as this server runs it: every procedure step with the tool that does it",
        mime: "text/markdown",
    },
    Doc {
        uri: "runbook://severity",
        name: "severity",
        description: "Severity levels with response times, escalation levels, and the incident checklist",
        mime: "text/markdown",
    },
    Doc {
        uri: "runbook://audit/tail",
        name: "audit-tail",
        description: "The newest 50 lines of the hash-chained audit log",
        mime: "text/plain",
    },
];

pub const TEMPLATES: [Doc; 2] = [
    Doc {
        uri: "incident://{id}/timeline",
        name: "incident-timeline",
        description: "An incident's timeline: every call of the sessions bound to it, with audit sequence numbers",
        mime: "text/plain",
    },
    Doc {
        uri: "incident://{id}/postmortem",
        name: "incident-postmortem",
        description: "An incident's post-mortem, written from its record and timeline",
        mime: "text/markdown",
    },
];

/// Toolsets in the order of the runbook's procedure.
const ORDER: [(Toolset, &str); 10] = [
    (Toolset::Incident, "Declare and run the incident"),
    (
        Toolset::Assess,
        "Immediate assessment (P0 step 2, the diagnostics script)",
    ),
    (Toolset::Logs, "Log analysis"),
    (Toolset::Metrics, "Metrics and alerts"),
    (Toolset::Remediate, "Remediation"),
    (Toolset::Database, "Database"),
    (Toolset::Loadbalancer, "Load balancer"),
    (Toolset::Verify, "Post-incident validation"),
    (Toolset::Notify, "Stakeholder notification"),
    (Toolset::Prevent, "Preventive measures"),
];

/// Why a resource has no text.
pub enum ReadError {
    /// No such resource (or incident).
    NotFound(String),
    /// It exists but could not be read (audit lock, corrupt log).
    Failed(String),
}

/// The text of `uri` and its MIME type, or why there is none.
pub async fn read(engine: &Engine, uri: &str) -> Result<(String, &'static str), ReadError> {
    const MD: &str = "text/markdown";
    let missing = || ReadError::NotFound(format!("no resource {uri}"));
    match uri {
        "runbook://runbook" => Ok((runbook(engine), MD)),
        "runbook://severity" => Ok((severity(), MD)),
        "runbook://audit/tail" => {
            Ok((audit_tail(engine).map_err(ReadError::Failed)?, "text/plain"))
        }
        _ => {
            let rest = uri.strip_prefix("incident://").ok_or_else(missing)?;
            let (id, what) = rest.split_once('/').ok_or_else(missing)?;
            let tool = match what {
                "timeline" => "get_incident",
                "postmortem" => "generate_postmortem",
                _ => return Err(missing()),
            };
            let args = json!({"incident": id});
            let out = engine
                .call(tool, args.as_object().cloned())
                .await
                .map_err(|e| match e.code {
                    crate::engine::ErrorCode::InvalidArgument => ReadError::NotFound(e.to_string()),
                    _ => ReadError::Failed(e.to_string()),
                })?;
            Ok(match what {
                "postmortem" => (
                    out.structured["markdown"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    MD,
                ),
                _ => (timeline_text(&out.structured), "text/plain"),
            })
        }
    }
}

/// Every call of the timeline, one line each (the tool's text shows only the newest).
fn timeline_text(v: &serde_json::Value) -> String {
    let mut s = format!(
        "{} — {}\n",
        v["incident"]["id"].as_str().unwrap_or_default(),
        crate::screen::escape(v["incident"]["title"].as_str().unwrap_or_default())
    );
    for l in v["timeline"].as_array().into_iter().flatten() {
        let first = l["summary"]
            .as_str()
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "#{} {} {} {}{}: {}",
            l["seq"],
            l["at"].as_str().unwrap_or_default(),
            crate::screen::escape(l["principal"].as_str().unwrap_or_default()),
            l["tool"].as_str().unwrap_or_default(),
            if l["is_error"] == true { " FAILED" } else { "" },
            crate::screen::escape(first)
        );
    }
    s
}

fn runbook(engine: &Engine) -> String {
    let mut md = String::from(
        "# Incident response with runbook-mcp\n\nEach step of the runbook is a tool. Reads run at \
         once; a tool that changes the fleet shows its exact plan (`dry_run`) and runs only \
         when a human approved that plan. Open an incident first: every call after it is on \
         the incident's timeline, written by the server.\n",
    );
    for (set, title) in ORDER {
        let tools: Vec<_> = engine.tools().filter(|t| t.meta.toolset == set).collect();
        if tools.is_empty() {
            continue;
        }
        let _ = writeln!(md, "\n## {title}\n");
        for t in tools {
            let effect = serde_json::to_value(t.meta.effect)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(md, "- `{}` ({effect}): {}", t.meta.name, t.meta.description);
        }
    }
    md.push('\n');
    md.push_str(&severity());
    md
}

fn severity() -> String {
    let mut md = String::from(
        "## Severity levels\n\n| Level | Description | Response time |\n|---|---|---|\n",
    );
    for s in [Severity::P0, Severity::P1, Severity::P2, Severity::P3] {
        let _ = writeln!(
            md,
            "| {s:?} | {} | {} min |",
            s.description(),
            s.response_minutes()
        );
    }
    md.push_str("\n## Escalation (P0; P1 at half the pace; P2/P3 after their deadline)\n\n");
    for (level, team, from, to) in tables::LEVELS {
        let to = to.map_or("on".to_string(), |t| format!("{t}"));
        let _ = writeln!(md, "- {level} {team}: minutes {from}–{to}");
    }
    md.push_str("\n## Checklist\n");
    for (phase, items) in tables::CHECKLIST {
        let _ = writeln!(md, "\n### {phase}");
        for i in *items {
            let _ = writeln!(md, "- [ ] {i}");
        }
    }
    md
}

fn audit_tail(engine: &Engine) -> Result<String, String> {
    let config = &engine.ctx().config;
    if !config.server.state_dir.join("audit.jsonl").exists() {
        return Ok("(no audit log yet)".into());
    }
    let log = engine.ctx().audit().map_err(|e| e.message)?;
    let lines = log.tail(50).map_err(|e| e.to_string())?;
    Ok(lines
        .iter()
        .map(|e| format!("{}\n", crate::screen::escape(&e.to_string())))
        .collect())
}

/// A prompt's description and arguments (name, description, required).
pub struct PromptDoc {
    pub name: &'static str,
    pub description: &'static str,
    pub arguments: &'static [(&'static str, &'static str, bool)],
}

pub const PROMPTS: [PromptDoc; 2] = [
    PromptDoc {
        name: "triage",
        description: "Walk the runbook's P0/P1 procedure for a symptom, with the tools",
        arguments: &[(
            "symptom",
            "What is wrong, as reported (e.g. \"5xx on /api since 10:40\")",
            true,
        )],
    },
    PromptDoc {
        name: "postmortem",
        description: "Write the post-mortem of an incident with the people who worked it",
        arguments: &[("incident", "The incident id (INC-…)", true)],
    },
];

/// The prompt's text for the model, or why there is none. Caller text is escaped: it reaches
/// a screen.
pub fn prompt(
    name: &str,
    args: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, String> {
    let arg = |k: &str| {
        args.get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(crate::screen::escape)
            .ok_or_else(|| format!("argument `{k}` is required"))
    };
    match name {
        "triage" => {
            let symptom = arg("symptom")?;
            Ok(format!(
                "An incident is reported: \"{symptom}\".\n\nWork it with the runbook-mcp tools, in this order:\n\
                 1. classify_incident with the symptoms you can name, then open_incident with that severity and type \
                    (the session is then bound: every call is on the incident's timeline; do not take notes of tool calls).\n\
                 2. get_alerts and what_changed: what monitoring knows and what changed recently.\n\
                 3. run_diagnostics on every host; narrow down with check_service_status, check_health, analyze_logs, \
                    query_metrics. Say what you find, problems first.\n\
                 4. Pick the smallest remediation that fits (restart_service, rollback_deployment, adjust_rate_limit, …). \
                    Call it with dry_run first and show the plan; then call it for real — a human approves the exact plan.\n\
                 5. verify_recovery with since = when the fix finished; validate_performance.\n\
                 6. resolve_incident, then generate_postmortem.\n\
                 Check off checklist items with update_checklist as they are done; get_escalation_path says who to involve."
            ))
        }
        "postmortem" => {
            let id = arg("incident")?;
            if !crate::incident::store::valid_id(&id) {
                return Err(format!("`{id}` is not an incident id (INC-…)"));
            }
            Ok(format!(
                "Write the post-mortem of {id} with the people who worked it.\n\
                 1. Call generate_postmortem with incident = {id} (or read the resource incident://{id}/postmortem): \
                    the summary, milestones, timeline and resolution come from the audit log, each line citing its sequence number. \
                    Do not change those lines.\n\
                 2. Ask the people for the root cause, the contributing factors and the lessons; do not guess them.\n\
                 3. Propose action items (owner, due date) from what the timeline shows, for the people to confirm."
            ))
        }
        _ => Err(format!("no prompt {name}")),
    }
}
