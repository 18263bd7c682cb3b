//! The library's error type.

use std::path::PathBuf;
use std::sync::Arc;

use crate::events::Event;

/// What can go wrong when using a [`Runtime`](crate::Runtime). A refused or
/// failed reload is not an error: it is an [`Event`] with its outcome.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The handler could not be read, is not a component, or does not
    /// export the handler world.
    #[error("component {component}: cannot load handler {handler}: {reason}")]
    HandlerLoad {
        /// The component.
        component: String,
        /// The handler's path, or `<bytes>`.
        handler: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The component's first configuration was not accepted; the event says why.
    #[error(
        "component {component}: cannot start: the first configuration was not accepted: {}",
        event.summary()
    )]
    InitialLoad {
        /// The component.
        component: String,
        /// The event of the attempt.
        event: Arc<Event>,
    },
    /// The component's first configuration could not be read, and there is
    /// no last-known-good configuration to start on.
    #[error(
        "component {component}: cannot start: {reason}; and there is no last-known-good configuration"
    )]
    ConfigUnavailable {
        /// The component.
        component: String,
        /// Why the configuration could not be read.
        reason: String,
    },
    /// The first configuration was refused or unreadable, and the
    /// last-known-good configuration was refused too.
    #[error(
        "component {component}: cannot start: {why}; and the last-known-good configuration failed too: {}",
        event.summary()
    )]
    RestoreFailed {
        /// The component.
        component: String,
        /// Why the first configuration could not be used.
        why: String,
        /// The event of the attempt to restore the last-known-good one.
        event: Arc<Event>,
    },
    /// No component has this name.
    #[error("no component named {0:?}")]
    UnknownComponent(String),
    /// A component with this name exists already.
    #[error("a component named {0:?} exists already")]
    DuplicateComponent(String),
    /// Component names become file names, so they are restricted.
    #[error(
        "invalid component name {0:?}: use 1 to 64 ASCII letters, digits, '-', '_' or '.', not starting with '.'"
    )]
    InvalidName(String),
    /// A new subscriber's type does not fit the configuration in force.
    #[error(
        "component {component}: the configuration in force does not fit the subscriber's type: {reason}"
    )]
    Subscribe {
        /// The component.
        component: String,
        /// The deserialisation error.
        reason: String,
    },
    /// The settings say `enabled = false`.
    #[error("hot reload is disabled (enabled = false in the settings)")]
    Disabled,
    /// The runtime was shut down.
    #[error("the runtime is shut down")]
    ShutDown,
    /// The sandbox engine could not be built.
    #[error("sandbox: {0}")]
    Engine(String),
    /// Host code panicked while running a transaction (a bug of the host,
    /// not of the handler); the component's state is lost with it.
    #[error("a host task panicked: {0}")]
    Panicked(String),
    /// The state directory (`state_dir`) cannot be used: it is a file, its
    /// parent is not writable, ...
    #[error("state_dir {}: {source}", dir.display())]
    StateDir {
        /// The state directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another runtime (another daemon) uses this state directory.
    #[error(
        "state_dir {} is in use by another hotreload process{}; two runtimes on one state \
         directory would both apply every change",
        dir.display(),
        pid.map(|p| format!(" (PID {p})")).unwrap_or_default()
    )]
    StateDirInUse {
        /// The state directory.
        dir: PathBuf,
        /// The holder's PID, as it wrote it.
        pid: Option<u32>,
    },
    /// The revision store (or an older release's last-known-good record)
    /// could not be read or written, or is not valid.
    #[error("{}: {reason}", path.display())]
    Record {
        /// The database (or record) file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A manifest could not be read or is wrong.
    #[error("{}: {reason}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong, naming the key, component or line.
        reason: String,
    },
    /// A directory could not be watched for changes.
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The watcher's error.
        source: notify::Error,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A change made on condition that a version is in force found another
    /// one: someone else changed the component first.
    #[error(
        "component {component} is at version {current}, not {expected}: it changed since you read it"
    )]
    VersionConflict {
        /// The component.
        component: String,
        /// The version the change expected.
        expected: u64,
        /// The version in force.
        current: u64,
    },
    /// A batch that cannot be run: no member, or one named twice.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// History and rollback need a revision store: a `state_dir`.
    #[error("no revision history: the runtime has no state_dir")]
    NoHistory,
    /// The version asked for was never committed or is no longer kept.
    #[error(
        "component {component} has no version {version}{}",
        kept.map(|(a, b)| format!(" (versions {a} to {b} are kept)")).unwrap_or_default()
    )]
    NoRevision {
        /// The component.
        component: String,
        /// The version asked for.
        version: u64,
        /// The oldest and newest kept versions, if any.
        kept: Option<(u64, u64)>,
    },
    /// A revision's handler code is no longer kept (an imported record, or
    /// pruned), so that revision cannot be brought back.
    #[error(
        "component {component} version {version}: its handler {hash} is not kept in the revision \
         store, so the version cannot be brought back"
    )]
    HandlerNotKept {
        /// The component.
        component: String,
        /// The version asked for.
        version: u64,
        /// The handler's SHA-256.
        hash: String,
    },
}
