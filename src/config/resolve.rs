//! Raw → validated. Each check names the field it rejects.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawConfig, RawDatabase, RawHost, RawSecret, RawService};
use super::{
    ApprovalSettings, Config, ConfigError, Database, Diagnostics, Endpoint, Host, Limits,
    LoadBalancer, Policy, Prometheus, RulesTarget, Secrets, ServerSettings, Service, SshSettings,
    SshTarget, Target,
};

const DEFAULT_COMMAND_TIMEOUT: u64 = 10;
const DEFAULT_HTTP_TIMEOUT: u64 = 5;
const DEFAULT_OUTPUT_CAP: usize = 1 << 20;
const DEFAULT_CONNECT_TIMEOUT: u64 = 5;
const DEFAULT_CONTROL_PERSIST: u64 = 600;
const DEFAULT_PROCESS_PATTERN: &str = "cctelegram|node|nginx|postgres";

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn secs(&self, field: &str, v: Option<u64>, default: u64) -> Result<Duration, ConfigError> {
        let v = v.unwrap_or(default);
        if !(1..=600).contains(&v) {
            return Err(self.err(field, format!("{v} is out of range 1..=600")));
        }
        Ok(Duration::from_secs(v))
    }
}

pub(super) fn resolve(raw: RawConfig, file: &str) -> Result<Config, ConfigError> {
    let cx = Ctx { file };
    let server = ServerSettings {
        state_dir: match raw.server.state_dir {
            Some(d) => absolute(&cx, "server.state_dir", &d)?,
            None => default_state_dir(&cx)?,
        },
        command_timeout: cx.secs(
            "server.command_timeout_secs",
            raw.server.command_timeout_secs,
            DEFAULT_COMMAND_TIMEOUT,
        )?,
        http_timeout: cx.secs(
            "server.http_timeout_secs",
            raw.server.http_timeout_secs,
            DEFAULT_HTTP_TIMEOUT,
        )?,
        output_cap: match raw.server.output_cap_bytes.unwrap_or(DEFAULT_OUTPUT_CAP) {
            n @ 1024..=268_435_456 => n,
            n => {
                return Err(cx.err(
                    "server.output_cap_bytes",
                    format!("{n} is out of range 1024..=268435456"),
                ));
            }
        },
    };
    let ssh = SshSettings {
        known_hosts: raw
            .ssh
            .known_hosts
            .map(|p| absolute(&cx, "ssh.known_hosts", &p))
            .transpose()?,
        identity_file: raw
            .ssh
            .identity_file
            .map(|p| absolute(&cx, "ssh.identity_file", &p))
            .transpose()?,
        connect_timeout: cx.secs(
            "ssh.connect_timeout_secs",
            raw.ssh.connect_timeout_secs,
            DEFAULT_CONNECT_TIMEOUT,
        )?,
        control_persist: Duration::from_secs(
            raw.ssh
                .control_persist_secs
                .unwrap_or(DEFAULT_CONTROL_PERSIST)
                .clamp(1, 86_400),
        ),
    };

    let mut secrets = Secrets::default();
    for (name, s) in raw.secrets {
        let field = format!("secrets.{name}");
        name_ok(&cx, &field, &name)?;
        let value = load_secret(&cx, &field, &s)?;
        secrets.insert(name, value);
    }
    let secret_ref = |field: &str, name: &Option<String>| -> Result<(), ConfigError> {
        match name {
            Some(n) if !secrets.contains(n) => Err(cx.err(
                field,
                format!("secret `{n}` is not defined under [secrets]"),
            )),
            _ => Ok(()),
        }
    };

    let prometheus = match raw.prometheus {
        Some(p) => {
            url_ok(&cx, "prometheus.url", &p.url)?;
            let url = p.url.trim_end_matches('/').to_string();
            let rules = match p.rules_file {
                Some(file) => {
                    if !file.starts_with('/') {
                        return Err(cx.err("prometheus.rules_file", "must be an absolute path"));
                    }
                    if let Some(h) = &p.rules_host
                        && !raw.hosts.contains_key(h)
                    {
                        return Err(
                            cx.err("prometheus.rules_host", format!("no host `{h}` in [hosts]"))
                        );
                    }
                    let reload = match p.rules_reload {
                        Some(argv) if argv.is_empty() => {
                            return Err(cx.err("prometheus.rules_reload", "must not be empty"));
                        }
                        Some(argv) => argv,
                        None => ["curl", "-fsS", "-X", "POST"]
                            .iter()
                            .map(|s| s.to_string())
                            .chain([format!("{url}/-/reload")])
                            .collect(),
                    };
                    Some(RulesTarget {
                        file,
                        host: p.rules_host,
                        reload,
                    })
                }
                None if p.rules_host.is_some() || p.rules_reload.is_some() => {
                    return Err(cx.err(
                        "prometheus.rules_file",
                        "rules_host and rules_reload need rules_file",
                    ));
                }
                None => None,
            };
            Some(Prometheus {
                url,
                presets: p.presets,
                rules,
            })
        }
        None => None,
    };
    let load_balancer = match raw.load_balancer {
        Some(lb) => {
            url_ok(&cx, "load_balancer.health_url", &lb.health_url)?;
            secret_ref("load_balancer.api_key_secret", &lb.api_key_secret)?;
            Some(LoadBalancer {
                health_url: lb.health_url,
                api_key_secret: lb.api_key_secret,
            })
        }
        None => None,
    };

    let mut hosts = Vec::new();
    for (name, h) in raw.hosts {
        hosts.push(resolve_host(&cx, name, h)?);
    }
    if hosts.iter().any(|h| matches!(h.target, Target::Ssh(_))) && ssh.known_hosts.is_none() {
        return Err(cx.err(
            "ssh.known_hosts",
            "required when any host uses ssh (host keys are checked strictly)",
        ));
    }

    let mut services = Vec::new();
    for (name, s) in raw.services {
        let field = format!("services.{name}");
        secret_ref(&format!("{field}.api_key_secret"), &s.api_key_secret)?;
        services.push(resolve_service(&cx, &field, name, s, &hosts)?);
    }

    let diagnostics = Diagnostics {
        disks: match raw.diagnostics.disks {
            Some(d) => {
                for (i, p) in d.iter().enumerate() {
                    path_ok(&cx, &format!("diagnostics.disks[{i}]"), p)?;
                }
                d
            }
            None => vec!["/".into()],
        },
        process_pattern: match raw.diagnostics.process_pattern {
            Some(p) => {
                regex::Regex::new(&p)
                    .map_err(|e| cx.err("diagnostics.process_pattern", e.to_string()))?;
                p
            }
            None => DEFAULT_PROCESS_PATTERN.into(),
        },
        endpoints: Vec::new(),
        watch_files: {
            for (i, p) in raw.diagnostics.watch_files.iter().enumerate() {
                if !p.starts_with('/') {
                    return Err(cx.err(
                        format!("diagnostics.watch_files[{i}]"),
                        "must be an absolute path",
                    ));
                }
                path_ok(&cx, &format!("diagnostics.watch_files[{i}]"), p)?;
            }
            raw.diagnostics.watch_files.clone()
        },
    };
    let mut diagnostics = diagnostics;
    for (i, e) in raw.diagnostics.endpoints.into_iter().enumerate() {
        let field = format!("diagnostics.endpoints[{i}]");
        name_ok(&cx, &format!("{field}.name"), &e.name)?;
        url_ok(&cx, &format!("{field}.url"), &e.url)?;
        let ep = Endpoint {
            name: e.name,
            url: e.url,
        };
        for r in ep.secret_refs() {
            secret_ref(&format!("{field}.url"), &Some(r.to_string()))?;
        }
        if ep.url.matches("{secret:").count() != ep.secret_refs().len() {
            return Err(cx.err(format!("{field}.url"), "unclosed `{secret:`"));
        }
        diagnostics.endpoints.push(ep);
    }

    for (i, s) in raw.limits.forbidden_services.iter().enumerate() {
        name_ok(&cx, &format!("limits.forbidden_services[{i}]"), s)?;
    }
    let limits = Limits {
        max_hosts_per_call: match raw.limits.max_hosts_per_call.unwrap_or(1) {
            n @ 1..=1000 => n,
            n => {
                return Err(cx.err(
                    "limits.max_hosts_per_call",
                    format!("{n} is out of range 1..=1000"),
                ));
            }
        },
        forbidden_services: raw.limits.forbidden_services,
    };
    let approval = ApprovalSettings {
        ttl: match raw.approval.ttl_secs.unwrap_or(600) {
            n @ 1..=86_400 => Duration::from_secs(n),
            n => {
                return Err(cx.err(
                    "approval.ttl_secs",
                    format!("{n} is out of range 1..=86400"),
                ));
            }
        },
        wait: match raw.approval.wait_secs.unwrap_or(45) {
            n @ 0..=300 => Duration::from_secs(n),
            n => return Err(cx.err("approval.wait_secs", format!("{n} is out of range 0..=300"))),
        },
        destructive_approvers: match raw.approval.destructive_approvers.unwrap_or(1) {
            n @ 1..=3 => n,
            n => {
                return Err(cx.err(
                    "approval.destructive_approvers",
                    format!("{n} is out of range 1..=3"),
                ));
            }
        },
        channels: super::Channels {
            change: channels(
                &cx,
                "approval.channels.change",
                raw.approval.channels.change,
                &["client", "terminal"],
            )?,
            notify: channels(
                &cx,
                "approval.channels.notify",
                raw.approval.channels.notify,
                &["client", "terminal"],
            )?,
            destructive: channels(
                &cx,
                "approval.channels.destructive",
                raw.approval.channels.destructive,
                &["terminal"],
            )?,
        },
        service_account: match raw.approval.service_account {
            Some(a) => {
                name_ok(&cx, "approval.service_account", &a)?;
                Some(a)
            }
            None => None,
        },
        telegram: super::phone::resolve(raw.approval.telegram, file, &secrets)?,
    };
    for (field, list) in [
        ("approval.channels.change", &approval.channels.change),
        ("approval.channels.notify", &approval.channels.notify),
        (
            "approval.channels.destructive",
            &approval.channels.destructive,
        ),
    ] {
        if approval.telegram.is_none() && list.iter().any(|c| c == "telegram") {
            return Err(cx.err(
                field,
                "`telegram` needs an [approval.telegram] table (bot, chats, approvers)",
            ));
        }
    }
    let policy = Policy {
        tools: raw.policy.tools,
        toolsets: raw.policy.toolsets,
    };
    let database = match raw.database {
        Some(d) => Some(resolve_database(&cx, d, &secrets, &services)?),
        None => None,
    };

    let aws = super::aws::resolve(raw.aws, file, &secrets, &hosts)?;
    let notify = super::notify::resolve(raw.notify, file, &secrets)?;

    Ok(Config {
        source: file.into(),
        server,
        ssh,
        secrets,
        prometheus,
        load_balancer,
        hosts,
        services,
        diagnostics,
        policy,
        limits,
        approval,
        database,
        swarm: super::swarm::resolve(raw.swarm, file)?,
        aws,
        commands: super::commands::resolve(raw.commands, file)?,
        escalation: {
            for (k, v) in &raw.escalation {
                if !matches!(k.as_str(), "L1" | "L2" | "L3") {
                    return Err(cx.err(format!("escalation.{k}"), "levels are L1, L2 and L3"));
                }
                for (i, c) in v.iter().enumerate() {
                    crate::screen::check_text(c)
                        .map_err(|e| cx.err(format!("escalation.{k}[{i}]"), e))?;
                }
            }
            raw.escalation
        },
        notify,
    })
}

fn resolve_database(
    cx: &Ctx,
    d: RawDatabase,
    secrets: &Secrets,
    services: &[Service],
) -> Result<Database, ConfigError> {
    if !secrets.contains(&d.url_secret) {
        return Err(cx.err(
            "database.url_secret",
            format!("secret `{}` is not defined under [secrets]", d.url_secret),
        ));
    }
    // A loaded value must at least look like a postgres URL; a missing file or variable is
    // reported by the tools (and `doctor`), like every other secret.
    if let Ok(v) = secrets.get(&d.url_secret)
        && !(v.starts_with("postgres://") || v.starts_with("postgresql://"))
    {
        return Err(cx.err(
            "database.url_secret",
            format!(
                "secret `{}` must hold a `postgres://USER:PASSWORD@HOST:PORT/DB` URL",
                d.url_secret
            ),
        ));
    }
    if let Some(s) = &d.service
        && !services.iter().any(|x| &x.name == s)
    {
        return Err(cx.err(
            "database.service",
            format!("unknown service `{s}`; define it under [services]"),
        ));
    }
    let secs = d.statement_timeout_secs.unwrap_or(30);
    if !(1..=3600).contains(&secs) {
        return Err(cx.err(
            "database.statement_timeout_secs",
            format!("{secs} is out of range 1..=3600"),
        ));
    }
    Ok(Database {
        url_secret: d.url_secret,
        service: d.service,
        statement_timeout: Duration::from_secs(secs),
    })
}

fn resolve_host(cx: &Ctx, name: String, h: RawHost) -> Result<Host, ConfigError> {
    let field = format!("hosts.{name}");
    name_ok(cx, &field, &name)?;
    let target = match h.ssh {
        None => Target::Local,
        Some(s) => {
            let host = match (s.host, &h.address) {
                (Some(x), _) => x,
                (None, Some(a)) => a.clone(),
                (None, None) => {
                    return Err(cx.err(
                        format!("{field}.ssh.host"),
                        "needed when the host has no `address`",
                    ));
                }
            };
            name_ok(cx, &format!("{field}.ssh.host"), &host)?;
            if let Some(u) = &s.user {
                name_ok(cx, &format!("{field}.ssh.user"), u)?;
            }
            if s.port == Some(0) {
                return Err(cx.err(format!("{field}.ssh.port"), "0 is not a port"));
            }
            for (i, j) in s.proxy_jump.iter().enumerate() {
                if j.starts_with('-') || j.contains(char::is_whitespace) || j.contains(',') {
                    return Err(cx.err(
                        format!("{field}.ssh.proxy_jump[{i}]"),
                        "must be `[user@]host[:port]`",
                    ));
                }
            }
            Target::Ssh(SshTarget {
                host,
                user: s.user,
                port: s.port,
                proxy_jump: s.proxy_jump,
            })
        }
    };
    let address = match (h.address, &target) {
        (Some(a), _) => a,
        (None, Target::Ssh(t)) => t.host.clone(),
        (None, Target::Local) => "127.0.0.1".into(),
    };
    name_ok(cx, &format!("{field}.address"), &address)?;
    Ok(Host {
        name,
        address,
        target,
        sudo: h.sudo,
    })
}

fn resolve_service(
    cx: &Ctx,
    field: &str,
    name: String,
    s: RawService,
    hosts: &[Host],
) -> Result<Service, ConfigError> {
    name_ok(cx, field, &name)?;
    let unit = s.unit.unwrap_or_else(|| name.clone());
    name_ok(cx, &format!("{field}.unit"), &unit)?;
    let on = match s.hosts {
        Some(list) => {
            for (i, h) in list.iter().enumerate() {
                if !hosts.iter().any(|x| &x.name == h) {
                    return Err(
                        cx.err(format!("{field}.hosts[{i}]"), format!("unknown host `{h}`"))
                    );
                }
            }
            list
        }
        None => hosts.iter().map(|h| h.name.clone()).collect(),
    };
    for (k, url) in [
        ("health_url", &s.health_url),
        ("metrics_url", &s.metrics_url),
    ] {
        if let Some(u) = url {
            url_ok(cx, &format!("{field}.{k}"), u)?;
        }
    }
    for (kind, path) in &s.logs {
        name_ok(cx, &format!("{field}.logs.{kind}"), kind)?;
        path_ok(cx, &format!("{field}.logs.{kind}"), path)?;
    }
    if let Some(f) = &s.rate_limit_file {
        path_ok(cx, &format!("{field}.rate_limit_file"), f)?;
    }
    if let Some(p) = &s.tmp_pattern {
        // A `find -name` pattern: one path component, never a path or an option.
        let ok = !p.is_empty()
            && !p.starts_with('-')
            && !p.contains('/')
            && !p.contains("..")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-*?".contains(c))
            && p.chars().any(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(cx.err(
                format!("{field}.tmp_pattern"),
                "must be a file-name pattern like `cctelegram-*` (letters, digits, `_.-*?`)",
            ));
        }
    }
    if let Some(n) = &s.process_name {
        name_ok(cx, &format!("{field}.process_name"), n)?;
    }
    if let Some(a) = &s.process_args
        && (a.is_empty() || a.len() > 200 || a.chars().any(char::is_control))
    {
        return Err(cx.err(
            format!("{field}.process_args"),
            "must be 1..=200 printable characters of the processes' command line",
        ));
    }
    let process_name = s.process_name.clone().unwrap_or_else(|| unit.clone());
    Ok(Service {
        name,
        unit,
        manager: s.manager,
        role: s.role,
        hosts: on,
        health_url: s.health_url,
        metrics_url: s.metrics_url,
        api_key_secret: s.api_key_secret,
        logs: s.logs,
        rate_limit_file: s.rate_limit_file,
        tmp_pattern: s.tmp_pattern,
        process_name,
        process_args: s.process_args,
    })
}

/// A list of channels, each one this server knows, at least one.
fn channels(
    cx: &Ctx,
    field: &str,
    v: Option<Vec<String>>,
    default: &[&str],
) -> Result<Vec<String>, ConfigError> {
    let v = v.unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
    if v.is_empty() {
        return Err(cx.err(
            field,
            "name at least one channel, or nothing could ever be approved",
        ));
    }
    for c in &v {
        if !super::CHANNELS.contains(&c.as_str()) {
            return Err(cx.err(
                field,
                format!(
                    "unknown channel `{c}`; channels are: {}",
                    super::CHANNELS.join(", ")
                ),
            ));
        }
    }
    Ok(v)
}

fn load_secret(
    cx: &Ctx,
    field: &str,
    s: &RawSecret,
) -> Result<Result<String, String>, ConfigError> {
    Ok(match (&s.env, &s.file) {
        (Some(var), None) => std::env::var(var)
            .map(|v| v.trim().to_string())
            .map_err(|_| format!("environment variable {var} is not set")),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|v| v.trim().to_string())
            .map_err(|e| format!("cannot read {path}: {e}")),
        _ => return Err(cx.err(field, "set exactly one of `env` or `file`")),
    })
}

/// Names that end up in argv or URLs: letters, digits, `_.@:-`, not starting with `-`.
fn name_ok(cx: &Ctx, field: &str, v: &str) -> Result<(), ConfigError> {
    super::check_token(v).map_err(|m| cx.err(field, m))
}

fn url_ok(cx: &Ctx, field: &str, v: &str) -> Result<(), ConfigError> {
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(())
    } else {
        Err(cx.err(field, format!("`{v}` is not an http(s) URL")))
    }
}

fn path_ok(cx: &Ctx, field: &str, v: &str) -> Result<(), ConfigError> {
    if !v.starts_with('/') || v.split('/').any(|c| c == "..") {
        return Err(cx.err(
            field,
            format!("`{v}` must be an absolute path without `..`"),
        ));
    }
    Ok(())
}

fn absolute(cx: &Ctx, field: &str, v: &str) -> Result<PathBuf, ConfigError> {
    path_ok(cx, field, v)?;
    Ok(PathBuf::from(v))
}

/// `$XDG_STATE_HOME/runbook-mcp`, else `~/.local/state/runbook-mcp` — never a shared
/// directory like `/tmp`, where another user could make it first.
fn default_state_dir(cx: &Ctx) -> Result<PathBuf, ConfigError> {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("runbook-mcp"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/runbook-mcp")),
        None => Err(cx.err(
            "server.state_dir",
            "neither XDG_STATE_HOME nor HOME is set: set state_dir to a directory of this account",
        )),
    }
}
