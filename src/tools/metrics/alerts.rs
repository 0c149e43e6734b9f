//! `get_alerts`: what Prometheus' alerting rules say right now — the firing and pending alerts
//! with their labels and since when they are active.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::api::{self, Labels};
use crate::digest::{self, Digest};
use crate::engine::{Ctx, Effect, Tool, ToolError, ToolMeta, Toolset};

pub struct GetAlerts;

/// Which alerts to return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateFilter {
    /// Firing and pending.
    #[default]
    All,
    Firing,
    Pending,
}

/// Parameters of `get_alerts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `all` (default), `firing` or `pending`.
    #[serde(default)]
    pub state: StateFilter,
}

/// The active alerts, firing first, oldest first within a state.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub firing: usize,
    pub pending: usize,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Alert {
    /// The `alertname` label.
    pub name: String,
    /// `firing` or `pending`.
    pub state: String,
    /// Every label but `alertname`.
    pub labels: Labels,
    pub annotations: Labels,
    /// When the alert became active (RFC 3339).
    pub active_at: String,
    /// The expression's value when last evaluated.
    pub value: String,
}

impl Tool for GetAlerts {
    const META: ToolMeta = ToolMeta {
        name: "get_alerts",
        title: "Get alerts",
        description: "Lists the alerts Prometheus has firing or pending now, with labels (host, \
            severity), annotations and since when each is active. Use it at the start of an \
            incident to see what monitoring already knows, and after a fix to see alerts clear.",
        effect: Effect::Read,
        toolset: Toolset::Metrics,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        let data = api::get(&ctx, "alerts", &[]).await?;
        let mut alerts: Vec<Alert> = data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let mut labels = api::labels(&a["labels"]);
                Alert {
                    name: labels.remove("alertname").unwrap_or_default(),
                    state: a["state"].as_str().unwrap_or_default().to_string(),
                    labels,
                    annotations: api::labels(&a["annotations"]),
                    active_at: a["activeAt"].as_str().unwrap_or_default().to_string(),
                    value: a["value"].as_str().unwrap_or_default().to_string(),
                }
            })
            .filter(|a| match p.state {
                StateFilter::All => true,
                StateFilter::Firing => a.state == "firing",
                StateFilter::Pending => a.state == "pending",
            })
            .collect();
        alerts.sort_by(|a, b| {
            (a.state != "firing", &a.active_at, &a.name).cmp(&(
                b.state != "firing",
                &b.active_at,
                &b.name,
            ))
        });
        Ok(Output {
            firing: alerts.iter().filter(|a| a.state == "firing").count(),
            pending: alerts.iter().filter(|a| a.state == "pending").count(),
            alerts,
        })
    }

    fn summary(out: &Output) -> String {
        let mut d = Digest::new(format!(
            "{} firing, {} pending alert(s)",
            out.firing, out.pending
        ));
        for a in &out.alerts {
            let who: Vec<String> = ["host", "instance", "severity"]
                .iter()
                .filter_map(|k| a.labels.get(*k).map(|v| format!("{k}={v}")))
                .collect();
            let summary = a
                .annotations
                .get("summary")
                .map(|s| format!(" — {}", digest::clip(s, 120)))
                .unwrap_or_default();
            d.problem(format!(
                "{} {} {} since {} (value {}){summary}",
                a.state.to_uppercase(),
                a.name,
                who.join(" "),
                a.active_at,
                a.value
            ));
        }
        if out.alerts.is_empty() {
            d.ok("no alert is firing or pending");
            d.next("run_diagnostics to look at the fleet directly");
        } else {
            d.next("run_diagnostics on the alerting hosts; what_changed for recent deploys");
        }
        d.render()
    }
}
