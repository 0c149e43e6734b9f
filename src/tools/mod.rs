//! The tools, one module per runbook area, and the one explicit list that registers them.
//! Adding a tool: write its module, add it to [`registry`], run `runbook-mcp contract --write`.

pub mod assess;
pub mod metrics;
pub mod remediate;

use crate::engine::ToolDef;

/// Every tool of the server, in the order they are listed.
pub fn registry() -> Vec<ToolDef> {
    vec![
        ToolDef::of::<assess::RunDiagnostics>(),
        ToolDef::of::<assess::CheckServiceStatus>(),
        ToolDef::of::<assess::CheckHealth>(),
        ToolDef::of::<assess::CheckSystemResources>(),
        ToolDef::of::<assess::GetRecentLogs>(),
        ToolDef::of::<assess::GetBridgeStatus>(),
        ToolDef::of::<metrics::QueryMetrics>(),
        ToolDef::of_action::<remediate::RestartService>(),
        ToolDef::of_action::<remediate::ReloadNginx>(),
        ToolDef::of_action::<remediate::AdjustRateLimit>(),
    ]
}
