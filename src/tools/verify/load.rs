//! `run_load_test`: the runbook's light load test (`ab -n 100 -c 10`) as a gated change — it
//! adds load to a service that may be struggling — against configured URLs only.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Service;
use crate::engine::plan::{At, Stage, Step};
use crate::engine::runner::RunOutcome;
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Name, Target, ToolError, ToolMeta, Toolset,
};

pub struct RunLoadTest;

/// Parameters of `run_load_test` (besides `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// An inventory host to test directly; default: the load balancer's health URL.
    #[serde(default)]
    pub host: Option<Name>,
    /// The service whose health URL is tested on `host` (default: its first with one).
    #[serde(default)]
    pub service: Option<Name>,
    /// Requests in all (default 100, as the runbook).
    #[serde(default = "hundred")]
    #[schemars(range(min = 1, max = 1000))]
    pub requests: u32,
    /// Requests at a time (default 10, as the runbook).
    #[serde(default = "ten")]
    #[schemars(range(min = 1, max = 50))]
    pub concurrency: u32,
}

fn hundred() -> u32 {
    100
}
fn ten() -> u32 {
    10
}

impl Action for RunLoadTest {
    const META: ToolMeta = ToolMeta {
        name: "run_load_test",
        title: "Run a light load test",
        description: "Sends N health requests, C at a time (default 100 × 10, the runbook's \
            `ab -n 100 -c 10`), from this server to the load balancer or one instance, with \
            the API key kept here. It adds load to a service that may be struggling, so it \
            needs approval. Use it after recovery, once validate_performance looks normal. \
            Returns how many answered 2xx and p50/p95/p99/max latency.",
        effect: Effect::Change,
        toolset: Toolset::Verify,
    };
    const HOSTS: bool = false;
    type Params = Params;

    fn plan(ctx: &Ctx, _c: &Common, p: &Params, _f: &Facts) -> Result<Draft, ToolError> {
        if !(1..=1000).contains(&p.requests) {
            return Err(ToolError::invalid("requests", "must be within 1..=1000"));
        }
        if !(1..=50).contains(&p.concurrency) {
            return Err(ToolError::invalid("concurrency", "must be within 1..=50"));
        }
        let (target, url, key) = match &p.host {
            None => {
                if p.service.is_some() {
                    return Err(ToolError::invalid("service", "needs `host`"));
                }
                let lb = ctx.config.load_balancer.as_ref().ok_or_else(|| {
                    ToolError::invalid("host", "no [load_balancer] is configured: name a host")
                })?;
                (
                    "load_balancer".to_string(),
                    lb.health_url.clone(),
                    lb.api_key_secret.clone(),
                )
            }
            Some(h) => {
                let host = ctx.config.host(h.as_str()).ok_or_else(|| {
                    ToolError::invalid("host", format!("no host `{}` in the inventory", h.as_str()))
                })?;
                let svc = ctx
                    .config
                    .services_on(&host.name)
                    .filter(|s| s.health_url.is_some())
                    .find(|s| p.service.as_ref().is_none_or(|n| n.as_str() == s.name))
                    .ok_or_else(|| {
                        ToolError::invalid(
                            "service",
                            "no such service with a health_url on this host",
                        )
                    })?;
                let url = Service::url_for(svc.health_url.as_deref().unwrap_or_default(), host);
                (host.name.clone(), url, svc.api_key_secret.clone())
            }
        };
        let at = At::server();
        Ok(Draft {
            stages: vec![Stage {
                name: at.host.clone(),
                via: at.via.clone(),
                steps: vec![Step::Load {
                    url: url.clone(),
                    api_key_secret: key,
                    requests: p.requests,
                    concurrency: p.concurrency,
                }],
            }],
            notes: vec![format!(
                "adds {} requests to {url}, {} at a time; nothing to undo",
                p.requests, p.concurrency
            )],
            targets: vec![Target {
                host: target,
                service: p.service.as_ref().map(|s| s.as_str().to_string()),
            }],
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, _p: &Params, out: &RunOutcome) -> String {
        let detail = out
            .stages
            .iter()
            .flat_map(|s| &s.steps)
            .map(|s| s.detail.as_str())
            .find(|d| !d.is_empty())
            .unwrap_or_default()
            .to_string();
        format!("run_load_test: {}; {detail}", out.line())
    }
}
