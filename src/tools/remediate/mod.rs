//! Remediation: the runbook's mutating actions. Every tool here is an `Action`: it builds its
//! plan from arguments and configuration, and the engine's gate decides whether it runs.

mod auto;
mod bridge;
mod command;
pub(crate) mod common;
mod nginx;
mod restart;
mod rolling;

pub use auto::AutoRecover;
pub use bridge::RestartBridge;
pub use command::RunCommand;
pub use nginx::{AdjustRateLimit, ReloadNginx};
pub use restart::RestartService;
pub use rolling::RollingRestart;
