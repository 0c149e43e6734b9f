//! The command line. With no subcommand the server speaks MCP on stdio; the other commands are
//! for operators and scripts. Logs always go to stderr: stdout is the protocol channel.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::engine::Mode;

#[derive(Debug, Parser)]
#[command(
    name = "runbook-mcp",
    version,
    about = "Incident-response runbook as MCP tools"
)]
pub struct Cli {
    /// Configuration file (TOML). Default: $RUNBOOK_MCP_CONFIG, else the embedded default
    /// (this machine only).
    #[arg(long, global = true, env = "RUNBOOK_MCP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Offer only tools that change nothing (effects `read` and `record`).
    #[arg(long, global = true)]
    pub read_only: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP on stdin/stdout (the default).
    Serve,
    /// List the tools offered, with their effects (`--all`: every tool, and why one is off).
    Tools {
        #[arg(long)]
        all: bool,
    },
    /// Run one tool and print its result as JSON (exit status 1 when the call failed).
    Call {
        /// Tool name.
        tool: String,
        /// Argument `key=value`; the value is read as JSON when it parses, else as a string.
        /// Repeating a key makes a list.
        #[arg(long = "arg", value_name = "KEY=VALUE")]
        args: Vec<String>,
        /// All arguments as one JSON object (merged under --arg).
        #[arg(long, value_name = "JSON")]
        json: Option<String>,
    },
    /// Validate the configuration and summarize it.
    CheckConfig,
    /// Reach every host and endpoint of the configuration and print a table.
    Doctor,
    /// Print the JSON Schema of the configuration file.
    ConfigSchema,
    /// List pending approval requests with their plans (`--all`: every record).
    Approvals {
        #[arg(long)]
        all: bool,
    },
    /// Approve a pending request (interactive terminal only; destructive: type the target).
    Approve {
        /// Request id, e.g. A-1f2e3d4c.
        id: String,
    },
    /// Deny a pending request (interactive terminal only).
    Deny {
        id: String,
        /// Why (shown to the assistant and written to the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Stop every mutating action until `unfreeze`.
    Freeze {
        #[arg(long)]
        reason: String,
    },
    /// Lift the change freeze (interactive terminal only).
    Unfreeze,
    /// Stop a running action at its next stage (interactive terminal only), e.g. R-1f2e3d4c.
    Abort {
        /// Audit request id of the running action.
        request: String,
    },
    /// The audit log: `show` or `verify`.
    Audit {
        #[command(subcommand)]
        what: AuditCmd,
    },
    /// Write or check the published tool contracts (`tools/*.json`, README tool table).
    Contract {
        /// Repository root.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Rewrite the files instead of checking them.
        #[arg(long)]
        write: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Print the log, one line per record.
    Show {
        /// Only the last N records.
        #[arg(long)]
        tail: Option<usize>,
    },
    /// Check the hash chain against the head file; list intents with no outcome.
    Verify,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("runbook-mcp: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNBOOK_MCP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mode = Mode {
        read_only: cli.read_only,
    };
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::ConfigSchema = command {
        println!("{}", serde_json::to_string_pretty(&Config::json_schema())?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Contract { root, write } = &command {
        return crate::contract::run(root, *write);
    }
    let config = Config::load(cli.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(8 << 20)
        .enable_all()
        .build()?;
    match command {
        Command::Approvals { all } => crate::operator::list(&config, all),
        Command::Approve { id } => crate::operator::decide(&config, &id, true, None),
        Command::Deny { id, reason } => crate::operator::decide(&config, &id, false, Some(reason)),
        Command::Freeze { reason } => crate::operator::freeze(&config, &reason),
        Command::Unfreeze => crate::operator::unfreeze(&config),
        Command::Abort { request } => crate::operator::abort(&config, &request),
        Command::Audit {
            what: AuditCmd::Show { tail },
        } => crate::operator::audit_show(&config, tail),
        Command::Audit {
            what: AuditCmd::Verify,
        } => crate::operator::audit_verify(&config),
        Command::CheckConfig => {
            print!("{}", summarize(&config));
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor => runtime.block_on(crate::doctor::run(config)),
        Command::Tools { all } => {
            let engine = crate::runtime::engine(config, mode)?;
            for t in engine.all_tools() {
                let off = engine.off(t);
                if off.is_some() && !all {
                    continue;
                }
                let state =
                    off.map_or_else(|| t.meta.title.to_string(), |why| format!("OFF: {why}"));
                println!(
                    "{:<26} {:<11} {state}",
                    t.meta.name,
                    format!("{:?}", t.meta.effect).to_lowercase(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Call { tool, args, json } => {
            let args = parse_args(&args, json.as_deref())?;
            let engine = crate::runtime::engine(config, mode)?;
            runtime.block_on(async {
                match engine.call(&tool, Some(args)).await {
                    Ok(out) => {
                        eprintln!("{}", out.summary);
                        println!("{}", serde_json::to_string_pretty(&out.structured)?);
                        Ok(if out.is_error {
                            ExitCode::FAILURE
                        } else {
                            ExitCode::SUCCESS
                        })
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        Ok(ExitCode::FAILURE)
                    }
                }
            })
        }
        Command::Serve => {
            let engine = Arc::new(crate::runtime::engine(config, mode)?);
            runtime.block_on(crate::mcp::serve_stdio(engine))?;
            // stdin reads cannot be cancelled; do not wait for them on the way out.
            runtime.shutdown_background();
            Ok(ExitCode::SUCCESS)
        }
        Command::ConfigSchema | Command::Contract { .. } => Ok(ExitCode::SUCCESS),
    }
}

/// `--arg k=v` pairs (and an optional JSON object) into tool arguments.
pub fn parse_args(pairs: &[String], json: Option<&str>) -> anyhow::Result<Map<String, Value>> {
    let mut out = match json {
        Some(j) => match serde_json::from_str(j)? {
            Value::Object(m) => m,
            _ => anyhow::bail!("--json must be a JSON object"),
        },
        None => Map::new(),
    };
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--arg `{p}` is not KEY=VALUE"))?;
        let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        match out.get_mut(k) {
            Some(Value::Array(a)) => a.push(v),
            Some(prev) => {
                let first = prev.take();
                *prev = Value::Array(vec![first, v]);
            }
            None => {
                out.insert(k.to_string(), v);
            }
        }
    }
    Ok(out)
}

fn summarize(c: &Config) -> String {
    let mut s = format!("{}: ok\n", c.source);
    s.push_str(&format!("state_dir: {}\n", c.server.state_dir.display()));
    for h in &c.hosts {
        let how = match &h.target {
            crate::config::Target::Local => "local".to_string(),
            crate::config::Target::Ssh(t) => format!(
                "ssh {}{}{}",
                t.user
                    .as_deref()
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default(),
                t.host,
                t.port.map(|p| format!(":{p}")).unwrap_or_default()
            ),
        };
        s.push_str(&format!(
            "host {}: {how}{}\n",
            h.name,
            if h.sudo { " (sudo)" } else { "" }
        ));
    }
    for sv in &c.services {
        s.push_str(&format!(
            "service {}: {:?} on {}\n",
            sv.name,
            sv.manager,
            sv.hosts.join(", ")
        ));
    }
    for (name, st) in c.secrets.status() {
        s.push_str(&format!(
            "secret {name}: {}\n",
            st.map_or_else(|e| e.to_string(), |()| "loaded".into())
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_parse_as_json_or_string_and_repeat_into_lists() {
        let m = parse_args(
            &[
                "hosts=mcp-01".into(),
                "hosts=mcp-02".into(),
                "lines=5".into(),
                "level=\"error\"".into(),
            ],
            None,
        )
        .unwrap();
        assert_eq!(m["hosts"], serde_json::json!(["mcp-01", "mcp-02"]));
        assert_eq!(m["lines"], serde_json::json!(5));
        assert_eq!(m["level"], serde_json::json!("error"));
        assert!(parse_args(&["novalue".into()], None).is_err());
    }
}
