//! What a tool is: typed parameters and result, a declared effect, and a type-erased
//! [`ToolDef`] the registry holds. MCP annotations, read-only mode and (later) approval all
//! derive from the effect — nothing is written by hand per tool.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::action::{Action, ActionResult, Common};
use super::call::{CallCtx, Outcome};
use super::{Ctx, ToolError, args, gate};

/// What calling a tool can change.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Reads state, changes nothing.
    Read,
    /// Writes only this server's own incident records.
    Record,
    /// Sends a message to people.
    Notify,
    /// Changes the fleet, recoverably.
    Change,
    /// May lose data or availability.
    Destructive,
}

/// The runbook area a tool belongs to; toolsets can be enabled or disabled as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Toolset {
    Assess,
    Metrics,
    Logs,
    Verify,
    Remediate,
    Database,
    Loadbalancer,
    Notify,
    Incident,
    Prevent,
}

impl Toolset {
    pub const ALL: [Toolset; 10] = [
        Toolset::Assess,
        Toolset::Metrics,
        Toolset::Logs,
        Toolset::Verify,
        Toolset::Remediate,
        Toolset::Database,
        Toolset::Loadbalancer,
        Toolset::Notify,
        Toolset::Incident,
        Toolset::Prevent,
    ];

    /// The name used in configuration (`[policy] toolsets`), as serde writes it.
    pub fn name(self) -> &'static str {
        match self {
            Toolset::Assess => "assess",
            Toolset::Metrics => "metrics",
            Toolset::Logs => "logs",
            Toolset::Verify => "verify",
            Toolset::Remediate => "remediate",
            Toolset::Database => "database",
            Toolset::Loadbalancer => "loadbalancer",
            Toolset::Notify => "notify",
            Toolset::Incident => "incident",
            Toolset::Prevent => "prevent",
        }
    }
}

/// MCP tool annotations, derived from the effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    pub read_only_hint: bool,
    pub destructive_hint: bool,
    pub idempotent_hint: bool,
    pub open_world_hint: bool,
}

impl Effect {
    pub fn annotations(self) -> Annotations {
        Annotations {
            read_only_hint: self == Effect::Read,
            destructive_hint: self == Effect::Destructive,
            idempotent_hint: self == Effect::Read,
            // Only messages leave the fleet we manage for the open world of people and services.
            open_world_hint: self == Effect::Notify,
        }
    }

    /// Visible in `--read-only` mode.
    pub fn is_read_only(self) -> bool {
        matches!(self, Effect::Read | Effect::Record)
    }
}

/// Static facts about a tool.
#[derive(Debug, Clone, Copy)]
pub struct ToolMeta {
    pub name: &'static str,
    pub title: &'static str,
    /// Written for the model that calls it: what it does, when to use it, what it returns.
    pub description: &'static str,
    pub effect: Effect,
    pub toolset: Toolset,
}

/// A tool: typed parameters in, typed result out.
pub trait Tool: Send + Sync + 'static {
    const META: ToolMeta;
    /// Parameters; every struct uses `deny_unknown_fields`.
    type Params: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + Send + 'static;

    fn run(
        ctx: Arc<Ctx>,
        params: Self::Params,
    ) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;

    /// Runs with the call's context: who asks and the session's incident. Most tools need
    /// neither; the incident tools do (who opened it, which incident a call belongs to).
    fn run_in(
        ctx: Arc<Ctx>,
        _call: CallCtx,
        params: Self::Params,
    ) -> impl Future<Output = Result<Self::Output, ToolError>> + Send {
        Self::run(ctx, params)
    }

    /// A short text a person can read in one glance.
    fn summary(out: &Self::Output) -> String;

    /// True when the result as a whole is a failure (e.g. every host failed).
    fn is_error(_out: &Self::Output) -> bool {
        false
    }
}

/// A finished call.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub structured: Value,
    pub summary: String,
    pub is_error: bool,
}

type Invoke = fn(
    Arc<Ctx>,
    CallCtx,
    Map<String, Value>,
) -> Pin<Box<dyn Future<Output = Result<Outcome, ToolError>> + Send>>;

/// How a registered tool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A read or record tool: it runs directly.
    Direct,
    /// A planned action: it runs only as a sealed plan through the gate.
    Planned,
}

/// A registered tool, type-erased.
#[derive(Clone)]
pub struct ToolDef {
    pub meta: ToolMeta,
    pub kind: Kind,
    /// What the configuration must have for the tool to be offered.
    pub needs: &'static [super::needs::Need],
    pub input_schema: Value,
    pub output_schema: Value,
    invoke: Invoke,
}

impl ToolDef {
    /// A tool that reads (or writes only this server's records). A mutating effect does not
    /// compile here: such a tool can only be registered as a planned action.
    pub fn of<T: Tool>() -> Self {
        const {
            assert!(
                matches!(T::META.effect, Effect::Read | Effect::Record),
                "a tool that changes something must be an Action (ToolDef::of_action)"
            )
        };
        Self {
            meta: T::META,
            kind: Kind::Direct,
            needs: &[],
            input_schema: schema_of::<T::Params>(true),
            output_schema: schema_of::<T::Output>(false),
            invoke: invoke::<T>,
        }
    }

    /// A mutating tool: its calls go through the approval gate and run as a sealed plan.
    pub fn of_action<A: Action>() -> Self {
        Self {
            meta: A::META,
            kind: Kind::Planned,
            needs: &[],
            input_schema: action_input::<A>(),
            output_schema: action_output(),
            invoke: invoke_action::<A>,
        }
    }

    /// Offered only when the configuration has all of `needs`.
    pub fn needs(mut self, needs: &'static [super::needs::Need]) -> Self {
        self.needs = needs;
        self
    }

    pub fn annotations(&self) -> Annotations {
        self.meta.effect.annotations()
    }

    pub(super) fn invoke(
        &self,
        ctx: Arc<Ctx>,
        call: CallCtx,
        args: Map<String, Value>,
    ) -> Pin<Box<dyn Future<Output = Result<Outcome, ToolError>> + Send>> {
        (self.invoke)(ctx, call, args)
    }
}

fn invoke_action<A: Action>(
    ctx: Arc<Ctx>,
    call: CallCtx,
    args: Map<String, Value>,
) -> Pin<Box<dyn Future<Output = Result<Outcome, ToolError>> + Send>> {
    Box::pin(gate::run::<A>(ctx, call, args))
}

fn invoke<T: Tool>(
    ctx: Arc<Ctx>,
    call: CallCtx,
    args: Map<String, Value>,
) -> Pin<Box<dyn Future<Output = Result<Outcome, ToolError>> + Send>> {
    Box::pin(async move {
        let params: T::Params = args::parse(args)?;
        let out = T::run_in(ctx, call, params).await?;
        let structured = serde_json::to_value(&out)
            .map_err(|e| ToolError::internal(format!("result does not serialize: {e}")))?;
        Ok(Outcome::Done(ToolOutput {
            summary: T::summary(&out),
            is_error: T::is_error(&out),
            structured,
        }))
    })
}

/// JSON Schema (draft 2020-12) with sub-schemas inlined — simpler for models and clients than
/// `$ref`s — and without the Rust type name as title.
pub fn schema_of<T: JsonSchema>(for_input: bool) -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    if !for_input {
        settings = settings.for_serialize();
    }
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut v = serde_json::to_value(schema).unwrap_or_default();
    standard(&mut v);
    if !for_input {
        // Output schemas are for validating clients, sent with every request: the field docs
        // live in the tool's description and in `tools/`' sources, not in each tools/list.
        undocumented(&mut v);
        enums(&mut v);
        shallow(&mut v, 0);
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("title");
        o.remove("$schema");
        if for_input {
            // The tool's own description says it better than the parameter struct's doc.
            o.remove("description");
        }
    }
    v
}

/// Every action returns the same `ActionResult`; its schema is given one level deep (the plan
/// and the outcome as objects): a copy of the whole shape in each of twenty tools would be a
/// quarter of `tools/list`, and the shape is documented once (docs/ARCHITECTURE.md).
fn action_output() -> Value {
    let mut v = schema_of::<ActionResult>(false);
    shallow_at(&mut v, 0, 1);
    v
}

/// The input schema of an action: its own parameters plus the common ones, one name each.
fn action_input<A: Action>() -> Value {
    let mut v = schema_of::<A::Params>(true);
    let common = schema_of::<Common>(true);
    let Some(o) = v.as_object_mut() else {
        return v;
    };
    let mut props = serde_json::Map::new();
    let cp = &common["properties"];
    if A::HOSTS {
        let mut hosts = cp["hosts"].clone();
        if let Some(h) = hosts.as_object_mut() {
            h.remove("default");
            h.insert("minItems".into(), 1.into());
        }
        props.insert("hosts".into(), hosts);
    }
    if let Some(own) = o.get("properties").and_then(Value::as_object) {
        props.extend(own.clone());
    }
    let mut reason = cp["reason"].clone();
    if let Some(r) = reason.as_object_mut() {
        r.insert("minLength".into(), 1.into());
        r.insert("maxLength".into(), 500.into());
    }
    props.insert("reason".into(), reason);
    props.insert(
        "dry_run".into(),
        serde_json::json!({
            "type": "boolean",
            "default": false,
            "description": cp["dry_run"]["description"],
        }),
    );
    let mut required: Vec<Value> = Vec::new();
    if A::HOSTS {
        required.push("hosts".into());
    }
    if let Some(r) = o.get("required").and_then(Value::as_array) {
        required.extend(r.iter().cloned());
    }
    required.push("reason".into());
    o.insert("type".into(), "object".into());
    o.insert("properties".into(), Value::Object(props));
    o.insert("required".into(), Value::Array(required));
    o.insert("additionalProperties".into(), false.into());
    v
}

/// Standard JSON Schema only: schemars' `uint*`/`int*`/`double` formats become plain
/// `integer`/`number` (unsigned ones with `minimum: 0`), which every client understands.
fn standard(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(f)) = o.get("format") {
                let f = f.clone();
                let unsigned = f.starts_with("uint");
                if unsigned || f.starts_with("int") || f == "double" || f == "float" {
                    o.remove("format");
                    if unsigned && !o.contains_key("minimum") {
                        o.insert("minimum".into(), 0.into());
                    }
                }
            }
            for x in o.values_mut() {
                standard(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(standard),
        _ => {}
    }
}

/// Drops `description` keywords (not properties that happen to be called `description`).
fn undocumented(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("description");
            for (k, x) in o.iter_mut() {
                if k == "properties" {
                    if let Value::Object(props) = x {
                        props.values_mut().for_each(undocumented);
                    }
                } else {
                    undocumented(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(undocumented),
        _ => {}
    }
}

/// `oneOf` of bare string constants (what schemars makes of documented unit variants) is one
/// `enum`.
fn enums(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let words: Option<Vec<Value>> =
                o.get("oneOf").and_then(Value::as_array).and_then(|a| {
                    let mut words = Vec::new();
                    for b in a {
                        let b = b.as_object()?;
                        if b.get("type") != Some(&Value::from("string"))
                            || b.keys()
                                .any(|k| !matches!(k.as_str(), "type" | "const" | "enum"))
                        {
                            return None;
                        }
                        match (b.get("const"), b.get("enum").and_then(Value::as_array)) {
                            (Some(c), None) => words.push(c.clone()),
                            (None, Some(e)) => words.extend(e.iter().cloned()),
                            _ => return None,
                        }
                    }
                    Some(words)
                });
            if let Some(words) = words {
                o.remove("oneOf");
                o.insert("type".into(), "string".into());
                o.insert("enum".into(), Value::Array(words));
            }
            o.values_mut().for_each(enums);
        }
        Value::Array(a) => a.iter_mut().for_each(enums),
        _ => {}
    }
}

/// Objects nested deeper than this many levels of properties are given by their type only:
/// the deep shape is in `tools/`' Rust sources and docs, and every level costs every request.
const OUTPUT_DEPTH: usize = 3;

fn shallow(v: &mut Value, depth: usize) {
    shallow_at(v, depth, OUTPUT_DEPTH)
}

fn shallow_at(v: &mut Value, depth: usize, max: usize) {
    let Value::Object(o) = v else { return };
    if depth >= max {
        o.retain(|k, _| k == "type");
        return;
    }
    for (k, x) in o.iter_mut() {
        match (k.as_str(), x) {
            ("properties", Value::Object(props)) => {
                props
                    .values_mut()
                    .for_each(|p| shallow_at(p, depth + 1, max));
            }
            ("items" | "additionalProperties", x) => shallow_at(x, depth, max),
            (_, Value::Array(a)) => a.iter_mut().for_each(|x| shallow_at(x, depth, max)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn output_schemas_drop_docs_but_keep_a_property_called_description() {
        let mut v = serde_json::json!({"type": "object", "description": "doc",
            "properties": {"description": {"type": "string", "description": "doc"}}});
        super::undocumented(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"type": "object",
                "properties": {"description": {"type": "string"}}})
        );
    }

    #[test]
    fn schemas_use_standard_types_only() {
        let mut v = serde_json::json!({"type": "object", "properties": {
            "n": {"type": "integer", "format": "uint64", "minimum": 0},
            "m": {"type": ["integer", "null"], "format": "uint32"},
            "i": {"type": "integer", "format": "int64"},
            "f": {"type": "number", "format": "double"},
            "d": {"type": "string", "format": "date-time"}
        }});
        super::standard(&mut v);
        let p = &v["properties"];
        assert_eq!(p["n"], serde_json::json!({"type": "integer", "minimum": 0}));
        assert_eq!(
            p["m"],
            serde_json::json!({"type": ["integer", "null"], "minimum": 0})
        );
        assert_eq!(p["i"], serde_json::json!({"type": "integer"}));
        assert_eq!(p["f"], serde_json::json!({"type": "number"}));
        assert_eq!(p["d"]["format"], "date-time", "string formats stay");
    }
}
