//! Mutating tools ("actions"): typed parameters that always carry `hosts`, `reason` and
//! `dry_run`; a plan built only from the arguments and the configuration; and an `execute` that
//! does what the plan says. The gate (`gate.rs`) sits between plan and execute.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::call::Progress;
use super::plan::{Plan, Step};
use super::{Ctx, Name, ToolError, ToolMeta};

/// The fields every mutating tool has.
pub trait Mutating {
    /// False for actions on something other than inventory hosts (a Swarm service, a load
    /// balancer target group, the database over its URL): they have no `hosts` argument.
    const HOST_BASED: bool = true;
    /// Target hosts, explicit (no default); empty when not `HOST_BASED`.
    fn hosts(&self) -> &[Name];
    /// Why: shown to the approver and written to the audit log.
    fn reason(&self) -> &str;
    /// Return the plan and run nothing.
    fn dry_run(&self) -> bool;
    /// How many of `hosts` the action takes down at once (what the host limit counts): all of
    /// them, unless the action goes one host at a time.
    fn hosts_at_once(&self) -> usize {
        self.hosts().len()
    }
    /// A stronger effect for this call than the tool's own (e.g. `stop_start` is destructive).
    fn effect(&self) -> Option<super::Effect> {
        None
    }
}

/// Implements [`Mutating`] for a parameter struct with `hosts`, `reason` and `dry_run` fields
/// (`impl_mutating!(Params)`), or with only `reason` and `dry_run` for actions that are not
/// aimed at inventory hosts (`impl_mutating!(Params, no_hosts)`). Structs with a stronger
/// per-call effect or a different host count implement the trait by hand.
#[macro_export]
macro_rules! impl_mutating {
    ($t:ty) => {
        impl $crate::engine::action::Mutating for $t {
            fn hosts(&self) -> &[$crate::engine::Name] {
                &self.hosts
            }
            fn reason(&self) -> &str {
                &self.reason
            }
            fn dry_run(&self) -> bool {
                self.dry_run
            }
        }
    };
    ($t:ty, no_hosts) => {
        impl $crate::engine::action::Mutating for $t {
            const HOST_BASED: bool = false;
            fn hosts(&self) -> &[$crate::engine::Name] {
                &[]
            }
            fn reason(&self) -> &str {
                &self.reason
            }
            fn dry_run(&self) -> bool {
                self.dry_run
            }
        }
    };
}

/// What a plan touches, for blast-radius rules and busy locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    /// The service acted on (`None` for host-wide actions).
    pub service: Option<String>,
}

impl Target {
    pub fn key(&self) -> String {
        match &self.service {
            Some(s) => format!("{}.{s}", self.host),
            None => self.host.clone(),
        }
    }
}

/// An action's plan before the engine seals it.
pub struct Draft {
    pub steps: Vec<Step>,
    pub undo: Vec<String>,
    pub targets: Vec<Target>,
    /// What an approver of a destructive action types back (e.g. `mcp-02`).
    pub confirm_text: String,
}

/// Shared with a running action: progress, and whether the caller went away (then nothing
/// further starts; the step in flight finishes).
#[derive(Clone)]
pub struct RunCtx {
    pub plan: Arc<Plan>,
    pub progress: Option<Arc<dyn Progress>>,
    pub(super) stopped: Arc<AtomicBool>,
}

impl RunCtx {
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    pub async fn progress(&self, done: f64, total: f64, message: String) {
        if let Some(p) = &self.progress {
            p.report(done, Some(total), message).await;
        }
    }
}

/// A tool that changes something.
pub trait Action: Send + Sync + 'static {
    const META: ToolMeta;
    type Params: DeserializeOwned + Serialize + JsonSchema + Mutating + Send + Sync + 'static;
    type Output: Serialize + JsonSchema + Send + 'static;

    /// The plan, from arguments and configuration only (no fleet access: the digest must not
    /// depend on live values). Validation errors name the field.
    fn plan(ctx: &Ctx, p: &Self::Params) -> Result<Draft, ToolError>;

    /// Checks against the live fleet before any approval is asked (e.g. never the last healthy
    /// instance), returning the targets' current health as lines for the approver.
    fn preflight(
        _ctx: Arc<Ctx>,
        _p: &Self::Params,
    ) -> impl Future<Output = Result<Vec<String>, ToolError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Does what the plan says.
    fn execute(
        ctx: Arc<Ctx>,
        p: Self::Params,
        run: RunCtx,
    ) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;

    fn summary(out: &Self::Output) -> String;

    /// True when the action as a whole failed (e.g. a health check after a restart).
    fn failed(_out: &Self::Output) -> bool {
        false
    }
}

/// Whether the action ran.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// `dry_run`: the plan only; nothing ran and no approval was asked.
    DryRun,
    /// The action ran (see `result` for how it went).
    Done,
}

/// Who approved.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApprovalInfo {
    pub id: String,
    pub approvers: Vec<String>,
    pub channels: Vec<String>,
}

/// The result of every mutating tool.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ActionResult<T> {
    pub status: ActionStatus,
    pub plan: Plan,
    /// The targets' health before anything ran.
    pub current_health: Vec<String>,
    /// The approval that allowed it (absent for dry runs and `allow` policies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalInfo>,
    /// Audit request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The action's own result (absent for dry runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
}
