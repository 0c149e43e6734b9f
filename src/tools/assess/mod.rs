//! Assessment: the read-only half of the runbook's P0 step 2 and its diagnostics script.

mod bridge;
mod changes;
mod diagnostics;
pub(crate) mod health;
mod log_analysis;
mod log_text;
mod logs;
mod resources;
mod services;

pub use bridge::GetBridgeStatus;
pub use changes::WhatChanged;
pub use diagnostics::RunDiagnostics;
pub use health::CheckHealth;
pub use log_analysis::AnalyzeLogs;
pub use logs::GetRecentLogs;
pub use resources::CheckSystemResources;
pub use services::CheckServiceStatus;
pub(crate) use services::state_word;
