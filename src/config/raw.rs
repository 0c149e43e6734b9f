//! The configuration file exactly as written: serde types with `deny_unknown_fields`, no
//! cross-references checked. `resolve.rs` turns these into the validated [`super::Config`].
//! Doc comments here become the descriptions in `runbook-mcp config-schema`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// A runbook-mcp configuration file (TOML).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Server-wide settings.
    #[serde(default)]
    pub server: RawServer,
    /// How to reach hosts over SSH (shared by every ssh host).
    #[serde(default)]
    pub ssh: RawSsh,
    /// Named secrets, each read from an environment variable or a file. Tools refer to them by
    /// name; their values never appear in outputs, logs or the audit log.
    #[serde(default)]
    pub secrets: BTreeMap<String, RawSecret>,
    /// The Prometheus server used by the metrics tools.
    pub prometheus: Option<RawPrometheus>,
    /// The load balancer in front of the instances.
    pub load_balancer: Option<RawLoadBalancer>,
    /// The fleet, by host name. Tools take these names in their `hosts` argument.
    #[serde(default)]
    pub hosts: BTreeMap<String, RawHost>,
    /// The services the runbook manages, by name.
    #[serde(default)]
    pub services: BTreeMap<String, RawService>,
    /// What `run_diagnostics` looks at beyond the services.
    #[serde(default)]
    pub diagnostics: RawDiagnostics,
    /// Which tools run, need approval, or are refused.
    #[serde(default)]
    pub policy: RawPolicy,
    /// Blast-radius limits, checked before any approval is asked.
    #[serde(default)]
    pub limits: RawLimits,
    /// How approvals are asked for and how long they live.
    #[serde(default)]
    pub approval: RawApproval,
    /// The PostgreSQL database of the `database` toolset.
    pub database: Option<RawDatabase>,
    /// The Docker Swarm the `rollback_deployment`, `scale_service` and `set_memory_limit` tools
    /// act on.
    pub swarm: Option<super::RawSwarm>,
    /// The AWS ELBv2 target group the `loadbalancer` tools read and change (through the `aws`
    /// CLI).
    pub aws: Option<super::RawAws>,
    /// `run_command`'s read-only allowlist.
    #[serde(default)]
    pub commands: super::RawCommands,
    /// Who to involve at each escalation level: `L1 = ["ops-oncall@example.com"]`, `L2`, `L3`.
    #[serde(default)]
    pub escalation: BTreeMap<String, Vec<String>>,
    /// Where the notification tools send (`[notify.slack]`, `.pagerduty`, `.statuspage`,
    /// `.telegram`).
    #[serde(default)]
    pub notify: super::RawNotify,
}

/// The database the `database` tools connect to (from this server, over TCP).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// Secret holding the connection URL, `postgres://USER:PASSWORD@HOST:PORT/DB`
    /// (`?sslmode=disable` accepted). The password never leaves the server.
    pub url_secret: String,
    /// Inventory service that runs the database (`restart_database` restarts it on its hosts).
    pub service: Option<String>,
    /// Longest a statement of the database tools may run, in seconds (default 30, 1..=3600);
    /// maintenance of a large database may need more.
    pub statement_timeout_secs: Option<u64>,
}

/// A policy decision.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawRule {
    /// Runs without asking (not allowed for destructive tools).
    Allow,
    /// Runs after a human approved the exact plan.
    Approve,
    /// Never runs (and is hidden).
    Deny,
}

/// Policy per tool and per toolset; a tool's own rule wins. Defaults: `read` and `record`
/// tools allow, every other effect approve.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Rules by tool name, e.g. `{ reload_nginx = "allow", restart_database = "deny" }`.
    #[serde(default)]
    pub tools: BTreeMap<String, RawRule>,
    /// Rules by toolset, e.g. `{ database = "deny" }`.
    #[serde(default)]
    pub toolsets: BTreeMap<String, RawRule>,
}

/// Blast-radius limits.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Most hosts one mutating call may touch (default 1).
    pub max_hosts_per_call: Option<usize>,
    /// Services no tool may change.
    #[serde(default)]
    pub forbidden_services: Vec<String>,
}

/// Channels whose decisions count, by effect.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChannels {
    pub change: Option<Vec<String>>,
    pub notify: Option<Vec<String>>,
    pub destructive: Option<Vec<String>>,
}

/// Approval settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApproval {
    /// How long an approval request stays open, in seconds (default 600).
    pub ttl_secs: Option<u64>,
    /// How long a call waits for a decision before answering `pending`, in seconds (default
    /// 45: client request timeouts are often 60 s).
    pub wait_secs: Option<u64>,
    /// Distinct operators who must approve a destructive action (default 1).
    pub destructive_approvers: Option<u8>,
    /// Which channels' decisions count, per effect: `client` (the session's own MCP client:
    /// elicitation / InputRequiredResult), `terminal` (`runbook-mcp approve`) and `telegram`
    /// (buttons from `[approval.telegram]`). Defaults:
    /// `change` and `notify` both, `destructive` the terminal only.
    #[serde(default)]
    pub channels: RawChannels,
    /// Approval by Telegram buttons from a dedicated bot (the `telegram` channel).
    pub telegram: Option<super::RawApprovalTelegram>,
    /// The account the server runs as in the dedicated-user deployment (e.g. `runbook-mcp`):
    /// a process of this account under sudo is acting for `SUDO_UID`, the operator.
    pub service_account: Option<String>,
}

/// Server-wide settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Directory for the server's own state (ssh control sockets, audit log). Default:
    /// `$XDG_STATE_HOME/runbook-mcp` or `~/.local/state/runbook-mcp`.
    pub state_dir: Option<String>,
    /// Timeout of one command on one host, in seconds (default 10, 1..=600).
    pub command_timeout_secs: Option<u64>,
    /// Timeout of one HTTP request, in seconds (default 5, 1..=600).
    pub http_timeout_secs: Option<u64>,
    /// Largest output kept from one command, in bytes (default 1 MiB); the rest is dropped and
    /// the result says it was truncated.
    pub output_cap_bytes: Option<usize>,
}

/// SSH settings shared by every ssh host.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    /// known_hosts file checked strictly: an unknown or changed host key refuses the connection.
    /// Required as soon as any host uses ssh.
    pub known_hosts: Option<String>,
    /// Private key to log in with (only this key is offered).
    pub identity_file: Option<String>,
    /// Seconds to wait for a new connection (default 5).
    pub connect_timeout_secs: Option<u64>,
    /// Seconds an idle master connection stays open (default 600).
    pub control_persist_secs: Option<u64>,
}

/// Where a secret's value comes from: exactly one of `env` or `file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    /// Environment variable holding the value.
    pub env: Option<String>,
    /// File holding the value (surrounding whitespace is trimmed).
    pub file: Option<String>,
}

/// The Prometheus server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheus {
    /// Base URL, e.g. `http://prometheus:9090`.
    pub url: String,
    /// Named PromQL presets added to (or replacing) the built-in ones. `$window` is replaced by
    /// the query's rate window (e.g. `5m`).
    #[serde(default)]
    pub presets: BTreeMap<String, String>,
    /// The rules file `install_alert_rules` writes (it must be in Prometheus' `rule_files`).
    pub rules_file: Option<String>,
    /// Inventory host holding `rules_file`; default: the machine runbook-mcp runs on.
    pub rules_host: Option<String>,
    /// Command that makes Prometheus load the rules, run on the rules host; default:
    /// `curl -fsS -X POST <url>/-/reload` (needs `--web.enable-lifecycle`).
    pub rules_reload: Option<Vec<String>>,
}

/// The load balancer in front of the instances.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoadBalancer {
    /// Health URL through the load balancer, e.g. `https://mcp.company.com/health`.
    pub health_url: String,
    /// Secret sent as the `X-API-Key` header, if the endpoint needs one.
    pub api_key_secret: Option<String>,
}

/// One host of the fleet.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// Address used for HTTP checks (`{address}` in service URLs) and, by default, for ssh.
    pub address: Option<String>,
    /// Reach this host over ssh. Absent: commands run on this machine (local executor).
    pub ssh: Option<RawSshTarget>,
    /// Run managed commands through `sudo -n` (never prompts; fails if not allowed).
    #[serde(default)]
    pub sudo: bool,
}

/// How to log in to one host.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSshTarget {
    /// Host name or IP to connect to (default: the host's `address`).
    pub host: Option<String>,
    /// Login user (default: the current user).
    pub user: Option<String>,
    /// Port (default 22).
    pub port: Option<u16>,
    /// Jump hosts, `[user@]host[:port]`, in order.
    #[serde(default)]
    pub proxy_jump: Vec<String>,
}

/// One managed service.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Service manager that runs it on the hosts.
    pub manager: RawManager,
    /// Name of the unit / program / swarm service (default: the service's name).
    pub unit: Option<String>,
    /// What the service is in the runbook: `app` (the instances behind the load balancer),
    /// `bridge`, `proxy`, `database` or `other`.
    #[serde(default)]
    pub role: RawRole,
    /// Hosts that run it (default: every host).
    pub hosts: Option<Vec<String>>,
    /// Health URL; `{address}` is replaced by the host's address.
    pub health_url: Option<String>,
    /// Prometheus-format metrics URL; `{address}` is replaced by the host's address.
    pub metrics_url: Option<String>,
    /// Secret sent as the `X-API-Key` header to its health and metrics URLs.
    pub api_key_secret: Option<String>,
    /// Its log files by kind (`application`, `security`, ...), as absolute paths on the host.
    #[serde(default)]
    pub logs: BTreeMap<String, String>,
    /// nginx only: the file holding `limit_req_zone ... rate=Nr/s` (for `adjust_rate_limit`).
    pub rate_limit_file: Option<String>,
    /// Temporary files the service leaves in `/tmp`, as a `find -name` pattern (e.g.
    /// `cctelegram-*`), removed by `restart_service` with `clean_tmp` while it is stopped.
    pub tmp_pattern: Option<String>,
    /// The executable its processes run as (`node` for a Node.js bridge; default: the unit
    /// name): `restart_bridge` cleans up stale processes by this name.
    pub process_name: Option<String>,
    /// Text the command line of its processes contains (e.g. `bridge/index.js`), so that of
    /// many `node` processes only this service's are selected.
    pub process_args: Option<String>,
}

/// Service managers runbook-mcp can drive.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawManager {
    /// `systemctl` (status read with `systemctl show`).
    Systemd,
    /// `supervisorctl`.
    Supervisor,
    /// A Docker Swarm service (`docker service ...`).
    Docker,
}

/// The role of a service in the runbook.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawRole {
    /// An instance behind the load balancer.
    App,
    /// The Telegram bridge.
    Bridge,
    /// The reverse proxy (nginx).
    Proxy,
    /// The database.
    Database,
    /// Anything else.
    #[default]
    Other,
}

/// What `run_diagnostics` checks beyond the services.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDiagnostics {
    /// Paths whose filesystems are reported (default `["/"]`).
    pub disks: Option<Vec<String>>,
    /// Regular expression of process names listed in "Process Information".
    pub process_pattern: Option<String>,
    /// External dependencies checked once per run from this server (the runbook's
    /// "Network Connectivity", e.g. the Telegram API).
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
    /// Files whose modification times `what_changed` reports on every host that has them
    /// (each service's `rate_limit_file` is added), e.g. `/etc/nginx/nginx.conf`.
    #[serde(default)]
    pub watch_files: Vec<String>,
}

/// An external HTTP dependency.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Name shown in results, e.g. `telegram_api`.
    pub name: String,
    /// URL; `{secret:NAME}` is replaced by that secret when the request is made (the shown
    /// URL keeps the placeholder), e.g. `https://api.telegram.org/bot{secret:telegram_bot_token}/getMe`.
    pub url: String,
}
