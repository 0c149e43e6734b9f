//! `generate_postmortem`: the runbook's post-mortem template filled from the incident record
//! and its timeline in the audit log — every line cites the audit sequence number it comes
//! from. Root cause, contributing factors and lessons stay prompts for people: no model
//! writes them.

use std::fmt::Write as _;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;

use super::views::GetParams;
use super::{clock, load, md as esc, timeline, which};
use crate::audit::{Entry, Record, Status as Outcome, Verdict};
use crate::engine::{CallCtx, Ctx, Effect, Tool, ToolError, ToolMeta, Toolset};
use crate::incident::Incident;
use crate::tools::metrics::api;

pub struct GeneratePostmortem;

/// Tools about the incident record itself: not investigation.
const BOOKKEEPING: [&str; 10] = [
    "open_incident",
    "join_incident",
    "classify_incident",
    "list_incidents",
    "get_incident",
    "record_event",
    "update_checklist",
    "get_escalation_path",
    "resolve_incident",
    "generate_postmortem",
];

#[derive(Debug, Serialize, JsonSchema)]
pub struct Postmortem {
    pub incident: String,
    /// The post-mortem, Markdown.
    pub markdown: String,
    /// Audit sequence numbers cited.
    pub cited: Vec<u64>,
}

impl Tool for GeneratePostmortem {
    const META: ToolMeta = ToolMeta {
        name: "generate_postmortem",
        title: "Generate the post-mortem",
        description: "Writes the runbook's post-mortem for an incident from its record and \
            timeline: summary (start, end, duration, severity, impact from Prometheus), \
            milestones, every call in order, each change with its approver, each line citing \
            its audit sequence number; root cause and lessons are left for people. Returns \
            Markdown.",
        effect: Effect::Read,
        toolset: Toolset::Incident,
    };
    type Params = GetParams;
    type Output = Postmortem;

    async fn run(_ctx: Arc<Ctx>, _p: GetParams) -> Result<Postmortem, ToolError> {
        Err(ToolError::internal(
            "generate_postmortem runs with its call context",
        ))
    }

    async fn run_in(ctx: Arc<Ctx>, call: CallCtx, p: GetParams) -> Result<Postmortem, ToolError> {
        let id = which(&call, &p.incident)?;
        let i = load(&ctx, &id)?;
        let entries = timeline(&ctx, &id)?;
        let impact = impact(&ctx, &i).await;
        let (markdown, cited) = render(&i, &entries, &impact);
        Ok(Postmortem {
            incident: id,
            markdown,
            cited,
        })
    }

    fn summary(p: &Postmortem) -> String {
        // The post-mortem is the answer: the model shows it to people as it is.
        p.markdown.clone()
    }
}

/// The impact lines, from `analyze_incident_impact` over the incident's window.
async fn impact(ctx: &Arc<Ctx>, i: &Incident) -> Vec<String> {
    if ctx.config.prometheus.is_none() {
        return vec!["_No Prometheus is configured: describe the user impact._".into()];
    }
    // From a quarter of an hour before it was opened: an incident starts before anyone opens it.
    let start =
        api::epoch(&i.opened_at).map_or_else(|| i.opened_at.clone(), |t| (t - 900.0).to_string());
    let end = i
        .resolution
        .as_ref()
        .map_or_else(|| api::rfc3339(api::now()), |r| r.at.clone());
    let args = serde_json::json!({"start": start, "end": end});
    let Some(map) = args.as_object().cloned() else {
        return Vec::new();
    };
    let params = match crate::engine::args::parse(map) {
        Ok(p) => p,
        Err(e) => return vec![format!("_Impact not computed: {e}_")],
    };
    match <crate::tools::metrics::AnalyzeIncidentImpact as Tool>::run(ctx.clone(), params).await {
        Ok(out) => {
            let text = <crate::tools::metrics::AnalyzeIncidentImpact as Tool>::summary(&out);
            text.lines()
                .filter(|l| !l.starts_with("next:"))
                .map(|l| l.trim_start_matches("- ").to_string())
                .collect()
        }
        Err(e) => vec![format!("_Impact not computed: {e}_")],
    }
}

fn render(i: &Incident, entries: &[Entry], impact: &[String]) -> (String, Vec<u64>) {
    let mut cited = Vec::new();
    let mut cite = |seq: u64| {
        cited.push(seq);
        format!("[#{seq}]")
    };
    let mut md = String::new();
    let end = i.resolution.as_ref().map(|r| r.at.clone());
    let duration = end
        .as_deref()
        .and_then(api::epoch)
        .zip(api::epoch(&i.opened_at))
        .map(|(e, s)| {
            let m = ((e - s) / 60.0).round() as u64;
            format!("{} hours {} minutes", m / 60, m % 60)
        })
        .unwrap_or_else(|| "still open".into());
    let _ = writeln!(
        md,
        "# Incident Post-Mortem: {}\n\n{}\n",
        i.id,
        esc(&i.title)
    );
    let _ = writeln!(md, "## Summary");
    let _ = writeln!(md, "- **Start Time**: {}", i.opened_at);
    let _ = writeln!(md, "- **End Time**: {}", end.as_deref().unwrap_or("(open)"));
    let _ = writeln!(md, "- **Duration**: {duration}");
    match &i.detection {
        Some(d) => {
            let _ = writeln!(
                md,
                "- **Detection**: {} (firing then: {})",
                d.at,
                esc(&d.alerts.join(", "))
            );
        }
        None => {
            let _ = writeln!(
                md,
                "- **Detection**: no alert was firing when it was opened"
            );
        }
    }
    let _ = writeln!(
        md,
        "- **Severity**: {:?} ({}; respond by {})",
        i.severity,
        i.severity.description(),
        i.deadline
    );
    let _ = writeln!(
        md,
        "- **Commander**: {}; members: {}",
        esc(&i.commander),
        esc(&i.members.join(", "))
    );
    let _ = writeln!(md, "- **Impact**:");
    for l in impact {
        let _ = writeln!(md, "  - {}", esc(l));
    }

    // Calls, with the mutating ones' approvals and outcomes by request id.
    let calls: Vec<&Entry> = entries
        .iter()
        .filter(|e| matches!(e.record, Record::Call { .. }))
        .collect();
    let decision = |rid: &str| {
        entries.iter().find_map(|e| match &e.record {
            Record::Decision {
                request_id,
                decision: Verdict::Approved,
                approver,
                channel,
                ..
            } if request_id == rid => Some((
                e.seq,
                approver.clone().unwrap_or_default(),
                channel.clone().unwrap_or_default(),
            )),
            _ => None,
        })
    };
    let outcome = |rid: &str| {
        entries.iter().find_map(|e| match &e.record {
            Record::Outcome {
                request_id,
                status,
                detail,
                ..
            } if request_id == rid => Some((e.seq, *status, detail.clone())),
            _ => None,
        })
    };

    let _ = writeln!(md, "\n## Milestones");
    if let Some(d) = &i.detection {
        let _ = writeln!(
            md,
            "- {} — Detection: first of the alerts firing at opening ({})",
            d.at,
            esc(&d.alerts.join(", "))
        );
    }
    let first = |pred: &dyn Fn(&Record) -> bool| calls.iter().find(|e| pred(&e.record)).copied();
    let opened = first(
        &|r| matches!(r, Record::Call { tool, .. } if tool == "open_incident" || tool == "join_incident"),
    );
    let alerts = first(&|r| matches!(r, Record::Call { tool, .. } if tool == "get_alerts"));
    // Messages to people are milestones of their own, never investigation or mitigation.
    let notify = crate::tools::notify::NAMES;
    // Looking at the fleet: a successful call of a tool that is not about the incident record.
    let investigating = first(&|r| {
        matches!(r, Record::Call { tool, is_error: false, .. }
            if !BOOKKEEPING.contains(&tool.as_str()) && tool != "get_alerts"
                && !notify.contains(&tool.as_str()))
    });
    let succeeded = |e: &&Entry, messages: bool| match &e.record {
        Record::Call {
            request_id,
            tool,
            is_error: false,
            ..
        } => {
            notify.contains(&tool.as_str()) == messages
                && matches!(outcome(request_id), Some((_, Outcome::Succeeded, _)))
        }
        _ => false,
    };
    // A change that ran: its outcome says succeeded.
    let mitigated = calls.iter().find(|e| succeeded(e, false));
    let notified = calls.iter().find(|e| succeeded(e, true));
    // The verification the resolution relied on, when there is one.
    let verified = i.resolution.as_ref().and_then(|r| r.verified_by_seq);
    let restored = match verified {
        Some(seq) => calls.iter().find(|e| e.seq == seq).copied(),
        None => first(&|r| {
            matches!(r, Record::Call { tool, summary, .. }
                if tool == "verify_recovery" && summary.starts_with("RECOVERED"))
        }),
    };
    let mut milestones = [
        ("Incident opened", opened),
        ("Alerts read (detection)", alerts),
        ("People notified", notified.copied()),
        ("Investigation started", investigating),
        ("Mitigation applied", mitigated.copied()),
        ("Service restored (recovery verified)", restored),
    ];
    // In the order they happened; the missing ones last.
    milestones.sort_by_key(|(_, e)| e.map_or(u64::MAX, |e| e.seq));
    for (what, e) in milestones {
        match e {
            Some(e) => {
                let c = cite(e.seq);
                let extra = match &e.record {
                    Record::Call { tool, summary, .. } => format!(
                        "{tool}: {}",
                        esc(&crate::digest::clip(
                            summary.lines().next().unwrap_or_default(),
                            160
                        ))
                    ),
                    _ => String::new(),
                };
                let _ = writeln!(md, "- {} — {what}: {extra} {c}", e.ts);
            }
            None => {
                let _ = writeln!(md, "- {what}: not on the timeline");
            }
        }
    }

    let _ = writeln!(md, "\n## Timeline");
    for e in &calls {
        if let Record::Call {
            tool,
            principal,
            summary,
            is_error,
            approval,
            duration_ms,
            ..
        } = &e.record
        {
            let c = cite(e.seq);
            let _ = writeln!(
                md,
                "- {} {}: `{tool}`{} ({duration_ms} ms) — {}{} {c}",
                clock(&e.ts),
                esc(principal),
                if *is_error { " FAILED" } else { "" },
                esc(&crate::digest::clip(
                    summary.lines().next().unwrap_or_default(),
                    200
                )),
                approval
                    .as_ref()
                    .map(|a| format!("; {}", esc(a)))
                    .unwrap_or_default(),
            );
        }
    }

    let _ = writeln!(
        md,
        "\n## Root Cause\n_To be written by the people who worked the incident: what failed, and why._"
    );
    let _ = writeln!(md, "\n## Contributing Factors\n- _…_");
    let _ = writeln!(md, "\n## Resolution");
    let mut any = false;
    for e in entries {
        if let Record::Intent {
            request_id,
            tool,
            principal,
            reason,
            ..
        } = &e.record
        {
            // A 2026-07-28 session's first round only asked the client: not an action.
            if matches!(outcome(request_id), Some((_, Outcome::Refused, d)) if d.contains("asked the client"))
            {
                continue;
            }
            any = true;
            let c = cite(e.seq);
            let mut line = format!(
                "- `{tool}` asked by {}{} {c}",
                esc(principal),
                reason
                    .as_ref()
                    .map(|r| format!(" ({})", esc(r)))
                    .unwrap_or_default()
            );
            match decision(request_id) {
                Some((seq, who, via)) => {
                    let _ = write!(
                        line,
                        "; approved by {} via {} {}",
                        esc(&who),
                        esc(&via),
                        cite(seq)
                    );
                }
                None => line.push_str("; no approval recorded (allowed by policy, or refused)"),
            }
            if let Some((seq, status, detail)) = outcome(request_id) {
                let word = match status {
                    Outcome::Succeeded => "succeeded",
                    Outcome::Failed => "failed",
                    Outcome::Unknown => "outcome unknown",
                    Outcome::Refused => "refused",
                };
                let _ = write!(
                    line,
                    "; {word}: {} {}",
                    esc(&crate::digest::clip(&detail, 160)),
                    cite(seq)
                );
            }
            let _ = writeln!(md, "{line}");
        }
    }
    if !any {
        let _ = writeln!(md, "- No change was made through runbook-mcp.");
    }
    if let Some(r) = &i.resolution {
        let how = match (r.verified_by_seq, &r.override_reason) {
            (Some(seq), _) => format!("recovery verified {}", cite(seq)),
            (None, Some(why)) => {
                format!("resolved without a passing verify_recovery: {}", esc(why))
            }
            _ => String::new(),
        };
        let _ = writeln!(
            md,
            "- Resolved by {} at {}: {} ({how})",
            esc(&r.by),
            r.at,
            esc(&r.summary)
        );
    }
    let _ = writeln!(
        md,
        "\n## Lessons Learned\n### What Went Well\n- _…_\n\n### What Could Be Improved\n- _…_"
    );
    let _ = writeln!(
        md,
        "\n## Action Items\n- [ ] _Action_ - _Owner_ - _Due date_"
    );
    cited.sort_unstable();
    cited.dedup();
    (md, cited)
}
