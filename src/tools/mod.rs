//! The tools, one module per runbook area, and the one explicit list that registers them.
//! Adding a tool: write its module, add it to [`registry`], run `runbook-mcp contract --write`.

pub mod assess;
pub mod database;
pub mod incident;
pub mod loadbalancer;
pub mod metrics;
pub mod notify;
pub mod prevent;
pub mod remediate;
pub mod swarm;
pub mod verify;

use crate::engine::ToolDef;
use crate::engine::needs::Need::*;

/// Every tool of the server, in the order they are listed.
pub fn registry() -> Vec<ToolDef> {
    vec![
        ToolDef::of::<incident::OpenIncident>(),
        ToolDef::of::<incident::ClassifyIncident>(),
        ToolDef::of::<incident::JoinIncident>(),
        ToolDef::of::<incident::ListIncidents>(),
        ToolDef::of::<incident::GetIncident>(),
        ToolDef::of::<incident::RecordEvent>(),
        ToolDef::of::<incident::UpdateChecklist>(),
        ToolDef::of::<incident::GetEscalationPath>(),
        ToolDef::of::<incident::ResolveIncident>(),
        ToolDef::of::<incident::GeneratePostmortem>(),
        ToolDef::of_action::<notify::NotifySlack>().needs(&[Slack]),
        ToolDef::of_action::<notify::CreateIncidentChannel>().needs(&[Slack]),
        ToolDef::of_action::<notify::PageOncall>().needs(&[PagerDuty]),
        ToolDef::of_action::<notify::UpdateStatusPage>().needs(&[Statuspage]),
        ToolDef::of_action::<notify::SendTelegramMessage>().needs(&[Telegram]),
        ToolDef::of::<assess::RunDiagnostics>(),
        ToolDef::of::<assess::CheckServiceStatus>().needs(&[Services]),
        ToolDef::of::<assess::CheckHealth>().needs(&[HealthUrl]),
        ToolDef::of::<assess::CheckSystemResources>(),
        ToolDef::of::<assess::GetRecentLogs>().needs(&[Services]),
        ToolDef::of::<assess::AnalyzeLogs>().needs(&[Logs]),
        ToolDef::of::<assess::GetBridgeStatus>().needs(&[Bridge]),
        ToolDef::of::<metrics::QueryMetrics>().needs(&[Prometheus]),
        ToolDef::of::<metrics::GetAlerts>().needs(&[Prometheus]),
        ToolDef::of::<assess::WhatChanged>(),
        ToolDef::of::<verify::VerifyRecovery>().needs(&[HealthUrl]),
        ToolDef::of::<verify::ValidatePerformance>().needs(&[HealthUrl]),
        ToolDef::of_action::<verify::RunLoadTest>().needs(&[HealthUrl]),
        ToolDef::of::<metrics::AnalyzeIncidentImpact>().needs(&[Prometheus]),
        ToolDef::of::<metrics::GenerateCapacityReport>().needs(&[Prometheus]),
        ToolDef::of::<prevent::GenerateAlertRules>(),
        ToolDef::of_action::<prevent::InstallAlertRules>().needs(&[RulesFile]),
        ToolDef::of_action::<remediate::RestartService>().needs(&[Services]),
        ToolDef::of_action::<remediate::RollingRestart>().needs(&[Services]),
        ToolDef::of_action::<remediate::RestartBridge>().needs(&[Bridge]),
        ToolDef::of_action::<remediate::AutoRecover>().needs(&[HealthUrl]),
        ToolDef::of_action::<remediate::ReloadNginx>().needs(&[Proxy]),
        ToolDef::of_action::<remediate::AdjustRateLimit>().needs(&[RateLimitFile]),
        ToolDef::of_action::<remediate::RunCommand>(),
        ToolDef::of_action::<swarm::RollbackDeployment>().needs(&[Swarm]),
        ToolDef::of_action::<swarm::ScaleService>().needs(&[Swarm]),
        ToolDef::of_action::<swarm::SetMemoryLimit>().needs(&[Swarm]),
        ToolDef::of::<database::CheckDatabase>().needs(&[Database]),
        ToolDef::of_action::<database::RunDatabaseMaintenance>().needs(&[Database]),
        ToolDef::of_action::<database::RestartDatabase>().needs(&[Database]),
        ToolDef::of::<loadbalancer::CheckLoadBalancer>().needs(&[LoadBalancer]),
        ToolDef::of_action::<loadbalancer::UpdateHealthCheck>().needs(&[Aws]),
        ToolDef::of_action::<loadbalancer::DrainInstance>().needs(&[Aws]),
        ToolDef::of_action::<loadbalancer::RestoreInstance>().needs(&[Aws]),
    ]
}

#[cfg(test)]
mod tests {
    /// `notify::NAMES` is every tool whose effect is `notify`, and only those.
    #[test]
    fn the_notify_names_are_the_notify_tools() {
        let mut of_effect: Vec<&str> = super::registry()
            .iter()
            .filter(|t| t.meta.effect == crate::engine::Effect::Notify)
            .map(|t| t.meta.name)
            .collect();
        let mut names = super::notify::NAMES.to_vec();
        of_effect.sort();
        names.sort();
        assert_eq!(of_effect, names);
    }

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
