//! Evaluating the plan's reads: a fact becomes a typed value, a probe a verdict, a selector
//! the typed values a `for_each` takes. Every read goes through the executor (so a recording
//! executor drives these too); the interpretation is pure (`analyze`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::executor::Executor;
use super::plan::{Check, Extract, Fact, Probe, Read, Selector};
use crate::analyze::{docker, elbv2, procs};

/// Whether a probe holds, and what was seen (for the approver and the outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub holds: bool,
    pub detail: String,
}

/// What a read returned: text (stdout, body, or the first column of rows as lines).
struct ReadOut {
    text: String,
    rows: Vec<Vec<Option<String>>>,
    http_status: Option<u16>,
}

async fn read(exec: &dyn Executor, r: &Read) -> Result<ReadOut, String> {
    match r {
        Read::Run(c) => {
            let o = exec.run(c).await.map_err(|e| e.to_string())?;
            if !o.success() {
                let err = o.stderr.lines().find(|l| !l.trim().is_empty());
                return Err(format!(
                    "`{}` exited {}: {}",
                    c.line(),
                    o.exit_code.map_or("-".into(), |c| c.to_string()),
                    err.unwrap_or("")
                ));
            }
            Ok(ReadOut {
                text: o.stdout,
                rows: Vec::new(),
                http_status: None,
            })
        }
        Read::Http {
            url,
            api_key_secret,
        } => {
            let o = exec
                .get(url, api_key_secret.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            Ok(ReadOut {
                text: o.body,
                rows: Vec::new(),
                http_status: Some(o.status),
            })
        }
        Read::Sql { statement, .. } => {
            let o = exec.sql(statement).await.map_err(|e| e.to_string())?;
            Ok(ReadOut {
                text: String::new(),
                rows: o.rows,
                http_status: None,
            })
        }
    }
}

/// Reads a fact: its value, or why it could not be read.
pub async fn fact(exec: &dyn Executor, f: &Fact) -> Result<Value, String> {
    let out = read(exec, &f.read).await?;
    if let Some(s) = out.http_status
        && !(200..300).contains(&s)
    {
        return Err(format!("{} answered HTTP {s}", f.read.line()));
    }
    extract(&f.extract, &out)
}

fn extract(e: &Extract, out: &ReadOut) -> Result<Value, String> {
    match e {
        Extract::SwarmService { service } => {
            let all = docker::parse_service_inspect(&out.text).map_err(|e| e.to_string())?;
            let s = all
                .into_iter()
                .find(|s| &s.name == service)
                .ok_or_else(|| format!("the Swarm has no service `{service}`"))?;
            Ok(json!({
                "version": s.version,
                "image": s.spec.image,
                "replicas": s.spec.replicas,
                "memory_limit_bytes": s.spec.memory_limit_bytes.unwrap_or(0),
                "previous_image": s.previous.as_ref().map(|p| p.image.clone()),
                "update_state": s.update_state,
            }))
        }
        Extract::NginxRate { zone } => procs::nginx_rate(&out.text, zone)
            .map(Value::String)
            .ok_or_else(|| format!("no `limit_req_zone … zone={zone}:… rate=…` in the file")),
        Extract::Processes { name, args } => {
            let p = procs::processes(&out.text, name, args.as_deref());
            serde_json::to_value(p).map_err(|e| e.to_string())
        }
        Extract::MainPid => Ok(procs::main_pid(&out.text).map_or(Value::Null, Value::from)),
        Extract::Scalar => Ok(out
            .rows
            .first()
            .and_then(|r| r.first())
            .cloned()
            .flatten()
            .map_or(Value::Null, Value::String)),
        Extract::TargetStates => {
            let t = elbv2::parse_target_health(&out.text).map_err(|e| e.to_string())?;
            let map: serde_json::Map<String, Value> = t
                .into_iter()
                .map(|t| {
                    let registered = elbv2::is_registered(t.state, t.reason.as_deref());
                    (
                        t.id,
                        json!({"state": t.state.as_str(), "registered": registered}),
                    )
                })
                .collect();
            Ok(Value::Object(map))
        }
        Extract::HealthCheck { arn } => {
            let g = elbv2::parse_target_groups(&out.text).map_err(|e| e.to_string())?;
            let g = g
                .into_iter()
                .find(|g| &g.arn == arn)
                .ok_or_else(|| format!("no target group `{arn}` in the answer"))?;
            Ok(json!({
                "interval_seconds": g.health_check.interval_seconds,
                "timeout_seconds": g.health_check.timeout_seconds,
                "path": g.health_check.path,
            }))
        }
    }
}

/// Evaluates a probe. A read that fails is a verdict that does not hold, with the reason.
pub fn probe<'a>(exec: &'a dyn Executor, p: &'a Probe) -> super::call::BoxFuture<'a, Verdict> {
    Box::pin(async move {
        match p {
            Probe::Healthy {
                host,
                service,
                url,
                api_key_secret,
            } => {
                let who = format!("{host}/{service}");
                match exec.get(url, api_key_secret.as_deref()).await {
                    Ok(r) if (200..300).contains(&r.status) => Verdict {
                        holds: true,
                        detail: format!("{who}: healthy (HTTP {})", r.status),
                    },
                    Ok(r) => Verdict {
                        holds: false,
                        detail: format!("{who}: UNHEALTHY (HTTP {})", r.status),
                    },
                    Err(e) => Verdict {
                        holds: false,
                        detail: format!("{who}: UNHEALTHY ({e})"),
                    },
                }
            }
            Probe::Fact {
                what,
                fact: f,
                check,
            } => match fact(exec, f).await {
                Ok(v) => {
                    let holds = test(check, &v);
                    Verdict {
                        holds,
                        detail: format!(
                            "{what}: {} (read {})",
                            if holds { "yes" } else { "NO" },
                            shown(check, &v)
                        ),
                    }
                }
                Err(e) => Verdict {
                    holds: false,
                    detail: format!("{what}: could not read ({e})"),
                },
            },
            Probe::Not { probe: inner } => {
                let v = probe(exec, inner).await;
                Verdict {
                    holds: !v.holds,
                    detail: v.detail,
                }
            }
            Probe::Any { probes } | Probe::All { probes } => {
                let all = futures::future::join_all(probes.iter().map(|q| probe(exec, q))).await;
                let holds = if matches!(p, Probe::Any { .. }) {
                    all.iter().any(|v| v.holds)
                } else {
                    all.iter().all(|v| v.holds)
                };
                Verdict {
                    holds,
                    detail: all
                        .iter()
                        .map(|v| v.detail.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            }
        }
    })
}

fn field<'v>(v: &'v Value, name: &str) -> &'v Value {
    if name.is_empty() {
        v
    } else {
        v.get(name).unwrap_or(&Value::Null)
    }
}

fn test(check: &Check, v: &Value) -> bool {
    match check {
        Check::Http2xx | Check::Succeeds => true,
        Check::Equals { field: f, value } => field(v, f) == value,
        Check::OneOf { field: f, values } => values.contains(field(v, f)),
        Check::AtMost { field: f, max } => field(v, f).as_i64().is_some_and(|n| n <= *max),
        Check::OtherTargetHealthy { except } => v.as_object().is_some_and(|m| {
            m.iter()
                .any(|(id, t)| id != except && t["registered"] == true && t["state"] == "healthy")
        }),
    }
}

fn shown(check: &Check, v: &Value) -> String {
    match check {
        Check::Equals { field: f, .. }
        | Check::OneOf { field: f, .. }
        | Check::AtMost { field: f, .. } => field(v, f).to_string(),
        Check::OtherTargetHealthy { .. } => v
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(id, t)| format!("{id} {}", t["state"].as_str().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
        Check::Http2xx | Check::Succeeds => "ok".into(),
    }
}

/// The values a selector yields for a `for_each`, each a map of hole name → value.
pub async fn select(
    exec: &dyn Executor,
    s: &Selector,
    captured: &BTreeMap<String, Value>,
) -> Result<Vec<BTreeMap<String, String>>, String> {
    match s {
        Selector::StaleProcesses {
            captured: name,
            now,
            main_pid,
        } => {
            let before: Vec<procs::ProcessId> = captured
                .get(name)
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("nothing was captured as `{name}`"))?;
            let now: Vec<procs::ProcessId> =
                serde_json::from_value(fact(exec, now).await?).map_err(|e| e.to_string())?;
            let main = fact(exec, main_pid).await?.as_u64();
            Ok(now
                .into_iter()
                .filter(|p| before.contains(p) && Some(u64::from(p.pid)) != main)
                .map(|p| BTreeMap::from([("pid".to_string(), p.pid.to_string())]))
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::executor::{Recording, output};
    use crate::engine::plan::{At, Command};

    fn ps_fact(at: &At) -> Fact {
        Fact {
            read: Read::Run(Command::new(at, vec!["ps".into()], false)),
            extract: Extract::Processes {
                name: "node".into(),
                args: None,
            },
        }
    }

    #[tokio::test]
    async fn stale_processes_need_the_same_pid_and_start_time_and_never_the_new_main() {
        let at = At::server();
        let rec = Recording::new();
        rec.on_run(|c| {
            (c.argv == ["ps"]).then(|| {
                Ok(output(
                    0,
                    " 10 Tue Dec 1 15:00:00 2026 node a\n 11 Tue Dec 1 15:30:00 2026 node b\n 12 Tue Dec 1 15:00:00 2026 node c\n 13 Tue Dec 1 15:31:00 2026 node new\n",
                ))
            })
        });
        rec.on_run(|c| (c.argv == ["show"]).then(|| Ok(output(0, "MainPID=12\n"))));
        let before = json!([
            {"pid": 10, "started": "Tue Dec 1 15:00:00 2026"},
            // pid 11 was reused by another process since
            {"pid": 11, "started": "Tue Dec 1 15:00:00 2026"},
            {"pid": 12, "started": "Tue Dec 1 15:00:00 2026"},
        ]);
        let captured = BTreeMap::from([("procs".to_string(), before)]);
        let s = Selector::StaleProcesses {
            captured: "procs".into(),
            now: ps_fact(&at),
            main_pid: Fact {
                read: Read::Run(Command::new(&at, vec!["show".into()], false)),
                extract: Extract::MainPid,
            },
        };
        let got = select(rec.as_ref(), &s, &captured).await.unwrap();
        assert_eq!(got, vec![BTreeMap::from([("pid".into(), "10".into())])]);
    }

    #[tokio::test]
    async fn probes_compose_and_a_failed_read_never_holds() {
        let rec = Recording::new();
        rec.on_get(|u| {
            u.contains("down")
                .then(|| Ok(crate::engine::executor::reply(503)))
        });
        let h = |host: &str| Probe::Healthy {
            host: host.into(),
            service: "web".into(),
            url: format!("http://{host}/health"),
            api_key_secret: None,
        };
        assert!(probe(rec.as_ref(), &h("up")).await.holds);
        assert!(!probe(rec.as_ref(), &h("down")).await.holds);
        let any = Probe::Any {
            probes: vec![h("down"), h("up")],
        };
        assert!(probe(rec.as_ref(), &any).await.holds);
        let not = Probe::Not {
            probe: Box::new(h("up")),
        };
        assert!(!probe(rec.as_ref(), &not).await.holds);
        assert!(
            !probe(rec.as_ref(), &Probe::Any { probes: vec![] })
                .await
                .holds
        );
        rec.on_run(|_| Some(Ok(output(1, ""))));
        let f = Probe::Fact {
            what: "x".into(),
            fact: ps_fact(&At::server()),
            check: Check::Succeeds,
        };
        let v = probe(rec.as_ref(), &f).await;
        assert!(!v.holds && v.detail.contains("could not read"), "{v:?}");
    }
}
