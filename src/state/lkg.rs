//! Last-known-good configurations, one JSON file per component under the
//! state directory, replaced atomically on every commit.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// A component's committed configuration as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persisted {
    /// The component's name.
    pub component: String,
    /// The committed version.
    pub version: u64,
    /// The configuration the handler accepted.
    pub input: Value,
    /// What subscribers were given.
    pub effective: Value,
    /// SHA-256 of the handler that accepted it.
    pub handler_hash: String,
    /// A restart-required change waiting for the next start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Value>,
}

/// The last-known-good store: a directory of `<component>.json` files.
#[derive(Debug, Clone)]
pub struct LastKnownGood {
    dir: PathBuf,
}

impl LastKnownGood {
    /// A store in `dir`, created if missing.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<LastKnownGood> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(LastKnownGood { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, component: &str) -> PathBuf {
        self.dir.join(format!("{component}.json"))
    }

    /// Replaces a component's record atomically: a temporary file is written
    /// and synced, renamed over the old one, and the directory synced, so a
    /// crash leaves either the old record or the new one, never a mix.
    ///
    /// # Errors
    /// Any I/O error (full disk, read-only directory); the old record stays.
    pub fn store(&self, record: &Persisted) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        super::write_atomically(&self.path(&record.component), &bytes)
    }

    /// A component's record, if there is one.
    ///
    /// # Errors
    /// [`Error::Record`](crate::Error::Record) when the file exists but cannot be read or is
    /// not a valid record.
    pub fn load(&self, component: &str) -> Result<Option<Persisted>, Error> {
        let path = self.path(component);
        let bad = |reason: String| Error::Record {
            path: path.clone(),
            reason,
        };
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        let record: Persisted = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not a valid last-known-good record: {e}")))?;
        if record.component != component {
            return Err(bad(format!(
                "the record is for component {:?}",
                record.component
            )));
        }
        Ok(Some(record))
    }
}
