//! `scale_service`: `docker service scale SERVICE=N` (runbook P0 option D).
//!
//! Scaling up is a recoverable change; scaling down removes running tasks and is destructive
//! (DESIGN §2). Whether a target count is up or down depends on the live count, but the plan —
//! and so the effect, the approval channel and the digest — must not depend on live values. So
//! the caller states the direction: `up` (the default) is a change, `down` is destructive (an
//! operator approves at a terminal, typing the service name). Before anyone is asked, the
//! preflight refuses (`blast_radius`) a call whose direction disagrees with the live count
//! (`up` to fewer replicas, `down` to as many or more); the plan's `expect` binds the count it
//! was judged on and is re-read right before the command (a different count is `stale`), so an
//! approved scale-up can never run as a scale-down because the service grew meanwhile. 0 replicas and more than `[swarm] max_replicas` are
//! refused from the arguments alone.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cli;
use crate::engine::plan::{Change, Fact, UndoCall};
use crate::engine::runner::RunOutcome;
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Name, Refusal, ToolError, ToolMeta, Toolset,
};

pub struct ScaleService;

/// Which way the replica count moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// To as many replicas as now or more (a change).
    #[default]
    Up,
    /// To fewer replicas than now: tasks are stopped. Destructive: approved at a terminal.
    Down,
}

/// Parameters of `scale_service` (besides `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Swarm service, one of `[swarm] services` (e.g. `cctelegram_mcp-server`).
    pub service: Name,
    /// Replicas wanted, 1 up to `[swarm] max_replicas`.
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: u32,
    /// `up` (default) or `down`; must agree with the current count. `down` is destructive.
    #[serde(default)]
    pub direction: Direction,
}

/// Refuses a call whose direction disagrees with the `current` wanted replicas.
fn agrees(p: &Params, service: &str, current: u64) -> Result<(), ToolError> {
    let wanted = u64::from(p.replicas);
    let refuse = |m: String| ToolError::refused(Refusal::BlastRadius, m);
    match p.direction {
        Direction::Up if wanted < current => Err(refuse(format!(
            "`{service}` wants {current} replicas now; {wanted} is a scale-down. Call again with \
             `direction: down` (destructive: an operator approves it at a terminal)."
        ))),
        Direction::Down if wanted >= current => Err(refuse(format!(
            "`{service}` wants {current} replicas now; {wanted} is not a scale-down. Use \
             `direction: up`."
        ))),
        _ => Ok(()),
    }
}

impl Action for ScaleService {
    const META: ToolMeta = ToolMeta {
        name: "scale_service",
        title: "Scale a Swarm service",
        description: "Sets the replica count of a Docker Swarm service (`docker service scale`), \
            bound to the count read now. Use for capacity problems (runbook P0 option D). State \
            `direction`: `up` (default) is a change approved in the client; `down` is \
            destructive and needs an operator at a terminal. A direction that disagrees with the \
            live count is refused. Try `dry_run` first. Returns the steps and the service read \
            back.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    const HOSTS: bool = false;
    type Params = Params;

    /// `down`, or fewer replicas than the count read now, is destructive.
    fn effect(_ctx: &Ctx, p: &Params, facts: &Facts) -> Effect {
        let fewer = facts
            .typed::<cli::Now>(&cli::fact_name(p.service.as_str()))
            .ok()
            .and_then(|n| n.replicas)
            .is_some_and(|now| u64::from(p.replicas) < now);
        if p.direction == Direction::Down || fewer {
            Effect::Destructive
        } else {
            Effect::Change
        }
    }

    fn facts(ctx: &Ctx, _c: &Common, p: &Params) -> Result<Vec<(String, Fact)>, ToolError> {
        cli::facts(ctx, &p.service)
    }

    fn plan(ctx: &Ctx, _c: &Common, p: &Params, facts: &Facts) -> Result<Draft, ToolError> {
        let sw = cli::swarm(ctx)?;
        let service = cli::service(sw, &p.service)?;
        if p.replicas == 0 {
            return Err(ToolError::refused(
                Refusal::BlastRadius,
                format!(
                    "scaling `{service}` to 0 replicas stops it entirely; not through this tool."
                ),
            ));
        }
        if p.replicas > sw.max_replicas {
            return Err(ToolError::refused(
                Refusal::BlastRadius,
                format!(
                    "{} replicas is more than `[swarm] max_replicas` ({}).",
                    p.replicas, sw.max_replicas
                ),
            ));
        }
        let value = facts.get(&cli::fact_name(service))?;
        let now: cli::Now = facts.typed(&cli::fact_name(service))?;
        let Some(current) = now.replicas else {
            return Err(ToolError::invalid(
                "service",
                format!("`{service}` is not a replicated service; only replicated services scale"),
            ));
        };
        agrees(p, service, current)?;
        let to = format!("{service}={}", p.replicas);
        Ok(Draft {
            stages: vec![cli::stage(vec![
                cli::expect(sw, service, value),
                cli::command(cli::docker(sw, &["service", "scale", "--detach", &to])),
                cli::wait_for(
                    sw,
                    service,
                    &format!("`{service}` wants {} replicas", p.replicas),
                    "replicas",
                    vec![json!(p.replicas)],
                ),
                cli::after(sw, service),
            ])],
            changes: vec![Change {
                what: format!("replicas of {service}"),
                before: current.to_string(),
                after: p.replicas.to_string(),
            }],
            undo: vec![UndoCall {
                tool: "scale_service".into(),
                arguments: json!({
                    "service": service,
                    "replicas": current,
                    "direction": if u64::from(p.replicas) > current { "down" } else { "up" },
                    "reason": "undo the scale",
                }),
            }],
            targets: vec![cli::target(service)],
            confirm_text: service.into(),
            ..Draft::default()
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
        if out.ok {
            format!("{}: wants {} replicas now", p.service, p.replicas)
        } else {
            format!("{}: {}", p.service, out.line())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(replicas: u32, direction: Direction) -> Params {
        Params {
            service: serde_json::from_value(serde_json::json!("web")).unwrap(),
            replicas,
            direction,
        }
    }

    #[test]
    fn direction_must_agree_with_the_live_count_and_down_is_destructive() {
        assert!(agrees(&p(6, Direction::Up), "web", 3).is_ok());
        assert!(agrees(&p(3, Direction::Up), "web", 3).is_ok(), "no-op");
        let e = agrees(&p(2, Direction::Up), "web", 3).unwrap_err();
        assert_eq!(e.refusal, Some(Refusal::BlastRadius));
        assert!(e.message.contains("direction: down"), "{e}");
        assert!(agrees(&p(2, Direction::Down), "web", 3).is_ok());
        assert!(agrees(&p(3, Direction::Down), "web", 3).is_err());
    }
}
