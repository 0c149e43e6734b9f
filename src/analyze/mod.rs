//! Pure parsers and analyzers: the text that commands print on a host (or the JSON an HTTP API
//! answers) goes in, a typed, documented value comes out.
//!
//! What lives here:
//! - service managers: [`systemd`] (`systemctl show`, `is-active`), [`supervisor`]
//!   (`supervisorctl status`), [`docker`] (`docker service ls` / `ps` JSON lines), all reduced to
//!   one [`ServiceState`];
//! - load balancer: [`elbv2`] (the `aws elbv2` CLI's JSON: target groups, target health);
//! - host resources: [`resources`] (`/proc/loadavg`, `/proc/meminfo`, `/proc/uptime`, `nproc`,
//!   `df -P -B1 -T`, `ps`, `ss -Htlnp`);
//! - metrics: [`prom`] (Prometheus HTTP API answers) and [`metrics_text`] (the text exposition
//!   format a `/metrics` endpoint serves);
//! - logs: [`logs`] (one log line, JSON or plain text, to a level, a time and a message);
//! - grading: [`findings`] (thresholds that turn numbers and states into ok / warn / critical).
//!
//! Architecture invariant: **pure**. Nothing here performs I/O, spawns, sleeps, reads the clock
//! or the environment, or imports `rmcp`; every function takes `&str` (or values) and returns a
//! value or a [`ParseError`] that names the line and field that failed. Odd input never panics.
//! This is what lets every parser be tested on captured real output: the captures live in
//! `src/analyze/fixtures/`, and `fixtures/SOURCES.md` says where each one came from.
//!
//! Every output type derives `JsonSchema` with a doc comment on each field: those comments are
//! the descriptions a model reads in the tools' output schemas.

pub mod docker;
pub mod elbv2;
mod error;
pub mod findings;
pub mod logs;
pub mod logscan;
pub mod metrics_text;
pub mod procs;
pub mod prom;
pub mod resources;
#[cfg(test)]
mod schema_tests;
mod state;
pub mod supervisor;
pub mod systemd;

pub use error::ParseError;
pub use state::ServiceState;

/// The `p` quantile (0..=1) of sorted values, nearest rank (0 when empty): what the runbook's
/// percentiles mean, with no interpolation that invents a value nobody measured.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod quantile_tests {
    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(super::quantile(&v, 0.5), 50.0);
        assert_eq!(super::quantile(&v, 0.95), 95.0);
        assert_eq!(super::quantile(&v, 0.99), 99.0);
        assert_eq!(super::quantile(&v, 1.0), 100.0);
        assert_eq!(super::quantile(&[7.0], 0.01), 7.0);
        assert_eq!(super::quantile(&[], 0.5), 0.0);
    }
}
