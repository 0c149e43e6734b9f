//! Verification after a fix: is it really over (`verify_recovery`), and is it fast again
//! (`validate_performance`)?

mod load;
mod performance;
mod recovery;

pub use load::RunLoadTest;
pub use performance::ValidatePerformance;
pub use recovery::VerifyRecovery;

use crate::config::Service;
use crate::engine::{Ctx, Name, ToolError, fanout};

/// A health endpoint of one service on one host.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub host: String,
    pub service: String,
    pub url: String,
    pub key: Option<String>,
}

/// The configured health URLs of the selected hosts (every host by default).
pub(crate) fn endpoints(ctx: &Ctx, hosts: &Option<Vec<Name>>) -> Result<Vec<Endpoint>, ToolError> {
    let named = hosts.as_ref().is_some_and(|h| !h.is_empty());
    let hosts = fanout::select_hosts(ctx, hosts)?;
    let mut out = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        // A host the caller named must be judged, not silently left out.
        if named
            && !ctx
                .config
                .services_on(&h.name)
                .any(|s| s.health_url.is_some())
        {
            return Err(ToolError::invalid(
                format!("hosts[{i}]"),
                format!("no service with a health_url runs on {}", h.name),
            ));
        }
        for s in ctx.config.services_on(&h.name) {
            if let Some(url) = s.health_url.as_deref() {
                out.push(Endpoint {
                    host: h.name.clone(),
                    service: s.name.clone(),
                    url: Service::url_for(url, h),
                    key: s.api_key_secret.clone(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(ToolError::invalid(
            "hosts",
            "no service with a health_url runs on these hosts",
        ));
    }
    Ok(out)
}
