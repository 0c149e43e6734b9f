//! `get_bridge_status`: the Telegram bridge on each host — its service state and what its own
//! health endpoint reports (connection to Telegram, queue depth).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::health::{HealthCheck, check};
use super::services::{ServiceStatus, statuses};
use crate::config::{Role, Service};
use crate::engine::fanout::{self, HostResult};
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};

pub struct GetBridgeStatus;

/// Parameters of `get_bridge_status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Inventory host names; default: every host running a bridge.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub hosts: Option<Vec<Name>>,
}

/// Bridge state per host.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// The bridge service's name in the inventory.
    pub service: String,
    pub hosts: Vec<HostResult<BridgeStatus>>,
}

/// The bridge on one host.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BridgeStatus {
    /// What the service manager says.
    pub service: ServiceStatus,
    /// What the bridge's health endpoint says, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    /// The health endpoint's JSON body, when it is JSON (e.g. `telegram`, `queue_depth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported: Option<serde_json::Value>,
}

impl Tool for GetBridgeStatus {
    const META: ToolMeta = ToolMeta {
        name: "get_bridge_status",
        title: "Get bridge status",
        description: "Reports the Telegram bridge on each host: whether its service runs, and what \
            its health endpoint says (Telegram connection, queue depth, messages sent). Use it when \
            notifications stop or the bridge is suspected. Returns per host the service state, the \
            health check and the endpoint's reported fields.",
        effect: Effect::Read,
        toolset: Toolset::Assess,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        let bridge = ctx
            .config
            .services
            .iter()
            .find(|s| s.role == Role::Bridge)
            .cloned()
            .ok_or_else(|| {
                ToolError::unavailable("no service with role = \"bridge\" is configured")
            })?;
        let hosts: Vec<_> = fanout::select_hosts(&ctx, &p.hosts)?
            .into_iter()
            .filter(|h| p.hosts.is_some() || bridge.hosts.contains(&h.name))
            .collect();
        let deadline = ctx.fleet.limits().timeout * 2;
        let results = fanout::per_host(&ctx, hosts, deadline, |ctx, host| {
            let bridge = bridge.clone();
            async move {
                let url = bridge
                    .health_url
                    .as_deref()
                    .map(|u| Service::url_for(u, &host));
                let health = async {
                    match &url {
                        Some(u) => Some(
                            check(&ctx, &bridge.name, u, bridge.api_key_secret.as_deref()).await,
                        ),
                        None => None,
                    }
                };
                let (state, health) =
                    tokio::join!(statuses(&ctx, &host, std::slice::from_ref(&bridge)), health);
                let service = state?
                    .into_iter()
                    .next()
                    .ok_or_else(|| crate::exec::ExecError::Failed("no status reported".into()))?;
                let reported = health
                    .as_ref()
                    .and_then(|h| serde_json::from_str(&h.detail).ok());
                Ok(BridgeStatus {
                    service,
                    health,
                    reported,
                })
            }
        })
        .await;
        Ok(Output {
            service: bridge.name,
            hosts: results,
        })
    }

    fn summary(out: &Output) -> String {
        let mut parts = vec![format!(
            "{}: {}",
            out.service,
            fanout::hosts_line(&out.hosts)
        )];
        for r in &out.hosts {
            if let Some(b) = &r.result {
                let health = match &b.health {
                    Some(h) if h.healthy => "healthy".to_string(),
                    Some(h) => h
                        .status_code
                        .map_or(h.detail.clone(), |c| format!("HTTP {c}")),
                    None => "no health URL".into(),
                };
                let telegram = b
                    .reported
                    .as_ref()
                    .and_then(|v| v.get("telegram"))
                    .and_then(|v| v.as_str())
                    .map(|t| format!(", telegram {t}"))
                    .unwrap_or_default();
                parts.push(format!(
                    "{}: {}, {health}{telegram}",
                    r.host, b.service.detail
                ));
            }
        }
        parts.join("; ")
    }
}
