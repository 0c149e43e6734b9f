//! The `ServerHandler`: thin. Lists the engine's tools as MCP tools and turns an engine result
//! into a `CallToolResult` (summary text + structured content, `isError` for failures).

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, JsonObject, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    Prompt, PromptArgument, PromptMessage, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::channels::{self, ElicitAsker, PeerProgress};
use crate::engine::call::{CallCtx, InputRound, Outcome};
use crate::engine::{Engine, ToolDef};

const INSTRUCTIONS: &str = "runbook-mcp exposes an incident-response runbook as tools. Start with \
run_diagnostics (one call covers service status, health, resources, errors and the load balancer \
on every host), then narrow down with check_service_status, check_health, \
check_system_resources, get_recent_logs, get_bridge_status and query_metrics. Host names are the \
inventory's; omit `hosts` to cover every host.";

#[derive(Clone)]
pub struct RunbookServer {
    engine: Arc<Engine>,
    /// The MCP view of the engine's tools, made on the first `tools/list` or call.
    tools: Arc<std::sync::OnceLock<Vec<Tool>>>,
    /// This connection's incident binding. A transport with several sessions (streamable
    /// HTTP) must make one server per session, never clone one across them.
    session: Arc<crate::engine::Session>,
}

impl RunbookServer {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            tools: Arc::new(std::sync::OnceLock::new()),
            session: Arc::new(crate::engine::Session::default()),
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

impl RunbookServer {
    fn tools(&self) -> &[Tool] {
        self.tools
            .get_or_init(|| self.engine.tools().map(to_mcp_tool).collect())
    }

    /// Who asks and which channels this request offers for a human's decision.
    fn call_ctx(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> CallCtx {
        let client = context
            .client_info()
            .map(|i| i.name.to_string())
            .unwrap_or_else(|| "unknown-client".into());
        // Who asks is the kernel's account; the client's self-chosen name is a label only.
        let config = &self.engine.ctx().config;
        let user = crate::engine::identity::account(config.approval.service_account.as_deref());
        let mut call = CallCtx::local(&user);
        call.client = crate::screen::escape(&client);
        call.session = Some(self.session.clone());
        let modern = context
            .protocol_version()
            .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        let can_elicit = context
            .client_capabilities()
            .is_some_and(|c| c.elicitation.is_some());
        if modern {
            // Server-to-client requests are forbidden here: ask with InputRequiredResult.
            call.input_required = Some(InputRound {
                request_state: request.request_state.clone(),
                answer: channels::answer_in(request.input_responses.as_ref()),
            });
        } else if can_elicit {
            call.asker = Some(Arc::new(ElicitAsker {
                peer: context.peer.clone(),
                timeout: self.engine.ctx().config.approval.wait,
            }));
        }
        if let Some(token) = context.meta.get_progress_token() {
            call.progress = Some(Arc::new(PeerProgress {
                peer: context.peer.clone(),
                token,
            }));
        }
        call
    }
}

impl ServerHandler for RunbookServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
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
        Ok(ListToolsResult::with_all_items(self.tools().to_vec()))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(
            crate::catalog::RESOURCES
                .iter()
                .map(|d| {
                    Resource::new(d.uri, d.name)
                        .with_description(d.description)
                        .with_mime_type(d.mime)
                })
                .collect(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            crate::catalog::TEMPLATES
                .iter()
                .map(|d| {
                    ResourceTemplate::new(d.uri, d.name)
                        .with_description(d.description)
                        .with_mime_type(d.mime)
                })
                .collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.clone();
        match crate::catalog::read(&self.engine, &uri).await {
            Ok((text, mime)) => Ok(ReadResourceResult::new(vec![
                ResourceContents::text(text, uri).with_mime_type(mime),
            ])
            .into()),
            Err(crate::catalog::ReadError::NotFound(e)) => Err(McpError::resource_not_found(
                e,
                Some(serde_json::json!({"uri": request.uri})),
            )),
            Err(crate::catalog::ReadError::Failed(e)) => Err(McpError::internal_error(e, None)),
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(
            crate::catalog::PROMPTS
                .iter()
                .map(|p| {
                    let args = p
                        .arguments
                        .iter()
                        .map(|(n, d, req)| {
                            PromptArgument::new(*n)
                                .with_description(*d)
                                .with_required(*req)
                        })
                        .collect();
                    Prompt::new(p.name, Some(p.description), Some(args))
                })
                .collect(),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let args = request.arguments.clone().unwrap_or_default();
        match crate::catalog::prompt(&request.name, &args) {
            Ok(text) => {
                Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).into())
            }
            Err(e) => Err(McpError::invalid_params(e, None)),
        }
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools().iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let call_ctx = self.call_ctx(&request, &context);
        let call = self
            .engine
            .call_with(call_ctx, &request.name, request.arguments.clone());
        // A cancelled request stops waiting; executions in flight end at their own timeouts.
        let result = tokio::select! {
            r = call => r,
            () = context.ct.cancelled() => {
                return Ok(CallToolResult::error(vec![ContentBlock::text("cancelled by the client")]).into());
            }
        };
        Ok(match result {
            Ok(Outcome::InputRequired {
                request_state,
                message,
            }) => {
                return Ok(channels::input_required(&message, request_state).into());
            }
            Ok(Outcome::Done(out)) => {
                // The text is the model's screen: a digest, not the JSON again (DESIGN §9).
                let mut r = CallToolResult::success(vec![ContentBlock::text(out.summary)]);
                r.structured_content = Some(out.structured);
                r.is_error = Some(out.is_error);
                r
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
        }
        .into())
    }
}
