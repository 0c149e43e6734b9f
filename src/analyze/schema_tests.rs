//! Every output type's JSON Schema describes every field: those descriptions are what a model
//! reads in a tool's output schema, so a field without a doc comment fails here.

use schemars::{JsonSchema, schema_for};
use serde_json::Value;

use super::{
    ServiceState, docker, elbv2, findings, logs, metrics_text, prom, resources, supervisor, systemd,
};

/// Names of properties (anywhere in the schema, `$defs` included) that lack a description.
fn undescribed<T: JsonSchema>() -> Vec<String> {
    let schema = schema_for!(T);
    let mut missing = Vec::new();
    walk(schema.as_value(), "", &mut missing);
    missing
}

fn walk(node: &Value, path: &str, missing: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, prop) in props {
                    // An enum's tag (`"status": {"const": "success"}`) names its variant, whose
                    // own description is the documentation.
                    let is_tag = prop.get("const").is_some()
                        || prop
                            .get("enum")
                            .and_then(Value::as_array)
                            .is_some_and(|e| e.len() == 1);
                    if prop.get("description").is_none() && !is_tag {
                        missing.push(format!("{path}.{name}"));
                    }
                }
            }
            // Enum variants (`oneOf` items that are a constant or an object) need their own
            // description too; `Option`'s `anyOf` of a `$ref` and `null` does not.
            if let Some(Value::Array(variants)) = map.get("oneOf") {
                for variant in variants {
                    let is_variant = variant.get("const").is_some()
                        || variant.get("enum").is_some()
                        || variant.get("properties").is_some();
                    if is_variant && variant.get("description").is_none() {
                        missing.push(format!("{path} variant {variant}"));
                    }
                }
            }
            for (key, child) in map {
                walk(child, &format!("{path}/{key}"), missing);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, path, missing)),
        _ => {}
    }
}

#[test]
fn every_output_field_is_described() {
    let missing: Vec<String> = [
        undescribed::<systemd::UnitStatus>(),
        undescribed::<systemd::ActiveCheck>(),
        undescribed::<supervisor::ProgramStatus>(),
        undescribed::<docker::SwarmService>(),
        undescribed::<docker::SwarmTask>(),
        undescribed::<elbv2::TargetHealth>(),
        undescribed::<elbv2::TargetGroup>(),
        undescribed::<resources::LoadAverage>(),
        undescribed::<resources::MemoryUsage>(),
        undescribed::<resources::DiskUsage>(),
        undescribed::<resources::ProcessInfo>(),
        undescribed::<resources::ListeningSocket>(),
        undescribed::<prom::PromResponse>(),
        undescribed::<metrics_text::Sample>(),
        undescribed::<logs::LogLine>(),
        undescribed::<findings::Finding>(),
        undescribed::<ServiceState>(),
    ]
    .concat();
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:?}"
    );
}

#[test]
fn enums_and_values_have_the_wire_names_the_docs_promise() {
    let state = serde_json::to_value(schema_for!(ServiceState))
        .unwrap()
        .to_string();
    for name in [
        "running",
        "stopped",
        "failed",
        "not_found",
        "activating",
        "degraded",
        "unknown",
    ] {
        assert!(
            state.contains(&format!("\"{name}\"")),
            "{name} missing from {state}"
        );
    }
    let prom = serde_json::to_value(schema_for!(prom::PromResponse))
        .unwrap()
        .to_string();
    for tag in [
        "\"success\"",
        "\"error\"",
        "\"vector\"",
        "\"matrix\"",
        "\"scalar\"",
        "\"+Inf\"",
    ] {
        assert!(prom.contains(tag), "{tag} missing");
    }
}
