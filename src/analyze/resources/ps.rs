//! Top processes from `ps`, with a fixed argv so the columns are known.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::ParseError;
use crate::analyze::error::number;

const INPUT: &str = "ps";

/// The exact command whose output [`parse_ps`] reads (run under `LC_ALL=C`).
///
/// - `user:32` widens the user column; ps cuts longer names to 31 characters and a `+`.
/// - `comm` (the 15-character executable name) rather than `args`: a command line can carry
///   secrets (`--password=...`), and this output ends up in tool results and the audit log.
/// - `comm` is last because it may contain spaces (`rb worker 1` is in the fixtures).
/// - `pcpu` is CPU time over the process's lifetime, not an instant sample; it ranks
///   long-running hogs, which is what the runbook's `ps aux` check is for.
pub const PS_ARGV: &[&str] = &[
    "ps",
    "-eo",
    "pid,user:32,pcpu,pmem,rss,etimes,comm",
    "--sort=-pcpu",
    "--no-headers",
];

/// One process from `ps`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Owner's user name (a numeric id when the name is unknown).
    pub user: String,
    /// CPU use in percent of one CPU, averaged over the process's lifetime.
    pub cpu_percent: f64,
    /// Resident memory in percent of physical memory.
    pub mem_percent: f64,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
    /// Seconds since the process started.
    pub elapsed_seconds: u64,
    /// Executable name (at most 15 characters; kernel threads show their own names).
    pub command: String,
}

/// Parse the output of [`PS_ARGV`], keeping the first `limit` processes (ps has sorted them
/// by CPU, highest first).
pub fn parse_ps(output: &str, limit: usize) -> Result<Vec<ProcessInfo>, ParseError> {
    let mut processes = Vec::new();
    for (index, line) in output.lines().enumerate() {
        if processes.len() == limit {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        processes.push(parse_line(line, index + 1)?);
    }
    Ok(processes)
}

fn parse_line(line: &str, at: usize) -> Result<ProcessInfo, ParseError> {
    let mut rest = line;
    let mut next = || {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        rest = tail;
        word
    };
    let (pid, user, pcpu, pmem, rss, etimes) = (next(), next(), next(), next(), next(), next());
    // The command is the rest of the line after one separating space.
    let command = rest.strip_prefix(' ').unwrap_or(rest).trim_end();
    if command.is_empty() {
        return Err(ParseError::line(
            INPUT,
            at,
            "expected PID USER %CPU %MEM RSS ELAPSED COMMAND",
            line,
        ));
    }
    let rss_kib: u64 = number(INPUT, at, "rss", rss)?;
    Ok(ProcessInfo {
        pid: number(INPUT, at, "pid", pid)?,
        user: user.to_string(),
        cpu_percent: number(INPUT, at, "pcpu", pcpu)?,
        mem_percent: number(INPUT, at, "pmem", pmem)?,
        rss_bytes: rss_kib.saturating_mul(1024),
        elapsed_seconds: number(INPUT, at, "etimes", etimes)?,
        command: command.trim_start().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = include_str!("../fixtures/ps_top.txt");

    #[test]
    fn real_ps_top_five() {
        let top = parse_ps(PS, 5).unwrap();
        assert_eq!(top.len(), 5);
        assert_eq!(
            top[0],
            ProcessInfo {
                pid: 7571,
                user: "root".into(),
                cpu_percent: 99.3,
                mem_percent: 0.0,
                rss_bytes: 1640 * 1024,
                elapsed_seconds: 1,
                command: "sh".into(),
            }
        );
        assert_eq!(
            top[1].command, "rb worker 1",
            "a name with spaces stays whole"
        );
        assert_eq!(top[2].command, "process_api");
        assert!(top.windows(2).all(|w| w[0].cpu_percent >= w[1].cpu_percent));
    }

    #[test]
    fn real_ps_everything() {
        let all = parse_ps(PS, usize::MAX).unwrap();
        assert_eq!(all.len(), PS.lines().count());
        let long_user = all.iter().find(|p| p.pid == 7538).unwrap();
        assert_eq!(long_user.user, "rb-longusername-test");
        let kworker = all.iter().find(|p| p.pid == 32).unwrap();
        assert_eq!(kworker.command, "kworker/u8:1-ext4-rsv-conversion");
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(matches!(
            parse_ps("  1 root 0.0 0.0 100 5\n", 5),
            Err(ParseError::Line { line: 1, .. })
        ));
        assert!(matches!(
            parse_ps("  1 root x 0.0 100 5 init\n", 5),
            Err(ParseError::Field { field: "pcpu", .. })
        ));
        assert!(parse_ps("-1 root 0.0 0.0 100 5 init\n", 5).is_err());
        assert_eq!(parse_ps("", 5).unwrap(), vec![]);
        assert_eq!(parse_ps(PS, 0).unwrap(), vec![]);
    }
}
