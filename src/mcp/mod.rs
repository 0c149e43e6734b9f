//! The only module that knows MCP (architecture invariant: nothing else imports `rmcp`). It
//! converts between rmcp types and the engine's, and serves the one handler over stdio.

mod channels;
mod server;

pub use server::RunbookServer;

use std::sync::Arc;

use rmcp::ServiceExt;

use crate::engine::Engine;

/// Serves MCP on stdin/stdout until the client closes the stream.
pub async fn serve_stdio(engine: Arc<Engine>) -> anyhow::Result<()> {
    let service = RunbookServer::new(engine.clone())
        .serve(rmcp::transport::stdio())
        .await?;
    // Warm ssh masters only after `initialize` has been answered: start-up never waits on the
    // fleet.
    engine.warm_up();
    let reason = service.waiting().await?;
    tracing::info!(?reason, "client closed the session");
    Ok(())
}
