//! The `ServerHandler`: thin. Lists the engine's tools as MCP tools and turns an engine result
//! into a `CallToolResult` (summary text + structured content, `isError` for failures).

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use crate::engine::{Engine, ToolDef};

const INSTRUCTIONS: &str = "runbook-mcp exposes an incident-response runbook as tools. Start with \
run_diagnostics (one call covers service status, health, resources, errors and the load balancer \
on every host), then narrow down with check_service_status, check_health, \
check_system_resources, get_recent_logs, get_bridge_status and query_metrics. Host names are the \
inventory's; omit `hosts` to cover every host.";

#[derive(Clone)]
pub struct RunbookServer {
    engine: Arc<Engine>,
    tools: Arc<Vec<Tool>>,
}

impl RunbookServer {
    pub fn new(engine: Arc<Engine>) -> Self {
        let tools = engine.tools().map(to_mcp_tool).collect();
        Self {
            engine,
            tools: Arc::new(tools),
        }
    }
}

/// The engine's description of a tool as an MCP tool; annotations come from its effect.
pub fn to_mcp_tool(def: &ToolDef) -> Tool {
    let a = def.annotations();
    let annotations = ToolAnnotations::new()
        .read_only(a.read_only_hint)
        .destructive(a.destructive_hint)
        .idempotent(a.idempotent_hint)
        .open_world(a.open_world_hint);
    Tool::new(
        def.meta.name,
        def.meta.description,
        Arc::new(object(&def.input_schema)),
    )
    .with_title(def.meta.title)
    .with_raw_output_schema(Arc::new(object(&def.output_schema)))
    .with_annotations(annotations)
}

fn object(v: &serde_json::Value) -> JsonObject {
    v.as_object().cloned().unwrap_or_default()
}

impl ServerHandler for RunbookServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let call = self.engine.call(&request.name, request.arguments);
        // A cancelled request stops waiting; executions in flight end at their own timeouts.
        let result = tokio::select! {
            r = call => r,
            () = context.ct.cancelled() => {
                return Ok(CallToolResult::error(vec![ContentBlock::text("cancelled by the client")]).into());
            }
        };
        Ok(match result {
            Ok(out) => {
                let json = serde_json::to_string(&out.structured).unwrap_or_default();
                let mut r = CallToolResult::success(vec![
                    ContentBlock::text(out.summary),
                    ContentBlock::text(json),
                ]);
                r.structured_content = Some(out.structured);
                r.is_error = Some(out.is_error);
                r
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
        }
        .into())
    }
}
