//! `[swarm]`: the Docker Swarm the `rollback_deployment`, `scale_service` and `set_memory_limit`
//! tools act on. The `docker` CLI runs on this machine (local executor, argv only) with
//! `-H docker_host`, so the plan names the exact engine it talks to.

use schemars::JsonSchema;
use serde::Deserialize;

use super::ConfigError;

const DEFAULT_MAX_REPLICAS: u32 = 10;

/// The Docker Swarm the swarm tools act on.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSwarm {
    /// Engine API of a Swarm manager, passed as `docker -H VALUE`: `tcp://HOST:PORT`,
    /// `unix:///PATH` or `ssh://[USER@]HOST[:PORT]`.
    pub docker_host: String,
    /// The Swarm services tools may touch, e.g. `["cctelegram_mcp-server"]`; any other name
    /// is refused.
    pub services: Vec<String>,
    /// Most replicas `scale_service` may set (default 10).
    pub max_replicas: Option<u32>,
}

/// A validated `[swarm]` table.
#[derive(Debug, Clone)]
pub struct Swarm {
    pub docker_host: String,
    pub services: Vec<String>,
    pub max_replicas: u32,
}

pub(super) fn resolve(raw: Option<RawSwarm>, file: &str) -> Result<Option<Swarm>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let err = |field: &str, message: String| ConfigError {
        file: file.into(),
        field: field.into(),
        message,
    };
    docker_host_ok(&raw.docker_host).map_err(|m| err("swarm.docker_host", m))?;
    if raw.services.is_empty() {
        return Err(err(
            "swarm.services",
            "list the Swarm services tools may touch".into(),
        ));
    }
    for (i, s) in raw.services.iter().enumerate() {
        let field = format!("swarm.services[{i}]");
        super::check_token(s).map_err(|m| err(&field, m))?;
        if raw.services[..i].contains(s) {
            return Err(err(&field, format!("`{s}` is listed twice")));
        }
    }
    let max_replicas = match raw.max_replicas.unwrap_or(DEFAULT_MAX_REPLICAS) {
        n @ 1..=1000 => n,
        n => {
            return Err(err(
                "swarm.max_replicas",
                format!("{n} is out of range 1..=1000"),
            ));
        }
    };
    Ok(Some(Swarm {
        docker_host: raw.docker_host,
        services: raw.services,
        max_replicas,
    }))
}

/// `tcp://HOST:PORT`, `unix:///PATH` or `ssh://[USER@]HOST[:PORT]`: one argv word that cannot
/// be read as an option, with no shell metacharacter or whitespace (it is shown to approvers
/// and logged as part of the command line).
fn docker_host_ok(v: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "`{}` is not `tcp://HOST:PORT`, `unix:///PATH` or `ssh://[USER@]HOST[:PORT]`",
            v.escape_debug()
        )
    };
    if v.len() > 256
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.@:/-[]".contains(c))
    {
        return Err(bad());
    }
    let (scheme, rest) = v.split_once("://").ok_or_else(bad)?;
    let host_ok = |h: &str| !h.is_empty() && !h.starts_with('-') && !h.contains('/');
    let ok = match scheme {
        "tcp" => rest
            .rsplit_once(':')
            .is_some_and(|(host, port)| host_ok(host) && port.parse::<u16>().is_ok_and(|p| p > 0)),
        "unix" => rest.starts_with('/') && rest.len() > 1 && !rest.split('/').any(|c| c == ".."),
        "ssh" => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let host = match host.rsplit_once(':') {
                Some((h, port)) if port.parse::<u16>().is_ok_and(|p| p > 0) => h,
                Some(_) => return Err(bad()),
                None => host,
            };
            host_ok(host) && !rest.starts_with('-')
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::docker_host_ok;

    #[test]
    fn docker_hosts() {
        for ok in [
            "tcp://127.0.0.1:23750",
            "tcp://manager-1.example:2376",
            "tcp://[::1]:2375",
            "unix:///var/run/docker.sock",
            "ssh://ops@manager-1",
            "ssh://manager-1:2222",
        ] {
            assert!(docker_host_ok(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "127.0.0.1:2375",
            "tcp://127.0.0.1",
            "tcp://127.0.0.1:0",
            "tcp://:2375",
            "tcp://h:2375;reboot",
            "tcp://h:2375 -D",
            "unix://relative.sock",
            "unix:///var/../etc/x",
            "http://h:2375",
            "ssh://-oProxyCommand=x",
            "ssh://h:port",
        ] {
            assert!(docker_host_ok(bad).is_err(), "{bad}");
        }
    }
}
