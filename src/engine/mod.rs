//! The call pipeline, free of any MCP type: look the tool up, check it is visible, parse the
//! arguments (unknown fields rejected, the field named), run it, and return a typed result with
//! a one-glance summary. The MCP adapter, the CLI and tests all drive [`Engine::call`].

pub mod action;
pub mod approval;
pub mod args;
mod ask;
pub mod call;
mod error;
pub mod executor;
pub mod fanout;
mod gate;
pub mod guards;
pub mod hooks;
pub mod identity;
mod load;
pub mod needs;
mod outcome;
pub mod plan;
pub mod probe;
pub mod runner;
mod seal;
pub mod send;
pub mod telegram;
mod timeline;
mod tool;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use args::Name;
pub use call::{Answer, CallCtx, Outcome, Session};
pub use error::{ErrorCode, Refusal, ToolError};
pub use executor::Executor;
pub use gate::rule_for;
pub use tool::{
    Annotations, Effect, Kind, Tool, ToolDef, ToolMeta, ToolOutput, Toolset, schema_of,
};

use crate::config::Config;
use crate::exec::{Fleet, HttpClient};

pub use action::{Action, Common, Draft, Facts, Target};

/// What every tool gets: the configuration and the shared executors.
pub struct Ctx {
    pub config: Arc<Config>,
    /// Read tools reach hosts through these directly.
    pub fleet: Fleet,
    pub http: HttpClient,
    /// Sealed plans run through this one only (the engine's own trait: tests record it).
    pub exec: Arc<dyn Executor>,
    /// Opened on the first mutating call: read-only use never touches the state directory.
    approvals: std::sync::OnceLock<Result<Arc<approval::ApprovalStore>, String>>,
    audit: std::sync::OnceLock<Result<Arc<crate::audit::AuditLog>, String>>,
}

/// The executors an engine is given.
pub struct Executors {
    pub fleet: Fleet,
    pub http: HttpClient,
    pub actions: Arc<dyn Executor>,
}

impl Ctx {
    pub fn new(config: Arc<Config>, exec: Executors) -> Self {
        Self {
            config,
            fleet: exec.fleet,
            http: exec.http,
            exec: exec.actions,
            approvals: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
        }
    }

    pub fn approvals(&self) -> Result<Arc<approval::ApprovalStore>, ToolError> {
        self.approvals
            .get_or_init(|| {
                approval::ApprovalStore::open(&self.config.server.state_dir)
                    .map(Arc::new)
                    .map_err(|e| {
                        format!(
                            "approval store in {}: {e}",
                            self.config.server.state_dir.display()
                        )
                    })
            })
            .clone()
            .map_err(ToolError::internal)
    }

    pub fn audit(&self) -> Result<Arc<crate::audit::AuditLog>, ToolError> {
        self.audit
            .get_or_init(|| {
                let secrets = self.config.secrets.values();
                crate::audit::AuditLog::open(&self.config.server.state_dir, secrets)
                    .map(Arc::new)
                    .map_err(|e| {
                        format!(
                            "audit log in {}: {e}",
                            self.config.server.state_dir.display()
                        )
                    })
            })
            .clone()
            .map_err(ToolError::internal)
    }
}

/// Which tools are offered.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// Only `read` and `record` tools are listed and callable.
    pub read_only: bool,
}

/// The tools an engine serves, as a function: called on first use.
pub type Registry = fn() -> Vec<ToolDef>;

pub struct Engine {
    ctx: Arc<Ctx>,
    registry: Registry,
    /// Built on first use: generating every schema costs milliseconds `initialize` should not wait for.
    tools: std::sync::OnceLock<Vec<ToolDef>>,
    mode: Mode,
}

impl Engine {
    /// An engine over `registry`, acting through `exec`.
    pub fn new(config: Arc<Config>, mode: Mode, registry: Registry, exec: Executors) -> Self {
        Self {
            ctx: Arc::new(Ctx::new(config, exec)),
            registry,
            tools: std::sync::OnceLock::new(),
            mode,
        }
    }

    /// Every name in `[policy]` must be a tool of this engine or a toolset: a typo would
    /// silently leave a tool on its default rule. (Builds the registry only when tools are
    /// named, so start-up stays fast otherwise.)
    pub fn check_policy(&self) -> Result<(), crate::config::ConfigError> {
        let p = &self.ctx.config.policy;
        let err = |field: String, message: String| crate::config::ConfigError {
            file: self.ctx.config.source.clone(),
            field,
            message,
        };
        for name in p.toolsets.keys() {
            if !Toolset::ALL.iter().any(|t| t.name() == name) {
                let known: Vec<&str> = Toolset::ALL.iter().map(|t| t.name()).collect();
                return Err(err(
                    format!("policy.toolsets.{name}"),
                    format!("no such toolset; toolsets are: {}", known.join(", ")),
                ));
            }
        }
        if p.tools.is_empty() {
            return Ok(());
        }
        let all = (self.registry)();
        for name in p.tools.keys() {
            if !all.iter().any(|t| t.meta.name == name) {
                let near: Vec<&str> = all.iter().map(|t| t.meta.name).collect();
                return Err(err(
                    format!("policy.tools.{name}"),
                    format!("no such tool; tools are: {}", near.join(", ")),
                ));
            }
        }
        Ok(())
    }

    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// Opens ssh masters in the background so the first call is warm.
    pub fn warm_up(&self) {
        self.ctx.fleet.warm_up();
    }

    /// Why a tool is not offered, or `None` when it is. Hidden tools are neither listed nor
    /// callable: `--read-only` hides every tool that is not `read`/`record`, a `deny` policy
    /// hides the tool, and so does a configuration without what it needs.
    pub fn off(&self, t: &ToolDef) -> Option<String> {
        if self.mode.read_only && !t.meta.effect.is_read_only() {
            return Some("--read-only".into());
        }
        if rule_for(&self.ctx, &t.meta) == crate::config::Rule::Deny {
            return Some("denied by [policy]".into());
        }
        needs::lacking(t.needs, &self.ctx.config)
    }

    /// Every tool of the registry, offered or not (`runbook-mcp tools --all`).
    pub fn all_tools(&self) -> &[ToolDef] {
        self.tools.get_or_init(self.registry)
    }

    /// The tools this server offers, in registry order.
    pub fn tools(&self) -> impl Iterator<Item = &ToolDef> {
        self.all_tools().iter().filter(|t| self.off(t).is_none())
    }

    pub fn tool(&self, name: &str) -> Option<&ToolDef> {
        self.tools().find(|t| t.meta.name == name)
    }

    /// Runs one call from the command line or a test (no client channel: approvals come from
    /// the terminal).
    pub async fn call(
        &self,
        name: &str,
        args: Option<Map<String, Value>>,
    ) -> Result<ToolOutput, ToolError> {
        let me = identity::account(self.ctx.config.approval.service_account.as_deref());
        match self.call_with(CallCtx::local(&me), name, args).await? {
            Outcome::Done(out) => Ok(out),
            Outcome::InputRequired { .. } => Err(ToolError::internal(
                "client input required, but this caller has no channel",
            )),
        }
    }

    /// Runs one call. A hidden tool is as unknown as a missing one.
    pub async fn call_with(
        &self,
        mut call: CallCtx,
        name: &str,
        args: Option<Map<String, Value>>,
    ) -> Result<Outcome, ToolError> {
        call.incident = timeline::incident_for(&self.ctx, &call);
        let args = args.unwrap_or_default();
        let started = std::time::Instant::now();
        let result = self.dispatch(call.clone(), name, args.clone()).await;
        if let Some(id) = timeline::incident_of_call(&call, name, &args, &result) {
            timeline::append(&self.ctx, &call, id, name, args, &result, started.elapsed()).await;
        }
        result
    }

    async fn dispatch(
        &self,
        call: CallCtx,
        name: &str,
        args: Map<String, Value>,
    ) -> Result<Outcome, ToolError> {
        let tool = match self.all_tools().iter().find(|t| t.meta.name == name) {
            Some(t) => match self.off(t) {
                None => t,
                Some(why) => return Err(ToolError::tool_off(name, &why)),
            },
            None => return Err(ToolError::unknown_tool(name)),
        };
        let started = std::time::Instant::now();
        let result = tool.invoke(self.ctx.clone(), call, args).await;
        let secrets = &self.ctx.config.secrets;
        // Secrets are masked by value on the way out, whatever produced them.
        let result = result
            .map(|o| match o {
                Outcome::Done(mut out) => {
                    out.summary = crate::digest::cap(secrets.mask(&out.summary));
                    out.structured = mask_value(secrets, out.structured);
                    Outcome::Done(out)
                }
                Outcome::InputRequired {
                    request_state,
                    message,
                } => Outcome::InputRequired {
                    request_state,
                    message: secrets.mask(&message),
                },
            })
            .map_err(|mut e| {
                e.message = crate::digest::cap(secrets.mask(&e.message));
                e
            });
        tracing::info!(
            tool = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            "call"
        );
        result
    }
}

fn mask_value(secrets: &crate::config::Secrets, v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(secrets.mask(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| mask_value(secrets, x)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (k, mask_value(secrets, x)))
                .collect(),
        ),
        other => other,
    }
}
