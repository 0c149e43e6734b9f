//! Fault injection: the control file is read on every request, so the lab can flip a fault on
//! and off with a plain `echo` and no signal or restart.

use std::path::Path;

/// The fault currently injected through the control file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Ok,
    Fail,
    Slow(u64),
    Error5xx,
}

/// Anything unreadable or unrecognised means `Ok`: a typo must not look like an outage.
pub(crate) fn read_mode(path: Option<&Path>) -> Mode {
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return Mode::Ok;
    };
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some("fail"), _) => Mode::Fail,
        (Some("5xx"), _) => Mode::Error5xx,
        (Some("slow"), ms) => Mode::Slow(
            ms.and_then(|m| m.parse::<u64>().ok())
                .unwrap_or(1000)
                .min(120_000),
        ),
        _ => Mode::Ok,
    }
}
