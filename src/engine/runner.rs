//! Walks a sealed plan: stage by stage, step by step, through the executor. A failed step
//! halts the plan (the rest of the stage and every later stage are skipped), after running
//! whatever the stage's `compensate` steps armed; a caller that went away, an operator's abort
//! or a freeze stop the plan before its next stage. Nothing here is rebuilt from arguments:
//! the plan is all there is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::call::Progress;
use super::executor::Executor;
pub use super::outcome::{RunOutcome, StageOutcome, StageStatus, StepOutcome, StepStatus};
use super::plan::{Command, Otherwise, Plan, Stage, Step};
use super::probe;
use crate::exec::ExecError;

/// What decides, between stages, that nothing further starts.
pub struct Control {
    /// Set when the caller went away.
    pub stopped: Arc<AtomicBool>,
    pub progress: Option<Arc<dyn Progress>>,
    /// Checked before every stage: `Some(why)` stops the plan (abort, freeze).
    pub before_stage: Box<dyn Fn() -> Option<String> + Send + Sync>,
    /// The audit request id: fills `{request_id}` in commands (backup names).
    pub request_id: String,
    /// Where `send` steps keep their record of delivered messages.
    pub state_dir: std::path::PathBuf,
}

/// What every step runs with.
struct Cx<'a> {
    exec: &'a dyn Executor,
    request_id: &'a str,
    state_dir: &'a std::path::Path,
}

/// Runs the sealed plan.
pub async fn run(exec: &dyn Executor, plan: &Plan, ctl: &Control) -> RunOutcome {
    let mut stages = Vec::new();
    let mut halted = None;
    let n = plan.stages.len();
    for (i, stage) in plan.stages.iter().enumerate() {
        if halted.is_none() {
            if ctl.stopped.load(Ordering::SeqCst) {
                halted = Some("the caller went away; nothing further started".to_string());
            } else if let Some(why) = (ctl.before_stage)() {
                halted = Some(why);
            }
        }
        if halted.is_some() {
            stages.push(skipped(stage));
            continue;
        }
        if let Some(p) = &ctl.progress {
            p.report(
                i as f64,
                Some(n as f64),
                format!("stage {}/{n}: {}", i + 1, stage.name),
            )
            .await;
        }
        let cx = Cx {
            exec,
            request_id: &ctl.request_id,
            state_dir: &ctl.state_dir,
        };
        let out = run_stage(&cx, stage).await;
        if !out.ok() {
            halted = Some(format!(
                "{} {}; the rest was not started",
                stage.name,
                match out.status {
                    StageStatus::Compensated => "failed and was compensated",
                    _ => "failed",
                }
            ));
        }
        stages.push(out);
    }
    let stale = stages
        .iter()
        .flat_map(|s| &s.steps)
        .find(|s| s.status == StepStatus::Failed && s.detail.starts_with("stale: "))
        .map(|s| s.detail.trim_start_matches("stale: ").to_string());
    RunOutcome {
        ok: halted.is_none(),
        halted,
        stale,
        stages,
    }
}

fn skipped(stage: &Stage) -> StageOutcome {
    StageOutcome {
        stage: stage.name.clone(),
        status: StageStatus::Skipped,
        steps: Vec::new(),
        captured: BTreeMap::new(),
    }
}

/// What a step's run means for the stage.
enum Flow {
    Next,
    Fail,
    NothingToDo,
}

async fn run_stage(cx: &Cx<'_>, stage: &Stage) -> StageOutcome {
    let mut out = StageOutcome {
        stage: stage.name.clone(),
        status: StageStatus::Ok,
        steps: Vec::new(),
        captured: BTreeMap::new(),
    };
    let mut armed: Vec<&Step> = Vec::new();
    for (i, step) in stage.steps.iter().enumerate() {
        if let Step::Compensate { steps } = step {
            armed.extend(steps.iter());
            continue;
        }
        match run_step(cx, step, &mut out).await {
            Flow::Next => {}
            Flow::NothingToDo => {
                out.status = StageStatus::NothingToDo;
                skip_rest(&stage.steps[i + 1..], &mut out);
                return out;
            }
            Flow::Fail => {
                skip_rest(&stage.steps[i + 1..], &mut out);
                out.status = StageStatus::Failed;
                if !armed.is_empty() {
                    for c in armed {
                        let before = out.steps.len();
                        let _ = run_step(cx, c, &mut out).await;
                        for s in &mut out.steps[before..] {
                            s.step = format!("compensate: {}", s.step);
                        }
                    }
                    out.status = StageStatus::Compensated;
                }
                return out;
            }
        }
    }
    out
}

fn skip_rest(rest: &[Step], out: &mut StageOutcome) {
    for s in rest {
        if !matches!(s, Step::Compensate { .. }) {
            out.steps.push(outcome(
                s.line(),
                StepStatus::Skipped,
                None,
                String::new(),
                0,
            ));
        }
    }
}

fn outcome(
    step: String,
    status: StepStatus,
    exit_code: Option<i32>,
    detail: String,
    ms: u64,
) -> StepOutcome {
    StepOutcome {
        step,
        status,
        exit_code,
        detail,
        output: None,
        ms,
    }
}

/// Runs one command and records it; true when it succeeded.
async fn command(cx: &Cx<'_>, c: &Command, out: &mut StageOutcome) -> bool {
    let c = with_request_id(c, cx.request_id);
    let line = c.line();
    let started = Instant::now();
    let res = cx.exec.run(&c).await;
    let ms = started.elapsed().as_millis() as u64;
    let kept = match (&res, c.output) {
        (Ok(o), true) => Some(o.stdout.chars().take(8192).collect::<String>()),
        _ => None,
    };
    let (status, code, detail) = match res {
        Ok(o) if o.success() => (StepStatus::Ok, o.exit_code, String::new()),
        Ok(o) => (StepStatus::Failed, o.exit_code, first_lines(&o.stderr, 3)),
        Err(e @ ExecError::TimedOut(_)) => {
            (StepStatus::Unknown, None, format!("{e}: outcome unknown"))
        }
        Err(e) => (StepStatus::Failed, None, e.to_string()),
    };
    let ok = status == StepStatus::Ok;
    let mut o = outcome(line, status, code, detail, ms);
    o.output = kept;
    out.steps.push(o);
    ok
}

async fn run_step(cx: &Cx<'_>, step: &Step, out: &mut StageOutcome) -> Flow {
    let exec = cx.exec;
    let started = Instant::now();
    let ms = |s: Instant| s.elapsed().as_millis() as u64;
    let ok_or_fail = |ok: bool| if ok { Flow::Next } else { Flow::Fail };
    match step {
        Step::Run(c) => ok_or_fail(command(cx, c, out).await),
        Step::Sql { statement, .. } => {
            let (status, detail) = match exec.sql(statement).await {
                Ok(r) => (StepStatus::Ok, r.notices.join(" | ")),
                Err(e @ ExecError::TimedOut(_)) => {
                    (StepStatus::Unknown, format!("{e}: outcome unknown"))
                }
                Err(e) => (StepStatus::Failed, e.to_string()),
            };
            out.steps
                .push(outcome(step.line(), status, None, detail, ms(started)));
            ok_or_fail(status == StepStatus::Ok)
        }
        Step::Load {
            url,
            api_key_secret,
            requests,
            concurrency,
        } => {
            let r = super::load::run(
                exec,
                url,
                api_key_secret.as_deref(),
                *requests,
                *concurrency,
            )
            .await;
            let status = if r.passed() {
                StepStatus::Ok
            } else {
                StepStatus::Failed
            };
            out.steps
                .push(outcome(step.line(), status, None, r.line(), ms(started)));
            ok_or_fail(status == StepStatus::Ok)
        }
        Step::Send(m) => {
            let d = super::send::deliver(exec, m, cx.state_dir, cx.request_id).await;
            let mut o = outcome(step.line(), d.status, None, d.detail, ms(started));
            o.output = d.answer;
            out.steps.push(o);
            ok_or_fail(d.status == StepStatus::Ok)
        }
        Step::Capture { name, fact } => {
            // Controls nothing: a value that cannot be read is recorded as such.
            let (status, detail, value) = match probe::fact(exec, fact).await {
                Ok(v) => (StepStatus::Ok, format!("{v}"), v),
                Err(e) => (StepStatus::Failed, e, Value::Null),
            };
            out.captured.insert(name.clone(), value);
            out.steps.push(outcome(
                step.line(),
                status,
                None,
                short(&detail),
                ms(started),
            ));
            Flow::Next
        }
        Step::Expect { what, fact, value } => {
            let (holds, detail) = match probe::fact(exec, fact).await {
                Ok(now) if &now == value => (true, format!("{what} is still {value}")),
                Ok(now) => (
                    false,
                    format!(
                        "stale: {what} changed since the plan was made ({}); a new plan needs a new approval",
                        differences(value, &now)
                    ),
                ),
                Err(e) => (false, format!("stale: {what} cannot be read ({e})")),
            };
            let status = if holds {
                StepStatus::Ok
            } else {
                StepStatus::Failed
            };
            out.steps
                .push(outcome(step.line(), status, None, detail, ms(started)));
            ok_or_fail(holds)
        }
        Step::Guard {
            probe: p,
            otherwise,
            ..
        } => {
            let v = probe::probe(exec, p).await;
            let status = match (v.holds, otherwise) {
                (true, _) | (false, Otherwise::SkipStage) => StepStatus::Ok,
                (false, Otherwise::Halt) => StepStatus::Failed,
            };
            out.steps
                .push(outcome(step.line(), status, None, v.detail, ms(started)));
            match (v.holds, otherwise) {
                (true, _) => Flow::Next,
                (false, Otherwise::Halt) => Flow::Fail,
                (false, Otherwise::SkipStage) => Flow::NothingToDo,
            }
        }
        Step::WaitUntil {
            probe: p,
            within_secs,
            every_ms,
        } => {
            let deadline = started + Duration::from_secs(*within_secs);
            let v = loop {
                let v = probe::probe(exec, p).await;
                if v.holds || Instant::now() >= deadline {
                    break v;
                }
                tokio::time::sleep(Duration::from_millis((*every_ms).max(50))).await;
            };
            let status = if v.holds {
                StepStatus::Ok
            } else {
                StepStatus::Failed
            };
            let detail = if v.holds {
                format!(
                    "{} after {:.1} s",
                    v.detail,
                    started.elapsed().as_secs_f64()
                )
            } else {
                format!("not within {within_secs} s: {}", v.detail)
            };
            out.steps
                .push(outcome(step.line(), status, None, detail, ms(started)));
            ok_or_fail(v.holds)
        }
        Step::ForEach { selector, template } => {
            let values = match probe::select(exec, selector, &out.captured).await {
                Ok(v) => v,
                Err(e) => {
                    out.steps.push(outcome(
                        step.line(),
                        StepStatus::Failed,
                        None,
                        format!("selector: {e}"),
                        ms(started),
                    ));
                    return Flow::Fail;
                }
            };
            out.steps.push(outcome(
                step.line(),
                StepStatus::Ok,
                None,
                format!("{} selected", values.len()),
                ms(started),
            ));
            let mut all = true;
            for v in &values {
                all &= command(cx, &instance(template, v), out).await;
            }
            ok_or_fail(all)
        }
        Step::Compensate { .. } => Flow::Next,
    }
}

/// A `for_each` template with its holes (`{pid}`) filled by a selector's typed values. Only
/// whole words that are exactly a hole are replaced: a value never becomes part of another word.
pub fn instance(template: &Command, values: &BTreeMap<String, String>) -> Command {
    let mut c = template.clone();
    for a in &mut c.argv {
        if let Some(name) = a.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
            && let Some(v) = values.get(name)
        {
            *a = v.clone();
        }
    }
    c
}

/// `version 7 -> 8, image a -> b`: the fields of two objects that differ (else both whole).
fn differences(was: &Value, now: &Value) -> String {
    match (was.as_object(), now.as_object()) {
        (Some(a), Some(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| {
                    let show = |v: Option<&Value>| v.map_or("none".into(), Value::to_string);
                    format!("{k} {} -> {}", show(a.get(k)), show(b.get(k)))
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
        _ => format!("{was} -> {now}"),
    }
}

/// `{request_id}` inside a word becomes the request id (`R-` and hex digits, made by the
/// server): the one value a sealed command takes at run time besides a selector's.
fn with_request_id(c: &Command, request_id: &str) -> Command {
    let mut c = c.clone();
    for a in &mut c.argv {
        if a.contains("{request_id}") {
            *a = a.replace("{request_id}", request_id);
        }
    }
    c
}

fn first_lines(s: &str, n: usize) -> String {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect::<Vec<_>>()
        .join(" | ")
}

fn short(s: &str) -> String {
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}
