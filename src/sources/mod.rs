//! Where new configurations come from.
//!
//! A [`Source`] only turns "something changed" into a [`Change`]
//! `{component, origin, payload}`; it never calls a handler. Every source
//! attached to a [`Runtime`](crate::Runtime) feeds the same apply loop
//! ([`Runtime::attach`](crate::Runtime::attach)), which runs each change
//! through the component's transaction. Files ([`FileSource`]) are one
//! source; an API or a distributed store are others.

mod files;
mod format;
mod read;

use std::path::PathBuf;

use tokio::sync::mpsc;

pub(crate) use self::files::unreadable_message;
pub use self::files::{
    FileRules, FileSource, WatchTarget, WatchedKind, config_of, read_config_file,
};
pub use self::format::{Format, InputError};
pub use self::read::{ReadError, check_regular, read_regular};
use crate::error::Error;
use crate::outcome::Cause;

/// One change a source saw.
#[derive(Debug, Clone)]
pub struct Change {
    /// The component it is for.
    pub component: String,
    /// Where it came from, for the event.
    pub origin: Origin,
    /// What changed.
    pub payload: Payload,
}

/// Where a change came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A file, as the manifest names it.
    File(PathBuf),
    /// A call of the library's API.
    Api,
    /// An etcd key (its full name) at a revision.
    Etcd {
        /// The key, relative to the fleet's prefix.
        key: String,
        /// The revision of the value (of the deletion, for a removed key).
        revision: i64,
        /// Read again in full after a compaction (the watch could not
        /// resume): the event's kind is `etcd_resync`.
        resync: bool,
    },
}

impl Origin {
    /// What events show as the change's `config_path`.
    pub(crate) fn label(&self) -> Option<String> {
        match self {
            Origin::File(p) => Some(p.display().to_string()),
            Origin::Api => None,
            Origin::Etcd { key, revision, .. } => Some(etcd_label(key, *revision)),
        }
    }
}

/// How events name an etcd key's value: `etcd:KEY@REVISION`.
pub fn etcd_label(key: &str, revision: i64) -> String {
    format!("etcd:{key}@{revision}")
}

/// The revision in an [`etcd_label`], if `label` is one.
pub fn etcd_revision(label: &str) -> Option<i64> {
    label
        .strip_prefix("etcd:")?
        .rsplit_once('@')?
        .1
        .parse()
        .ok()
}

/// What a change carries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Payload {
    /// A configuration's bytes, written in `format` (a property of the
    /// change, not of a file name).
    Config {
        /// The configuration as the source holds it.
        bytes: Vec<u8>,
        /// How to read it.
        format: Format,
    },
    /// A new handler `.wasm` for the component.
    Handler(Vec<u8>),
    /// The source could not read the configuration (a removed file, a
    /// permission error, not a regular file): recorded as a rejected event;
    /// the configuration in force stays.
    Unreadable {
        /// The event's cause (`unreadable`, or `invalid` for a file over
        /// its size limit).
        cause: Cause,
        /// What is wrong.
        message: String,
    },
}

/// Where a source sends its changes: cheap to clone, shared by every
/// source of a runtime.
#[derive(Debug, Clone)]
pub struct ChangeSink {
    tx: mpsc::UnboundedSender<Change>,
}

impl ChangeSink {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Change>) -> ChangeSink {
        ChangeSink { tx }
    }

    /// Hands a change to the apply loop.
    ///
    /// # Errors
    /// [`Error::ShutDown`] when the runtime is gone.
    pub fn send(&self, change: Change) -> Result<(), Error> {
        self.tx.send(change).map_err(|_| Error::ShutDown)
    }
}

/// A source of configuration changes: files, an API, a distributed store.
///
/// Lifecycle: the source is built (and may start observing, so nothing is
/// missed while components load), then [`Runtime::attach`](crate::Runtime::attach)
/// calls [`Source::start`] once with the runtime's [`ChangeSink`]; changes
/// flow until the returned [`SourceHandle`] is dropped.
pub trait Source: Send + 'static {
    /// Starts sending changes into `sink`. Called inside a tokio runtime.
    ///
    /// # Errors
    /// When the source cannot start.
    fn start(self: Box<Self>, sink: ChangeSink) -> Result<SourceHandle, Error>;
}

/// A running source; dropping it stops the source.
pub struct SourceHandle {
    _guard: Box<dyn Send + Sync>,
}

impl SourceHandle {
    /// A handle that stops the source by dropping `guard`.
    pub fn new(guard: impl Send + Sync + 'static) -> SourceHandle {
        SourceHandle {
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for SourceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceHandle")
    }
}
