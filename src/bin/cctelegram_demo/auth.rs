//! The API key that guards /health, reloadable on SIGHUP so the lab can rotate it live.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

use crate::lock;

pub(crate) struct ApiKey {
    file: Option<PathBuf>,
    key: Mutex<Option<String>>,
}

impl ApiKey {
    /// No file means no key is required; a file that cannot be read or is empty is an error.
    pub(crate) fn load(file: Option<PathBuf>) -> Result<Self> {
        let key = match &file {
            Some(p) => Some(read_key(p)?),
            None => None,
        };
        Ok(ApiKey {
            file,
            key: Mutex::new(key),
        })
    }

    /// Rereads the key file; on failure the previous key stays in force.
    pub(crate) fn reload(&self) -> Result<()> {
        if let Some(path) = &self.file {
            *lock(&self.key) = Some(read_key(path)?);
        }
        Ok(())
    }

    /// `Err` carries the reason for the security log: `missing` or `invalid`.
    pub(crate) fn check(&self, presented: Option<&str>) -> Result<(), &'static str> {
        let key = lock(&self.key);
        let Some(key) = key.as_deref() else {
            return Ok(());
        };
        match presented {
            None => Err("missing"),
            Some(p) if constant_time_eq(p.trim().as_bytes(), key.as_bytes()) => Ok(()),
            Some(_) => Err("invalid"),
        }
    }
}

fn read_key(path: &Path) -> Result<String> {
    let key = std::fs::read_to_string(path)
        .with_context(|| format!("reading API key file {}", path.display()))?;
    let key = key.trim().to_string();
    if key.is_empty() {
        bail!("API key file {} is empty", path.display());
    }
    Ok(key)
}

/// Compares without an early exit, so response timing does not leak how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
