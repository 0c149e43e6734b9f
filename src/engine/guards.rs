//! State-directory guards shared by every server on the machine: the change freeze and the
//! one-action-per-target busy locks.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::action::Target;
use super::{Refusal, ToolError};

const FREEZE: &str = "freeze";

/// The freeze notice, when a freeze is in force. A freeze file that exists but cannot be read
/// is a freeze (fail closed): only a file that is not there means "not frozen".
pub fn frozen(state_dir: &Path) -> Option<String> {
    match fs::read_to_string(state_dir.join(FREEZE)) {
        Ok(s) => Some(s.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(format!(
            "the freeze file cannot be read ({e}), so it counts as a freeze"
        )),
    }
}

/// Marks request `id` aborted (`runbook-mcp abort`): it stops before its next stage.
pub fn abort(state_dir: &Path, id: &str, notice: &str) -> std::io::Result<()> {
    let dir = state_dir.join("aborts");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(id), notice)
}

/// The abort notice of request `id`, if an operator aborted it.
pub fn aborted(state_dir: &Path, id: &str) -> Option<String> {
    fs::read_to_string(state_dir.join("aborts").join(id))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Starts a freeze (`runbook-mcp freeze`).
pub fn freeze(state_dir: &Path, notice: &str) -> std::io::Result<()> {
    fs::create_dir_all(state_dir)?;
    fs::write(state_dir.join(FREEZE), notice)
}

/// Lifts the freeze; false when there was none.
pub fn unfreeze(state_dir: &Path) -> std::io::Result<bool> {
    match fs::remove_file(state_dir.join(FREEZE)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Held busy locks; released on drop (also when the process dies: they are `flock`s).
pub struct TargetLocks(Vec<File>);

impl Drop for TargetLocks {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = f.unlock();
        }
    }
}

/// Takes every target's lock or none: "busy: restart_service on mcp-02 since …, request R-…".
pub fn lock_targets(
    state_dir: &Path,
    targets: &[Target],
    tool: &str,
    request: &str,
) -> Result<TargetLocks, ToolError> {
    let dir = state_dir.join("locks");
    let io = |e: std::io::Error| ToolError::internal(format!("busy locks: {e}"));
    fs::create_dir_all(&dir).map_err(io)?;
    let mut held = Vec::new();
    for t in targets {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join(format!("{}.lock", t.key())))
            .map_err(io)?;
        match f.try_lock() {
            Ok(()) => {
                let since = super::hooks::clock();
                f.set_len(0).map_err(io)?;
                f.rewind().map_err(io)?;
                write!(f, "{tool} on {} since {since}, request {request}", t.key()).map_err(io)?;
                held.push(f);
            }
            Err(_) => {
                let mut holder = String::new();
                let _ = f.read_to_string(&mut holder);
                return Err(ToolError::refused(
                    Refusal::Busy,
                    format!(
                        "busy: {}. One mutating action per target at a time; check again when it has finished.",
                        holder.trim()
                    ),
                ));
            }
        }
    }
    Ok(TargetLocks(held))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_action_per_target() {
        let dir = tempfile::tempdir().unwrap();
        let t = vec![Target {
            host: "mcp-02".into(),
            service: Some("web".into()),
        }];
        let held = lock_targets(dir.path(), &t, "restart_service", "R-1").unwrap();
        let e = lock_targets(dir.path(), &t, "restart_service", "R-2")
            .err()
            .unwrap();
        assert_eq!(e.refusal, Some(Refusal::Busy));
        assert!(
            e.message.contains("restart_service on mcp-02.web since"),
            "{}",
            e.message
        );
        assert!(e.message.contains("R-1"));
        drop(held);
        assert!(lock_targets(dir.path(), &t, "restart_service", "R-3").is_ok());
    }

    #[test]
    fn freeze_and_unfreeze() {
        let dir = tempfile::tempdir().unwrap();
        assert!(frozen(dir.path()).is_none());
        freeze(dir.path(), "by op: release").unwrap();
        assert_eq!(frozen(dir.path()).as_deref(), Some("by op: release"));
        assert!(unfreeze(dir.path()).unwrap());
        assert!(!unfreeze(dir.path()).unwrap());
        // Unreadable is frozen: a directory where the file should be.
        fs::create_dir_all(dir.path().join(FREEZE)).unwrap();
        assert!(frozen(dir.path()).unwrap().contains("counts as a freeze"));
    }
}
