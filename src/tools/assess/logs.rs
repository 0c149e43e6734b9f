//! `get_recent_logs`: the tail of a service's log on each host, filtered by level and pattern.
//! The host only runs `tail -c` (bounded bytes, no pattern on its command line); filtering and
//! parsing happen here, so a pattern can never be read as shell syntax.

use std::sync::Arc;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::logs::{Level, parse_line};
use crate::config::{Host, Service};
use crate::engine::fanout::{self, HostResult};
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};
use crate::exec::{Cmd, ExecError, manager};

pub struct GetRecentLogs;

const MAX_LINES: u32 = 500;
const MAX_SCAN: u64 = 16 << 20;

/// Parameters of `get_recent_logs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Inventory host names; default: every host running the service.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub hosts: Option<Vec<Name>>,
    /// Service whose log to read; default: the first service with log files configured.
    #[serde(default)]
    pub service: Option<Name>,
    /// Which log: a kind configured for the service (`application`, `security`, ...), or
    /// `journal` for the service manager's log. Default `application`.
    #[serde(default)]
    pub log: Option<Name>,
    /// Only lines at this level or above.
    #[serde(default)]
    pub level: Option<Level>,
    /// Only lines matching this regular expression (Rust syntax, case-insensitive).
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub pattern: Option<crate::engine::args::Text>,
    /// How many matching lines to return per host, newest last (default 50, at most 500).
    #[serde(default = "fifty")]
    #[schemars(range(min = 1, max = 500))]
    pub lines: u32,
    /// How many bytes from the end of the file to search (default 1 MiB, at most 16 MiB).
    #[serde(default = "one_mib")]
    #[schemars(range(min = 1024, max = 16777216))]
    pub scan_bytes: u64,
}

fn fifty() -> u32 {
    50
}

fn one_mib() -> u64 {
    1 << 20
}

/// Log lines per host.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub service: String,
    pub log: String,
    pub hosts: Vec<HostResult<HostLog>>,
}

/// One host's matching lines.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HostLog {
    /// The file read (or the manager's log).
    pub source: String,
    /// Lines searched.
    pub scanned: usize,
    /// Lines that matched (more than returned when `lines` cut them).
    pub matched: usize,
    pub entries: Vec<Entry>,
}

/// One log line.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Entry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The message (JSON lines) or the whole line (plain text).
    pub message: String,
}

impl Tool for GetRecentLogs {
    const META: ToolMeta = ToolMeta {
        name: "get_recent_logs",
        title: "Get recent logs",
        description: "Returns the newest lines of a service's application or security log (or \
            its service-manager journal) on each host, optionally only at a minimum level or \
            matching a regular expression. Use it to find the errors behind a failing instance. \
            Searches the last `scan_bytes` of the file; JSON log lines are parsed into \
            timestamp, level and message.",
        effect: Effect::Read,
        toolset: Toolset::Logs,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        if !(1..=MAX_LINES).contains(&p.lines) {
            return Err(ToolError::invalid(
                "lines",
                format!("{} is out of range 1..=500", p.lines),
            ));
        }
        if !(1024..=MAX_SCAN).contains(&p.scan_bytes) {
            return Err(ToolError::invalid(
                "scan_bytes",
                "out of range 1024..=16777216",
            ));
        }
        let filter = Filter::new(p.level, p.pattern.as_ref().map(|t| t.as_str()))?;
        let service = pick_service(&ctx, p.service.as_ref())?;
        let log = p
            .log
            .as_ref()
            .map_or("application", Name::as_str)
            .to_string();
        let source = if log == "journal" {
            Source::Journal
        } else {
            match service.logs.get(&log) {
                Some(path) => Source::File(path.clone()),
                None => {
                    let mut kinds: Vec<&str> = service.logs.keys().map(String::as_str).collect();
                    kinds.push("journal");
                    return Err(ToolError::invalid(
                        "log",
                        format!(
                            "service `{}` has no `{log}` log; it has: {}",
                            service.name,
                            kinds.join(", ")
                        ),
                    ));
                }
            }
        };
        let hosts: Vec<Host> = fanout::select_hosts(&ctx, &p.hosts)?
            .into_iter()
            .filter(|h| p.hosts.is_some() || service.hosts.contains(&h.name))
            .collect();
        let deadline = ctx.fleet.limits().timeout * 2;
        let (lines, scan) = (p.lines as usize, p.scan_bytes);
        let results = fanout::per_host(&ctx, hosts, deadline, |ctx, host| {
            let (source, service, filter) = (source.clone(), service.clone(), filter.clone());
            async move { read(&ctx, &host, &service, &source, scan, lines, &filter).await }
        })
        .await;
        Ok(Output {
            service: service.name.clone(),
            log,
            hosts: results,
        })
    }

    fn summary(out: &Output) -> String {
        let mut parts = vec![format!(
            "{} {} log: {}",
            out.service,
            out.log,
            fanout::hosts_line(&out.hosts)
        )];
        for r in &out.hosts {
            if let Some(v) = &r.result {
                let errors = v
                    .entries
                    .iter()
                    .filter(|e| e.level.is_some_and(|l| l >= Level::Error))
                    .count();
                parts.push(format!(
                    "{}: {} line(s), {errors} error(s)",
                    r.host,
                    v.entries.len()
                ));
            }
        }
        parts.join("; ")
    }

    fn is_error(out: &Output) -> bool {
        out.hosts.iter().all(|h| !h.is_ok())
    }
}

#[derive(Clone)]
enum Source {
    File(String),
    Journal,
}

#[derive(Clone)]
struct Filter {
    level: Option<Level>,
    pattern: Option<Regex>,
}

impl Filter {
    fn new(level: Option<Level>, pattern: Option<&str>) -> Result<Self, ToolError> {
        let pattern = match pattern {
            Some(p) if p.len() > 256 => {
                return Err(ToolError::invalid("pattern", "longer than 256 bytes"));
            }
            Some(p) => Some(
                regex::RegexBuilder::new(p)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| ToolError::invalid("pattern", e.to_string()))?,
            ),
            None => None,
        };
        Ok(Self { level, pattern })
    }
}

fn pick_service(ctx: &Ctx, name: Option<&Name>) -> Result<Service, ToolError> {
    match name {
        Some(n) => ctx.config.service(n.as_str()).cloned().ok_or_else(|| {
            let known: Vec<&str> = ctx
                .config
                .services
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            ToolError::invalid(
                "service",
                format!(
                    "unknown service `{n}`; the inventory has: {}",
                    known.join(", ")
                ),
            )
        }),
        None => ctx
            .config
            .services
            .iter()
            .find(|s| !s.logs.is_empty())
            .cloned()
            .ok_or_else(|| {
                ToolError::invalid(
                    "service",
                    "no service has log files configured; name one to read its `journal`",
                )
            }),
    }
}

async fn read(
    ctx: &Ctx,
    host: &Host,
    service: &Service,
    source: &Source,
    scan: u64,
    lines: usize,
    filter: &Filter,
) -> Result<HostLog, ExecError> {
    let (cmd, label) = match source {
        Source::File(path) => (
            Cmd::new([
                "tail".to_string(),
                "-c".into(),
                scan.to_string(),
                "--".into(),
                path.clone(),
            ])
            .privileged(),
            path.clone(),
        ),
        Source::Journal => (
            manager::logs(service.manager, &service.unit, 2000),
            format!("{} journal", service.unit),
        ),
    };
    let out = ctx.fleet.run(host, &cmd).await?;
    if !out.success() {
        let why = out
            .stderr
            .lines()
            .next()
            .unwrap_or("failed")
            .trim()
            .to_string();
        return Err(ExecError::Failed(format!("reading {label}: {why}")));
    }
    let mut text: &str = &out.stdout;
    // A byte window usually starts mid-line: drop the partial first line.
    if matches!(source, Source::File(_)) && text.len() as u64 >= scan {
        text = text.split_once('\n').map_or("", |(_, rest)| rest);
    }
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let matched: Vec<Entry> = all
        .iter()
        .map(|l| parse_line(l))
        .filter(|e| {
            filter
                .level
                .is_none_or(|min| e.level.is_some_and(|l| l >= min))
        })
        .filter(|e| filter.pattern.as_ref().is_none_or(|re| re.is_match(&e.raw)))
        .map(|e| Entry {
            timestamp: e.timestamp,
            level: e.level,
            message: e.message,
        })
        .collect();
    let total = matched.len();
    let entries = matched
        .into_iter()
        .skip(total.saturating_sub(lines))
        .collect();
    Ok(HostLog {
        source: label,
        scanned: all.len(),
        matched: total,
        entries,
    })
}
