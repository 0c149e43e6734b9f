//! The call pipeline, free of any MCP type: look the tool up, check it is visible, parse the
//! arguments (unknown fields rejected, the field named), run it, and return a typed result with
//! a one-glance summary. The MCP adapter, the CLI and tests all drive [`Engine::call`].

pub mod args;
mod error;
pub mod fanout;
mod tool;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use args::{Name, check_token};
pub use error::{ErrorCode, ToolError};
pub use tool::{Annotations, Effect, Tool, ToolDef, ToolMeta, ToolOutput, Toolset, schema_of};

use crate::config::Config;
use crate::exec::{Fleet, HttpClient};

/// What every tool gets: the configuration and the shared executors.
pub struct Ctx {
    pub config: Config,
    pub fleet: Fleet,
    pub http: HttpClient,
}

/// Which tools are offered.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// Only `read` and `record` tools are listed and callable.
    pub read_only: bool,
}

pub struct Engine {
    ctx: Arc<Ctx>,
    tools: Vec<ToolDef>,
    mode: Mode,
}

impl Engine {
    pub fn new(config: Config, mode: Mode) -> anyhow::Result<Self> {
        let fleet = Fleet::new(&config)?;
        let http = HttpClient::new(config.server.output_cap)?;
        Ok(Self {
            ctx: Arc::new(Ctx {
                config,
                fleet,
                http,
            }),
            tools: crate::tools::registry(),
            mode,
        })
    }

    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// Opens ssh masters in the background so the first call is warm.
    pub fn warm_up(&self) {
        self.ctx.fleet.warm_up();
    }

    fn visible(&self, t: &ToolDef) -> bool {
        !self.mode.read_only || t.meta.effect.is_read_only()
    }

    /// The tools this server offers, in registry order.
    pub fn tools(&self) -> impl Iterator<Item = &ToolDef> {
        self.tools.iter().filter(|t| self.visible(t))
    }

    pub fn tool(&self, name: &str) -> Option<&ToolDef> {
        self.tools().find(|t| t.meta.name == name)
    }

    /// Runs one call. A hidden tool is as unknown as a missing one.
    pub async fn call(
        &self,
        name: &str,
        args: Option<Map<String, Value>>,
    ) -> Result<ToolOutput, ToolError> {
        let tool = self
            .tool(name)
            .ok_or_else(|| ToolError::unknown_tool(name))?;
        let started = std::time::Instant::now();
        let result = tool
            .invoke(self.ctx.clone(), args.unwrap_or_default())
            .await;
        let secrets = &self.ctx.config.secrets;
        let result = result
            .map(|mut out| {
                // Secrets are masked by value on the way out, whatever produced them.
                out.summary = secrets.mask(&out.summary);
                out.structured = mask_value(secrets, out.structured);
                out
            })
            .map_err(|mut e| {
                e.message = secrets.mask(&e.message);
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
