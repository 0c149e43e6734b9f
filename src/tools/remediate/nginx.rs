//! nginx: `reload_nginx` (test the configuration, then reload) and `adjust_rate_limit` (edit
//! the `limit_req_zone` rate, test, reload — and put the previous file back when the test
//! fails, so nginx keeps serving the old configuration).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{self, StepResult};
use crate::config::{Role, Service};
use crate::engine::action::{Action, Draft, RunCtx};
use crate::engine::plan::Step;
use crate::engine::{Ctx, Effect, Name, ToolError, ToolMeta, Toolset};
use crate::exec::Cmd;
use crate::exec::manager::{self, Op};

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

fn nginx_test() -> Cmd {
    Cmd::new(["nginx", "-t", "-q"]).privileged()
}

/// Per host, what ran.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub hosts: Vec<HostOutcome>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostOutcome {
    pub host: String,
    pub steps: Vec<StepResult>,
    /// The rate before the change (`adjust_rate_limit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_rate: Option<String>,
    /// The previous file was put back because the new one failed `nginx -t`.
    pub restored: bool,
    pub ok: bool,
}

fn summary_of(out: &Output) -> String {
    out.hosts
        .iter()
        .map(|h| {
            let what = if h.ok {
                "done".to_string()
            } else if h.restored {
                "REFUSED by nginx -t; previous config restored, nginx unchanged".to_string()
            } else {
                let f = h.steps.iter().find(|s| !s.ok);
                format!(
                    "FAILED{}",
                    f.map(|s| format!(": {} ({})", s.command, s.detail))
                        .unwrap_or_default()
                )
            };
            let prev = h
                .previous_rate
                .as_ref()
                .map(|r| format!(" (was {r})"))
                .unwrap_or_default();
            format!("{}: {what}{prev}", h.host)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub struct ReloadNginx;

/// Parameters of `reload_nginx`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadParams {
    /// Target hosts (inventory names), explicit.
    #[serde(deserialize_with = "crate::engine::args::names_required")]
    pub hosts: Vec<Name>,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

crate::impl_mutating!(ReloadParams);

impl Action for ReloadNginx {
    const META: ToolMeta = ToolMeta {
        name: "reload_nginx",
        title: "Reload nginx",
        description: "Tests nginx's configuration (`nginx -t`) and, only if it passes, reloads \
            nginx gracefully on the named hosts. Use after a configuration change or to \
            redistribute traffic. Needs approval of the exact plan. Returns per host the \
            commands run.",
        effect: Effect::Change,
        toolset: Toolset::Loadbalancer,
    };
    type Params = ReloadParams;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &ReloadParams) -> Result<Draft, ToolError> {
        let svc = proxy(ctx)?;
        let hosts = common::hosts_running(ctx, &p.hosts, &svc)?;
        let mut steps = Vec::new();
        for h in &hosts {
            let t = nginx_test();
            steps.push(Step::run(&h.name, &t.argv, h.sudo));
            let r = manager::control(svc.manager, Op::Reload, &svc.unit);
            steps.push(Step::run(&h.name, &r.argv, h.sudo));
        }
        Ok(Draft {
            steps,
            undo: Vec::new(),
            targets: common::targets(&hosts, &svc),
            confirm_text: String::new(),
        })
    }

    async fn execute(ctx: Arc<Ctx>, p: ReloadParams, run: RunCtx) -> Result<Output, ToolError> {
        let svc = proxy(&ctx)?;
        let hosts = common::hosts_running(&ctx, &p.hosts, &svc)?;
        let mut out = Vec::new();
        for h in &hosts {
            if run.stopped() {
                break;
            }
            let mut steps = vec![common::step(&ctx, h, &nginx_test()).await];
            if steps[0].ok {
                steps.push(
                    common::step(
                        &ctx,
                        h,
                        &manager::control(svc.manager, Op::Reload, &svc.unit),
                    )
                    .await,
                );
            }
            let ok = steps.iter().all(|s| s.ok);
            out.push(HostOutcome {
                host: h.name.clone(),
                steps,
                previous_rate: None,
                restored: false,
                ok,
            });
        }
        Ok(Output { hosts: out })
    }

    fn summary(out: &Output) -> String {
        format!("reload_nginx: {}", summary_of(out))
    }

    fn failed(out: &Output) -> bool {
        out.hosts.iter().any(|h| !h.ok)
    }
}

pub struct AdjustRateLimit;

/// Parameters of `adjust_rate_limit`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateParams {
    /// Target hosts (inventory names), explicit.
    #[serde(deserialize_with = "crate::engine::args::names_required")]
    pub hosts: Vec<Name>,
    /// The new rate in nginx syntax: requests per second (`10r/s`) or per minute (`600r/m`).
    #[schemars(regex(pattern = r"^[0-9]{1,9}r/[sm]$"))]
    pub rate: String,
    /// The `limit_req_zone` to change (default `api`).
    #[serde(default = "api")]
    pub zone: Name,
    /// Why; the approver and the audit log see it.
    pub reason: String,
    /// Return the plan; run nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn api() -> Name {
    Name::trusted("api")
}

crate::impl_mutating!(RateParams);

/// The commands, in order, for one host and file.
struct RateCmds {
    backup: Cmd,
    edit: Cmd,
    verify: Cmd,
    test: Cmd,
    restore: Cmd,
    read: Cmd,
}

fn rate_cmds(file: &str, zone: &str, rate: &str) -> RateCmds {
    let bak = format!("{file}.runbook-bak");
    // `|` delimits the sed expression (rates contain `/`); zone and rate are validated tokens.
    let expr = format!(r"s|(zone={zone}:[^ ;]+[[:space:]]+rate=)[0-9]+r/[sm]|\1{rate}|");
    let check = format!(r"zone={zone}:[^ ;]+[[:space:]]+rate={rate}");
    RateCmds {
        backup: Cmd::new(["cp", "-p", "--", file, &bak]).privileged(),
        edit: Cmd::new(["sed", "-i", "-E", &expr, "--", file]).privileged(),
        verify: Cmd::new(["grep", "-q", "-E", &check, "--", file]).privileged(),
        test: nginx_test(),
        restore: Cmd::new(["cp", "-p", "--", &bak, file]).privileged(),
        read: Cmd::new(["cat", "--", file]).privileged(),
    }
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

/// `rate=30r/s` of `zone` in the file's text.
fn current_rate(text: &str, zone: &str) -> Option<String> {
    let re = regex::Regex::new(&format!(
        r"zone={}:[^ ;]+\s+rate=([0-9]+r/[sm])",
        regex::escape(zone)
    ))
    .ok()?;
    re.captures(text).map(|c| c[1].to_string())
}

impl Action for AdjustRateLimit {
    const META: ToolMeta = ToolMeta {
        name: "adjust_rate_limit",
        title: "Adjust the nginx rate limit",
        description: "Changes the request rate of an nginx `limit_req_zone` (e.g. 30r/s → 10r/s) \
            on the named hosts: backs up the file, edits the rate, runs `nginx -t`, and reloads \
            only if the test passes — otherwise puts the previous file back, so nginx keeps its \
            old configuration. Use to contain a traffic spike. Needs approval of the exact plan. \
            Returns per host the previous rate and the commands run.",
        effect: Effect::Change,
        toolset: Toolset::Remediate,
    };
    type Params = RateParams;
    type Output = Output;

    fn plan(ctx: &Ctx, p: &RateParams) -> Result<Draft, ToolError> {
        check_rate(&p.rate)?;
        let svc = proxy(ctx)?;
        let file = svc.rate_limit_file.clone().ok_or_else(|| {
            ToolError::unavailable(format!(
                "service `{}` has no `rate_limit_file` configured",
                svc.name
            ))
        })?;
        let hosts = common::hosts_running(ctx, &p.hosts, &svc)?;
        let mut steps = Vec::new();
        for h in &hosts {
            let c = rate_cmds(&file, p.zone.as_str(), &p.rate);
            steps.push(Step::guarded(
                &h.name,
                format!(
                    "read the current rate of zone `{}` from {file} (for the undo)",
                    p.zone
                ),
            ));
            for cmd in [&c.backup, &c.edit, &c.verify, &c.test] {
                steps.push(Step::run(&h.name, &cmd.argv, h.sudo));
            }
            steps.push(Step::guarded(
                &h.name,
                format!(
                    "if any step above fails: {} and stop",
                    c.restore.argv.join(" ")
                ),
            ));
            let r = manager::control(svc.manager, Op::Reload, &svc.unit);
            steps.push(Step::run(&h.name, &r.argv, h.sudo));
        }
        Ok(Draft {
            steps,
            undo: vec![format!(
                "adjust_rate_limit back to the previous rate (reported per host), or restore {file}.runbook-bak"
            )],
            targets: common::targets(&hosts, &svc),
            confirm_text: String::new(),
        })
    }

    async fn execute(ctx: Arc<Ctx>, p: RateParams, run: RunCtx) -> Result<Output, ToolError> {
        let svc = proxy(&ctx)?;
        let file = svc
            .rate_limit_file
            .clone()
            .ok_or_else(|| ToolError::unavailable("no rate_limit_file"))?;
        let hosts = common::hosts_running(&ctx, &p.hosts, &svc)?;
        let mut out = Vec::new();
        for h in &hosts {
            if run.stopped() {
                break;
            }
            let c = rate_cmds(&file, p.zone.as_str(), &p.rate);
            let previous_rate = ctx
                .fleet
                .run(h, &c.read)
                .await
                .ok()
                .and_then(|o| current_rate(&o.stdout, p.zone.as_str()));
            let mut steps = Vec::new();
            let mut restored = false;
            for cmd in [&c.backup, &c.edit, &c.verify, &c.test] {
                let r = common::step(&ctx, h, cmd).await;
                let ok = r.ok;
                steps.push(r);
                if !ok {
                    break;
                }
            }
            // The backup exists from the first step on: restore whenever a later step failed.
            if steps.len() > 1 && steps.iter().any(|s| !s.ok) {
                let r = common::step(&ctx, h, &c.restore).await;
                restored = r.ok;
                steps.push(r);
            } else if steps.iter().all(|s| s.ok) {
                steps.push(
                    common::step(
                        &ctx,
                        h,
                        &manager::control(svc.manager, Op::Reload, &svc.unit),
                    )
                    .await,
                );
            }
            let ok = !restored && steps.iter().all(|s| s.ok);
            out.push(HostOutcome {
                host: h.name.clone(),
                steps,
                previous_rate,
                restored,
                ok,
            });
            if !ok {
                break;
            }
        }
        Ok(Output { hosts: out })
    }

    fn summary(out: &Output) -> String {
        format!("adjust_rate_limit: {}", summary_of(out))
    }

    fn failed(out: &Output) -> bool {
        out.hosts.iter().any(|h| !h.ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_files() {
        assert!(check_rate("10r/s").is_ok());
        assert!(check_rate("600r/m").is_ok());
        for bad in ["10", "r/s", "10r/h", "-1r/s", "10r/s;", "1234567890r/s"] {
            assert_eq!(
                check_rate(bad).unwrap_err().field.as_deref(),
                Some("rate"),
                "{bad}"
            );
        }
        let text =
            "limit_req_zone $binary_remote_addr zone=api:1m rate=30r/s;\nlimit_req_status 429;\n";
        assert_eq!(current_rate(text, "api").as_deref(), Some("30r/s"));
        assert_eq!(current_rate(text, "other"), None);
    }
}
