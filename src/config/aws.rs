//! `[aws]`: the ELBv2 target group the `loadbalancer` tools act on. The real `aws` CLI runs on
//! this machine (local executor, argv only); the plan names the exact CLI, region, endpoint and
//! target group, and credentials reach the CLI only through its environment.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ConfigError, Host, Secrets};

/// The AWS load balancer target group of the `loadbalancer` tools.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    /// The `aws` CLI: a program name found on `PATH` (default `aws`) or an absolute path.
    pub cli: Option<String>,
    /// Endpoint passed as `--endpoint-url` (an ELBv2-compatible API, e.g. a local emulator);
    /// default: the CLI's own for the region.
    pub endpoint_url: Option<String>,
    /// Region passed as `--region`, e.g. `us-east-1`.
    pub region: String,
    /// Named CLI profile passed as `--profile` (not with the `*_secret` fields).
    pub profile: Option<String>,
    /// Secret holding the access key id, given to the CLI as `AWS_ACCESS_KEY_ID` in its
    /// environment (never as an argument). Together with `secret_key_secret`.
    pub access_key_secret: Option<String>,
    /// Secret holding the secret access key, given to the CLI as `AWS_SECRET_ACCESS_KEY` in its
    /// environment.
    pub secret_key_secret: Option<String>,
    /// ARN of the target group whose instances the tools drain and restore.
    pub target_group_arn: String,
    /// Port of the targets, sent as `Port=N` with each target; default: the target group's.
    pub target_port: Option<u16>,
    /// EC2 instance id of each inventory host in the target group, e.g.
    /// `{ mcp-01 = "i-0123456789abcdef0" }`.
    pub instances: BTreeMap<String, String>,
}

/// How the CLI gets credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsCredentials {
    /// The CLI's own default chain (environment, `~/.aws`, instance role).
    Default,
    /// `--profile NAME`.
    Profile(String),
    /// These secrets, in the child's environment.
    Secrets {
        access_key_secret: String,
        secret_key_secret: String,
    },
}

/// A validated `[aws]` table.
#[derive(Debug, Clone)]
pub struct Aws {
    pub cli: String,
    pub endpoint_url: Option<String>,
    pub region: String,
    pub credentials: AwsCredentials,
    pub target_group_arn: String,
    /// The name inside the ARN (`targetgroup/NAME/ID`), for messages and locks.
    pub target_group_name: String,
    pub target_port: Option<u16>,
    /// Inventory host → instance id.
    pub instances: BTreeMap<String, String>,
}

impl Aws {
    /// The inventory host of an instance id, if configured.
    pub fn host_of(&self, instance_id: &str) -> Option<&str> {
        self.instances
            .iter()
            .find(|(_, id)| id.as_str() == instance_id)
            .map(|(h, _)| h.as_str())
    }
}

pub(super) fn resolve(
    raw: Option<RawAws>,
    file: &str,
    secrets: &Secrets,
    hosts: &[Host],
) -> Result<Option<Aws>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let err = |field: &str, message: String| ConfigError {
        file: file.into(),
        field: field.into(),
        message,
    };
    let cli = raw.cli.unwrap_or_else(|| "aws".into());
    cli_ok(&cli).map_err(|m| err("aws.cli", m))?;
    if let Some(u) = &raw.endpoint_url {
        endpoint_ok(u).map_err(|m| err("aws.endpoint_url", m))?;
    }
    region_ok(&raw.region).map_err(|m| err("aws.region", m))?;
    let secret = |field: &str, name: &str| {
        if secrets.contains(name) {
            Ok(name.to_string())
        } else {
            Err(err(
                field,
                format!("secret `{name}` is not defined under [secrets]"),
            ))
        }
    };
    let credentials = match (raw.profile, raw.access_key_secret, raw.secret_key_secret) {
        (None, None, None) => AwsCredentials::Default,
        (Some(p), None, None) => {
            super::check_token(&p).map_err(|m| err("aws.profile", m))?;
            AwsCredentials::Profile(p)
        }
        (None, Some(a), Some(s)) => AwsCredentials::Secrets {
            access_key_secret: secret("aws.access_key_secret", &a)?,
            secret_key_secret: secret("aws.secret_key_secret", &s)?,
        },
        (Some(_), _, _) => {
            return Err(err(
                "aws.profile",
                "give either `profile` or `access_key_secret` + `secret_key_secret`, not both"
                    .into(),
            ));
        }
        (None, Some(_), None) => {
            return Err(err(
                "aws.secret_key_secret",
                "required with `access_key_secret`".into(),
            ));
        }
        (None, None, Some(_)) => {
            return Err(err(
                "aws.access_key_secret",
                "required with `secret_key_secret`".into(),
            ));
        }
    };
    let target_group_name = target_group_name(&raw.target_group_arn, &raw.region)
        .map_err(|m| err("aws.target_group_arn", m))?;
    if raw.target_port == Some(0) {
        return Err(err("aws.target_port", "0 is not a port".into()));
    }
    if raw.instances.is_empty() {
        return Err(err(
            "aws.instances",
            "map the inventory hosts in the target group to their instance ids".into(),
        ));
    }
    for (i, (host, id)) in raw.instances.iter().enumerate() {
        let field = format!("aws.instances.{host}");
        if !hosts.iter().any(|h| &h.name == host) {
            return Err(err(
                &field,
                format!("unknown host `{host}`; define it under [hosts]"),
            ));
        }
        instance_id_ok(id).map_err(|m| err(&field, m))?;
        if raw.instances.values().take(i).any(|other| other == id) {
            return Err(err(&field, format!("`{id}` is mapped to two hosts")));
        }
    }
    Ok(Some(Aws {
        cli,
        endpoint_url: raw.endpoint_url,
        region: raw.region,
        credentials,
        target_group_arn: raw.target_group_arn,
        target_group_name,
        target_port: raw.target_port,
        instances: raw.instances,
    }))
}

/// A program name (`aws`) or an absolute path without `..`, whitespace or shell syntax.
fn cli_ok(v: &str) -> Result<(), String> {
    if v.starts_with('/') {
        let ok = v.len() <= 4096
            && v.len() > 1
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_.+-".contains(c))
            && !v.split('/').any(|c| c == "..");
        return if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a plain absolute path",
                v.escape_debug()
            ))
        };
    }
    super::check_token(v).map_err(|m| format!("a program name or an absolute path: {m}"))
}

/// `http(s)://HOST[:PORT][/PATH]`: one argv word, no credentials in it (they would show in
/// every plan), nothing a shell or the CLI could read otherwise.
fn endpoint_ok(v: &str) -> Result<(), String> {
    let bad = |why: &str| format!("`{}` {why}", v.escape_debug());
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(|| bad("is not an http:// or https:// URL"))?;
    if v.len() > 256
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:/-[]%".contains(c))
    {
        return Err(bad("contains characters a plain endpoint URL does not"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    // `[v6]:port`, `[v6]`, `host:port` or `host`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => (h, Some(p.strip_prefix(':').unwrap_or(p))),
            None => return Err(bad("has an unclosed `[`")),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if port.is_some_and(|p| !p.parse::<u16>().is_ok_and(|p| p > 0)) {
        return Err(bad("has no valid port after `:`"));
    }
    if host.is_empty() || host.starts_with('-') {
        return Err(bad("has no host"));
    }
    Ok(())
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
fn region_ok(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a region like `us-east-1`",
            v.escape_debug()
        ))
    }
}

/// `arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID` in `region`; the
/// name.
fn target_group_name(arn: &str, region: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "`{}` is not `arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID`",
            arn.escape_debug()
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_word, partition, service, arn_region, account, resource] = parts[..] else {
        return Err(bad());
    };
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if arn_word != "arn"
        || !word(partition)
        || service != "elasticloadbalancing"
        || account.len() != 12
        || !account.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let mut res = resource.split('/');
    let (Some("targetgroup"), Some(name), Some(id), None) =
        (res.next(), res.next(), res.next(), res.next())
    else {
        return Err(bad());
    };
    if name.is_empty() || name.len() > 32 || !word(name) || !word(id) {
        return Err(bad());
    }
    if arn_region != region {
        return Err(format!(
            "the target group is in `{arn_region}`, but `aws.region` is `{region}`"
        ));
    }
    Ok(name.to_string())
}

/// `i-` and 8 or 17 hex digits.
fn instance_id_ok(v: &str) -> Result<(), String> {
    match v.strip_prefix("i-") {
        Some(hex)
            if (hex.len() == 8 || hex.len() == 17)
                && hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`{}` is not an EC2 instance id like `i-0123456789abcdef0`",
            v.escape_debug()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_checks() {
        for ok in [
            "aws",
            "/usr/local/bin/aws",
            "/tmp/runbook-lab/aws-venv/bin/aws",
        ] {
            assert!(cli_ok(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-aws",
            "aws;reboot",
            "/opt/../bin/aws",
            "/opt/my aws",
            "bin/aws",
        ] {
            assert!(cli_ok(bad).is_err(), "{bad}");
        }
        for ok in [
            "http://127.0.0.1:5000",
            "https://elasticloadbalancing.us-east-1.amazonaws.com",
            "http://[::1]:5000/",
            "http://[::1]",
            "http://localhost:5000/aws",
        ] {
            assert!(endpoint_ok(ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1:5000",
            "ftp://h",
            "http://",
            "http://user:pw@h:5000",
            "http://h:0",
            "http://h:x",
            "http://h:5000 --debug",
            "http://-h",
            "http://[::1:5000",
        ] {
            assert!(endpoint_ok(bad).is_err(), "{bad}");
        }
        for ok in ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1"] {
            assert!(region_ok(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "useast1",
            "us-east-1;x",
            "us--1",
        ] {
            assert!(region_ok(bad).is_err(), "{bad}");
        }
        assert!(instance_id_ok("i-0123456789abcdef0").is_ok());
        assert!(instance_id_ok("i-1234abcd").is_ok());
        for bad in [
            "",
            "i-",
            "i-XYZ",
            "0123456789abcdef0",
            "i-0123456789ABCDEF0",
            "i-123",
        ] {
            assert!(instance_id_ok(bad).is_err(), "{bad}");
        }
        let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/cctelegram-tg/70a23d51b023df0f";
        assert_eq!(
            target_group_name(arn, "us-east-1").unwrap(),
            "cctelegram-tg"
        );
        let e = target_group_name(arn, "eu-west-1").unwrap_err();
        assert!(e.contains("is in `us-east-1`"), "{e}");
        for bad in [
            "",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1",
            "arn:aws:elasticloadbalancing:us-east-1:1234:targetgroup/x/1",
            "arn:aws:ec2:us-east-1:123456789012:targetgroup/x/1",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x y/1",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1/2",
        ] {
            assert!(target_group_name(bad, "us-east-1").is_err(), "{bad}");
        }
    }
}
