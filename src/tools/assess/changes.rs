//! `what_changed`: the first question of every incident. Recent deploys (each Swarm service's
//! `UpdatedAt` and the image its previous spec ran), the modification times of the watched
//! files on each host, and this server's own recent actions from its audit log.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::audit::Record;
use crate::digest::Digest;
use crate::engine::fanout::{self, HostResult};
use crate::engine::plan::{At, Command};
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};
use crate::exec::{Cmd, ExecError};
use crate::tools::metrics::api;

pub struct WhatChanged;

/// Audit entries read back at most (newest ones).
const AUDIT_TAIL: usize = 20_000;

/// Parameters of `what_changed`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// How far back: RFC 3339, Unix seconds, or a duration ago (default `24h`).
    #[serde(default)]
    pub since: Option<String>,
    /// Inventory host names for the file times; default: every host.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub hosts: Option<Vec<Name>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// The start of the window (RFC 3339).
    pub since: String,
    /// Swarm services, changed in the window or not (`changed` says).
    pub deploys: Vec<Deploy>,
    /// Watched files per host (only those modified in the window are in `changed`).
    pub files: Vec<HostResult<Vec<FileTime>>>,
    /// This server's mutating calls in the window, newest first.
    pub actions: Vec<ActionRecord>,
    /// Everything that changed in the window, newest first, one line each.
    pub changed: Vec<String>,
    /// Sources that could not be read (Swarm, audit log), with why.
    pub unread: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Deploy {
    pub service: String,
    pub updated_at: String,
    pub changed: bool,
    pub version: u64,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    /// The last update's state (`completed`, `paused`, `rollback_completed`, ...).
    pub update_state: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FileTime {
    pub path: String,
    /// Modification time (RFC 3339); absent when the file does not exist there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    pub changed: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ActionRecord {
    pub at: String,
    pub request_id: String,
    pub tool: String,
    pub principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `succeeded`, `failed`, `unknown`, `refused`, or `running` (no outcome yet).
    pub status: String,
    pub arguments: serde_json::Value,
}

impl Tool for WhatChanged {
    const META: ToolMeta = ToolMeta {
        name: "what_changed",
        title: "What changed",
        description: "Lists what changed recently: Swarm deploys (when each service was last \
            updated, image before and after), modification times of the watched config files \
            on each host, and this server's own actions from its audit log. Use it first in an \
            incident: most outages follow a change. Returns the changes newest first.",
        effect: Effect::Read,
        toolset: Toolset::Assess,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        let since = api::time_arg("since", p.since.as_deref().unwrap_or("24h"))?;
        let since_text = api::rfc3339(since);
        let hosts = fanout::select_hosts(&ctx, &p.hosts)?;
        let deadline = ctx.fleet.limits().timeout * 2;
        let files = fanout::per_host(&ctx, hosts, deadline, |ctx, host| async move {
            file_times(&ctx, &host, since).await
        });
        let (deploys, files) = tokio::join!(deploys(&ctx, since), files);
        let mut unread = Vec::new();
        let deploys = deploys.unwrap_or_else(|e| {
            unread.push(format!("swarm: {e}"));
            Vec::new()
        });
        let actions = actions(&ctx, since).unwrap_or_else(|e| {
            unread.push(format!("audit log: {e}"));
            Vec::new()
        });
        // Sorted by time as numbers: the sources write RFC 3339 with s, ms and ns precision.
        let at = |t: &str| api::epoch(t).unwrap_or(0.0);
        let mut changed: Vec<(f64, String)> = Vec::new();
        for d in deploys.iter().filter(|d| d.changed) {
            let from = d
                .previous_image
                .as_ref()
                .map(|p| format!("{p} → "))
                .unwrap_or_default();
            changed.push((
                at(&d.updated_at),
                format!(
                    "{} deploy {}: {from}{} (version {}, update {})",
                    d.updated_at,
                    d.service,
                    d.image,
                    d.version,
                    if d.update_state.is_empty() {
                        "-"
                    } else {
                        &d.update_state
                    }
                ),
            ));
        }
        for h in &files {
            for f in h.result.iter().flatten().filter(|f| f.changed) {
                let when = f.modified.clone().unwrap_or_default();
                changed.push((at(&when), format!("{when} {}: {} modified", h.host, f.path)));
            }
        }
        for a in &actions {
            let reason = a
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            changed.push((
                at(&a.at),
                format!(
                    "{} runbook-mcp {} by {}: {}{reason}",
                    a.at, a.tool, a.principal, a.status
                ),
            ));
        }
        changed.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(Output {
            since: since_text,
            deploys,
            files,
            actions,
            changed: changed.into_iter().map(|c| c.1).collect(),
            unread,
        })
    }

    fn summary(out: &Output) -> String {
        let mut d = Digest::new(format!(
            "{} change(s) since {}",
            out.changed.len(),
            out.since
        ));
        for c in &out.changed {
            d.problem(c);
        }
        for u in &out.unread {
            d.problem(format!("not read: {u}"));
        }
        for h in out.files.iter().filter(|h| !h.is_ok()) {
            d.problem(format!(
                "{}: files not read: {}",
                h.host,
                h.error.as_deref().unwrap_or("no answer")
            ));
        }
        let quiet: Vec<&str> = out
            .files
            .iter()
            .filter(|h| {
                h.result
                    .as_ref()
                    .is_some_and(|f| f.iter().all(|f| !f.changed))
            })
            .map(|h| h.host.as_str())
            .collect();
        let watched = out
            .files
            .iter()
            .any(|h| h.result.as_ref().is_some_and(|f| !f.is_empty()));
        if !watched {
            d.ok("no files watched ([diagnostics] watch_files, rate_limit_file)");
        } else if !quiet.is_empty() {
            d.ok(format!(
                "{}: no watched file modified",
                crate::digest::names(&quiet)
            ));
        }
        if out.changed.is_empty() {
            d.next("widen `since`, or get_alerts / run_diagnostics");
        } else if out.deploys.iter().any(|d| d.changed) {
            d.next("rollback_deployment (dry_run first) if the deploy lines up with the errors");
        }
        d.render()
    }
}

/// Every Swarm service's last update, from `docker service inspect`.
async fn deploys(ctx: &Ctx, since: f64) -> Result<Vec<Deploy>, String> {
    let Some(sw) = &ctx.config.swarm else {
        return Ok(Vec::new());
    };
    let mut argv = crate::tools::swarm::cli::docker(sw, &["service", "inspect"]);
    argv.extend(sw.services.iter().cloned());
    let out = ctx
        .exec
        .run(&Command::new(&At::server(), argv, false))
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(crate::digest::clip(out.stderr.trim(), 300));
    }
    let specs =
        crate::analyze::docker::parse_service_inspect(&out.stdout).map_err(|e| e.to_string())?;
    Ok(specs
        .into_iter()
        .map(|s| Deploy {
            changed: api::epoch(&s.updated_at).is_some_and(|t| t >= since),
            service: s.name,
            updated_at: s.updated_at,
            version: s.version,
            image: s.spec.image,
            previous_image: s.previous.map(|p| p.image),
            update_state: s.update_state,
        })
        .collect())
}

/// `stat` of the watched files that exist on `host` (a missing file is not an error).
async fn file_times(
    ctx: &Ctx,
    host: &crate::config::Host,
    since: f64,
) -> Result<Vec<FileTime>, ExecError> {
    let mut paths: Vec<String> = ctx.config.diagnostics.watch_files.clone();
    for s in ctx.config.services_on(&host.name) {
        if let Some(f) = &s.rate_limit_file
            && !paths.contains(f)
        {
            paths.push(f.clone());
        }
    }
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    // `-L`: a symlinked config (sites-enabled, a `current` release link) is the file it names.
    let mut argv = vec![
        "stat".to_string(),
        "-L".into(),
        "-c".into(),
        "%Y %n".into(),
        "--".into(),
    ];
    argv.extend(paths.iter().cloned());
    // Not privileged: a file's times need no read permission, and sudoers need not allow stat.
    let out = ctx.fleet.run(host, &Cmd::new(argv)).await?;
    // `stat` prints the files it found and exits 1 for the others; anything else is a failure
    // (a host that cannot stat must not read as "nothing changed").
    if !out.success()
        && out
            .stderr
            .lines()
            .any(|l| !l.trim().is_empty() && !l.contains("No such file or directory"))
    {
        return Err(ExecError::Failed(crate::digest::clip(
            out.stderr.trim(),
            300,
        )));
    }
    let mut found: BTreeMap<&str, f64> = BTreeMap::new();
    for line in out.stdout.lines() {
        if let Some((t, path)) = line.split_once(' ')
            && let Ok(t) = t.parse::<f64>()
        {
            found.insert(path, t);
        }
    }
    Ok(paths
        .iter()
        .map(|p| {
            let t = found.get(p.as_str()).copied();
            FileTime {
                path: p.clone(),
                modified: t.map(api::rfc3339),
                changed: t.is_some_and(|t| t >= since),
            }
        })
        .collect())
}

/// This server's mutating calls since `since`, from the audit log (none when there is no log).
fn actions(ctx: &Ctx, since: f64) -> Result<Vec<ActionRecord>, String> {
    if !ctx.config.server.state_dir.join("audit.jsonl").exists() {
        return Ok(Vec::new());
    }
    let log = ctx.audit().map_err(|e| e.message)?;
    let entries = log.tail(AUDIT_TAIL).map_err(|e| e.to_string())?;
    let mut out: Vec<ActionRecord> = Vec::new();
    let mut status: BTreeMap<String, String> = BTreeMap::new();
    for e in &entries {
        if let Record::Outcome {
            request_id,
            status: s,
            ..
        } = &e.record
        {
            let word = serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            status.insert(request_id.clone(), word);
        }
    }
    for e in entries
        .iter()
        .filter(|e| api::epoch(&e.ts).is_some_and(|t| t >= since))
    {
        if let Record::Intent {
            request_id,
            tool,
            arguments,
            principal,
            reason,
            ..
        } = &e.record
        {
            out.push(ActionRecord {
                at: e.ts.clone(),
                request_id: request_id.clone(),
                tool: tool.clone(),
                principal: principal.clone(),
                reason: reason.clone(),
                status: status
                    .get(request_id)
                    .cloned()
                    .unwrap_or_else(|| "running".into()),
                arguments: arguments.clone(),
            });
        }
    }
    out.reverse();
    Ok(out)
}
