//! The audit log: append-only, hash-chained JSON lines in `<state_dir>/audit.jsonl`.
//!
//! Every line is `{"seq":N,"ts":"…","prev":"<hex sha256 of the previous line>","kind":…}`:
//! the intent of a call before anything runs, each approval decision, the outcome after. The
//! hash of a line is SHA-256 of its exact bytes (without the newline), so editing any byte
//! breaks the next line's `prev`. After every append the chain head (seq, hash, log length) is
//! written to `audit.head`; it catches what no later `prev` can: an edit of the last line and
//! lines cut from the end.
//!
//! Several servers may share one state directory (one stdio server per editor window): an
//! append holds an exclusive `flock` on `audit.lock` while it reads the head, writes and
//! fsyncs its line and replaces the head, so their appends form one chain. Readers hold the
//! lock shared, so they never see a half-written line or a head out of step with the log.
//!
//! Secrets are masked by value in every text field before a record is written. Same-user
//! tampering with both files is out of scope (DESIGN §4, docs/SECURITY.md).

mod record;
pub(crate) mod store;
pub use store::LOCK_WAIT;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use record::{Entry, Record, Status, Verdict};
pub use verify::{OpenIntent, Problem, Report};

use record::{Line, Masker};
use store::{GENESIS, Head, HeadState, Locked};

/// Why the audit log could not be written or read. A mutating call whose intent cannot be
/// appended must not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log: cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("audit log {}: {at}: {why} (run `runbook-mcp audit verify`)", path.display())]
    Corrupt {
        path: PathBuf,
        at: String,
        why: String,
    },
    #[error("audit log: cannot encode a record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The audit log of one state directory. Cheap to share (`Arc`); every method blocks on file
/// I/O and the lock, so async callers use `spawn_blocking`.
pub struct AuditLog {
    log: PathBuf,
    head: PathBuf,
    lock: PathBuf,
    masker: Masker,
}

/// Where the next line attaches.
struct Tip {
    seq: u64,
    hash: String,
    /// Log length after any repair.
    len: u64,
    /// The log ends in a fragment the head covers: end it with a newline rather than delete
    /// acknowledged bytes (verify then reports it).
    seal: bool,
}

/// How many lines from the end the recovery path looks through for the last readable entry.
const RECOVERY_LINES: usize = 16;

impl AuditLog {
    /// Opens the log of `state_dir`, creating the directory (0700), the log, the lock file and
    /// an empty-chain head as needed. `secrets` are the values to mask; shorter than 4
    /// characters are ignored.
    pub fn open(state_dir: &Path, secrets: Vec<String>) -> Result<Self, AuditError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(io_err("create", state_dir))?;
        let this = Self {
            log: state_dir.join("audit.jsonl"),
            head: state_dir.join("audit.head"),
            lock: state_dir.join("audit.lock"),
            masker: Masker::new(secrets),
        };
        let _lock = this.locked(true)?;
        let log = this.open_log()?;
        let len = this.len(&log)?;
        // Only a brand-new log gets a head here; a missing head next to entries is for
        // `verify` to report, not for `open` to paper over.
        if len == 0 && this.read_head()? == HeadState::Missing {
            store::write_head(&this.head, &Head::genesis()).map_err(io_err("write", &this.head))?;
        }
        Ok(this)
    }

    pub fn path(&self) -> &Path {
        &self.log
    }

    /// Masks `record`, appends it as the next link of the chain, fsyncs it and moves the head.
    /// Returns the entry as written. An error means the record may not be in the log.
    pub fn append(&self, mut record: Record) -> Result<Entry, AuditError> {
        record.mask(&self.masker);
        let _lock = self.locked(true)?;
        let log = self.open_log()?;
        let len = self.len(&log)?;
        let tip = self.tip(&log, len)?;

        let seq = tip.seq + 1;
        let ts = store::rfc3339_ms(SystemTime::now());
        let line = serde_json::to_vec(&Line {
            seq,
            ts: &ts,
            prev: &tip.hash,
            record: &record,
        })?;
        let hash = store::line_hash(&line);
        let mut bytes = Vec::with_capacity(line.len() + 2);
        if tip.seal {
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
        // One write to an O_APPEND file; the lock, not O_APPEND, keeps writers apart.
        (&log)
            .write_all(&bytes)
            .and_then(|()| log.sync_data())
            .map_err(io_err("append to", &self.log))?;
        let head = Head {
            seq,
            hash: hash.clone(),
            len: tip.len + bytes.len() as u64,
        };
        store::write_head(&self.head, &head).map_err(io_err("write", &self.head))?;
        Ok(Entry {
            seq,
            ts,
            prev: tip.hash,
            record,
            hash,
        })
    }

    /// Finds where the next line attaches. Normally the head, trusted when it matches the
    /// log's length. Otherwise (a crash between the two writes, a write cut short, a missing
    /// head, or tampering) looks at the end of the log.
    fn tip(&self, log: &File, len: u64) -> Result<Tip, AuditError> {
        let head = self.read_head()?;
        if let HeadState::Ok(h) = &head
            && h.len == len
            && (len == 0 || self.last_byte(log, len)? == b'\n')
        {
            return Ok(Tip {
                seq: h.seq,
                hash: h.hash.clone(),
                len,
                seal: false,
            });
        }
        let tail = store::read_tail(log, len, RECOVERY_LINES).map_err(io_err("read", &self.log))?;
        let mut len = len;
        let mut seal = false;
        if tail.fragment > 0 {
            let start = len - tail.fragment;
            match &head {
                // Bytes past what the head acknowledges were never reported as written to
                // anyone: drop them.
                HeadState::Ok(h) if start >= h.len => {
                    tracing::warn!(
                        bytes = tail.fragment,
                        "audit log: removing a write cut short"
                    );
                    log.set_len(start).map_err(io_err("truncate", &self.log))?;
                    len = start;
                }
                _ => seal = true,
            }
        }
        let last = tail
            .lines
            .iter()
            .rev()
            .find_map(|raw| store::parse_line(raw).ok());
        let (seq, hash) = match (&head, last) {
            // A crash after the line was written but before the head: the line is good.
            (HeadState::Ok(h), Some(e)) if e.seq == h.seq + 1 && e.prev == h.hash => {
                (e.seq, e.hash)
            }
            // Keep chaining from the head, so lines cut from the end or an edited last line
            // stay visible to `verify` after this append.
            (HeadState::Ok(h), _) => (h.seq, h.hash.clone()),
            (_, Some(e)) => (e.seq, e.hash),
            (_, None) => (0, GENESIS.to_string()),
        };
        if !matches!(&head, HeadState::Ok(h) if h.seq == seq && h.hash == hash) || seal {
            tracing::warn!(
                seq,
                "audit log: head and log disagreed; `runbook-mcp audit verify` shows why"
            );
        }
        Ok(Tip {
            seq,
            hash,
            len,
            seal,
        })
    }

    /// Every entry, oldest first. Fails on a line that is not an entry (`verify` says more).
    pub fn entries(&self) -> Result<Vec<Entry>, AuditError> {
        let bytes = {
            let _lock = self.locked(false)?;
            self.read_log()?
        };
        // A fragment after the last newline is a write cut short, not an entry.
        let (body, _) = store::split_complete(&bytes);
        body.into_iter()
            .flat_map(|b| b.split(|c| *c == b'\n'))
            .enumerate()
            .map(|(i, raw)| {
                store::parse_line(raw).map_err(|why| self.corrupt(format!("line {}", i + 1), why))
            })
            .collect()
    }

    /// The last `n` entries, oldest first, read from the end of the file.
    pub fn tail(&self, n: usize) -> Result<Vec<Entry>, AuditError> {
        let tail = {
            let _lock = self.locked(false)?;
            let log = self.open_log()?;
            let len = self.len(&log)?;
            store::read_tail(&log, len, n).map_err(io_err("read", &self.log))?
        };
        let count = tail.lines.len();
        tail.lines
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                store::parse_line(raw)
                    .map_err(|why| self.corrupt(format!("line {} from the end", count - i), why))
            })
            .collect()
    }

    /// Checks the whole chain against the head file and lists intents with no outcome.
    pub fn verify(&self) -> Result<Report, AuditError> {
        let (bytes, head) = {
            let _lock = self.locked(false)?;
            let head = self.read_head()?;
            let bytes = self.read_log()?;
            (bytes, head)
        };
        Ok(verify::check(&bytes, &head))
    }

    /// The whole log; a deleted log reads as empty, so `verify` reports it as truncated.
    fn read_log(&self) -> Result<Vec<u8>, AuditError> {
        match std::fs::read(&self.log) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            r => r.map_err(io_err("read", &self.log)),
        }
    }

    fn locked(&self, exclusive: bool) -> Result<Locked, AuditError> {
        store::lock(&self.lock, exclusive).map_err(io_err("lock", &self.lock))
    }

    fn open_log(&self) -> Result<File, AuditError> {
        // Opened per operation: a log replaced on disk is picked up, not written to a ghost.
        store::private(OpenOptions::new().read(true).append(true).create(true))
            .open(&self.log)
            .map_err(io_err("open", &self.log))
    }

    fn len(&self, log: &File) -> Result<u64, AuditError> {
        Ok(log.metadata().map_err(io_err("stat", &self.log))?.len())
    }

    fn last_byte(&self, log: &File, len: u64) -> Result<u8, AuditError> {
        let mut b = [0u8; 1];
        log.read_exact_at(&mut b, len - 1)
            .map_err(io_err("read", &self.log))?;
        Ok(b[0])
    }

    fn read_head(&self) -> Result<HeadState, AuditError> {
        store::read_head(&self.head).map_err(io_err("read", &self.head))
    }

    fn corrupt(&self, at: String, why: String) -> AuditError {
        AuditError::Corrupt {
            path: self.log.clone(),
            at,
            why,
        }
    }
}

/// Never prints the secret values.
impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("log", &self.log)
            .field("masked_values", &self.masker.len())
            .finish()
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AuditError {
    let path = path.to_path_buf();
    move |source| AuditError::Io {
        action,
        path,
        source,
    }
}

/// Now as the audit log writes times: RFC 3339 UTC with milliseconds.
pub fn now_ms() -> String {
    store::rfc3339_ms(std::time::SystemTime::now())
}
