//! `supervisorctl status [NAME...]`: one line per program, `NAME  STATE  DESCRIPTION`.
//!
//! supervisorctl's exit status says little (3 when any program is not running, 4 for an unknown
//! name), so the lines are what counts. A RUNNING line's description is
//! `pid 7873, uptime 0:00:04`; past a day Python's timedelta prints `1 day, 2:03:04`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ParseError, ServiceState};

const INPUT: &str = "supervisorctl status";

/// One program, as `supervisorctl status` described it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ProgramStatus {
    /// The program name, with its group when it has one (`workers:worker-a`).
    pub name: String,
    /// Summary state: running, stopped, failed, not_found, activating, or unknown.
    pub state: ServiceState,
    /// supervisor's own state word (`RUNNING`, `STOPPED`, `STARTING`, `BACKOFF`, `STOPPING`,
    /// `EXITED`, `FATAL`, `UNKNOWN`), or `ERROR` for a name supervisor does not know.
    pub raw_state: String,
    /// The main process id, when running.
    pub pid: Option<u32>,
    /// Uptime as supervisor printed it (`0:00:04`, `1 day, 2:03:04`), when running.
    pub uptime: Option<String>,
    /// The same uptime in seconds, when it could be read.
    pub uptime_seconds: Option<u64>,
    /// The rest of the line: the reason for FATAL/BACKOFF, the stop time for STOPPED/EXITED.
    pub description: String,
}

/// Parse `supervisorctl status` output (all programs, or the ones named).
///
/// `NAME: ERROR (no such process)` becomes a not_found entry. Output that is not a status line
/// at all, such as `unix:///run/supervisor.sock no such file` when supervisord is down, is an
/// error naming that line.
pub fn parse_status(output: &str) -> Result<Vec<ProgramStatus>, ParseError> {
    let mut programs = Vec::new();
    for (index, line) in output.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        programs.push(parse_line(line).ok_or_else(|| {
            ParseError::line(INPUT, index + 1, "expected NAME STATE [DESCRIPTION]", line)
        })?);
    }
    Ok(programs)
}

fn parse_line(line: &str) -> Option<ProgramStatus> {
    let line = line.trim_end();
    if let Some((name, rest)) = line.split_once(": ERROR (") {
        // `nosuch: ERROR (no such process)`; `(no such group)` for a group name.
        let missing = rest.starts_with("no such");
        return Some(ProgramStatus {
            name: name.trim().to_string(),
            state: if missing {
                ServiceState::NotFound
            } else {
                ServiceState::Unknown
            },
            raw_state: "ERROR".to_string(),
            pid: None,
            uptime: None,
            uptime_seconds: None,
            description: rest.trim_end_matches(')').to_string(),
        });
    }
    let (name, rest) = split_word(line)?;
    let (raw_state, description) = split_word(rest)?;
    let state = match raw_state {
        "RUNNING" => ServiceState::Running,
        "STOPPED" | "EXITED" => ServiceState::Stopped,
        // BACKOFF: the process keeps exiting before startsecs and supervisor keeps retrying.
        "FATAL" | "BACKOFF" => ServiceState::Failed,
        "STARTING" | "STOPPING" => ServiceState::Activating,
        "UNKNOWN" => ServiceState::Unknown,
        _ => return None,
    };
    let (pid, uptime) = running_details(description);
    Some(ProgramStatus {
        name: name.to_string(),
        state,
        raw_state: raw_state.to_string(),
        pid,
        uptime_seconds: uptime.and_then(uptime_seconds),
        uptime: uptime.map(str::to_string),
        description: description.to_string(),
    })
}

/// The first whitespace-separated word and the trimmed rest.
fn split_word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    Some(match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    })
}

/// `pid 7873, uptime 0:00:04` → (7873, "0:00:04").
fn running_details(description: &str) -> (Option<u32>, Option<&str>) {
    let Some(rest) = description.strip_prefix("pid ") else {
        return (None, None);
    };
    match rest.split_once(", uptime ") {
        Some((pid, uptime)) => (pid.trim().parse().ok(), Some(uptime.trim())),
        None => (rest.trim().parse().ok(), None),
    }
}

/// `1 day, 2:03:04` / `3 days, 0:00:01` / `0:00:04` → seconds.
pub fn uptime_seconds(text: &str) -> Option<u64> {
    let (days, clock) = match text.split_once(", ") {
        Some((days, clock)) => {
            let count = days
                .strip_suffix(" days")
                .or_else(|| days.strip_suffix(" day"))?;
            (count.trim().parse::<u64>().ok()?, clock)
        }
        None => (0, text),
    };
    let mut parts = clock.trim().split(':').map(|p| p.parse::<u64>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(s)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(((days * 24 + h) * 60 + m) * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &str = include_str!("fixtures/supervisorctl_status_all.txt");
    const ALL_LATER: &str = include_str!("fixtures/supervisorctl_status_all_2.txt");
    const RUNNING: &str = include_str!("fixtures/supervisorctl_status_running.txt");
    const STOPPED: &str = include_str!("fixtures/supervisorctl_status_stopped.txt");
    const UNKNOWN: &str = include_str!("fixtures/supervisorctl_status_unknown.txt");
    const DAEMON_DOWN: &str = include_str!("fixtures/supervisorctl_status_down.txt");

    fn by_name<'a>(all: &'a [ProgramStatus], name: &str) -> &'a ProgramStatus {
        all.iter().find(|p| p.name == name).unwrap()
    }

    #[test]
    fn every_state_in_a_real_status_listing() {
        let all = parse_status(ALL).unwrap();
        assert_eq!(all.len(), 7);
        let mcp = by_name(&all, "cctelegram-mcp");
        assert_eq!(mcp.state, ServiceState::Running);
        assert_eq!(
            (mcp.pid, mcp.uptime.as_deref()),
            (Some(7873), Some("0:00:04"))
        );
        assert_eq!(mcp.uptime_seconds, Some(4));
        assert_eq!(
            by_name(&all, "cctelegram-bridge").state,
            ServiceState::Stopped
        );
        let crashy = by_name(&all, "crashy");
        assert_eq!(crashy.state, ServiceState::Failed);
        assert!(crashy.description.starts_with("Exited too quickly"));
        assert_eq!(by_name(&all, "oneshot").state, ServiceState::Stopped);
        let slow = by_name(&all, "slowstart");
        assert_eq!(
            (slow.state, slow.description.as_str()),
            (ServiceState::Activating, "")
        );
        assert_eq!(by_name(&all, "workers:worker-a").pid, Some(7877));

        let later = parse_status(ALL_LATER).unwrap();
        assert_eq!(by_name(&later, "flappy").raw_state, "BACKOFF");
        assert_eq!(by_name(&later, "flappy").state, ServiceState::Failed);
        let stopped = by_name(&later, "cctelegram-mcp");
        assert_eq!((stopped.state, stopped.pid), (ServiceState::Stopped, None));
        assert_eq!(stopped.description, "Nov 26 08:39 PM");
    }

    #[test]
    fn single_program_and_unknown_name() {
        assert_eq!(parse_status(RUNNING).unwrap()[0].uptime_seconds, Some(5));
        assert_eq!(
            parse_status(STOPPED).unwrap()[0].state,
            ServiceState::Stopped
        );
        let missing = &parse_status(UNKNOWN).unwrap()[0];
        assert_eq!(missing.name, "nosuch");
        assert_eq!(missing.state, ServiceState::NotFound);
        assert_eq!(missing.description, "no such process");
    }

    #[test]
    fn long_uptimes() {
        assert_eq!(uptime_seconds("1 day, 2:03:04"), Some(93_784));
        assert_eq!(uptime_seconds("3 days, 0:00:01"), Some(259_201));
        assert_eq!(uptime_seconds("12:00"), None);
        assert_eq!(uptime_seconds("a:b:c"), None);
    }

    #[test]
    fn not_a_status_line_is_an_error() {
        let err = parse_status(DAEMON_DOWN).unwrap_err();
        assert!(matches!(err, ParseError::Line { line: 1, .. }), "{err}");
        assert!(parse_status("web\n").is_err());
        assert!(parse_status("web SLEEPING forever\n").is_err());
        assert_eq!(parse_status("\n\n").unwrap(), vec![]);
    }
}
