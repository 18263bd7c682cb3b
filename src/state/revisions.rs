//! The revision store: every committed configuration of every component,
//! with the handler code that accepted it, in one SQLite database under the
//! state directory (`revisions.db`, WAL, `synchronous=FULL`).
//!
//! A commit and its revision are one SQLite transaction: after a crash the
//! latest committed revision is there whole, or the commit never happened.
//! Versions are per component, increasing, and never reused, across
//! restarts and retention. Handler code is kept by content hash, so any
//! kept revision's handler can be brought back; blobs no kept revision uses
//! are deleted when revisions are.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::outcome::EventKind;

/// The database's file name in the state directory.
pub const DATABASE: &str = "revisions.db";

/// The schema this build writes; a newer one is refused.
const SCHEMA: i64 = 1;

/// Where a revision came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionSource {
    /// What made the change (the event's kind).
    pub kind: EventKind,
    /// The file it was read from, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For a rollback: the version whose configuration (and handler) it restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<u64>,
    /// For a member of a batch: the batch's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// Imported from a last-known-good record of an older release.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub imported: bool,
}

impl RevisionSource {
    /// A source of `kind` with nothing else known.
    pub fn of(kind: EventKind) -> RevisionSource {
        RevisionSource {
            kind,
            path: None,
            from_version: None,
            batch: None,
            imported: false,
        }
    }

    /// One line for people: `file_change ./logging.json`, `rollback_to_version 3`.
    pub fn label(&self) -> String {
        let kind = serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut out = kind;
        if let Some(v) = self.from_version {
            out.push_str(&format!(" of version {v}"));
        }
        if let Some(b) = &self.batch {
            out.push_str(&format!(" in batch {b}"));
        }
        if let Some(p) = &self.path {
            out.push(' ');
            out.push_str(p);
        }
        if self.imported {
            out.push_str(" (imported)");
        }
        out
    }
}

/// One committed configuration of one component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// The component.
    pub component: String,
    /// Its version: per component, increasing, never reused.
    pub version: u64,
    /// When it was committed (RFC 3339, UTC).
    pub timestamp: String,
    /// Where it came from.
    pub source: RevisionSource,
    /// SHA-256 of the handler that accepted it.
    pub handler_hash: String,
    /// The configuration exactly as the handler saw it (JSON text).
    pub config: String,
    /// What subscribers were given.
    pub effective: Value,
}

/// A component's latest revision and a restart-required configuration
/// waiting for the next start.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// The revision in force when the process stopped.
    pub revision: Revision,
    /// A configuration accepted but needing a restart, if any (JSON text).
    pub pending: Option<String>,
}

/// A revision to write, with the handler code that accepted it.
pub(crate) struct NewRevision<'a> {
    pub(crate) revision: Revision,
    pub(crate) wasm: &'a [u8],
}

/// The store. Cheap to share: one connection behind a lock (commits are
/// serial on the disk anyway).
#[derive(Debug)]
pub struct Revisions {
    path: PathBuf,
    conn: Mutex<Connection>,
    keep: u64,
    keep_events: u64,
}

fn sql_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Record {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// An error opening the database: it is refused, and the way out is named.
fn damaged(e: Error) -> Error {
    match e {
        Error::Record { path, reason } => Error::Record {
            path,
            reason: format!(
                "{reason}; the revision database is damaged, not one, or from a newer release: \
                 the runtime refuses to start on it. Move it away (with its -wal and -shm files) \
                 to start from the configuration files; its history is then lost"
            ),
        },
        other => other,
    }
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Revisions {
    /// Opens (or creates) the store in the state directory `dir`, keeping
    /// the last `keep` revisions of each component (at least 1) and the
    /// replay records of the last `keep_events` events. Last-known-good
    /// records of an older release (`<component>.json`) are imported once
    /// and renamed `<component>.json.imported`.
    ///
    /// # Errors
    /// [`Error::Record`] naming the database when it is damaged, not a
    /// database, or from a newer release; [`Error::StateDir`]-like I/O
    /// errors as [`Error::Record`] too.
    pub fn open(dir: &Path, keep: u64, keep_events: u64) -> Result<Revisions, Error> {
        let path = dir.join(DATABASE);
        let conn = Connection::open(&path).map_err(|e| damaged(sql_error(&path, e)))?;
        // Configurations may hold secrets: the owner alone reads them (the
        // write-ahead log and index files take the database's mode).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| sql_error(&path, e))?;
        }
        let store = Revisions {
            conn: Mutex::new(conn),
            keep: keep.max(1),
            keep_events,
            path,
        };
        store.prepare_schema().map_err(damaged)?;
        store.import_records(dir)?;
        Ok(store)
    }

    /// Opens the store read-only, e.g. for `hotreload history` while the
    /// daemon runs. `None` when there is no database.
    ///
    /// # Errors
    /// [`Error::Record`] when the database cannot be read.
    pub fn open_read_only(dir: &Path) -> Result<Option<Revisions>, Error> {
        let path = dir.join(DATABASE);
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| damaged(sql_error(&path, e)))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| sql_error(&path, e))?;
        let store = Revisions {
            conn: Mutex::new(conn),
            keep: u64::MAX,
            keep_events: u64::MAX,
            path,
        };
        store.check_schema().map_err(damaged)?;
        Ok(Some(store))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many revisions of each component are kept.
    pub fn keep(&self) -> u64 {
        self.keep
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        sql_error(&self.path, e)
    }

    fn prepare_schema(&self) -> Result<(), Error> {
        let conn = self.conn();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| self.err(e))?;
        // A damaged file is found here, before anything is written to it.
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if check != "ok" {
            return Err(self.err(format!("integrity check failed: {check}")));
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(self.err(format!("cannot use WAL (journal mode {mode})")));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS revisions (
                 component TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 timestamp TEXT NOT NULL,
                 source TEXT NOT NULL,
                 handler_hash TEXT NOT NULL,
                 config TEXT NOT NULL,
                 effective TEXT NOT NULL,
                 PRIMARY KEY (component, version)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS components (
                 component TEXT PRIMARY KEY,
                 version INTEGER NOT NULL,
                 pending TEXT
             );
             CREATE TABLE IF NOT EXISTS handlers (hash TEXT PRIMARY KEY, wasm BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS replay_records (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 event_id INTEGER NOT NULL,
                 timestamp TEXT NOT NULL,
                 handler_hash TEXT NOT NULL,
                 record TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS replay_records_by_event ON replay_records (event_id);
             CREATE INDEX IF NOT EXISTS replay_records_by_handler ON replay_records (handler_hash);
             INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', 1);",
        )
        .map_err(|e| self.err(e))?;
        drop(conn);
        self.check_schema()
    }

    fn check_schema(&self) -> Result<(), Error> {
        let schema: Option<i64> = self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        match schema {
            Some(SCHEMA) => Ok(()),
            Some(v) => Err(self.err(format!(
                "schema {v} is not one this release reads ({SCHEMA})"
            ))),
            None => Err(self.err("no schema version")),
        }
    }

    /// Imports `<component>.json` last-known-good records written by an
    /// older release, once.
    fn import_records(&self, dir: &Path) -> Result<(), Error> {
        #[derive(Deserialize)]
        struct Record {
            component: String,
            version: u64,
            input: Value,
            effective: Value,
            handler_hash: String,
            #[serde(default)]
            pending: Option<Value>,
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_file() || meta.len() > 16 << 20 {
                continue;
            }
            let record: Record = match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(r) => r,
                None => {
                    tracing::warn!(path = %path.display(), "not a last-known-good record; left as it is");
                    continue;
                }
            };
            if self.latest(&record.component)?.is_none() {
                let revision = Revision {
                    component: record.component.clone(),
                    version: record.version.max(1),
                    timestamp: crate::events::timestamp(std::time::SystemTime::now()),
                    source: RevisionSource {
                        imported: true,
                        ..RevisionSource::of(EventKind::Restart)
                    },
                    handler_hash: record.handler_hash,
                    config: record.input.to_string(),
                    effective: record.effective,
                };
                self.write(&[NewRevision {
                    revision,
                    wasm: &[],
                }])?;
                if let Some(p) = record.pending {
                    self.set_pending(&record.component, Some(&p.to_string()))?;
                }
                tracing::info!(component = %record.component, "imported the last-known-good record {}", path.display());
            }
            let mut done = path.clone().into_os_string();
            done.push(".imported");
            if let Err(e) = std::fs::rename(&path, &done) {
                tracing::warn!(path = %path.display(), "cannot rename an imported record: {e}");
            }
        }
        Ok(())
    }

    /// Writes revisions (one, or every member of a batch) in one SQLite
    /// transaction, with their handlers' code, and applies retention.
    /// An empty `wasm` stores no code (an imported record).
    pub(crate) fn write(&self, revisions: &[NewRevision<'_>]) -> Result<(), Error> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for new in revisions {
            let r = &new.revision;
            if !new.wasm.is_empty() {
                tx.execute(
                    "INSERT OR IGNORE INTO handlers (hash, wasm) VALUES (?1, ?2)",
                    params![r.handler_hash, new.wasm],
                )
                .map_err(|e| self.err(e))?;
            }
            let source = serde_json::to_string(&r.source).map_err(|e| self.err(e))?;
            let effective = r.effective.to_string();
            tx.execute(
                "INSERT INTO revisions (component, version, timestamp, source, handler_hash, config, effective)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.component, i(r.version), r.timestamp, source, r.handler_hash, r.config, effective],
            )
            .map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO components (component, version, pending) VALUES (?1, ?2, NULL)
                 ON CONFLICT (component) DO UPDATE SET version = excluded.version, pending = NULL",
                params![r.component, i(r.version)],
            )
            .map_err(|e| self.err(e))?;
            let pruned = tx
                .execute(
                    "DELETE FROM revisions WHERE component = ?1 AND version <= ?2",
                    params![r.component, i(r.version.saturating_sub(self.keep))],
                )
                .map_err(|e| self.err(e))?;
            if pruned > 0 {
                self.prune_handlers(&tx)?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Deletes the code of handlers that no kept revision and no kept
    /// replay record uses.
    fn prune_handlers(&self, tx: &rusqlite::Transaction<'_>) -> Result<(), Error> {
        tx.execute(
            "DELETE FROM handlers WHERE hash NOT IN (SELECT DISTINCT handler_hash FROM revisions)
             AND hash NOT IN (SELECT DISTINCT handler_hash FROM replay_records)",
            [],
        )
        .map(drop)
        .map_err(|e| self.err(e))
    }

    /// Moves everything in the write-ahead log into the database file and
    /// empties the log, as closing the last connection would: a clean
    /// shutdown leaves one self-contained file, whoever still holds the
    /// store.
    pub(crate) fn checkpoint(&self) -> Result<(), Error> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.err(e))
    }

    /// Records (or clears) a restart-required configuration for the next start.
    pub(crate) fn set_pending(&self, component: &str, pending: Option<&str>) -> Result<(), Error> {
        self.conn()
            .execute(
                "UPDATE components SET pending = ?2 WHERE component = ?1",
                params![component, pending],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Revision, String, String)> {
        Ok((
            Revision {
                component: r.get(0)?,
                version: r.get::<_, i64>(1)?.max(0) as u64,
                timestamp: r.get(2)?,
                source: RevisionSource::of(EventKind::Api),
                handler_hash: r.get(4)?,
                config: r.get(5)?,
                effective: Value::Null,
            },
            r.get(3)?,
            r.get(6)?,
        ))
    }

    fn finish(
        &self,
        (mut rev, source, effective): (Revision, String, String),
    ) -> Result<Revision, Error> {
        rev.source = serde_json::from_str(&source)
            .map_err(|e| self.err(format!("a revision's source: {e}")))?;
        rev.effective = serde_json::from_str(&effective)
            .map_err(|e| self.err(format!("a revision's effective configuration: {e}")))?;
        Ok(rev)
    }

    const COLUMNS: &'static str =
        "component, version, timestamp, source, handler_hash, config, effective";

    /// A component's latest revision and pending configuration.
    ///
    /// # Errors
    /// [`Error::Record`] when the database cannot be read.
    pub fn latest(&self, component: &str) -> Result<Option<Latest>, Error> {
        let conn = self.conn();
        let head: Option<(i64, Option<String>)> = conn
            .query_row(
                "SELECT version, pending FROM components WHERE component = ?1",
                [component],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((version, pending)) = head else {
            return Ok(None);
        };
        let row = conn
            .query_row(
                &format!(
                    "SELECT {} FROM revisions WHERE component = ?1 AND version = ?2",
                    Self::COLUMNS
                ),
                params![component, version],
                Self::row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        drop(conn);
        let Some(row) = row else {
            return Err(self.err(format!(
                "component {component:?} is at version {version}, which is missing"
            )));
        };
        Ok(Some(Latest {
            revision: self.finish(row)?,
            pending,
        }))
    }

    /// The latest version ever committed for a component (0 when none),
    /// read from the components table alone: numbering goes on from it even
    /// when that revision cannot be decoded.
    ///
    /// # Errors
    /// [`Error::Record`] when the database cannot be read.
    pub fn head_version(&self, component: &str) -> Result<u64, Error> {
        let version: Option<i64> = self
            .conn()
            .query_row(
                "SELECT version FROM components WHERE component = ?1",
                [component],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(version.map_or(0, |v| v.max(0) as u64))
    }

    /// One revision, if it is kept.
    ///
    /// # Errors
    /// [`Error::Record`] when the database cannot be read.
    pub fn get(&self, component: &str, version: u64) -> Result<Option<Revision>, Error> {
        let row = self
            .conn()
            .query_row(
                &format!(
                    "SELECT {} FROM revisions WHERE component = ?1 AND version = ?2",
                    Self::COLUMNS
                ),
                params![component, i(version)],
                Self::row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        row.map(|r| self.finish(r)).transpose()
    }

    /// A component's kept revisions, newest first, at most `limit`.
    ///
    /// # Errors
    /// [`Error::Record`] when the database cannot be read.
    pub fn history(&self, component: &str, limit: usize) -> Result<Vec<Revision>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM revisions WHERE component = ?1 ORDER BY version DESC LIMIT ?2",
                Self::COLUMNS
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![component, i(limit as u64)], Self::row)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        drop(stmt);
        drop(conn);
        rows.into_iter().map(|r| self.finish(r)).collect()
    }

    /// The components that have revisions, by name.
    ///
    /// # Errors
    /// [`Error::Record`] when the database cannot be read.
    pub fn components(&self) -> Result<Vec<String>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT component FROM components ORDER BY component")
            .map_err(|e| self.err(e))?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        Ok(names)
    }

    /// A handler's code by its SHA-256, if a kept revision uses it.
    ///
    /// # Errors
    /// [`Error::Record`] when the database cannot be read.
    pub fn handler(&self, hash: &str) -> Result<Option<Vec<u8>>, Error> {
        self.conn()
            .query_row("SELECT wasm FROM handlers WHERE hash = ?1", [hash], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Keeps what is needed to replay events (JSON records), with the code
    /// of the handlers they ran, keeping the last `keep_events`.
    pub(crate) fn write_replays(
        &self,
        records: &[(u64, String, String, String)],
        handlers: &[(String, std::sync::Arc<[u8]>)],
    ) -> Result<(), Error> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for (hash, wasm) in handlers {
            tx.execute(
                "INSERT OR IGNORE INTO handlers (hash, wasm) VALUES (?1, ?2)",
                params![hash, &wasm[..]],
            )
            .map_err(|e| self.err(e))?;
        }
        for (id, timestamp, hash, record) in records {
            tx.execute(
                "INSERT INTO replay_records (event_id, timestamp, handler_hash, record)
                 VALUES (?1, ?2, ?3, ?4)",
                params![i(*id), timestamp, hash, record],
            )
            .map_err(|e| self.err(e))?;
        }
        let pruned = tx
            .execute(
                "DELETE FROM replay_records WHERE seq <= (SELECT MAX(seq) FROM replay_records) - ?1",
                params![i(self.keep_events)],
            )
            .map_err(|e| self.err(e))?;
        if pruned > 0 {
            self.prune_handlers(&tx)?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The replay record (JSON) of event `event_id` — of the latest run
    /// that had such an event, or the one at `timestamp`.
    ///
    /// # Errors
    /// [`Error::Record`] when the database cannot be read.
    pub fn replay_record(
        &self,
        event_id: u64,
        timestamp: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let found = self
            .conn()
            .query_row(
                "SELECT record FROM replay_records WHERE event_id = ?1 AND (?2 IS NULL OR timestamp = ?2)
                 ORDER BY seq DESC LIMIT 1",
                params![i(event_id), timestamp],
                |r| r.get(0),
            )
            .optional();
        match found {
            // A database no runtime of this release has opened for writing
            // yet has no records (the table is made at the first open).
            Err(e) if e.to_string().contains("no such table") => Ok(None),
            other => other.map_err(|e| self.err(e)),
        }
    }

    /// Bytes on disk: the database with its write-ahead log.
    pub fn disk_bytes(&self) -> u64 {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut p = self.path.clone().into_os_string();
                p.push(suffix);
                std::fs::metadata(p).ok().map(|m| m.len())
            })
            .sum()
    }
}
