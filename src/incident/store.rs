//! Incident files: `<state_dir>/incidents/<id>.json`, each replaced whole (write a temp file,
//! rename) while `incidents/.lock` is held, so two servers never lose each other's update.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::Incident;
use crate::audit::store::{lock, private};

pub struct Store {
    dir: PathBuf,
}

/// An incident id is the only name of a file here: letters, digits and `-`, nothing else.
pub fn valid_id(id: &str) -> bool {
    id.starts_with("INC-")
        && id.len() <= 40
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Store {
    /// The store under `state_dir` (created 0700 on first use).
    pub fn open(state_dir: &Path) -> std::io::Result<Self> {
        let dir = state_dir.join("incidents");
        std::fs::create_dir_all(&dir)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(Self { dir })
    }

    fn path(&self, id: &str) -> std::io::Result<PathBuf> {
        if !valid_id(id) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{}` is not an incident id", id.escape_debug()),
            ));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    pub fn get(&self, id: &str) -> std::io::Result<Option<Incident>> {
        let path = self.path(id)?;
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every incident, newest first (ids sort by date).
    pub fn list(&self) -> std::io::Result<Vec<Incident>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json")
                && valid_id(id)
                && let Some(i) = self.get(id)?
            {
                out.push(i);
            }
        }
        out.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// Creates `incident` (refused when its id exists).
    pub fn create(&self, incident: &Incident) -> std::io::Result<()> {
        let _held = lock(&self.dir.join(".lock"), true)?;
        if self.path(&incident.id)?.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("incident {} exists", incident.id),
            ));
        }
        self.write(incident)
    }

    /// Reads, changes and writes one incident under the lock; `change` may refuse.
    pub fn update<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Incident) -> Result<T, String>,
    ) -> std::io::Result<Result<(Incident, T), String>> {
        let _held = lock(&self.dir.join(".lock"), true)?;
        let Some(mut i) = self.get(id)? else {
            return Ok(Err(format!("no incident {id}")));
        };
        match change(&mut i) {
            Ok(t) => {
                self.write(&i)?;
                Ok(Ok((i, t)))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    fn write(&self, i: &Incident) -> std::io::Result<()> {
        let path = self.path(&i.id)?;
        let tmp = self.dir.join(format!(".{}.tmp", i.id));
        let mut f =
            private(OpenOptions::new().write(true).create(true).truncate(true)).open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(i).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    }
}
