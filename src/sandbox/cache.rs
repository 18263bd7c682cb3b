//! The compiled-code cache: a handler compiled once is kept on disk, so the
//! next start (of the daemon, or of `try`, `validate` and `conform`) loads
//! it in about a millisecond instead of compiling it again (seconds for a
//! Python or JavaScript handler).
//!
//! An entry is named by SHA-256 of the handler's bytes and of the engine's
//! compatibility hash (wasmtime's version, the target and the settings that
//! change code), so a stale entry is never looked up; its content carries
//! its own SHA-256, so a torn or corrupted file is never loaded. The
//! directory is bounded: past `max_bytes` the least recently used entries
//! (by modification time, which a hit refreshes) are removed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::hex;
use crate::state::write_atomically;

/// A directory of compiled handlers for one engine.
pub(crate) struct CodeCache {
    dir: PathBuf,
    /// Names this engine's entries apart from other engines'.
    engine_key: String,
    max_bytes: u64,
}

impl CodeCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine, max_bytes: u64) -> CodeCache {
        let mut h = Sha256::new();
        // `Hash` is stable within one wasmtime build; feed it to SHA-256
        // through a hasher that records the bytes rather than mixing them
        // with a per-release algorithm.
        std::hash::Hash::hash(
            &engine.precompile_compatibility_hash(),
            &mut Recorder(&mut h),
        );
        let engine_key = hex(&h.finalize()[..8]);
        CodeCache {
            dir,
            engine_key,
            max_bytes,
        }
    }

    fn path(&self, handler_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{handler_hash}-{}.cwasm", self.engine_key))
    }

    /// A compiled handler from the cache, if a whole and matching one is there.
    pub(crate) fn get(&self, engine: &Engine, handler_hash: &str) -> Option<Component> {
        let path = self.path(handler_hash);
        let data = std::fs::read(&path).ok()?;
        let (sum, artifact) = data.split_at_checked(32)?;
        if Sha256::digest(artifact).as_slice() != sum {
            tracing::warn!(cache = %path.display(), "corrupt compiled-code cache entry; recompiling");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        match deserialize(engine, artifact) {
            Ok(c) => {
                tracing::debug!(cache = %path.display(), "compiled handler loaded from the cache");
                // Recently used: the last to be evicted.
                if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                Some(c)
            }
            Err(e) => {
                tracing::warn!(cache = %path.display(), "unusable compiled-code cache entry ({e}); recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled handler, checksummed, written atomically, then
    /// evicts past the bound. A cache that cannot be written only costs the
    /// next start a compile.
    pub(crate) fn put(&self, handler_hash: &str, component: &Component) {
        let path = self.path(handler_hash);
        let result = (|| -> std::io::Result<()> {
            let artifact = component
                .serialize()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut data = Sha256::digest(&artifact).to_vec();
            data.extend_from_slice(&artifact);
            std::fs::create_dir_all(&self.dir)?;
            write_atomically(&path, &data)
        })();
        match result {
            Ok(()) => self.evict(&path),
            Err(e) => {
                tracing::warn!(cache = %path.display(), "cannot write the compiled-code cache: {e}")
            }
        }
    }

    /// Removes the least recently used entries until the directory is
    /// within its bound; the entry just written stays.
    fn evict(&self, keep: &Path) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = dir
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                tracing::debug!(cache = %path.display(), "evicted from the compiled-code cache");
                total -= len;
            }
        }
    }
}

/// Feeds what a `Hash` impl writes into SHA-256, byte for byte.
struct Recorder<'a>(&'a mut Sha256);

impl std::hash::Hasher for Recorder<'_> {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Loads an artifact this engine produced.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its input to be wasmtime's
    // own output. These bytes are: they were written by `CodeCache::put`
    // under a name that includes this engine's compatibility hash, and
    // their SHA-256 was checked just before, so a torn or corrupted file
    // never gets here (and wasmtime checks its version header itself).
    unsafe { Component::deserialize(engine, artifact) }
}
