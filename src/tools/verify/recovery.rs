//! `verify_recovery`: repeated health checks, and from Prometheus the requests and 5xx
//! answers *since the fix* — each counter's value now minus its value at the fix (a counter
//! born since, as a restart makes them, counts whole). A 5-minute rate stays red for five
//! minutes after a real fix; a window that starts at the fix does not. No traffic since the
//! fix is `unknown`, never a pass.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::endpoints;
use crate::digest::Digest;
use crate::engine::{Ctx, Effect, Name, Tool, ToolError, ToolMeta, Toolset};
use crate::tools::assess::health::check;
use crate::tools::metrics::api;

pub struct VerifyRecovery;

/// Requests that are traffic: neither Prometheus scrapes nor health probes (this tool's own
/// checks must not make a quiet service look judged).
const REQUESTS: &str = "http_requests_total{path!~\"/metrics|/health\"}";

/// Parameters of `verify_recovery`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// When the fix landed: RFC 3339, Unix seconds, or a duration ago (`10m`).
    pub since: String,
    /// Inventory host names; default: every host with a health URL.
    #[serde(default, deserialize_with = "crate::engine::args::names")]
    pub hosts: Option<Vec<Name>>,
    /// Health check rounds (default 5).
    #[serde(default = "five")]
    #[schemars(range(min = 1, max = 30))]
    pub checks: u32,
    /// Seconds between rounds (default 2).
    #[serde(default = "two")]
    #[schemars(range(min = 0, max = 10))]
    pub interval_secs: u64,
    /// Largest 5xx share of requests since the fix that still passes (default 0.01).
    #[serde(default = "one_percent")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_error_ratio: f64,
}

fn five() -> u32 {
    5
}
fn two() -> u64 {
    2
}
fn one_percent() -> f64 {
    0.01
}

/// Recovered, not recovered, or not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Recovered,
    /// Healthy, but no traffic (or no Prometheus) to judge the errors by.
    Unknown,
    NotRecovered,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub verdict: Verdict,
    /// The window judged: from the fix to now (RFC 3339).
    pub since: String,
    pub window_secs: u64,
    pub hosts: Vec<HostRecovery>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostRecovery {
    pub host: String,
    pub verdict: Verdict,
    /// Healthy answers of all checks, over every service of the host.
    pub checks_passed: u32,
    pub checks_total: u32,
    /// Requests and 5xx answers since the fix (Prometheus `increase`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors_5xx: Option<f64>,
    /// Why the verdict is what it is.
    pub why: String,
}

impl Tool for VerifyRecovery {
    const META: ToolMeta = ToolMeta {
        name: "verify_recovery",
        title: "Verify recovery",
        description: "Checks that a fix held: runs N rounds of health checks and asks Prometheus \
            for the requests and 5xx errors since the fix (not a 5-minute rate that lags). Use \
            it after a remediation, with `since` = when it finished. Returns a verdict per host: \
            recovered, not_recovered, or unknown when there was no traffic to judge by.",
        effect: Effect::Read,
        toolset: Toolset::Verify,
    };
    type Params = Params;
    type Output = Output;

    async fn run(ctx: Arc<Ctx>, p: Params) -> Result<Output, ToolError> {
        let since = api::time_arg("since", &p.since)?;
        let now = api::now();
        if since > now + 1.0 {
            return Err(ToolError::invalid("since", "must be in the past"));
        }
        // Whole seconds, at least one: a fix that landed a moment ago has a window too.
        let window = (now - since).ceil().max(1.0);
        if !(1..=30).contains(&p.checks) {
            return Err(ToolError::invalid("checks", "must be within 1..=30"));
        }
        if p.interval_secs > 10 {
            return Err(ToolError::invalid("interval_secs", "must be within 0..=10"));
        }
        if !(0.0..=1.0).contains(&p.max_error_ratio) {
            return Err(ToolError::invalid(
                "max_error_ratio",
                "must be within 0..=1",
            ));
        }
        let eps = endpoints(&ctx, &p.hosts)?;
        let traffic = async {
            if ctx.config.prometheus.is_none() {
                return Ok(None);
            }
            let errors = REQUESTS.replace('}', ",status=~\"5..\"}");
            let (req, err) = tokio::join!(
                since_fix(&ctx, REQUESTS, now - window),
                since_fix(&ctx, &errors, now - window)
            );
            Ok::<_, ToolError>(Some((req?, err?)))
        };
        let checks = async {
            let mut passed = vec![0u32; eps.len()];
            for round in 0..p.checks {
                if round > 0 {
                    // The interval between rounds is what the caller asked for.
                    tokio::time::sleep(Duration::from_secs(p.interval_secs)).await;
                }
                let results = futures::future::join_all(
                    eps.iter()
                        .map(|e| check(&ctx, &e.service, &e.url, e.key.as_deref())),
                )
                .await;
                for (i, r) in results.iter().enumerate() {
                    passed[i] += u32::from(r.healthy);
                }
            }
            passed
        };
        let (traffic, passed) = tokio::join!(traffic, checks);
        let traffic = traffic?;
        let mut hosts: Vec<HostRecovery> = Vec::new();
        for (e, n) in eps.iter().zip(passed) {
            match hosts.iter_mut().find(|h| h.host == e.host) {
                Some(h) => {
                    h.checks_passed += n;
                    h.checks_total += p.checks;
                }
                None => hosts.push(HostRecovery {
                    host: e.host.clone(),
                    verdict: Verdict::Unknown,
                    checks_passed: n,
                    checks_total: p.checks,
                    requests: None,
                    errors_5xx: None,
                    why: String::new(),
                }),
            }
        }
        for h in &mut hosts {
            let of = |v: &[(api::Labels, f64)]| {
                v.iter()
                    .find(|(l, _)| l.get("host") == Some(&h.host))
                    .map(|(_, x)| *x)
            };
            if let Some((req, err)) = &traffic {
                h.requests = Some(of(req).unwrap_or(0.0));
                h.errors_5xx = Some(of(err).unwrap_or(0.0));
            }
            (h.verdict, h.why) = judge(h, p.max_error_ratio);
        }
        let verdict = hosts
            .iter()
            .map(|h| h.verdict)
            .max()
            .unwrap_or(Verdict::Unknown);
        Ok(Output {
            verdict,
            since: api::rfc3339(since),
            window_secs: window as u64,
            hosts,
        })
    }

    fn summary(out: &Output) -> String {
        let word = match out.verdict {
            Verdict::Recovered => "RECOVERED",
            Verdict::Unknown => "UNKNOWN",
            Verdict::NotRecovered => "NOT RECOVERED",
        };
        let mut d = Digest::new(format!(
            "{word}: {} host(s), since {} ({} s)",
            out.hosts.len(),
            out.since,
            out.window_secs
        ));
        let mut good = Vec::new();
        for h in &out.hosts {
            if h.verdict == Verdict::Recovered {
                good.push(h.host.as_str());
            } else {
                d.problem(format!("{}: {}", h.host, h.why));
            }
        }
        if !good.is_empty() {
            let whys: Vec<String> = out
                .hosts
                .iter()
                .filter(|h| h.verdict == Verdict::Recovered)
                .map(|h| format!("{} {}", h.host, h.why))
                .collect();
            d.ok(whys.join("; "));
        }
        match out.verdict {
            Verdict::Recovered => d.next("validate_performance; then close the incident"),
            Verdict::Unknown => d.next("wait for traffic (or send some) and call again"),
            Verdict::NotRecovered => d.next("run_diagnostics on the failing hosts"),
        };
        d.render()
    }
}

/// Per host, how much the counters matching `selector` grew since `since`: each series' value
/// now minus its value then. A series born after `since` (a restarted service's counters, a
/// status never seen before) counts whole — `increase()` would count nothing for its first
/// sample, and a fix by restart starts every counter over.
async fn since_fix(
    ctx: &Ctx,
    selector: &str,
    since: f64,
) -> Result<Vec<(api::Labels, f64)>, ToolError> {
    let (now, then) = tokio::join!(
        api::instant(ctx, selector, None),
        api::instant(ctx, selector, Some(since))
    );
    let then: std::collections::HashMap<api::Labels, f64> = then?.into_iter().collect();
    let mut by_host: std::collections::BTreeMap<String, f64> = Default::default();
    for (labels, v) in now? {
        let grew = match then.get(&labels) {
            Some(t) if *t <= v => v - t,
            // Born since, or reset (restarted): all of it is since the fix.
            _ => v,
        };
        *by_host.entry(api::host_of(&labels)).or_default() += grew;
    }
    Ok(by_host
        .into_iter()
        .map(|(h, v)| (api::Labels::from([("host".to_string(), h)]), v))
        .collect())
}

/// The verdict of one host, and why, in words that quote the numbers.
fn judge(h: &HostRecovery, max_ratio: f64) -> (Verdict, String) {
    let checks = format!("health {}/{}", h.checks_passed, h.checks_total);
    if h.checks_passed < h.checks_total {
        return (Verdict::NotRecovered, format!("{checks} healthy"));
    }
    match (h.requests, h.errors_5xx) {
        (None, _) | (_, None) => (
            Verdict::Unknown,
            format!("{checks}; no Prometheus to count errors since the fix"),
        ),
        (Some(r), _) if r < 1.0 => (
            Verdict::Unknown,
            format!("{checks}; no requests since the fix, so no error rate to judge"),
        ),
        (Some(r), Some(e)) => {
            let ratio = e / r;
            let line = format!(
                "{checks}; {e:.0} 5xx of {r:.0} requests since the fix ({:.2}%)",
                ratio * 100.0
            );
            if ratio <= max_ratio {
                (Verdict::Recovered, line)
            } else {
                (
                    Verdict::NotRecovered,
                    format!("{line}, above {:.2}%", max_ratio * 100.0),
                )
            }
        }
    }
}
