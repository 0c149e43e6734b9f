//! runbook-mcp: an MCP server that publishes an incident-response runbook as typed tools.
//!
//! Code map (data flows one way):
//! `mcp` (the only module importing rmcp) → `engine` (lookup, argument validation, visibility,
//! execution, result) → `tools` (one module per runbook area, typed parameters and results) →
//! `exec` (local / ssh / http executors, service managers) → `analyze` (pure parsers) → back up.
//! `config` turns the TOML inventory into validated types; `contract` renders the published
//! tool contracts in `tools/`.
//!
//! Invariants:
//! - Only `src/mcp/` imports `rmcp` (checked by a test).
//! - No shell on our side: the local executor runs argv; over ssh every word is quoted.
//! - Every tool declares an effect; MCP annotations and read-only mode derive from it.
//! - Secrets never leave the server: they are sent only as HTTP headers, and every output is
//!   masked by value.

pub mod analyze;
pub mod audit;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod contract;
pub mod digest;
pub mod doctor;
pub mod engine;
pub mod exec;
pub mod incident;
pub mod mcp;
pub mod operator;
pub mod runtime;
pub mod screen;
pub mod tools;
