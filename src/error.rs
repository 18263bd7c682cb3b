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
    #[error("component {component}: initial configuration not accepted: {}", event.summary())]
    InitialLoad {
        /// The component.
        component: String,
        /// The event of the attempt.
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
        "invalid component name {0:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
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
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
