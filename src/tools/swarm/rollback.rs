//! `rollback_deployment`: `docker service update --rollback SERVICE` (runbook P0 option C).
//!
//! The manager swaps the service's spec with its previous one, so rolling back twice returns
//! to the broken spec. The plan therefore binds the service as it was read (`expect`: version,
//! image and previous image in the digest): a retry after the first rollback is a new plan that
//! shows the image it would restore, and a service changed between approval and run is
//! `stale`. The plan then waits until the manager reports `rollback_completed` with the
//! previous image in force, so "ok" means the rollback completed, not that the spec was sent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cli;
use crate::engine::plan::{Change, Check, Fact, Probe, Step, UndoCall};
use crate::engine::runner::RunOutcome;
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Name, ToolError, ToolMeta, Toolset,
};

pub struct RollbackDeployment;

/// Parameters of `rollback_deployment` (besides `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Swarm service, one of `[swarm] services` (e.g. `cctelegram_mcp-server`).
    pub service: Name,
}

impl Action for RollbackDeployment {
    const META: ToolMeta = ToolMeta {
        name: "rollback_deployment",
        title: "Roll back a Swarm service",
        description: "Rolls a Docker Swarm service back to its previous spec (image, replicas, \
            limits) with `docker service update --rollback`, bound to the service's current \
            version, and waits until the rollback completed. Use when a deployment broke the \
            service (runbook P0 option C). Destructive: an operator approves at a terminal; try \
            `dry_run` first to see the image it restores. A service changed since the plan is \
            refused as stale. Returns the steps and the service read back.",
        effect: Effect::Destructive,
        toolset: Toolset::Remediate,
    };
    const HOSTS: bool = false;
    type Params = Params;

    fn facts(ctx: &Ctx, _c: &Common, p: &Params) -> Result<Vec<(String, Fact)>, ToolError> {
        cli::facts(ctx, &p.service)
    }

    fn plan(ctx: &Ctx, _c: &Common, p: &Params, facts: &Facts) -> Result<Draft, ToolError> {
        let sw = cli::swarm(ctx)?;
        let service = cli::service(sw, &p.service)?;
        let value = facts.get(&cli::fact_name(service))?;
        let now: cli::Now = facts.typed(&cli::fact_name(service))?;
        let Some(previous) = now.previous_image.clone() else {
            return Err(ToolError::invalid(
                "service",
                format!("`{service}` has no previous spec to roll back to"),
            ));
        };
        let argv = cli::docker(
            sw,
            &["service", "update", "--detach", "--rollback", service],
        );
        let completed = Step::WaitUntil {
            probe: Probe::All {
                probes: vec![
                    Probe::Fact {
                        what: format!("`{service}` reports rollback_completed"),
                        fact: cli::fact(sw, service),
                        check: Check::OneOf {
                            field: "update_state".into(),
                            values: vec![json!("rollback_completed")],
                        },
                    },
                    Probe::Fact {
                        what: format!("`{service}` runs image {previous}"),
                        fact: cli::fact(sw, service),
                        check: Check::Equals {
                            field: "image".into(),
                            value: Value::String(previous.clone()),
                        },
                    },
                ],
            },
            within_secs: 120,
            every_ms: 500,
        };
        Ok(Draft {
            stages: vec![cli::stage(vec![
                cli::expect(sw, service, value),
                cli::command(argv),
                completed,
                cli::after(sw, service),
            ])],
            changes: vec![Change {
                what: format!("image of {service}"),
                before: now.image.clone(),
                after: previous,
            }],
            undo: vec![UndoCall {
                tool: "rollback_deployment".into(),
                arguments: json!({"service": service, "reason": "undo the rollback"}),
            }],
            notes: vec![format!(
                "rolling back again swaps back to {} (the spec in force now)",
                now.image
            )],
            targets: vec![cli::target(service)],
            confirm_text: service.into(),
        })
    }

    fn preflight(
        ctx: &Ctx,
        _c: &Common,
        p: &Params,
        facts: &Facts,
    ) -> Result<Vec<String>, ToolError> {
        cli::preflight(ctx, &p.service, facts)
    }

    fn summary(_c: &Common, p: &Params, out: &RunOutcome) -> String {
        let image = out
            .stage("call")
            .and_then(|s| s.captured.get("after"))
            .and_then(|a| a["image"].as_str())
            .unwrap_or("?")
            .to_string();
        if out.ok {
            format!(
                "{}: rolled back, now image {image} (rollback_completed)",
                p.service
            )
        } else {
            format!("{}: {}", p.service, out.line())
        }
    }
}
