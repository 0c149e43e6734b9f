//! `audit verify`: walks the whole log, checks the hash chain, the sequence and the head file,
//! and lists intents that never got an outcome.

use std::collections::BTreeMap;
use std::fmt;

use super::record::{Record, one_line};
use super::store::{GENESIS, HeadState, line_hash, parse_line, split_complete};

/// The result of checking the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Lines that parsed as entries.
    pub entries: u64,
    pub problems: Vec<Problem>,
    /// Intents with no outcome, oldest first.
    pub open_intents: Vec<OpenIntent>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One integrity problem. `line` is the 1-based line number in `audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not an entry (edited into invalid JSON, or a write cut short).
    BadLine {
        line: u64,
        why: String,
    },
    /// `prev` is not the hash of the line before: that line was edited, or lines were removed
    /// or reordered.
    BrokenLink {
        line: u64,
    },
    /// `seq` is not the previous one plus one: lines were removed or reordered.
    SeqGap {
        line: u64,
        expected: u64,
        found: u64,
    },
    /// The head file says more entries were written than the log holds: lines were cut from
    /// the end.
    TruncatedVsHead {
        head_seq: u64,
        last_seq: u64,
    },
    /// The entry the head file points at has another hash: it was edited (this is how an edit
    /// of the last line, which no later `prev` covers, is caught).
    HeadMismatch {
        line: u64,
        seq: u64,
    },
    /// The log goes on past the head: a crash between writing a line and the head (the next
    /// append repairs one such line), or lines added by hand.
    HeadBehind {
        head_seq: u64,
        last_seq: u64,
    },
    MissingHead,
    BadHead {
        why: String,
    },
}

/// An intent whose request has no outcome: still running, or the server crashed or was
/// killed mid-action (what happened on the hosts is then unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIntent {
    pub line: u64,
    pub seq: u64,
    pub ts: String,
    pub request_id: String,
    pub tool: String,
    pub principal: String,
}

/// Checks log bytes against the head. Pure, so every tampering case is testable on bytes.
pub(super) fn check(bytes: &[u8], head: &HeadState) -> Report {
    let mut problems = Vec::new();
    let mut open: BTreeMap<String, OpenIntent> = BTreeMap::new();
    let mut entries = 0;
    let mut prev_hash = GENESIS.to_string();
    let mut expected = 1;
    // (line, seq, hash) of the last entry, and of the entry the head points at.
    let mut last: Option<(u64, u64, String)> = None;
    let mut at_head: Option<(u64, String)> = None;
    let head_seq = match head {
        HeadState::Ok(h) => Some(h.seq),
        _ => None,
    };

    let (body, fragment) = split_complete(bytes);
    let mut line = 0;
    for raw in body.into_iter().flat_map(|b| b.split(|c| *c == b'\n')) {
        line += 1;
        let hash = line_hash(raw);
        match parse_line(raw) {
            Err(why) => {
                problems.push(Problem::BadLine { line, why });
                // It presumably held the next seq; counting it avoids a second report.
                expected += 1;
            }
            Ok(e) => {
                entries += 1;
                if e.seq != expected {
                    problems.push(Problem::SeqGap {
                        line,
                        expected,
                        found: e.seq,
                    });
                }
                // Resynchronize forward only: after a swapped pair the line following it is
                // in place again and must not be reported.
                expected = expected.max(e.seq + 1);
                if e.prev != prev_hash {
                    problems.push(Problem::BrokenLink { line });
                }
                if Some(e.seq) == head_seq {
                    at_head = Some((line, hash.clone()));
                }
                match &e.record {
                    Record::Intent {
                        request_id,
                        tool,
                        principal,
                        ..
                    } => {
                        open.insert(
                            request_id.clone(),
                            OpenIntent {
                                line,
                                seq: e.seq,
                                ts: e.ts.clone(),
                                request_id: request_id.clone(),
                                tool: tool.clone(),
                                principal: principal.clone(),
                            },
                        );
                    }
                    Record::Outcome { request_id, .. } => {
                        open.remove(request_id);
                    }
                    Record::Decision { .. } | Record::Call { .. } | Record::Ignored { .. } => {}
                }
                last = Some((line, e.seq, hash.clone()));
            }
        }
        prev_hash = hash;
    }
    if !fragment.is_empty() {
        problems.push(Problem::BadLine {
            line: line + 1,
            why: "no newline at the end: a write was cut short (the next append removes it)".into(),
        });
    }

    let last_seq = last.as_ref().map_or(0, |l| l.1);
    match head {
        HeadState::Missing if entries > 0 => problems.push(Problem::MissingHead),
        HeadState::Missing => {}
        HeadState::Unreadable(why) => problems.push(Problem::BadHead { why: why.clone() }),
        HeadState::Ok(h) if h.seq > last_seq => problems.push(Problem::TruncatedVsHead {
            head_seq: h.seq,
            last_seq,
        }),
        HeadState::Ok(h) => {
            if h.seq < last_seq {
                problems.push(Problem::HeadBehind {
                    head_seq: h.seq,
                    last_seq,
                });
            }
            // The genesis head (seq 0) points at no line.
            if let Some((line, hash)) = at_head
                && hash != h.hash
            {
                problems.push(Problem::HeadMismatch { line, seq: h.seq });
            }
        }
    }

    let mut open_intents: Vec<OpenIntent> = open.into_values().collect();
    open_intents.sort_by_key(|o| o.seq);
    Report {
        entries,
        problems,
        open_intents,
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BadLine { line, why } => {
                write!(f, "line {line}: not an entry: {}", one_line(why, 200))
            }
            Problem::BrokenLink { line } => write!(
                f,
                "line {line}: broken chain: `prev` is not the hash of the line before (that \
                 line was edited, or lines were removed or reordered)"
            ),
            Problem::SeqGap {
                line,
                expected,
                found,
            } => write!(
                f,
                "line {line}: seq {found} where {expected} was expected (lines removed or \
                 reordered)"
            ),
            Problem::TruncatedVsHead { head_seq, last_seq } => write!(
                f,
                "end of log: the head file says {head_seq} entries were written, the log ends \
                 at {last_seq} (lines cut from the end)"
            ),
            Problem::HeadMismatch { line, seq } => write!(
                f,
                "line {line}: entry {seq} does not match the hash in the head file (it was \
                 edited)"
            ),
            Problem::HeadBehind { head_seq, last_seq } => write!(
                f,
                "end of log: entries {}..={last_seq} are past the head file's {head_seq} (a \
                 crash between the two writes, or lines added by hand)",
                head_seq + 1
            ),
            Problem::MissingHead => write!(
                f,
                "head file missing: truncation and an edit of the last line cannot be detected"
            ),
            Problem::BadHead { why } => write!(f, "head file unreadable: {why}"),
        }
    }
}

/// The `runbook-mcp audit verify` text: a verdict, each problem, then the open intents (no
/// trailing newline, so callers can `println!` it).
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.is_empty() {
            write!(f, "OK: {} entries, chain and head intact", self.entries)?;
        } else {
            write!(
                f,
                "FAILED: {} entries, {} problem(s):",
                self.entries,
                self.problems.len()
            )?;
            for p in &self.problems {
                write!(f, "\n  {p}")?;
            }
        }
        if self.open_intents.is_empty() {
            return write!(f, "\nopen intents: none");
        }
        write!(
            f,
            "\nopen intents (no outcome: still running, or the server stopped mid-action; check \
             the targets):"
        )?;
        for o in &self.open_intents {
            write!(
                f,
                "\n  line {}  seq {}  {}  {}  {} by {}",
                o.line, o.seq, o.ts, o.request_id, o.tool, o.principal
            )?;
        }
        Ok(())
    }
}
