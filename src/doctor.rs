//! `runbook-mcp doctor`: reach every host and endpoint of the configuration and print one line
//! each — the first thing to run after writing a config (or starting the lab).

use std::process::ExitCode;
use std::time::Instant;

use crate::config::{Config, Service};
use crate::exec::{Cmd, Fleet, HttpClient, HttpRequest};

struct Row {
    what: String,
    ok: bool,
    ms: u128,
    detail: String,
}

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::new(&config)?;
    let http = HttpClient::new(64 * 1024)?;
    let mut checks: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = Row> + '_>>> =
        Vec::new();
    for h in &config.hosts {
        let fleet = &fleet;
        checks.push(Box::pin(async move {
            let t = Instant::now();
            let r = fleet.run(h, &Cmd::new(["uname", "-n"])).await;
            let (ok, detail) = match r {
                Ok(o) if o.success() => (true, format!("reached; hostname {}", o.stdout.trim())),
                Ok(o) => (false, o.stderr.trim().to_string()),
                Err(e) => (false, e.to_string()),
            };
            Row {
                what: format!("host {}", h.name),
                ok,
                ms: t.elapsed().as_millis(),
                detail,
            }
        }));
        for s in config.services_on(&h.name) {
            for (kind, url) in [("health", &s.health_url), ("metrics", &s.metrics_url)] {
                let Some(url) = url else { continue };
                let url = Service::url_for(url, h);
                let key = s
                    .api_key_secret
                    .as_deref()
                    .and_then(|k| config.secrets.get(k).ok());
                let what = format!("{} {} {kind}", h.name, s.name);
                checks.push(Box::pin(http_row(
                    &http,
                    what,
                    url,
                    key,
                    config.server.http_timeout,
                )));
            }
        }
    }
    if let Some(lb) = &config.load_balancer {
        let key = lb
            .api_key_secret
            .as_deref()
            .and_then(|k| config.secrets.get(k).ok());
        checks.push(Box::pin(http_row(
            &http,
            "load balancer".into(),
            lb.health_url.clone(),
            key,
            config.server.http_timeout,
        )));
    }
    for ep in &config.diagnostics.endpoints {
        match ep.resolved_url(&config.secrets) {
            // The row shows the configured URL; the secret-bearing one is only sent.
            Ok(url) => checks.push(Box::pin(async {
                let mut row = http_row(
                    &http,
                    format!("endpoint {}", ep.name),
                    url,
                    None,
                    config.server.http_timeout,
                )
                .await;
                row.detail = config.secrets.mask(&row.detail);
                row
            })),
            Err(e) => checks.push(Box::pin(async move {
                Row {
                    what: format!("endpoint {}", ep.name),
                    ok: false,
                    ms: 0,
                    detail: e,
                }
            })),
        }
    }
    if let Some(p) = &config.prometheus {
        checks.push(Box::pin(http_row(
            &http,
            "prometheus".into(),
            format!("{}/-/ready", p.url),
            None,
            config.server.http_timeout,
        )));
    }
    if let Some(sw) = &config.swarm {
        let fleet = &fleet;
        checks.push(Box::pin(async move {
            let t = Instant::now();
            let argv = ["docker", "-H", &sw.docker_host, "service", "ls"];
            let cmd = Cmd::new(argv.into_iter().chain(["--format", "{{.Name}}"]));
            let (ok, detail) = match fleet.run_local(&cmd).await {
                Ok(o) if o.success() => {
                    let names: Vec<&str> = o.stdout.lines().collect();
                    let missing: Vec<&str> = sw
                        .services
                        .iter()
                        .map(String::as_str)
                        .filter(|s| !names.contains(s))
                        .collect();
                    if missing.is_empty() {
                        (
                            true,
                            format!("{}: {}", sw.docker_host, sw.services.join(", ")),
                        )
                    } else {
                        let missing = missing.join(", ");
                        (false, format!("{}: no service {missing}", sw.docker_host))
                    }
                }
                Ok(o) => (false, o.stderr.lines().next().unwrap_or("").to_string()),
                Err(e) => (false, e.to_string()),
            };
            Row {
                what: "swarm".into(),
                ok,
                ms: t.elapsed().as_millis(),
                detail,
            }
        }));
    }
    if let Some(aws) = &config.aws {
        let (fleet, secrets) = (&fleet, &config.secrets);
        checks.push(Box::pin(async move {
            let t = Instant::now();
            let r = crate::tools::loadbalancer::read_target_group(fleet, secrets, aws).await;
            let (ok, detail) = match r {
                // Reached, and at least one target takes traffic.
                Ok(now) => (now.healthy > 0, now.line()),
                Err(e) => (false, e.message),
            };
            Row {
                what: "aws target group".into(),
                ok,
                ms: t.elapsed().as_millis(),
                detail,
            }
        }));
    }
    if let Some(t) = &config.approval.telegram {
        checks.push(Box::pin(telegram_row(&config, t, &http)));
    }
    let mut rows = futures::future::join_all(checks).await;
    for (name, st) in config.secrets.status() {
        rows.push(Row {
            what: format!("secret {name}"),
            ok: st.is_ok(),
            ms: 0,
            detail: st.err().unwrap_or("loaded").to_string(),
        });
    }
    println!("{:<44} {:<4} {:>7}  detail", "check", "ok", "ms");
    for r in &rows {
        println!(
            "{:<44} {:<4} {:>7}  {}",
            r.what,
            if r.ok { "ok" } else { "FAIL" },
            r.ms,
            config.secrets.mask(&r.detail)
        );
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    println!("{} check(s), {failed} failed", rows.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The approval bot answers `getMe`, and no webhook is set (with one, `getUpdates` — this
/// server's only way to hear presses — answers 409).
async fn telegram_row(
    config: &Config,
    t: &crate::config::ApprovalTelegram,
    http: &HttpClient,
) -> Row {
    let started = Instant::now();
    let timeout = config.server.http_timeout;
    let check = async {
        let bot = crate::engine::telegram::Bot::new(config, t, http.clone())?;
        let me = bot
            .call("getMe", serde_json::json!({}), timeout)
            .await
            .map_err(|e| e.to_string())?;
        let hook = bot
            .call("getWebhookInfo", serde_json::json!({}), timeout)
            .await
            .map_err(|e| e.to_string())?;
        let name = me["username"].as_str().unwrap_or("?").to_string();
        if hook["url"].as_str().is_some_and(|u| !u.is_empty()) {
            return Err(format!(
                "bot @{name}: a webhook is set, so polling cannot work (deleteWebhook, or use another bot)"
            ));
        }
        Ok(format!(
            "bot @{name}; no webhook; {} chat(s), {} approver(s)",
            t.chat_ids.len(),
            t.approvers.len()
        ))
    };
    let (ok, detail) = match check.await {
        Ok(d) => (true, d),
        Err(e) => (false, config.secrets.mask(&e)),
    };
    Row {
        what: "telegram approvals".into(),
        ok,
        ms: started.elapsed().as_millis(),
        detail,
    }
}

async fn http_row(
    http: &HttpClient,
    what: String,
    url: String,
    key: Option<&str>,
    timeout: std::time::Duration,
) -> Row {
    let mut req = HttpRequest::get(url.clone(), timeout);
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    let t = Instant::now();
    let (ok, detail) = match http.send(&req).await {
        Ok(r) => (
            (200..300).contains(&r.status),
            format!("HTTP {} {url}", r.status),
        ),
        Err(e) => (false, format!("{e} {url}")),
    };
    Row {
        what,
        ok,
        ms: t.elapsed().as_millis(),
        detail,
    }
}
