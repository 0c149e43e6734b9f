//! File-level pieces of the audit log: line hashes, timestamps, the head file, the lock and
//! reading the end of the log without reading all of it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::record::Entry;

/// `prev` of the first line.
pub(super) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hex SHA-256 of a line's exact bytes (without its newline).
pub(super) fn line_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Parses one line (without its newline) and attaches its hash.
pub(super) fn parse_line(bytes: &[u8]) -> Result<Entry, String> {
    let mut e: Entry = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    e.hash = line_hash(bytes);
    Ok(e)
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-05-04T03:12:45.123Z`.
pub(super) fn rfc3339_ms(t: SystemTime) -> String {
    // A clock before 1970 is broken; the epoch is as good a stand-in as any.
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        d.subsec_millis()
    )
}

/// (year, month, day) of a count of days since 1970-01-01, proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// The chain head, written after every append. `len` is the log's length after that append:
/// when it still matches, the next append need not read the log at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    pub len: u64,
}

impl Head {
    pub(super) fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.into(),
            len: 0,
        }
    }
}

/// The head file as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HeadState {
    Missing,
    Unreadable(String),
    Ok(Head),
}

pub(super) fn read_head(path: &Path) -> io::Result<HeadState> {
    match fs::read(path) {
        Ok(bytes) => Ok(match serde_json::from_slice::<Head>(&bytes) {
            Ok(h) => HeadState::Ok(h),
            Err(e) => HeadState::Unreadable(e.to_string()),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HeadState::Missing),
        Err(e) => Err(e),
    }
}

/// Replaces the head file atomically (temp file + rename), so a reader never sees half of
/// it. Called only under the exclusive lock, so one temp name is enough.
pub(super) fn write_head(path: &Path, head: &Head) -> io::Result<()> {
    let tmp = path.with_extension("head.tmp");
    let mut bytes = serde_json::to_vec(head).map_err(io::Error::other)?;
    bytes.push(b'\n');
    let mut f = private(OpenOptions::new().write(true).create(true).truncate(true)).open(&tmp)?;
    f.write_all(&bytes)?;
    // Without this a crash soon after the rename can leave an empty head on some filesystems.
    f.sync_data()?;
    fs::rename(&tmp, path)
}

/// Replaces `path` whole with `bytes`: a private temp file beside it, synced, then renamed, so
/// a reader sees the old content or the new, never half.
pub(crate) fn replace_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = private(OpenOptions::new().write(true).create(true).truncate(true)).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    fs::rename(&tmp, path)
}

/// Files of the audit log are readable by their owner only, and never opened through a
/// symbolic link (one planted in the state directory would redirect the writes).
pub(crate) fn private(o: &mut OpenOptions) -> &mut OpenOptions {
    o.mode(0o600).custom_flags(libc::O_NOFOLLOW)
}

/// The longest a state-directory lock is waited for.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A held lock on `audit.lock`. Each holder opens its own file description: `flock` locks
/// belong to the description, so a shared one would let two threads of one process "hold"
/// the same exclusive lock at once.
pub(crate) struct Locked(File);

pub(crate) fn lock(path: &Path, exclusive: bool) -> io::Result<Locked> {
    let f = private(OpenOptions::new().read(true).write(true).create(true)).open(path)?;
    // Bounded: a holder that hangs costs a clear error, never a call that waits forever.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let got = if exclusive {
            f.try_lock()
        } else {
            f.try_lock_shared()
        };
        match got {
            Ok(()) => return Ok(Locked(f)),
            Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} is held by another process for over {} s",
                        path.display(),
                        LOCK_WAIT.as_secs()
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first just says so.
        let _ = self.0.unlock();
    }
}

/// The end of the log: its last complete lines (oldest first, without newlines) and the
/// length of any bytes after the last newline (a write cut short by a crash or a full disk).
pub(super) struct Tail {
    pub lines: Vec<Vec<u8>>,
    pub fragment: u64,
}

/// First read size when reading the log backwards; doubled until enough lines are in.
const TAIL_CHUNK: u64 = 64 * 1024;

/// Reads the last `n` complete lines of a log of length `len`, from the end, so `tail` and
/// the recovery path of `append` cost the size of those lines, not of the whole log.
pub(super) fn read_tail(file: &File, len: u64, n: usize) -> io::Result<Tail> {
    let mut step = TAIL_CHUNK;
    let buf = loop {
        let start = len.saturating_sub(step);
        let mut buf = vec![0u8; (len - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        // `n` lines need `n` newlines after them and one before the first, unless it starts
        // the file.
        let newlines = buf.iter().filter(|b| **b == b'\n').count();
        if start == 0 {
            break buf;
        }
        if newlines > n {
            let first = buf.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
            break buf.split_off(first);
        }
        step = step.saturating_mul(2);
    };
    let (body, fragment) = split_complete(&buf);
    let mut lines: Vec<Vec<u8>> = match body {
        Some(body) => body.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect(),
        None => Vec::new(),
    };
    let drop = lines.len().saturating_sub(n);
    lines.drain(..drop);
    Ok(Tail {
        lines,
        fragment: fragment.len() as u64,
    })
}

/// Splits log bytes into the complete lines (without the final newline; `None` when there is
/// no complete line) and the fragment after the last newline.
pub(super) fn split_complete(bytes: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => (Some(&bytes[..i]), &bytes[i + 1..]),
        None => (None, bytes),
    }
}
