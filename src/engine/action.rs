//! Mutating tools ("actions"). A tool supplies only what is its own: its parameters, the
//! stable facts it needs read, the plan (stages of typed steps, from arguments, config and
//! those facts), optional preflight lines, and a summary of the outcome. The engine owns the
//! rest of the lifecycle — the common parameters (`hosts`, `reason`, `dry_run`), sealing,
//! blast radius, approval, audit, and walking the sealed steps through its executor.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::{Change, Fact, Plan, Stage, UndoCall};
use super::runner::RunOutcome;
use super::{Ctx, Effect, Name, ToolError, ToolMeta};

/// The parameters every mutating tool shares, parsed by the engine (one name each).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Common {
    /// Target hosts (inventory names), explicit: mutating tools have no default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<Name>,
    /// Why, in 1..=500 characters; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan and the current state; run nothing, ask nothing.
    #[serde(default, skip_serializing)]
    pub dry_run: bool,
}

impl Common {
    /// The hosts as an approver of a destructive plan types them back (`mcp-01,mcp-02`).
    pub fn hosts_text(&self) -> String {
        self.hosts
            .iter()
            .map(|h| h.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
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
#[derive(Default)]
pub struct Draft {
    pub stages: Vec<Stage>,
    /// Before → after for each value that changes.
    pub changes: Vec<Change>,
    /// The undo as ready calls.
    pub undo: Vec<UndoCall>,
    /// What the approver should know that no call undoes.
    pub notes: Vec<String>,
    pub targets: Vec<Target>,
    /// What an approver of a destructive action types back (e.g. `mcp-02`).
    pub confirm_text: String,
}

/// The facts an action asked for, read by the engine before planning: each a value, or why it
/// could not be read.
#[derive(Debug, Default)]
pub struct Facts(pub BTreeMap<String, Result<Value, String>>);

impl Facts {
    /// The value of `name`, or `unavailable` naming the fact and why.
    pub fn get(&self, name: &str) -> Result<&Value, ToolError> {
        match self.0.get(name) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(ToolError::unavailable(format!("reading {name}: {e}"))),
            None => Err(ToolError::internal(format!("fact `{name}` was not read"))),
        }
    }

    pub fn typed<T: DeserializeOwned>(&self, name: &str) -> Result<T, ToolError> {
        serde_json::from_value(self.get(name)?.clone())
            .map_err(|e| ToolError::internal(format!("fact `{name}`: {e}")))
    }
}

/// A tool that changes something. Registered only through `ToolDef::of_action`, so the
/// engine's gate and runner are the only way it acts.
pub trait Action: Send + Sync + 'static {
    const META: ToolMeta;
    /// False for actions on something other than inventory hosts (a Swarm service, the
    /// database over its URL): they take no `hosts`.
    const HOSTS: bool = true;
    /// True when a call's effect may be weaker than the tool's (`run_command`: a read when the
    /// configuration's allowlist says so). Every other action is at least its tool's effect.
    const EFFECT_PER_CALL: bool = false;
    /// True when `Params` has an `incident` the engine fills with the session's bound
    /// incident when the caller names none (a message knows which incident it is about).
    const INCIDENT: bool = false;
    /// The tool's own parameters (`deny_unknown_fields`), without the common ones.
    type Params: DeserializeOwned + Serialize + JsonSchema + Send + Sync + 'static;

    /// A stronger effect for this call than the tool's own (e.g. `stop_start` is destructive;
    /// a plan whose facts show it lowers capacity — fewer replicas, a smaller memory limit — is
    /// destructive too). Never weaker than the tool's.
    fn effect(_ctx: &Ctx, _p: &Self::Params, _facts: &Facts) -> Effect {
        Self::META.effect
    }

    /// How many hosts the action takes down at once (what the host limit counts).
    fn hosts_at_once(c: &Common, _p: &Self::Params) -> usize {
        c.hosts.len()
    }

    /// Stable facts to read before planning (a Swarm service's version and previous image,
    /// the rate in nginx's file). Never health or PIDs: those are probes and selectors.
    fn facts(_ctx: &Ctx, _c: &Common, _p: &Self::Params) -> Result<Vec<(String, Fact)>, ToolError> {
        Ok(Vec::new())
    }

    /// The plan, from arguments, configuration and the facts. Validation errors name the field.
    fn plan(ctx: &Ctx, c: &Common, p: &Self::Params, facts: &Facts) -> Result<Draft, ToolError>;

    /// Lines for the approver beyond the guards' readings; may refuse (e.g. nothing to do).
    fn preflight(
        _ctx: &Ctx,
        _c: &Common,
        _p: &Self::Params,
        _facts: &Facts,
    ) -> Result<Vec<String>, ToolError> {
        Ok(Vec::new())
    }

    /// One glance at what happened.
    fn summary(c: &Common, p: &Self::Params, out: &RunOutcome) -> String;
}

/// Whether the action ran.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// `dry_run`: the plan only; nothing ran and no approval was asked.
    DryRun,
    /// The action ran (see `result` for how it went).
    Done,
    /// Every message of the plan was delivered before (this server's record): nothing was
    /// sent again and no approval was asked.
    AlreadyDelivered,
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
pub struct ActionResult {
    pub status: ActionStatus,
    pub plan: Plan,
    /// The targets' state before anything ran (the guards' readings first).
    pub current_health: Vec<String>,
    /// The approval that allowed it (absent for dry runs and `allow` policies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalInfo>,
    /// Audit request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Stage by stage, what ran (absent for dry runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<RunOutcome>,
}
