//! The tools, one module per runbook area, and the one explicit list that registers them.
//! Adding a tool: write its module, add it to [`registry`], run `runbook-mcp contract --write`.

pub mod assess;
pub mod database;
pub mod loadbalancer;
pub mod metrics;
pub mod remediate;
pub mod swarm;

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
        ToolDef::of_action::<remediate::RollingRestart>(),
        ToolDef::of_action::<remediate::RestartBridge>(),
        ToolDef::of_action::<remediate::AutoRecover>(),
        ToolDef::of_action::<remediate::ReloadNginx>(),
        ToolDef::of_action::<remediate::AdjustRateLimit>(),
        ToolDef::of_action::<remediate::RunCommand>(),
        ToolDef::of_action::<swarm::RollbackDeployment>(),
        ToolDef::of_action::<swarm::ScaleService>(),
        ToolDef::of_action::<swarm::SetMemoryLimit>(),
        ToolDef::of::<database::CheckDatabase>(),
        ToolDef::of_action::<database::RunDatabaseMaintenance>(),
        ToolDef::of_action::<database::RestartDatabase>(),
        ToolDef::of::<loadbalancer::CheckLoadBalancer>(),
        ToolDef::of_action::<loadbalancer::UpdateHealthCheck>(),
        ToolDef::of_action::<loadbalancer::DrainInstance>(),
        ToolDef::of_action::<loadbalancer::RestoreInstance>(),
    ]
}

#[cfg(test)]
mod tests {
    /// Policy matches toolsets by `name()`; it must be the name configuration uses (serde's).
    #[test]
    fn toolset_names_are_the_serde_names() {
        for t in super::registry() {
            let serde = serde_json::to_value(t.meta.toolset).unwrap();
            assert_eq!(
                serde.as_str(),
                Some(t.meta.toolset.name()),
                "{}",
                t.meta.name
            );
        }
    }
}
