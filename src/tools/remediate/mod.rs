//! Remediation: the runbook's mutating actions. Every tool here is an `Action`: it builds its
//! plan from arguments and configuration, and the engine's gate decides whether it runs.

mod common;
mod nginx;
mod restart;

pub use nginx::{AdjustRateLimit, ReloadNginx};
pub use restart::RestartService;
