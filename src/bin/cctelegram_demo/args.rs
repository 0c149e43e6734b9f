//! Command line, and the role that decides which real service this process impersonates.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::VERSION;

#[derive(Parser, Debug)]
#[command(name = "cctelegram-demo", version = VERSION, about = "Demo CCTelegram MCP server / bridge for the runbook lab")]
pub(crate) struct Args {
    /// Which service to impersonate.
    #[arg(long, value_enum, default_value_t = Role::Mcp)]
    pub(crate) role: Role,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Host label reported in /health (default: the kernel hostname).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// File holding the API key that /health requires in `X-API-Key` (no file: no key needed).
    #[arg(long)]
    pub(crate) api_key_file: Option<PathBuf>,
    /// Directory for application.log and security.log (default: stdout).
    #[arg(long)]
    pub(crate) log_dir: Option<PathBuf>,
    /// Fault switch read on every request: ok | fail | slow MS | 5xx (absent or empty = ok).
    #[arg(long)]
    pub(crate) control_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    Mcp,
    Bridge,
}

impl Role {
    pub(crate) fn service(self) -> &'static str {
        match self {
            Role::Mcp => "cctelegram-mcp",
            Role::Bridge => "cctelegram-bridge",
        }
    }
}
