//! Prevention: the runbook's alerting rules, generated over the metrics the service really
//! exports (`generate_alert_rules`) and installed on the Prometheus host through the gate
//! (`install_alert_rules`).

mod install;
mod rules;

pub use install::InstallAlertRules;
pub use rules::{Rule, Thresholds};

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;

use crate::digest::Digest;
use crate::engine::{Ctx, Effect, Tool, ToolError, ToolMeta, Toolset};
use crate::tools::metrics::api;

pub struct GenerateAlertRules;

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// The rules file, ready for Prometheus' `rule_files`.
    pub yaml: String,
    pub rules: Vec<Rule>,
    /// Metrics the rules read that Prometheus has no series of (a rule over them never fires).
    pub missing_series: Vec<String>,
    /// Whether Prometheus was asked (no `[prometheus]`: the series are not checked).
    pub series_checked: bool,
    /// Where the runbook's own rules and queries are wrong, and what these do instead.
    pub notes: Vec<String>,
}

impl Tool for GenerateAlertRules {
    const META: ToolMeta = ToolMeta {
        name: "generate_alert_rules",
        title: "Generate alert rules",
        description: "Writes the runbook's alerting rules (ConsecutiveErrors, \
            MemoryLeakDetection) plus 5xx-ratio and p95-latency rules, with the thresholds \
            given, as a Prometheus rules file, and checks that each rule's metric has series in \
            Prometheus. Use it after an incident to add the alert that would have caught it; \
            install_alert_rules puts it in place. Returns the YAML and the rules.",
        effect: Effect::Read,
        toolset: Toolset::Prevent,
    };
    type Params = Thresholds;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Thresholds) -> Result<Output, ToolError> {
        p.check().map_err(|(f, m)| ToolError::invalid(f, m))?;
        let rules = p.rules();
        let mut missing = Vec::new();
        let checked = ctx.config.prometheus.is_some();
        if checked {
            let mut names: Vec<&str> = rules
                .iter()
                .flat_map(|r| &r.series)
                .map(String::as_str)
                .collect();
            names.sort_unstable();
            names.dedup();
            for name in names {
                if api::instant(&ctx, &format!("count({name})"), None)
                    .await?
                    .is_empty()
                {
                    missing.push(name.to_string());
                }
            }
        }
        Ok(Output {
            yaml: rules::yaml(&p.group, &rules),
            rules,
            missing_series: missing,
            series_checked: checked,
            notes: rules::NOTES.iter().map(|n| n.to_string()).collect(),
        })
    }

    fn summary(out: &Output) -> String {
        let names: Vec<&str> = out.rules.iter().map(|r| r.alert.as_str()).collect();
        let mut d = Digest::new(format!("{} rule(s): {}", out.rules.len(), names.join(", ")));
        for m in &out.missing_series {
            d.problem(format!(
                "no series of {m} in Prometheus: rules over it never fire"
            ));
        }
        if !out.series_checked {
            d.problem("series not checked: no [prometheus] configured");
        }
        for r in &out.rules {
            d.figure(format!("{}: {} for {}", r.alert, r.expr, r.for_));
        }
        for n in &out.notes {
            d.ok(format!("note: {n}"));
        }
        d.next("install_alert_rules with the same thresholds (dry_run first)");
        d.render()
    }
}
