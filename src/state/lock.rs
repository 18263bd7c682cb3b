//! One runtime per state directory: an OS file lock on `STATE_DIR/lock`,
//! held for the runtime's life and released by the kernel when the
//! process dies, SIGKILL included. Two daemons on one manifest would both
//! call every handler and interleave their versions; the second is refused,
//! told the first one's PID.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Read;
use std::path::Path;

use crate::error::Error;

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock of `dir` (created if missing), writing this
    /// process's PID into it.
    ///
    /// # Errors
    /// [`Error::StateDirInUse`] when another runtime holds it,
    /// [`Error::StateDir`] when the directory or its lock file cannot be
    /// made or opened.
    pub(crate) fn acquire(dir: &Path) -> Result<StateLock, Error> {
        let state_dir = |source: std::io::Error| Error::StateDir {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(state_dir)?;
        let path = dir.join("lock");
        // Held through a read-only descriptor (a lock needs no more), so
        // the filesystem can still be remounted read-only under a running
        // daemon; the PID is written through a short-lived one.
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(state_dir)?;
        let mut file = File::open(&path).map_err(state_dir)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(Error::StateDirInUse {
                    dir: dir.to_owned(),
                    pid: holder.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(state_dir(e)),
        }
        std::fs::write(&path, format!("{}\n", std::process::id())).map_err(state_dir)?;
        Ok(StateLock { _file: file })
    }
}
