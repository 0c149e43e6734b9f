//! The published surface and the architecture rules, checked without the lab.
#![allow(clippy::unwrap_used)]

mod common;

#[test]
fn tool_contracts_and_readme_table_are_current() {
    let stale = runbook_mcp::contract::stale(&common::repo()).unwrap();
    assert!(
        stale.is_empty(),
        "stale or missing tool contracts: {stale:?}\nrun `cargo run -- contract --write` and review the diff"
    );
}

#[test]
fn every_tool_has_an_object_schema_a_title_and_a_short_description() {
    for t in runbook_mcp::tools::registry() {
        assert_eq!(t.input_schema["type"], "object", "{}", t.meta.name);
        assert_eq!(t.output_schema["type"], "object", "{}", t.meta.name);
        assert!(
            t.input_schema.get("$defs").is_none(),
            "{}: schemas are inlined",
            t.meta.name
        );
        assert!(!t.meta.title.is_empty());
        assert!(
            t.meta.description.len() < 600,
            "{}: description too long",
            t.meta.name
        );
        let a = t.annotations();
        assert_eq!(
            a.read_only_hint,
            t.meta.effect == runbook_mcp::engine::Effect::Read
        );
    }
}

/// Architecture invariant: only `src/mcp/` knows MCP.
#[test]
fn only_the_mcp_module_imports_rmcp() {
    let src = common::repo().join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p != src.join("mcp") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs")
                && std::fs::read_to_string(&p).unwrap().contains("rmcp::")
            {
                offenders.push(p);
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "rmcp used outside src/mcp: {offenders:?}"
    );
}

/// The non-test code of every `.rs` file under `src/<dir>` (test modules cut off).
fn sources(dir: &str) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![common::repo().join("src").join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                if name == "tests.rs" || name.ends_with("_tests.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
                out.push((p, code));
            }
        }
    }
    out
}

/// Architecture invariant (DESIGN §5): data flows one way. `config`, `exec`, `analyze` and
/// `audit` never import `engine` or `tools`; `engine` never imports `tools` (it is given its
/// registry and executors).
#[test]
fn imports_flow_one_way() {
    let mut offenders = Vec::new();
    for (dir, forbidden) in [
        ("config", &["crate::engine", "crate::tools"][..]),
        ("exec", &["crate::engine", "crate::tools"]),
        ("analyze", &["crate::engine", "crate::tools"]),
        ("audit", &["crate::engine", "crate::tools"]),
        ("incident", &["crate::engine", "crate::tools"]),
        ("engine", &["crate::tools", "crate::runtime", "crate::mcp"]),
    ] {
        for (p, code) in sources(dir) {
            for f in forbidden {
                if code.contains(f) {
                    offenders.push(format!("{} names {f}", p.display()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "imports against the flow: {offenders:#?}"
    );
}

/// Parameter structs reject unknown fields: an `approved: true` can never slip through.
#[test]
fn every_tool_rejects_unknown_arguments() {
    for t in runbook_mcp::tools::registry() {
        assert_eq!(
            t.input_schema["additionalProperties"], false,
            "{} must use deny_unknown_fields",
            t.meta.name
        );
    }
}
