//! Plans: what a mutating call will do, as stages of typed steps. The engine seals a plan
//! (its digest covers tool, arguments and every step with its resolved destination and
//! `expect` values), shows it, waits for approval of that digest, and then walks exactly these
//! steps — nothing is rebuilt from the arguments after approval.
//!
//! The vocabulary (DESIGN §3): `run`, `sql`, `http` are the effects; `capture` reads a value
//! and records it; `expect` is a stable fact read at plan time and re-read right before the
//! stage (different: `stale`); `guard` is a probe before going on; `wait_until` polls a probe;
//! `for_each` runs an argv template over the typed values a named selector returns;
//! `compensate` arms sealed steps that run when a later step of the stage fails. Probes,
//! facts and selectors are named enums whose reads are sealed like effects, so the plan says
//! exactly what will be read and a recording executor can drive them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where a command runs: the executor key (an inventory host, or `server` for this machine)
/// and the resolved destination (`ssh runbook@10.77.0.11:22`, `local`), part of the digest.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct At {
    pub host: String,
    pub via: String,
}

impl At {
    /// An inventory host, with where its commands really go: `ssh user@address:port` (and
    /// jump hosts) or `local`.
    pub fn of(h: &crate::config::Host) -> Self {
        let via = match &h.target {
            crate::config::Target::Local => "local".to_string(),
            crate::config::Target::Ssh(t) => {
                let user = t
                    .user
                    .as_deref()
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default();
                let jump = if t.proxy_jump.is_empty() {
                    String::new()
                } else {
                    format!(" via {}", t.proxy_jump.join(","))
                };
                format!("ssh {user}{}:{}{jump}", t.host, t.port.unwrap_or(22))
            }
        };
        Self {
            host: h.name.clone(),
            via,
        }
    }

    /// A command run on this server itself (the docker and aws CLIs).
    pub fn server() -> Self {
        Self {
            host: SERVER.into(),
            via: "local".into(),
        }
    }
}

/// The executor key of commands run on this server.
pub const SERVER: &str = "server";

/// An environment variable of a local command; secrets by name only (resolved by the executor).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EnvVar {
    /// `name=value`, shown as is.
    Set { name: String, value: String },
    /// `name=` the value of the named secret.
    Secret { name: String, secret: String },
    /// Removed from the child's environment.
    Remove { name: String },
}

/// One sealed command.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct Command {
    #[serde(flatten)]
    pub at: At,
    pub argv: Vec<String>,
    /// Through `sudo -n` on the host.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sudo: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Longer than the server's command timeout (a database restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Keep what it prints (the first 8 KiB) in the outcome (`run_command`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub output: bool,
    /// Written to the command's standard input (a file's new content for `tee FILE`): part
    /// of the plan, so of its digest — the approved bytes are the bytes written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Command {
    pub fn new(at: &At, argv: Vec<String>, sudo: bool) -> Self {
        Self {
            at: at.clone(),
            argv,
            sudo,
            env: Vec::new(),
            timeout_secs: None,
            output: false,
            stdin: None,
        }
    }

    /// The command as the approver reads it: a word that is empty or holds a space or a quote
    /// is quoted, so word boundaries can never be misread.
    pub fn line(&self) -> String {
        let words: Vec<String> = self
            .argv
            .iter()
            .map(|w| {
                if w.is_empty()
                    || w.chars()
                        .any(|c| c.is_whitespace() || c == '"' || c == '\'')
                {
                    format!("{w:?}")
                } else {
                    w.clone()
                }
            })
            .collect();
        let input = self.stdin.as_ref().map_or_else(String::new, |s| {
            use sha2::Digest as _;
            let sum = hex::encode(sha2::Sha256::digest(s.as_bytes()));
            format!(" < ({} bytes, sha256 {})", s.len(), &sum[..16])
        });
        format!(
            "{}{}{input}",
            if self.sudo { "sudo " } else { "" },
            words.join(" ")
        )
    }
}

/// A read the engine makes for a probe, a fact or a selector: sealed like an effect.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(tag = "read", rename_all = "snake_case")]
pub enum Read {
    /// A command's output.
    Run(Command),
    /// `GET url` from this server, with the named secret as `X-API-Key` when given.
    Http {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key_secret: Option<String>,
    },
    /// A query on the configured database (`host:port/db`), from this server.
    Sql { target: String, statement: String },
}

impl Read {
    pub fn line(&self) -> String {
        match self {
            Read::Run(c) => format!("{}: {}", c.at.host, c.line()),
            Read::Http { url, .. } => format!("GET {url}"),
            Read::Sql { target, statement } => format!("{target}: {statement}"),
        }
    }
}

/// How a read's output becomes a typed value.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(tag = "extract", rename_all = "snake_case")]
pub enum Extract {
    /// `docker service inspect` of `service`: version, image, previous image, replicas,
    /// memory limit, update state.
    SwarmService { service: String },
    /// The rate of `limit_req_zone … zone=ZONE:… rate=R` in an nginx file (`30r/s`).
    NginxRate { zone: String },
    /// `ps -eo pid=,lstart=,args=` filtered to processes whose executable is `name` (and whose
    /// command line contains `args` when given): a list of `{pid, started}`.
    Processes {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        args: Option<String>,
    },
    /// `MainPID=` of `systemctl show` output.
    MainPid,
    /// The first column of the first row of a query (text), or null.
    Scalar,
    /// `aws elbv2 describe-target-health` output: per instance id, its state.
    TargetStates,
    /// `aws elbv2 describe-target-groups` output: the health check of group `arn`
    /// (`interval_seconds`, `timeout_seconds`, `path`).
    HealthCheck { arn: String },
}

/// A stable fact or a captured value: a read and its extraction.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct Fact {
    #[serde(flatten)]
    pub read: Read,
    #[serde(flatten)]
    pub extract: Extract,
}

/// What a probe's read must show.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// HTTP 2xx.
    Http2xx,
    /// The read succeeded (exit 0, or the query answered).
    Succeeds,
    /// The fact's field `field` equals `value`.
    Equals { field: String, value: Value },
    /// The fact's field `field` is one of `values`.
    OneOf { field: String, values: Vec<Value> },
    /// The fact's number `field` is at most `max`.
    AtMost { field: String, max: i64 },
    /// Of the target states (`TargetStates`), at least one other than `except` is healthy.
    OtherTargetHealthy { except: String },
}

/// A named condition, evaluated by the engine through the executor.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(tag = "is", rename_all = "snake_case")]
pub enum Probe {
    /// `service` on `host` answers its health check with 2xx.
    Healthy {
        host: String,
        service: String,
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key_secret: Option<String>,
    },
    /// A fact checked against a condition.
    Fact {
        what: String,
        fact: Fact,
        #[serde(flatten)]
        check: Check,
    },
    /// Not the inner probe.
    Not { probe: Box<Probe> },
    /// At least one of the probes.
    Any { probes: Vec<Probe> },
    /// Every one of the probes.
    All { probes: Vec<Probe> },
}

impl Probe {
    pub fn describe(&self) -> String {
        match self {
            Probe::Healthy { host, service, .. } => format!("{service} on {host} is healthy"),
            Probe::Fact { what, .. } => what.clone(),
            Probe::Not { probe } => format!("not ({})", probe.describe()),
            Probe::Any { probes } if probes.is_empty() => "nothing (never holds)".into(),
            Probe::Any { probes } => probes
                .iter()
                .map(Probe::describe)
                .collect::<Vec<_>>()
                .join(" or "),
            Probe::All { probes } => probes
                .iter()
                .map(Probe::describe)
                .collect::<Vec<_>>()
                .join(" and "),
        }
    }
}

/// Where a `for_each` takes its values.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(tag = "selector", rename_all = "snake_case")]
pub enum Selector {
    /// Processes there before (the `captured` process list) and still there now — the same
    /// pid *and* start time, so a reused pid is never selected — except the unit's new main
    /// process. Yields `{pid}`.
    StaleProcesses {
        captured: String,
        now: Fact,
        main_pid: Fact,
    },
}

/// What to do when a guard does not hold.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Otherwise {
    /// Stop the plan: this stage fails, the rest are skipped.
    #[default]
    Halt,
    /// Nothing to do here: skip the rest of this stage, go on with the next.
    SkipStage,
}

/// One step of a stage. (A plan holds a handful of steps built once per call: the size
/// difference between variants costs nothing worth boxing for.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Run(Command),
    /// An exact statement on the configured database, from this server.
    Sql {
        target: String,
        statement: String,
    },
    /// A message to people: one exact request to a notification API, from this server
    /// (credentials as `{secret:NAME}` placeholders, filled only at send time).
    Send(super::send::Message),
    /// A bounded load test from this server: `requests` GETs of a configured URL,
    /// `concurrency` at a time, the API key from the named secret (never in the plan).
    Load {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_key_secret: Option<String>,
        requests: u32,
        concurrency: u32,
    },
    /// Reads a value and records it under `name`; controls nothing.
    Capture {
        name: String,
        fact: Fact,
    },
    /// The fact still has the value read at plan time (else: `stale`).
    Expect {
        what: String,
        fact: Fact,
        value: Value,
    },
    Guard {
        /// The rule in words, for the approver and a refusal ("never the last healthy
        /// instance of web").
        why: String,
        probe: Probe,
        #[serde(default)]
        otherwise: Otherwise,
    },
    /// Polls the probe every `every_ms` until it holds, at most `within_secs`.
    WaitUntil {
        probe: Probe,
        within_secs: u64,
        every_ms: u64,
    },
    /// `template` once per value the selector returns; `{NAME}` holes take its typed values.
    ForEach {
        selector: Selector,
        template: Command,
    },
    /// From here on, a failed step of this stage runs `steps` (then the stage fails).
    Compensate {
        steps: Vec<Step>,
    },
}

impl Step {
    pub fn run(at: &At, argv: Vec<String>, sudo: bool) -> Self {
        Step::Run(Command::new(at, argv, sudo))
    }

    /// One line for the approver.
    pub fn line(&self) -> String {
        match self {
            Step::Run(c) => c.line(),
            Step::Sql { target, statement } => format!("sql on {target}: {statement}"),
            Step::Send(m) => m.line(),
            Step::Load {
                url,
                requests,
                concurrency,
                ..
            } => format!("load test: GET {url} × {requests}, {concurrency} at a time"),
            Step::Capture { name, fact } => format!("capture {name}: {}", fact.read.line()),
            Step::Expect { what, value, .. } => format!("expect {what} = {value}"),
            Step::Guard {
                why,
                probe,
                otherwise,
            } => match otherwise {
                Otherwise::Halt => format!("guard: {why}: {} (else halt)", probe.describe()),
                Otherwise::SkipStage => format!(
                    "only if: {why}: {} (else nothing to do here)",
                    probe.describe()
                ),
            },
            Step::WaitUntil {
                probe, within_secs, ..
            } => format!("wait until {} (at most {within_secs} s)", probe.describe()),
            Step::ForEach { selector, template } => {
                let Selector::StaleProcesses { captured, .. } = selector;
                format!(
                    "for each stale process of {captured} (same pid and start time, not the new main process): {}",
                    template.line()
                )
            }
            Step::Compensate { steps } => format!(
                "if a later step fails: {}",
                steps.iter().map(Step::line).collect::<Vec<_>>().join("; ")
            ),
        }
    }
}

/// The steps for one host, or for the whole call; a failed step halts the plan.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Stage {
    /// The host (or `call` for a stage that is not one host's).
    pub name: String,
    /// The resolved destination of the stage's host.
    pub via: String,
    /// Typed steps, each tagged by `step` (the vocabulary in docs/ARCHITECTURE.md).
    #[schemars(schema_with = "steps_schema")]
    pub steps: Vec<Step>,
}

/// The steps' schema for clients: objects tagged by `step`, the rest of each step's shape left
/// open (the full recursive vocabulary would put megabytes into every action's contract).
fn steps_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["step"],
            "properties": {
                "step": {
                    "type": "string",
                    "enum": ["run", "sql", "send", "load", "capture", "expect", "guard",
                             "wait_until", "for_each", "compensate"]
                }
            }
        }
    })
}

/// A value the plan changes: `memory limit of web: 2 GiB → 512 MiB`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Change {
    pub what: String,
    pub before: String,
    pub after: String,
}

/// The undo as a ready call the model can dry-run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct UndoCall {
    pub tool: String,
    pub arguments: Value,
}

/// A resolved mutating call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    pub tool: String,
    /// The arguments as understood (defaults filled in, `dry_run` left out: a previewed plan
    /// is the same plan).
    pub arguments: Value,
    pub stages: Vec<Stage>,
    /// Before → after for every value the plan changes (beside the steps, not in the digest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// How to undo it, as calls (beside the steps, not in the digest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undo: Vec<UndoCall>,
    /// Undo that no call can do (shown to the approver).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// SHA-256 of the canonical JSON of tool, arguments and stages.
    pub digest: String,
}

impl Plan {
    /// A plan over `stages`; `config` is a hash of the configuration entries they came from and
    /// the call's effect (in the digest, so an approval given under one configuration, or for a
    /// weaker effect, never runs under another).
    pub fn new(tool: &str, mut arguments: Value, stages: Vec<Stage>, config: &str) -> Self {
        if let Some(o) = arguments.as_object_mut() {
            o.remove("dry_run");
        }
        let body = serde_json::json!({"tool": tool, "arguments": arguments, "stages": stages,
            "config": config});
        let digest = hex::encode(Sha256::digest(canonical(&body).as_bytes()));
        Self {
            tool: tool.into(),
            arguments,
            stages,
            changes: Vec::new(),
            undo: Vec::new(),
            notes: Vec::new(),
            digest,
        }
    }

    /// The call's identity apart from its plan: tool and canonical arguments.
    pub fn args_key(&self) -> String {
        let body = serde_json::json!({"tool": self.tool, "arguments": self.arguments});
        hex::encode(Sha256::digest(canonical(&body).as_bytes()))
    }

    /// Steps as short lines for prompts and the terminal, stage by stage.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.stages {
            for step in &s.steps {
                out.push(format!("{} ({}): {}", s.name, s.via, step.line()));
            }
        }
        out
    }

    /// The steps, then what changes and the undo: what `runbook-mcp approvals` shows.
    pub fn review_lines(&self) -> Vec<String> {
        let mut out = self.lines();
        for c in &self.changes {
            out.push(format!("change: {}: {} -> {}", c.what, c.before, c.after));
        }
        for u in &self.undo {
            out.push(format!("undo: {} {}", u.tool, u.arguments));
        }
        for n in &self.notes {
            out.push(format!("note: {n}"));
        }
        out
    }

    /// Every command the plan may run — effects, `for_each` templates with their holes, and
    /// the reads of its facts, probes and selectors — for checks that what ran was planned.
    pub fn commands(&self) -> Vec<&Command> {
        fn fact<'a>(f: &'a Fact, out: &mut Vec<&'a Command>) {
            if let Read::Run(c) = &f.read {
                out.push(c);
            }
        }
        fn probe<'a>(p: &'a Probe, out: &mut Vec<&'a Command>) {
            match p {
                Probe::Healthy { .. } => {}
                Probe::Fact { fact: f, .. } => fact(f, out),
                Probe::Not { probe: q } => probe(q, out),
                Probe::Any { probes } | Probe::All { probes } => {
                    probes.iter().for_each(|q| probe(q, out))
                }
            }
        }
        fn walk<'a>(steps: &'a [Step], out: &mut Vec<&'a Command>) {
            for s in steps {
                match s {
                    Step::Run(c) => out.push(c),
                    Step::ForEach { template, selector } => {
                        out.push(template);
                        let Selector::StaleProcesses { now, main_pid, .. } = selector;
                        fact(now, out);
                        fact(main_pid, out);
                    }
                    Step::Compensate { steps } => walk(steps, out),
                    Step::Capture { fact: f, .. } | Step::Expect { fact: f, .. } => fact(f, out),
                    Step::Guard { probe: p, .. } | Step::WaitUntil { probe: p, .. } => {
                        probe(p, out)
                    }
                    Step::Sql { .. } | Step::Send(_) | Step::Load { .. } => {}
                }
            }
        }
        let mut out = Vec::new();
        for s in &self.stages {
            walk(&s.steps, &mut out);
        }
        out
    }

    /// The statements of the plan's `sql` steps (its only SQL effects).
    pub fn statements(&self) -> Vec<&str> {
        self.stages
            .iter()
            .flat_map(|s| &s.steps)
            .filter_map(|s| match s {
                Step::Sql { statement, .. } => Some(statement.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether `ran` is one of the plan's commands: the same destination, sudo and
    /// environment, and the same words — where the plan has `{request_id}` the request's id,
    /// and where it has a hole (`{pid}`) a typed value (digits).
    pub fn permits(&self, ran: &Command, request_id: &str) -> bool {
        self.commands().into_iter().any(|c| {
            c.at == ran.at
                && c.sudo == ran.sudo
                && c.env == ran.env
                && c.stdin == ran.stdin
                && c.timeout_secs == ran.timeout_secs
                && c.argv.len() == ran.argv.len()
                && c.argv.iter().zip(&ran.argv).all(|(p, r)| {
                    p == r
                        || p.replace("{request_id}", request_id) == *r
                        || (p.starts_with('{')
                            && p.ends_with('}')
                            && !r.is_empty()
                            && r.bytes().all(|b| b.is_ascii_digit()))
                })
        })
    }
}

/// JSON with object keys sorted at every level, so the digest never depends on key order
/// (serde_json may preserve insertion order when a dependency enables it).
pub fn canonical(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&o[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stage(host: &str, via: &str, verb: &str) -> Vec<Stage> {
        let at = At {
            host: host.into(),
            via: via.into(),
        };
        vec![Stage {
            name: host.into(),
            via: via.into(),
            steps: vec![Step::run(
                &at,
                vec!["systemctl".into(), verb.into(), "x".into()],
                true,
            )],
        }]
    }

    #[test]
    fn digest_ignores_key_order_and_dry_run_but_not_steps_arguments_or_destination() {
        let s = stage("mcp-02", "ssh runbook@127.0.0.2:22", "restart");
        let a = Plan::new(
            "restart_service",
            json!({"hosts": ["mcp-02"], "reason": "r", "dry_run": true}),
            s.clone(),
            "",
        );
        let mut b = Plan::new(
            "restart_service",
            json!({"reason": "r", "hosts": ["mcp-02"]}),
            s.clone(),
            "",
        );
        b.notes.push("beside the steps".into());
        assert_eq!(a.digest, b.digest);
        let c = Plan::new(
            "restart_service",
            json!({"hosts": ["mcp-03"], "reason": "r"}),
            s.clone(),
            "",
        );
        assert_ne!(a.digest, c.digest);
        let d = Plan::new(
            "restart_service",
            json!({"hosts": ["mcp-02"], "reason": "r"}),
            stage("mcp-02", "ssh runbook@127.0.0.2:22", "stop"),
            "",
        );
        assert_ne!(a.digest, d.digest);
        let elsewhere = Plan::new(
            "restart_service",
            json!({"hosts": ["mcp-02"], "reason": "r"}),
            stage("mcp-02", "ssh runbook@127.0.0.4:22", "restart"),
            "",
        );
        assert_ne!(a.digest, elsewhere.digest, "same name, another address");
        let other_config = Plan::new("restart_service", a.arguments.clone(), s.clone(), "c2");
        assert_ne!(a.digest, other_config.digest, "another configuration");
        assert_eq!(a.args_key(), other_config.args_key(), "the same call");
        assert_eq!(a.digest.len(), 64);
    }
}
