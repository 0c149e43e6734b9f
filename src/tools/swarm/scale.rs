//! `scale_service`: `docker service scale SERVICE=N` (runbook P0 option D).
//!
//! Scaling up is a recoverable change; scaling down removes running tasks and is destructive
//! (DESIGN §2). Whether a target count is up or down depends on the live count, but the plan —
//! and so the effect, the approval channel and the digest — must not depend on live values. So
//! the caller states the direction: `up` (the default) is a change, `down` is destructive (an
//! operator approves at a terminal, typing the service name). Before anyone is asked, the
//! preflight refuses (`blast_radius`) a call whose direction disagrees with the live count
//! (`up` to fewer replicas, `down` to as many or more); the plan's check step repeats the `up`
//! test right before the command, so an approved scale-up can never run as a scale-down
//! because the service grew meanwhile. 0 replicas and more than `[swarm] max_replicas` are
//! refused from the arguments alone.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cli::{self, SERVER, SwarmResult};
use crate::engine::action::{Action, Draft, Mutating, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, Name, Refusal, ToolError, ToolMeta, Toolset};

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

/// Parameters of `scale_service`.
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
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan and the current state; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

impl Mutating for Params {
    const HOST_BASED: bool = false;
    fn hosts(&self) -> &[Name] {
        &[]
    }
    fn reason(&self) -> &str {
        &self.reason
    }
    fn dry_run(&self) -> bool {
        self.dry_run
    }
    fn effect(&self) -> Option<Effect> {
        (self.direction == Direction::Down).then_some(Effect::Destructive)
    }
}

fn argv(sw: &crate::config::Swarm, service: &str, replicas: u32) -> Vec<String> {
    let to = format!("{service}={replicas}");
    cli::docker(sw, &["service", "scale", "--detach", &to])
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
        description: "Sets the replica count of a Docker Swarm service (`docker service scale`). \
            Use for capacity problems (runbook P0 option D). State `direction`: `up` (default) \
            is a change approved in the client; `down` is destructive and needs an operator at a \
            terminal. A direction that disagrees with the live count is refused. Try `dry_run` \
            first. Returns the command's exit code and the service read back (replicas, image).",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    type Params = Params;
    type Output = SwarmResult;

    fn plan(ctx: &Ctx, p: &Params) -> Result<Draft, ToolError> {
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
        let mut steps = Vec::new();
        if p.direction == Direction::Up {
            steps.push(Step::check(
                SERVER,
                format!(
                    "`{service}` wants at most {} replicas right before the command (else this \
                     would be a scale-down)",
                    p.replicas
                ),
            ));
        }
        steps.push(Step::run(SERVER, &argv(sw, service, p.replicas), false));
        Ok(Draft {
            steps,
            undo: vec![format!(
                "scale_service `{service}` back to the count shown under current health \
                 (direction {})",
                match p.direction {
                    Direction::Up => "down",
                    Direction::Down => "up",
                }
            )],
            targets: vec![cli::target(service)],
            confirm_text: service.into(),
        })
    }

    async fn preflight(ctx: Arc<Ctx>, p: &Params) -> Result<Vec<String>, ToolError> {
        let sw = cli::swarm(&ctx)?;
        let service = cli::service(sw, &p.service)?;
        let now = cli::read(&ctx, sw, service).await?;
        let Some(current) = now.spec.replicas else {
            return Err(ToolError::invalid(
                "service",
                format!(
                    "`{service}` runs in {} mode; only replicated services scale",
                    now.spec.mode
                ),
            ));
        };
        agrees(p, service, current)?;
        Ok(vec![now.line(service)])
    }

    async fn execute(ctx: Arc<Ctx>, p: Params, _run: RunCtx) -> Result<SwarmResult, ToolError> {
        let sw = cli::swarm(&ctx)?;
        let service = cli::service(sw, &p.service)?;
        if p.direction == Direction::Up {
            // The plan's check step: the approval covered a scale-up only.
            let now = cli::read(&ctx, sw, service).await?;
            agrees(&p, service, now.spec.replicas.unwrap_or_default())?;
        }
        let want = u64::from(p.replicas);
        let argv = argv(sw, service, p.replicas);
        Ok(SwarmResult::run_and_read(&ctx, sw, service, &argv, |now| {
            now.spec.replicas == Some(want)
        })
        .await)
    }

    fn summary(out: &SwarmResult) -> String {
        match &out.after {
            Some(now) if out.command.ok => format!(
                "{}: wants {} replicas, {} running{}",
                out.service,
                now.spec.replicas.map_or("?".into(), |r| r.to_string()),
                now.replicas,
                out.failure()
            ),
            _ => format!("{}: {}", out.service, out.failure()),
        }
    }

    fn failed(out: &SwarmResult) -> bool {
        !out.ok
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
            reason: "r".into(),
            dry_run: false,
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
        assert_eq!(p(2, Direction::Down).effect(), Some(Effect::Destructive));
        assert_eq!(p(6, Direction::Up).effect(), None);
    }
}
