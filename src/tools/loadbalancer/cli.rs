//! What the load balancer tools share: the `[aws]` table, the exact `aws ... elbv2 ...` argv,
//! and running it on this server (local executor: argv, never a shell; credentials only in the
//! child's environment). Reading the group back is `group.rs`.

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::{Aws, AwsCredentials, Secrets};
use crate::engine::Target;
use crate::engine::plan::{At, Command, EnvVar, Extract, Fact, Read, Stage, Step};
use crate::engine::{Ctx, Name, ToolError};
use crate::exec::{Cmd, ExecError, Fleet};

/// The `[aws]` table, or why the load balancer tools cannot work.
pub fn aws(ctx: &Ctx) -> Result<&Aws, ToolError> {
    ctx.config.aws.as_ref().ok_or_else(|| {
        ToolError::unavailable(
            "no AWS target group is configured (an `[aws]` table with `region`, \
             `target_group_arn` and `instances`)",
        )
    })
}

/// The instance id of inventory host `host` (the argument named `field`).
pub fn instance<'a>(aws: &'a Aws, field: &str, host: &Name) -> Result<&'a str, ToolError> {
    aws.instances
        .get(host.as_str())
        .map(String::as_str)
        .ok_or_else(|| {
            let known: Vec<&str> = aws.instances.keys().map(String::as_str).collect();
            ToolError::invalid(
                field,
                format!(
                    "`{host}` has no instance in `{}`; `[aws] instances` maps: {}",
                    aws.target_group_name,
                    known.join(", ")
                ),
            )
        })
}

/// `aws [--profile P] [--endpoint-url U] --region R --output json elbv2 OP ARGS...`: every
/// value the approver should see is on the line; credentials never are.
pub fn argv(aws: &Aws, op: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec![aws.cli.clone()];
    if let AwsCredentials::Profile(p) = &aws.credentials {
        v.extend(["--profile".into(), p.clone()]);
    }
    if let Some(u) = &aws.endpoint_url {
        v.extend(["--endpoint-url".into(), u.clone()]);
    }
    v.extend([
        "--region".into(),
        aws.region.clone(),
        "--output".into(),
        "json".into(),
        "elbv2".into(),
        op.into(),
    ]);
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

/// `Id=i-…,Port=N` (the port only when configured: else the target group's own).
pub fn target_spec(aws: &Aws, instance_id: &str) -> String {
    match aws.target_port {
        Some(p) => format!("Id={instance_id},Port={p}"),
        None => format!("Id={instance_id}"),
    }
}

/// The busy lock and forbidden-services key: one target group, whatever the tool.
pub fn lock(aws: &Aws) -> Target {
    Target {
        host: "aws".into(),
        service: Some(aws.target_group_name.clone()),
    }
}

/// The environment of every `aws` command, as the plan shows it: credentials by secret name
/// only (resolved by the executor), a pager off, and the server's own stray credentials
/// removed so the configured ones alone decide.
pub fn env(aws: &Aws) -> Vec<EnvVar> {
    let mut v = vec![EnvVar::Set {
        name: "AWS_PAGER".into(),
        value: String::new(),
    }];
    if let AwsCredentials::Secrets {
        access_key_secret,
        secret_key_secret,
    } = &aws.credentials
    {
        v.push(EnvVar::Secret {
            name: "AWS_ACCESS_KEY_ID".into(),
            secret: access_key_secret.clone(),
        });
        v.push(EnvVar::Secret {
            name: "AWS_SECRET_ACCESS_KEY".into(),
            secret: secret_key_secret.clone(),
        });
        for stray in ["AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"] {
            v.push(EnvVar::Remove { name: stray.into() });
        }
    }
    v
}

/// A sealed `aws … elbv2 OP ARGS` on this server.
pub fn command(aws: &Aws, op: &str, args: &[&str]) -> Command {
    let mut c = Command::new(&At::server(), argv(aws, op, args), false);
    c.env = env(aws);
    c
}

/// The group's targets and their states (`describe-target-health`).
pub fn states(aws: &Aws) -> Fact {
    Fact {
        read: Read::Run(command(
            aws,
            "describe-target-health",
            &["--target-group-arn", &aws.target_group_arn],
        )),
        extract: Extract::TargetStates,
    }
}

/// The one stage of a target group plan.
pub fn stage(aws: &Aws, steps: Vec<Step>) -> Stage {
    Stage {
        name: aws.target_group_name.clone(),
        via: "local".into(),
        steps,
    }
}

/// The command with the credentials in its environment only (never in argv, logs or plans).
fn with_credentials(secrets: &Secrets, aws: &Aws, argv: &[String]) -> Result<Cmd, ToolError> {
    // AWS CLI v2 pipes output through a pager unless this is empty.
    let mut cmd = Cmd::new(argv.iter().cloned()).env("AWS_PAGER", "");
    if let AwsCredentials::Secrets {
        access_key_secret,
        secret_key_secret,
    } = &aws.credentials
    {
        let get = |n: &str| secrets.get(n).map_err(ToolError::unavailable);
        cmd = cmd
            .env("AWS_ACCESS_KEY_ID", get(access_key_secret)?)
            .env("AWS_SECRET_ACCESS_KEY", get(secret_key_secret)?);
        // A session token or profile of the server's own environment would pair with other
        // keys: the configured ones alone must decide.
        for stray in ["AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"] {
            cmd = cmd.env_remove(stray);
        }
    }
    Ok(cmd)
}

/// The CLI's error output in one line: its first three non-empty lines (botocore's parameter
/// validation puts the reason on the second).
fn error_text(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the planned command did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CliRun {
    /// The command line, exactly as planned.
    pub command: String,
    /// The CLI's exit code; absent when it did not finish (timed out: outcome unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub ok: bool,
    /// The CLI's own error message (or why it did not run to the end).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

async fn run_on(fleet: &Fleet, secrets: &Secrets, aws: &Aws, argv: &[String]) -> (CliRun, String) {
    let command_line = argv.join(" ");
    let cmd = match with_credentials(secrets, aws, argv) {
        Ok(c) => c,
        Err(e) => {
            let run = CliRun {
                command: command_line,
                exit_code: None,
                ok: false,
                error: format!("not run: {}", e.message),
            };
            return (run, String::new());
        }
    };
    match fleet.run_local(&cmd).await {
        Ok(o) => {
            let run = CliRun {
                command: command_line,
                exit_code: o.exit_code,
                ok: o.success(),
                error: if o.success() {
                    String::new()
                } else {
                    error_text(&o.stderr)
                },
            };
            (run, o.stdout)
        }
        Err(e) => {
            let error = match e {
                ExecError::TimedOut(_) => format!("{e}: outcome unknown"),
                other => other.to_string(),
            };
            let run = CliRun {
                command: command_line,
                exit_code: None,
                ok: false,
                error,
            };
            (run, String::new())
        }
    }
}

/// A read command's stdout, or an error quoting the command and the CLI's own message.
pub(super) async fn output(
    fleet: &Fleet,
    secrets: &Secrets,
    aws: &Aws,
    argv: &[String],
) -> Result<String, ToolError> {
    let (run, stdout) = run_on(fleet, secrets, aws, argv).await;
    if run.ok {
        return Ok(stdout);
    }
    Err(ToolError::unavailable(format!(
        "`{}` failed (exit {}): {}",
        run.command,
        run.exit_code.map_or("-".into(), |c| c.to_string()),
        run.error
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn aws(credentials: AwsCredentials, port: Option<u16>) -> Aws {
        Aws {
            cli: "/opt/aws/bin/aws".into(),
            endpoint_url: Some("http://127.0.0.1:5000".into()),
            region: "us-east-1".into(),
            credentials,
            target_group_arn:
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1".into(),
            target_group_name: "tg".into(),
            target_port: port,
            instances: BTreeMap::from([("mcp-02".into(), "i-1234abcd".into())]),
        }
    }

    #[test]
    fn argv_names_cli_endpoint_region_and_output_never_credentials() {
        let secrets = AwsCredentials::Secrets {
            access_key_secret: "ak".into(),
            secret_key_secret: "sk".into(),
        };
        let a = aws(secrets, Some(8080));
        let spec = target_spec(&a, "i-1234abcd");
        assert_eq!(
            argv(&a, "deregister-targets", &["--targets", &spec]),
            [
                "/opt/aws/bin/aws",
                "--endpoint-url",
                "http://127.0.0.1:5000",
                "--region",
                "us-east-1",
                "--output",
                "json",
                "elbv2",
                "deregister-targets",
                "--targets",
                "Id=i-1234abcd,Port=8080"
            ]
        );
        let p = aws(AwsCredentials::Profile("oncall".into()), None);
        let v = argv(&p, "describe-target-health", &[]);
        assert_eq!(v[1..3], ["--profile", "oncall"]);
        assert_eq!(target_spec(&p, "i-1234abcd"), "Id=i-1234abcd");
        let host: Name = serde_json::from_value(serde_json::json!("mcp-01")).unwrap();
        let e = instance(&p, "host", &host).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("host"));
        assert!(e.message.contains("mcp-02"), "{e}");
    }

    #[test]
    fn cli_errors_keep_the_reason_line() {
        let stderr = "\nParameter validation failed:\nInvalid value for parameter HealthCheckIntervalSeconds, value: 1, valid min value: 5\n";
        assert_eq!(
            error_text(stderr),
            "Parameter validation failed: Invalid value for parameter HealthCheckIntervalSeconds, value: 1, valid min value: 5"
        );
    }
}
