//! Plans: what a mutating call will do, built only from its arguments and the configuration,
//! and the digest an approval is bound to. Values known only at run time (the PIDs to clean
//! up, the rate now in nginx's file) appear as guarded steps described in words, never as
//! values, so the digest does not change under a live fleet.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One step of a plan.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Step {
    /// Inventory host the step acts on (or `server` for steps run here).
    pub host: String,
    #[serde(flatten)]
    pub action: StepAction,
}

/// What a step does.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepAction {
    /// Run this exact argv (through `sudo -n` when `sudo`).
    Run { argv: Vec<String>, sudo: bool },
    /// Check a condition before going on (stops the plan when it fails).
    Check { description: String },
    /// An action whose values are read at run time, described exactly.
    Guarded { description: String },
    /// Run this exact SQL statement on the configured database, from this server.
    Sql { statement: String },
}

/// A resolved mutating call.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Plan {
    pub tool: String,
    /// The arguments as understood (defaults filled in, `dry_run` left out: a previewed plan
    /// is the same plan).
    pub arguments: Value,
    pub steps: Vec<Step>,
    /// How to undo it, where there is a way (shown beside the steps, not part of the digest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undo: Vec<String>,
    /// SHA-256 of the canonical JSON of tool, arguments and steps.
    pub digest: String,
}

impl Plan {
    pub fn new(tool: &str, mut arguments: Value, steps: Vec<Step>, undo: Vec<String>) -> Self {
        if let Some(o) = arguments.as_object_mut() {
            o.remove("dry_run");
        }
        let body = serde_json::json!({"tool": tool, "arguments": arguments, "steps": steps});
        let digest = hex::encode(Sha256::digest(canonical(&body).as_bytes()));
        Self {
            tool: tool.into(),
            arguments,
            steps,
            undo,
            digest,
        }
    }

    /// Steps as short lines for prompts and the terminal.
    pub fn lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| match &s.action {
                StepAction::Run { argv, sudo } => {
                    format!(
                        "{}: {}{}",
                        s.host,
                        if *sudo { "sudo " } else { "" },
                        argv.join(" ")
                    )
                }
                StepAction::Check { description } => format!("{}: check: {description}", s.host),
                StepAction::Guarded { description } => format!("{}: {description}", s.host),
                StepAction::Sql { statement } => format!("{}: sql: {statement}", s.host),
            })
            .collect()
    }
}

impl Step {
    pub fn run(host: &str, argv: &[String], sudo: bool) -> Self {
        Self {
            host: host.into(),
            action: StepAction::Run {
                argv: argv.to_vec(),
                sudo,
            },
        }
    }

    pub fn check(host: &str, description: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            action: StepAction::Check {
                description: description.into(),
            },
        }
    }

    pub fn sql(host: &str, statement: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            action: StepAction::Sql {
                statement: statement.into(),
            },
        }
    }

    pub fn guarded(host: &str, description: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            action: StepAction::Guarded {
                description: description.into(),
            },
        }
    }
}

/// JSON with object keys sorted at every level, so the digest never depends on key order
/// (serde_json may preserve insertion order when a dependency enables it).
pub fn canonical(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&o[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digest_ignores_key_order_and_dry_run_but_not_steps_or_arguments() {
        let steps = vec![Step::run(
            "mcp-02",
            &["systemctl".into(), "restart".into(), "x".into()],
            true,
        )];
        let a = Plan::new(
            "restart_service",
            json!({"hosts": ["mcp-02"], "reason": "r", "dry_run": true}),
            steps.clone(),
            vec![],
        );
        let b = Plan::new(
            "restart_service",
            json!({"reason": "r", "hosts": ["mcp-02"]}),
            steps.clone(),
            vec!["undo".into()],
        );
        assert_eq!(a.digest, b.digest);
        let c = Plan::new(
            "restart_service",
            json!({"hosts": ["mcp-03"], "reason": "r"}),
            steps.clone(),
            vec![],
        );
        assert_ne!(a.digest, c.digest);
        let other = vec![Step::run(
            "mcp-02",
            &["systemctl".into(), "stop".into(), "x".into()],
            true,
        )];
        let d = Plan::new(
            "restart_service",
            json!({"hosts": ["mcp-02"], "reason": "r"}),
            other,
            vec![],
        );
        assert_ne!(a.digest, d.digest);
        assert_eq!(a.digest.len(), 64);
    }
}
