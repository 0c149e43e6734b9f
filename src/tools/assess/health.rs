//! `check_health`: the services' health endpoints on each host and the load balancer's, called
//! from the server with the API key header (the key never reaches a command line).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::services::select_services;
use crate::config::{Host, Service};
use crate::engine::fanout::{self, HostResult};
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};
use crate::exec::{ExecError, HttpRequest};

pub struct CheckHealth;

/// Parameters of `check_health`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Inventory host names; default: every host.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub hosts: Option<Vec<Name>>,
    /// Service names; default: every service with a health URL.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub services: Option<Vec<Name>>,
    /// Also check the load balancer's health URL (default true).
    #[serde(default = "yes")]
    pub load_balancer: bool,
}

fn yes() -> bool {
    true
}

/// Health of the instances and the load balancer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub hosts: Vec<HostResult<HostHealth>>,
    /// The load balancer's answer, when configured and asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<HealthCheck>,
    /// Endpoints that are not healthy, as `host/service` (or `load_balancer`).
    pub unhealthy: Vec<String>,
}

/// The health endpoints of one host.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HostHealth {
    pub checks: Vec<HealthCheck>,
}

/// One health request.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HealthCheck {
    /// Service name, or `load_balancer`.
    pub service: String,
    pub url: String,
    /// True for a 2xx answer.
    pub healthy: bool,
    /// HTTP status, when the endpoint answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// Start of the body (at most 300 bytes), or why there was no answer.
    pub detail: String,
}

impl Tool for CheckHealth {
    const META: ToolMeta = ToolMeta {
        name: "check_health",
        title: "Check health endpoints",
        description: "Calls each service's health endpoint on each host (with the configured API \
            key; the key is never shown) and the load balancer's health URL, in parallel. Use it to \
            tell a dead or unhealthy instance from a healthy one, and whether users are affected \
            through the load balancer. Returns per endpoint: healthy, HTTP status, latency, body \
            excerpt; plus an `unhealthy` list.",
        effect: Effect::Read,
        toolset: Toolset::Assess,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        let hosts = fanout::select_hosts(&ctx, &p.hosts)?;
        let wanted = select_services(&ctx, &p.services)?;
        let deadline = ctx.config.server.http_timeout + std::time::Duration::from_secs(1);
        let lb = async {
            match (&ctx.config.load_balancer, p.load_balancer) {
                (Some(lb), true) => Some(
                    check(
                        &ctx,
                        "load_balancer",
                        &lb.health_url,
                        lb.api_key_secret.as_deref(),
                    )
                    .await,
                ),
                _ => None,
            }
        };
        let per_host = fanout::per_host(&ctx, hosts, deadline, |ctx, host| {
            let wanted = wanted.clone();
            async move { Ok::<_, ExecError>(host_health(&ctx, &host, wanted.as_deref()).await) }
        });
        let (results, load_balancer) = tokio::join!(per_host, lb);
        let mut unhealthy: Vec<String> = results
            .iter()
            .filter_map(|r| r.result.as_ref().map(|v| (&r.host, v)))
            .flat_map(|(h, v)| {
                v.checks
                    .iter()
                    .filter(|c| !c.healthy)
                    .map(move |c| format!("{h}/{}", c.service))
            })
            .collect();
        if load_balancer.as_ref().is_some_and(|c| !c.healthy) {
            unhealthy.push("load_balancer".into());
        }
        Ok(Output {
            hosts: results,
            load_balancer,
            unhealthy,
        })
    }

    fn summary(out: &Output) -> String {
        let total: usize = out
            .hosts
            .iter()
            .filter_map(|r| r.result.as_ref())
            .map(|v| v.checks.len())
            .sum();
        let mut s = format!("{total} instance endpoint(s) checked");
        if let Some(lb) = &out.load_balancer {
            s.push_str(&format!(
                "; load balancer {}",
                if lb.healthy { "healthy" } else { "UNHEALTHY" }
            ));
        }
        if out.unhealthy.is_empty() {
            s.push_str("; all healthy");
        } else {
            let why: Vec<String> = out
                .hosts
                .iter()
                .filter_map(|r| r.result.as_ref().map(|v| (&r.host, v)))
                .flat_map(|(h, v)| {
                    v.checks
                        .iter()
                        .filter(|c| !c.healthy)
                        .map(move |c| match c.status_code {
                            Some(code) => format!("{h}/{} HTTP {code}", c.service),
                            None => format!("{h}/{} {}", c.service, c.detail),
                        })
                })
                .collect();
            s.push_str(&format!("; UNHEALTHY: {}", why.join("; ")));
        }
        s
    }
}

async fn host_health(ctx: &Ctx, host: &Host, wanted: Option<&[String]>) -> HostHealth {
    let services: Vec<&Service> = ctx
        .config
        .services_on(&host.name)
        .filter(|s| s.health_url.is_some())
        .filter(|s| wanted.is_none_or(|w| w.contains(&s.name)))
        .collect();
    let checks = services.iter().filter_map(|s| {
        let url = Service::url_for(s.health_url.as_deref()?, host);
        Some(async move { check(ctx, &s.name, &url, s.api_key_secret.as_deref()).await })
    });
    HostHealth {
        checks: futures::future::join_all(checks).await,
    }
}

/// One GET with the API key header; never fails, the failure is in the result.
pub(crate) async fn check(
    ctx: &Ctx,
    service: &str,
    url: &str,
    secret: Option<&str>,
) -> HealthCheck {
    let mut req = HttpRequest::get(url, ctx.config.server.http_timeout);
    if let Some(name) = secret {
        match ctx.config.secrets.get(name) {
            Ok(key) => req = req.header("X-API-Key", key),
            Err(e) => {
                return HealthCheck {
                    service: service.into(),
                    url: url.into(),
                    healthy: false,
                    status_code: None,
                    latency_ms: 0,
                    detail: e,
                };
            }
        }
    }
    match ctx.http.send(&req).await {
        Ok(r) => HealthCheck {
            service: service.into(),
            url: url.into(),
            healthy: (200..300).contains(&r.status),
            status_code: Some(r.status),
            latency_ms: r.elapsed.as_millis() as u64,
            detail: excerpt(&r.body, 300),
        },
        Err(e) => HealthCheck {
            service: service.into(),
            url: url.into(),
            healthy: false,
            status_code: None,
            latency_ms: match e {
                ExecError::TimedOut(_) => ctx.config.server.http_timeout.as_millis() as u64,
                _ => 0,
            },
            detail: match e {
                ExecError::TimedOut(_) => {
                    format!("timed out after {:?}", ctx.config.server.http_timeout)
                }
                other => other.to_string(),
            },
        },
    }
}

pub(super) fn excerpt(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
