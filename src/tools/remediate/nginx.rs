//! nginx: `reload_nginx` (test the configuration, then reload) and `adjust_rate_limit`
//! (capture the rate, back up the file under a name of this request, edit, verify, `nginx -t`,
//! reload — and put the backup back when the test *or the reload* fails, so the next reload
//! never picks up a file that was refused).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::common;
use crate::config::{Host, Role, Service};
use crate::engine::plan::{At, Change, Command, Extract, Fact, Read, Step, UndoCall};
use crate::engine::runner::RunOutcome;
use crate::engine::{
    Action, Common, Ctx, Draft, Effect, Facts, Name, ToolError, ToolMeta, Toolset,
};
use crate::exec::manager::Op;

/// The proxy service (role `proxy`) of the inventory.
fn proxy(ctx: &Ctx) -> Result<Service, ToolError> {
    ctx.config
        .services
        .iter()
        .find(|s| s.role == Role::Proxy)
        .cloned()
        .ok_or_else(|| {
            ToolError::unavailable("no service with role = \"proxy\" (nginx) is configured")
        })
}

fn run(h: &Host, argv: &[&str]) -> Step {
    Step::run(
        &At::of(h),
        argv.iter().map(|a| a.to_string()).collect(),
        h.sudo,
    )
}

fn nginx_test(h: &Host) -> Step {
    run(h, &["nginx", "-t", "-q"])
}

pub struct ReloadNginx;

/// `reload_nginx` has only the common parameters.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadParams {}

impl Action for ReloadNginx {
    const META: ToolMeta = ToolMeta {
        name: "reload_nginx",
        title: "Reload nginx",
        description: "Tests nginx's configuration (`nginx -t`) and, only if it passes, reloads \
            nginx gracefully on the named hosts. Use after a configuration change or to \
            redistribute traffic. Needs approval of the exact plan. Returns per host each \
            step's outcome.",
        effect: Effect::Change,
        toolset: Toolset::Loadbalancer,
    };
    type Params = ReloadParams;

    fn plan(ctx: &Ctx, c: &Common, _p: &ReloadParams, _f: &Facts) -> Result<Draft, ToolError> {
        let svc = proxy(ctx)?;
        let hosts = common::hosts_running(ctx, &c.hosts, &svc)?;
        Ok(Draft {
            stages: hosts
                .iter()
                .map(|h| {
                    common::stage(h, vec![nginx_test(h), common::control(h, &svc, Op::Reload)])
                })
                .collect(),
            targets: common::targets(&hosts, &svc),
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, _p: &ReloadParams, out: &RunOutcome) -> String {
        format!("reload_nginx: {}", out.line())
    }
}

pub struct AdjustRateLimit;

/// Parameters of `adjust_rate_limit` (besides `hosts`, `reason`, `dry_run`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateParams {
    /// The new rate in nginx syntax: requests per second (`10r/s`) or per minute (`600r/m`).
    #[schemars(regex(pattern = r"^[0-9]{1,9}r/[sm]$"))]
    pub rate: String,
    /// The `limit_req_zone` to change (default `api`).
    #[serde(default = "api")]
    pub zone: Name,
}

fn api() -> Name {
    Name::trusted("api")
}

fn check_rate(rate: &str) -> Result<(), ToolError> {
    let ok = rate
        .strip_suffix("r/s")
        .or_else(|| rate.strip_suffix("r/m"))
        .is_some_and(|n| !n.is_empty() && n.len() <= 9 && n.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(ToolError::invalid(
            "rate",
            format!(
                "`{}` is not a rate like 10r/s or 600r/m",
                rate.escape_debug()
            ),
        ))
    }
}

fn rate_file(svc: &Service) -> Result<String, ToolError> {
    svc.rate_limit_file.clone().ok_or_else(|| {
        ToolError::unavailable(format!(
            "service `{}` has no `rate_limit_file` configured",
            svc.name
        ))
    })
}

/// The rate of `zone` in `file` on `h`.
fn rate_fact(h: &Host, file: &str, zone: &str) -> Fact {
    Fact {
        read: Read::Run(Command::new(
            &At::of(h),
            vec!["cat".into(), "--".into(), file.into()],
            h.sudo,
        )),
        extract: Extract::NginxRate { zone: zone.into() },
    }
}

/// The stage for one host: capture → backup → (compensate: restore) → edit → verify →
/// `nginx -t` → reload. The backup is named by the request (`{request_id}` is filled in by the
/// engine when it runs), so a second adjustment never overwrites the first one's backup.
fn rate_steps(h: &Host, svc: &Service, file: &str, zone: &str, rate: &str) -> Vec<Step> {
    let bak = format!("{file}.runbook-{{request_id}}.bak");
    // `|` delimits the sed expression (rates contain `/`); zone and rate are validated tokens.
    let expr = format!(r"s|(zone={zone}:[^ ;]+[[:space:]]+rate=)[0-9]+r/[sm]|\1{rate}|");
    let check = format!(r"zone={zone}:[^ ;]+[[:space:]]+rate={rate}");
    vec![
        Step::Capture {
            name: "previous_rate".into(),
            fact: rate_fact(h, file, zone),
        },
        run(h, &["cp", "-p", "--", file, &bak]),
        Step::Compensate {
            steps: vec![run(h, &["cp", "-p", "--", &bak, file])],
        },
        run(h, &["sed", "-i", "-E", &expr, "--", file]),
        run(h, &["grep", "-q", "-E", &check, "--", file]),
        nginx_test(h),
        common::control(h, svc, Op::Reload),
    ]
}

impl Action for AdjustRateLimit {
    const META: ToolMeta = ToolMeta {
        name: "adjust_rate_limit",
        title: "Adjust the nginx rate limit",
        description: "Changes the request rate of an nginx `limit_req_zone` (e.g. 30r/s → 10r/s) \
            on the named hosts: backs up the file, edits the rate, runs `nginx -t`, and reloads \
            — and when the test or the reload fails, puts the previous file back, so nginx keeps \
            its old configuration. Use to contain a traffic spike. Needs approval of the exact \
            plan, which shows the rate before and after and the undo call. Returns per host each \
            step's outcome and the previous rate.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    type Params = RateParams;

    fn facts(ctx: &Ctx, c: &Common, p: &RateParams) -> Result<Vec<(String, Fact)>, ToolError> {
        check_rate(&p.rate)?;
        let svc = proxy(ctx)?;
        let file = rate_file(&svc)?;
        let hosts = common::hosts_running(ctx, &c.hosts, &svc)?;
        Ok(hosts
            .iter()
            .map(|h| {
                (
                    format!("rate on {}", h.name),
                    rate_fact(h, &file, p.zone.as_str()),
                )
            })
            .collect())
    }

    fn plan(ctx: &Ctx, c: &Common, p: &RateParams, facts: &Facts) -> Result<Draft, ToolError> {
        let svc = proxy(ctx)?;
        let file = rate_file(&svc)?;
        let hosts = common::hosts_running(ctx, &c.hosts, &svc)?;
        let zone = p.zone.as_str();
        let mut changes = Vec::new();
        // Hosts by their rate now: one undo call per rate.
        let mut by_rate: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for h in &hosts {
            let before = facts.get(&format!("rate on {}", h.name))?;
            let before = before.as_str().unwrap_or_default().to_string();
            changes.push(Change {
                what: format!("rate of zone `{zone}` on {}", h.name),
                before: before.clone(),
                after: p.rate.clone(),
            });
            by_rate.entry(before).or_default().push(h.name.clone());
        }
        let undo = by_rate
            .into_iter()
            .map(|(rate, hosts)| UndoCall {
                tool: "adjust_rate_limit".into(),
                arguments: json!({"hosts": hosts, "rate": rate, "zone": zone, "reason": "undo"}),
            })
            .collect();
        Ok(Draft {
            stages: hosts
                .iter()
                .map(|h| common::stage(h, rate_steps(h, &svc, &file, zone, &p.rate)))
                .collect(),
            changes,
            undo,
            targets: common::targets(&hosts, &svc),
            ..Draft::default()
        })
    }

    fn summary(_c: &Common, p: &RateParams, out: &RunOutcome) -> String {
        let was: Vec<String> = out
            .stages
            .iter()
            .filter_map(|s| {
                let r = s.captured.get("previous_rate")?.as_str()?;
                Some(format!("{} was {r}", s.stage))
            })
            .collect();
        format!(
            "adjust_rate_limit to {}: {} ({})",
            p.rate,
            out.line(),
            was.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert!(check_rate("10r/s").is_ok());
        assert!(check_rate("600r/m").is_ok());
        for bad in ["10", "r/s", "10r/h", "-1r/s", "10r/s;", "1234567890r/s"] {
            assert_eq!(
                check_rate(bad).unwrap_err().field.as_deref(),
                Some("rate"),
                "{bad}"
            );
        }
    }
}
