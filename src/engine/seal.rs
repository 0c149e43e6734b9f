//! From raw arguments to a sealed plan: the common parameters (parsed here, one name each for
//! every mutating tool), the tool's own parameters, the facts it asked for (read through the
//! executor), its draft, the blast-radius rules, and the guards' readings before anyone is
//! asked. Nothing here changes anything.

use serde_json::{Map, Value};

use super::action::{Action, Common, Draft, Facts};
use super::plan::{Plan, Step};
use super::probe;
use super::{Ctx, Effect, Refusal, ToolError, args, guards};

/// A call resolved into its sealed plan.
pub struct Sealed<A: Action> {
    pub common: Common,
    pub params: A::Params,
    pub effect: Effect,
    pub plan: Plan,
    pub draft: Draft,
    pub current_health: Vec<String>,
}

/// Splits the common parameters off the raw arguments.
fn split(raw: &mut Map<String, Value>) -> Map<String, Value> {
    let mut own = Map::new();
    for k in ["hosts", "reason", "dry_run"] {
        if let Some(v) = raw.remove(k) {
            own.insert(k.into(), v);
        }
    }
    own
}

/// Checks the common parameters.
fn common<A: Action>(ctx: &Ctx, own: Map<String, Value>) -> Result<Common, ToolError> {
    if !A::HOSTS && own.contains_key("hosts") {
        return Err(ToolError::invalid(
            "hosts",
            "this tool does not act on inventory hosts; it takes no `hosts`",
        ));
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        #[serde(default, deserialize_with = "super::args::names_required")]
        hosts: Vec<super::Name>,
        reason: super::args::Text,
        #[serde(default)]
        dry_run: bool,
    }
    let r: Raw = args::parse(own)?;
    if A::HOSTS && r.hosts.is_empty() {
        return Err(ToolError::invalid(
            "hosts",
            "name the target hosts explicitly; mutating tools have no default",
        ));
    }
    let reason = r.reason.as_str().trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ToolError::invalid(
            "reason",
            "say why in 1..=500 characters; the approver and the audit log see it",
        ));
    }
    for (i, h) in r.hosts.iter().enumerate() {
        if ctx.config.host(h.as_str()).is_none() {
            let known: Vec<&str> = ctx.config.hosts.iter().map(|h| h.name.as_str()).collect();
            return Err(ToolError::invalid(
                format!("hosts[{i}]"),
                format!(
                    "unknown host `{h}`; the inventory has: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(Common {
        hosts: r.hosts,
        reason: reason.to_string(),
        dry_run: r.dry_run,
    })
}

/// Reads the facts the action asked for, all at once.
async fn read_facts(ctx: &Ctx, wanted: Vec<(String, super::plan::Fact)>) -> Facts {
    let exec = ctx.exec.as_ref();
    let values = futures::future::join_all(wanted.iter().map(|(_, f)| probe::fact(exec, f))).await;
    Facts(wanted.into_iter().map(|(n, _)| n).zip(values).collect())
}

/// Evaluates each stage's guards that come before its first effect: a failing halt guard
/// refuses now (`blast_radius`), before anyone is asked; the readings are the current health.
async fn guards_now(ctx: &Ctx, plan: &Plan) -> Result<Vec<String>, ToolError> {
    let mut probes = Vec::new();
    for s in &plan.stages {
        for step in &s.steps {
            match step {
                Step::Guard {
                    why,
                    probe,
                    otherwise,
                } => probes.push((why, probe, *otherwise)),
                Step::Capture { .. } | Step::Expect { .. } | Step::Compensate { .. } => {}
                _ => break,
            }
        }
    }
    let exec = ctx.exec.as_ref();
    let verdicts =
        futures::future::join_all(probes.iter().map(|(_, p, _)| probe::probe(exec, p))).await;
    let mut lines: Vec<String> = Vec::new();
    for ((why, _, otherwise), v) in probes.iter().zip(&verdicts) {
        if !v.holds && *otherwise == super::plan::Otherwise::Halt {
            return Err(ToolError::refused(
                Refusal::BlastRadius,
                format!(
                    "{why}, and this plan would break that rule now ({}). Recover another \
                     instance first, or act on fewer hosts.",
                    v.detail
                ),
            ));
        }
        for l in v.detail.split("; ") {
            if !lines.iter().any(|x| x == l) {
                lines.push(l.to_string());
            }
        }
    }
    Ok(lines)
}

/// Parses, plans and checks a call; nothing runs.
pub async fn seal<A: Action>(
    ctx: &Ctx,
    mut raw: Map<String, Value>,
) -> Result<Sealed<A>, ToolError> {
    let meta = A::META;
    let own = split(&mut raw);
    // The tool's own parameters first: an unknown field (`host`, `approved`) is the clearer
    // error than a missing common one.
    let params: A::Params = args::parse(raw)?;
    let common = common::<A>(ctx, own)?;

    let max = ctx.config.limits.max_hosts_per_call;
    if A::hosts_at_once(&common, &params) > max {
        return Err(ToolError::refused(
            Refusal::BlastRadius,
            format!(
                "{} hosts in one call; the limit is {max}. Act on fewer hosts per call.",
                common.hosts.len()
            ),
        ));
    }
    let facts = read_facts(ctx, A::facts(ctx, &common, &params)?).await;
    let effect = A::effect(ctx, &params, &facts);
    let effect = if A::EFFECT_PER_CALL {
        effect
    } else {
        effect.max(meta.effect)
    };
    let draft = A::plan(ctx, &common, &params, &facts)?;
    for t in &draft.targets {
        if let Some(s) = &t.service
            && ctx.config.limits.forbidden_services.contains(s)
        {
            return Err(ToolError::refused(
                Refusal::BlastRadius,
                format!("service `{s}` is forbidden to change by configuration."),
            ));
        }
    }
    if let Some(f) = guards::frozen(&ctx.config.server.state_dir) {
        return Err(frozen(&f));
    }
    let arguments = arguments(&common, &params)?;
    // The call's effect is part of what is approved: an approval given while a call was a
    // change never runs it once its facts make it destructive (other channels, target typed
    // back, more approvers).
    let binding = format!("{}|effect={effect:?}", config_hash(ctx, &draft));
    let mut plan = Plan::new(meta.name, arguments, draft.stages.clone(), &binding);
    plan.changes = draft.changes.clone();
    plan.undo = draft.undo.clone();
    plan.notes = draft.notes.clone();
    let mut current_health = guards_now(ctx, &plan).await?;
    current_health.extend(A::preflight(ctx, &common, &params, &facts)?);
    Ok(Sealed {
        common,
        params,
        effect,
        plan,
        draft,
        current_health,
    })
}

pub fn frozen(notice: &str) -> ToolError {
    ToolError::refused(
        Refusal::Frozen,
        format!(
            "a change freeze is in force ({notice}); an operator lifts it with `runbook-mcp unfreeze`."
        ),
    )
}

/// A hash of the configuration entries the plan came from: its hosts and services, and for
/// stages that are not inventory hosts the Swarm, AWS and database tables (secret names only:
/// secret values never enter a plan).
fn config_hash(ctx: &Ctx, draft: &Draft) -> String {
    use sha2::{Digest, Sha256};
    let c = &ctx.config;
    let mut parts: Vec<String> = Vec::new();
    for s in &draft.stages {
        match c.host(&s.name) {
            Some(h) => parts.push(format!("{h:?}")),
            None => parts.push(format!("{:?}{:?}{:?}", c.swarm, c.aws, c.database)),
        }
    }
    for t in &draft.targets {
        if let Some(svc) = t.service.as_deref().and_then(|n| c.service(n)) {
            parts.push(format!("{svc:?}"));
        }
    }
    hex::encode(Sha256::digest(parts.join("\n").as_bytes()))
}

/// The arguments as understood: common and own in one object, `dry_run` left out.
fn arguments<P: serde::Serialize>(c: &Common, p: &P) -> Result<Value, ToolError> {
    let bad = |e: serde_json::Error| ToolError::internal(e.to_string());
    let mut v = serde_json::to_value(p).map_err(bad)?;
    let Value::Object(own) = &mut v else {
        return Err(ToolError::internal("parameters are not an object"));
    };
    if let Value::Object(c) = serde_json::to_value(c).map_err(bad)? {
        own.extend(c);
    }
    Ok(v)
}
