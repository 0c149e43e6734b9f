//! `drain_instance` and `restore_instance`: take an inventory host's instance out of the
//! target group and put it back (runbook "Load Balancer Recovery", drain and restore).
//!
//! Draining is `aws elbv2 deregister-targets`, not `modify-target-group --targets` as the
//! seed runbook says (that command has no `--targets`; the CLI refuses it). AWS then lets
//! in-flight requests finish (the target reads `draining` for the group's deregistration
//! delay) and sends it no new ones. Draining is destructive: it never leaves the group without
//! a healthy target — checked before anyone is asked and again right before the command,
//! since a destructive approval can take minutes (the plan's guard, before each host).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cli;
use crate::config::Aws;
use crate::engine::plan::{Change, Check, Fact, Otherwise, Probe, Step, UndoCall};
use crate::engine::runner::RunOutcome;
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Refusal, ToolError, ToolMeta, Toolset,
};

pub struct DrainInstance;
pub struct RestoreInstance;

/// `drain_instance` and `restore_instance` have only the common parameters (`hosts`: the
/// inventory hosts whose instances are acted on, each one of `[aws] instances`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {}

/// The targets' states as the fact reads them: instance id → state and registration.
fn state_of<'v>(states: &'v Value, id: &str) -> (&'v str, bool) {
    let t = &states[id];
    (
        t["state"].as_str().unwrap_or("absent"),
        t["registered"].as_bool().unwrap_or(false),
    )
}

/// Refuses a drain that is pointless (not registered) or that would leave no healthy target.
fn drain_allowed(states: &Value, group: &str, host: &str, id: &str) -> Result<(), ToolError> {
    let (state, registered) = state_of(states, id);
    if !registered {
        return Err(ToolError::invalid(
            "hosts",
            format!("`{host}` ({id}) is not registered in `{group}` ({state}); nothing to drain"),
        ));
    }
    let healthy_others = states.as_object().is_some_and(|m| {
        m.iter()
            .any(|(i, t)| i != id && t["registered"] == true && t["state"] == "healthy")
    });
    if !healthy_others {
        return Err(ToolError::refused(
            Refusal::BlastRadius,
            format!(
                "draining `{host}` would leave `{group}` without a healthy target. Restore or \
                 recover another instance first."
            ),
        ));
    }
    Ok(())
}

/// Each host's instance id, in the order given.
fn instances(ctx: &Ctx, c: &Common) -> Result<Vec<(String, String)>, ToolError> {
    let aws = cli::aws(ctx)?;
    c.hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let id = cli::instance(aws, &format!("hosts[{i}]"), h)?;
            Ok((h.as_str().to_string(), id.to_string()))
        })
        .collect()
}

fn facts(ctx: &Ctx) -> Result<Vec<(String, Fact)>, ToolError> {
    Ok(vec![("targets".into(), cli::states(cli::aws(ctx)?))])
}

/// The stage of one instance: `op` (`deregister-targets` / `register-targets`) after the
/// optional guard, then the targets read back.
fn stage(
    aws: &Aws,
    host: &str,
    id: &str,
    op: &str,
    guard: Option<Step>,
) -> crate::engine::plan::Stage {
    let spec = cli::target_spec(aws, id);
    let mut steps: Vec<Step> = guard.into_iter().collect();
    steps.push(Step::Run(cli::command(
        aws,
        op,
        &[
            "--target-group-arn",
            &aws.target_group_arn,
            "--targets",
            &spec,
        ],
    )));
    steps.push(Step::Capture {
        name: "after".into(),
        fact: cli::states(aws),
    });
    let mut s = cli::stage(aws, steps);
    s.name = host.into();
    s
}

fn summary(verb: &str, out: &RunOutcome) -> String {
    if out.ok {
        let hosts: Vec<&str> = out.stages.iter().map(|s| s.stage.as_str()).collect();
        format!("{verb} {}", hosts.join(", "))
    } else {
        out.line()
    }
}

impl Action for DrainInstance {
    const META: ToolMeta = ToolMeta {
        name: "drain_instance",
        title: "Drain instances from the load balancer",
        description: "Takes the named inventory hosts' instances out of the AWS target group \
            (`aws elbv2 deregister-targets`), one at a time: in-flight requests finish, no new \
            ones arrive. Use to route around a failing instance (runbook P0 option B, LB \
            recovery). Destructive: an operator approves at a terminal, typing the host names; \
            refused when it would leave no healthy target (checked again right before each \
            host). Undo with `restore_instance`. Returns the steps and the targets read back.",
        effect: Effect::Destructive,
        toolset: Toolset::Loadbalancer,
    };
    type Params = Params;

    fn facts(ctx: &Ctx, _c: &Common, _p: &Params) -> Result<Vec<(String, Fact)>, ToolError> {
        facts(ctx)
    }

    fn plan(ctx: &Ctx, c: &Common, _p: &Params, facts: &Facts) -> Result<Draft, ToolError> {
        let aws = cli::aws(ctx)?;
        let states = facts.get("targets")?;
        // Each host is judged on the group as the earlier stages leave it: draining every
        // healthy target is refused before anyone is asked, not halfway through.
        let mut after = states.clone();
        let mut stages = Vec::new();
        let mut changes = Vec::new();
        for (host, id) in instances(ctx, c)? {
            drain_allowed(&after, &aws.target_group_name, &host, &id)?;
            after[id.as_str()] = json!({"state": "draining", "registered": false});
            let guard = Step::Guard {
                why: format!(
                    "never the last healthy target of `{}`: {host} is drained only while another target is healthy",
                    aws.target_group_name
                ),
                probe: Probe::Fact {
                    what: format!(
                        "another target of `{}` than {host} is healthy",
                        aws.target_group_name
                    ),
                    fact: cli::states(aws),
                    check: Check::OtherTargetHealthy { except: id.clone() },
                },
                otherwise: Otherwise::Halt,
            };
            changes.push(Change {
                what: format!("{host} ({id}) in `{}`", aws.target_group_name),
                before: state_of(states, &id).0.into(),
                after: "draining".into(),
            });
            stages.push(stage(aws, &host, &id, "deregister-targets", Some(guard)));
        }
        Ok(Draft {
            stages,
            changes,
            undo: vec![UndoCall {
                tool: "restore_instance".into(),
                arguments: json!({"hosts": c.hosts, "reason": "undo the drain"}),
            }],
            targets: vec![cli::lock(aws)],
            confirm_text: c.hosts_text(),
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, _p: &Params, out: &RunOutcome) -> String {
        summary("draining", out)
    }
}

impl Action for RestoreInstance {
    const META: ToolMeta = ToolMeta {
        name: "restore_instance",
        title: "Restore instances to the load balancer",
        description: "Puts the named inventory hosts' instances back into the AWS target group \
            (`aws elbv2 register-targets`). Use after `drain_instance` once an instance is \
            fixed; it receives traffic when it passes the group's health checks. Needs approval \
            of the exact plan; refused when an instance is already registered. Returns the steps \
            and the targets read back.",
        effect: Effect::Change,
        toolset: Toolset::Loadbalancer,
    };
    type Params = Params;

    fn facts(ctx: &Ctx, _c: &Common, _p: &Params) -> Result<Vec<(String, Fact)>, ToolError> {
        facts(ctx)
    }

    fn plan(ctx: &Ctx, c: &Common, _p: &Params, facts: &Facts) -> Result<Draft, ToolError> {
        let aws = cli::aws(ctx)?;
        let states = facts.get("targets")?;
        let mut stages = Vec::new();
        let mut changes = Vec::new();
        for (i, (host, id)) in instances(ctx, c)?.into_iter().enumerate() {
            let (state, registered) = state_of(states, &id);
            if registered {
                return Err(ToolError::invalid(
                    format!("hosts[{i}]"),
                    format!(
                        "`{host}` ({id}) is already registered in `{}` ({state}); nothing to restore",
                        aws.target_group_name
                    ),
                ));
            }
            changes.push(Change {
                what: format!("{host} ({id}) in `{}`", aws.target_group_name),
                before: state.into(),
                after: "registered".into(),
            });
            stages.push(stage(aws, &host, &id, "register-targets", None));
        }
        Ok(Draft {
            stages,
            changes,
            undo: vec![UndoCall {
                tool: "drain_instance".into(),
                arguments: json!({"hosts": c.hosts, "reason": "undo the restore"}),
            }],
            targets: vec![cli::lock(aws)],
            confirm_text: aws.target_group_name.clone(),
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, _p: &Params, out: &RunOutcome) -> String {
        summary("registered", out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_the_last_healthy_target_and_only_registered_ones() {
        let g = json!({
            "i-1": {"state": "draining", "registered": false},
            "i-2": {"state": "healthy", "registered": true},
            "i-3": {"state": "unhealthy", "registered": true},
        });
        let e = drain_allowed(&g, "tg", "mcp-02", "i-2").unwrap_err();
        assert_eq!(e.refusal, Some(Refusal::BlastRadius), "{e}");
        assert!(
            drain_allowed(&g, "tg", "mcp-03", "i-3").is_ok(),
            "mcp-02 stays healthy"
        );
        let e = drain_allowed(&g, "tg", "mcp-01", "i-1").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("hosts"), "draining already: {e}");
        let e = drain_allowed(&g, "tg", "mcp-09", "i-9").unwrap_err();
        assert!(e.message.contains("absent"), "{e}");
    }
}
