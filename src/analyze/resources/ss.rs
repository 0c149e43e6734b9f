//! Listening TCP sockets from `ss -Htlnp` (`-H` no header, `-t` TCP, `-l` listening, `-n`
//! numeric, `-p` processes; run under `LC_ALL=C`).
//!
//! Columns: `State Recv-Q Send-Q Local:Port Peer:Port [users:(("name",pid=1,fd=3),...)]`.
//! For a listening socket `Recv-Q` is the accept queue and `Send-Q` the backlog: a full accept
//! queue is an incident symptom of its own. Processes show only for sockets the caller may
//! inspect (root sees all).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::ParseError;
use crate::analyze::error::number;

const INPUT: &str = "ss";

/// A listening TCP socket.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ListeningSocket {
    /// Local address without brackets: `0.0.0.0`, `127.0.0.1`, `::`, `::1`, `*` (every
    /// address, IPv4 and IPv6), possibly with `%interface`.
    pub address: String,
    /// Local port.
    pub port: u16,
    /// Connections waiting to be accepted (Recv-Q).
    pub accept_queue: u32,
    /// Maximum accept queue (Send-Q, the listen backlog).
    pub backlog: u32,
    /// Processes holding the socket; empty when ss did not show them.
    pub processes: Vec<SocketProcess>,
}

/// A process holding a socket.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SocketProcess {
    /// Process name (its 15-character `comm`).
    pub name: String,
    /// Process id.
    pub pid: u32,
}

/// Parse `ss -Htlnp` (or `ss -Htln`) output.
pub fn parse_ss_listening(output: &str) -> Result<Vec<ListeningSocket>, ParseError> {
    let mut sockets = Vec::new();
    for (index, line) in output.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        sockets.push(parse_line(line, index + 1)?);
    }
    Ok(sockets)
}

fn parse_line(line: &str, at: usize) -> Result<ListeningSocket, ParseError> {
    let mut words = line.split_whitespace();
    let (Some(_state), Some(recv_q), Some(send_q), Some(local), Some(_peer)) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return Err(ParseError::line(
            INPUT,
            at,
            "expected STATE RECV-Q SEND-Q LOCAL PEER",
            line,
        ));
    };
    let (host, port) = local.rsplit_once(':').ok_or_else(|| {
        ParseError::field(INPUT, at, "local address", "expected HOST:PORT", local)
    })?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let processes = match line.find("users:(") {
        Some(start) => parse_users(&line[start..]).ok_or_else(|| {
            ParseError::field(
                INPUT,
                at,
                "process",
                "unreadable users:(...)",
                &line[start..],
            )
        })?,
        None => Vec::new(),
    };
    Ok(ListeningSocket {
        address: host.to_string(),
        port: number(INPUT, at, "port", port)?,
        accept_queue: number(INPUT, at, "Recv-Q", recv_q)?,
        backlog: number(INPUT, at, "Send-Q", send_q)?,
        processes,
    })
}

/// `users:(("rb-child",pid=8839,fd=6),("rb worker 1",pid=8837,fd=6))`.
///
/// A name may contain spaces, commas or quotes, so each entry is cut at `",pid=` (what ss
/// writes after the name) rather than at the next quote.
fn parse_users(text: &str) -> Option<Vec<SocketProcess>> {
    let mut rest = text.strip_prefix("users:(")?;
    let mut processes = Vec::new();
    while let Some(entry) = rest.strip_prefix("(\"") {
        let (name, after) = entry.split_once("\",pid=")?;
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        processes.push(SocketProcess {
            name: name.to_string(),
            pid: after[..digits].parse().ok()?,
        });
        // Skip `,fd=N)` and the comma before the next entry.
        let close = after.find(')')?;
        rest = after[close + 1..].trim_start_matches(',');
    }
    Some(processes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SS: &str = include_str!("../fixtures/ss_htlnp.txt");
    const SS_NO_PROCESSES: &str = include_str!("../fixtures/ss_htln_noproc.txt");

    fn names(socket: &ListeningSocket) -> Vec<(&str, u32)> {
        socket
            .processes
            .iter()
            .map(|p| (p.name.as_str(), p.pid))
            .collect()
    }

    #[test]
    fn real_listening_sockets_v4_v6_and_shared() {
        let sockets = parse_ss_listening(SS).unwrap();
        let ends: Vec<_> = sockets
            .iter()
            .map(|s| (s.address.as_str(), s.port))
            .collect();
        assert_eq!(
            ends,
            vec![
                ("0.0.0.0", 2024),
                ("127.0.0.1", 19100),
                ("127.0.0.1", 19090),
                ("127.0.0.2", 18083),
                ("::1", 18081),
                ("*", 18080),
                ("::", 18082),
            ]
        );
        assert!(sockets[0].processes.is_empty());
        assert_eq!(names(&sockets[1]), vec![("prometheus-node", 8694)]);
        assert_eq!(sockets[2].backlog, 4096);
        assert_eq!(sockets[2].accept_queue, 0);
        assert_eq!(
            names(&sockets[5]),
            vec![("rb-child", 8839), ("rb worker 1", 8837)]
        );
    }

    #[test]
    fn real_listening_sockets_without_processes() {
        let sockets = parse_ss_listening(SS_NO_PROCESSES).unwrap();
        assert_eq!(sockets.len(), 7);
        assert!(sockets.iter().all(|s| s.processes.is_empty()));
        assert_eq!(sockets[6].address, "::");
    }

    #[test]
    fn odd_names_and_malformed_lines() {
        let line = r#"LISTEN 0 5 127.0.0.53%lo:53 0.0.0.0:* users:(("a \"b\",c",pid=7,fd=3))"#;
        let socket = &parse_ss_listening(line).unwrap()[0];
        assert_eq!(socket.address, "127.0.0.53%lo");
        assert_eq!(names(socket), vec![(r#"a \"b\",c"#, 7)]);
        assert!(matches!(
            parse_ss_listening("LISTEN 0 5\n"),
            Err(ParseError::Line { .. })
        ));
        assert!(matches!(
            parse_ss_listening("LISTEN 0 5 127.0.0.1:http 0.0.0.0:*\n"),
            Err(ParseError::Field { field: "port", .. })
        ));
        assert!(
            parse_ss_listening("LISTEN 0 5 127.0.0.1:80 0.0.0.0:* users:((\"x\",pid=\n").is_err()
        );
        assert!(parse_ss_listening("LISTEN 0 5 nocolon 0.0.0.0:*\n").is_err());
    }
}
