//! Configuration: parse the TOML file into [`raw`] types, then resolve them into a validated
//! [`Config`] whose cross-references (hosts, secrets, services) are known to hold. Every error
//! names the file and the field.

mod aws;
mod commands;
mod notify;
mod phone;
mod raw;
mod resolve;
pub(crate) mod secrets;
mod swarm;
mod token;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use aws::{Aws, AwsCredentials, RawAws};
pub use commands::{Commands, DEFAULT_READ_ONLY, RawCommands};
pub use notify::{Notify, PagerDuty, RawNotify, Slack, Statuspage, Telegram, channel_name_ok};
pub use phone::{ApprovalTelegram, RawApprovalTelegram};
pub use raw::{RawConfig, RawManager as Manager, RawRole as Role, RawRule as Rule};
pub use secrets::Secrets;
pub use swarm::{RawSwarm, Swarm};
pub use token::{MAX_TOKEN, TOKEN_PATTERN, check_token};

/// The configuration compiled into the binary: the local machine only.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");
/// How the embedded default is named in messages.
pub const EMBEDDED_NAME: &str = "<embedded default>";

/// A configuration error, always naming where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct ConfigError {
    /// The file (or `<embedded default>`).
    pub file: String,
    /// The field, as a dotted path (`hosts.mcp-01.ssh.port`), or a `line:column` position.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Where it came from.
    pub source: String,
    pub server: ServerSettings,
    pub ssh: SshSettings,
    pub secrets: Secrets,
    pub prometheus: Option<Prometheus>,
    pub load_balancer: Option<LoadBalancer>,
    /// Hosts, sorted by name.
    pub hosts: Vec<Host>,
    /// Services, sorted by name.
    pub services: Vec<Service>,
    pub diagnostics: Diagnostics,
    pub policy: Policy,
    pub limits: Limits,
    pub approval: ApprovalSettings,
    /// The database of the `database` toolset, when configured.
    pub database: Option<Database>,
    /// The Docker Swarm of the swarm tools, when configured.
    pub swarm: Option<Swarm>,
    /// The AWS target group of the `loadbalancer` tools, when configured.
    pub aws: Option<Aws>,
    /// What `run_command` runs without approval.
    pub commands: Commands,
    /// Contacts per escalation level (`L1`, `L2`, `L3`).
    pub escalation: BTreeMap<String, Vec<String>>,
    /// Notification destinations.
    pub notify: Notify,
}

/// The database the `database` tools connect to.
#[derive(Debug, Clone)]
pub struct Database {
    /// Name of the secret holding the connection URL (the value is read only to connect).
    pub url_secret: String,
    /// Inventory service running the database, for `restart_database`.
    pub service: Option<String>,
    pub statement_timeout: Duration,
}

/// Rules by tool and toolset (names checked against the registry by the engine).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub tools: BTreeMap<String, Rule>,
    pub toolsets: BTreeMap<String, Rule>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_hosts_per_call: usize,
    pub forbidden_services: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ApprovalSettings {
    pub ttl: Duration,
    pub wait: Duration,
    pub destructive_approvers: u8,
    /// The dedicated-user deployment's account: under it, `SUDO_UID` names the approver.
    pub service_account: Option<String>,
    /// Channels whose decisions count for a `change`, a `notify`, a `destructive` plan.
    pub channels: Channels,
    /// Approval by Telegram buttons, when configured.
    pub telegram: Option<ApprovalTelegram>,
}

/// A channel that can carry a human's decision.
pub const CHANNELS: [&str; 3] = ["client", "terminal", "telegram"];

#[derive(Debug, Clone)]
pub struct Channels {
    pub change: Vec<String>,
    pub notify: Vec<String>,
    pub destructive: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub state_dir: PathBuf,
    pub command_timeout: Duration,
    pub http_timeout: Duration,
    pub output_cap: usize,
}

#[derive(Debug, Clone)]
pub struct SshSettings {
    pub known_hosts: Option<PathBuf>,
    pub identity_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub control_persist: Duration,
}

#[derive(Debug, Clone)]
pub struct Prometheus {
    pub url: String,
    /// Named PromQL presets from the config (the metrics tools add the built-in ones).
    pub presets: BTreeMap<String, String>,
    /// Where `install_alert_rules` writes, when configured.
    pub rules: Option<RulesTarget>,
}

/// The alerting rules file Prometheus loads, and how to make it reload.
#[derive(Debug, Clone)]
pub struct RulesTarget {
    /// Absolute path on the rules host.
    pub file: String,
    /// Inventory host; `None`: this server's machine.
    pub host: Option<String>,
    /// argv run on the rules host after the file is written and checked.
    pub reload: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LoadBalancer {
    pub health_url: String,
    pub api_key_secret: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// Address for HTTP checks (`{address}` in URLs).
    pub address: String,
    pub target: Target,
    pub sudo: bool,
}

/// How commands reach a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This machine, argv executed directly (never a shell).
    Local,
    /// Over ssh.
    Ssh(SshTarget),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub proxy_jump: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub unit: String,
    pub manager: Manager,
    pub role: Role,
    /// Names of the hosts that run it.
    pub hosts: Vec<String>,
    pub health_url: Option<String>,
    pub metrics_url: Option<String>,
    pub api_key_secret: Option<String>,
    pub logs: BTreeMap<String, String>,
    pub rate_limit_file: Option<String>,
    pub tmp_pattern: Option<String>,
    /// The executable its processes run as (default: the unit name).
    pub process_name: String,
    /// Text its processes' command lines contain, when configured.
    pub process_args: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub disks: Vec<String>,
    /// Files `what_changed` stats on every host.
    pub watch_files: Vec<String>,
    pub process_pattern: String,
    pub endpoints: Vec<Endpoint>,
}

/// An external HTTP dependency checked by `run_diagnostics`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    /// As configured, `{secret:NAME}` placeholders intact: safe to show.
    pub url: String,
}

impl Endpoint {
    /// The URL with its secrets filled in: only for sending, never for showing.
    pub fn resolved_url(&self, secrets: &Secrets) -> Result<String, String> {
        let mut url = self.url.clone();
        while let Some(start) = url.find("{secret:") {
            let end = url[start..].find('}').ok_or("unclosed {secret:")? + start;
            let name = &url[start + 8..end];
            let value = secrets::encode(secrets.get(name)?);
            url.replace_range(start..=end, &value);
        }
        Ok(url)
    }

    /// Secret names the URL refers to.
    pub fn secret_refs(&self) -> Vec<&str> {
        self.url
            .match_indices("{secret:")
            .filter_map(|(i, _)| {
                let rest = &self.url[i + 8..];
                rest.find('}').map(|e| &rest[..e])
            })
            .collect()
    }
}

impl Config {
    /// Loads `path`, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => {
                let name = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    file: name.clone(),
                    field: "-".into(),
                    message: format!("cannot read: {e}"),
                })?;
                Self::parse(&text, &name)
            }
            None => Self::parse(EMBEDDED_DEFAULT, EMBEDDED_NAME),
        }
    }

    /// Parses and resolves TOML text; `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| parse_error(text, name, &e))?;
        resolve::resolve(raw, name)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Services that run on `host`, in name order.
    pub fn services_on<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a Service> + 'a {
        self.services
            .iter()
            .filter(move |s| s.hosts.iter().any(|h| h == host))
    }

    /// The JSON Schema of the configuration file.
    pub fn json_schema() -> serde_json::Value {
        let schema = schemars::schema_for!(RawConfig);
        serde_json::to_value(schema).unwrap_or_default()
    }
}

impl Service {
    /// A URL template with `{address}` filled in for `host`.
    pub fn url_for(template: &str, host: &Host) -> String {
        template.replace("{address}", &host.address)
    }
}

/// Turns a TOML error into "file: line:col: message" — the message names the field
/// (`unknown field`, `missing field`, `invalid type ... for key`).
fn parse_error(text: &str, name: &str, e: &toml::de::Error) -> ConfigError {
    let field = e
        .span()
        .map(|s| {
            let before = &text[..s.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, str::len) + 1;
            format!("line {line}, column {col}")
        })
        .unwrap_or_else(|| "-".into());
    ConfigError {
        file: name.into(),
        field,
        message: e.message().trim().to_string(),
    }
}

#[cfg(test)]
mod tests;
