//! Configuration hot reload whose handlers are sandboxed WebAssembly components.
//!
//! Each configurable part of a service — logging, a plugin, a rate limiter —
//! is a *component* with a *handler*: a WebAssembly component exporting the
//! `hotreload:handler/handler@0.1.0` world (`wit/handler.wit`). When a
//! component's configuration changes, the [`Runtime`] validates it with the
//! handler, decides whether it can be applied in place, applies it,
//! publishes the effective configuration to subscribers, and commits it as
//! last-known-good. Every handler call runs under fuel, a wall-time deadline
//! and a memory cap; a handler that refuses, traps, hangs or runs out of
//! memory is cut off, the change is rolled back, and an [`Event`] says why.
//!
//! ```no_run
//! use hotreload::{ComponentSpec, Outcome, Runtime, Settings};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Logging {
//!     level: String,
//! }
//!
//! # async fn f() -> Result<(), hotreload::Error> {
//! let runtime = Runtime::new(Settings::default())?;
//! let wasm = std::fs::read("logging.wasm").expect("handler");
//! runtime
//!     .add_component(ComponentSpec::new("logging", wasm, r#"{"level": "info"}"#))
//!     .await?;
//! let mut logging = runtime.subscribe::<Logging>("logging")?;
//!
//! let event = runtime.reload("logging", r#"{"level": "debug"}"#).await?;
//! assert_eq!(event.outcome, Outcome::Applied);
//! assert_eq!(logging.borrow_and_update().level, "debug");
//!
//! // A configuration the handler refuses never reaches the subscriber.
//! let event = runtime.reload("logging", r#"{"level": "loud"}"#).await?;
//! assert_eq!(event.outcome, Outcome::Rejected);
//! assert_eq!(logging.borrow().level, "debug");
//! # Ok(()) }
//! ```
//!
//! # Concepts
//!
//! - **Transaction**: parse → unchanged? → `validate` → decide
//!   (`support-level`, `can-reload`) → `reload` → apply to subscribers →
//!   commit. Any failure rolls back; an instance that was cut off is never
//!   entered again, and a fresh one is brought back to the old configuration.
//! - **Limits** ([`Limits`], [`Settings`]): fuel per call, a deadline per
//!   call (epoch interruption), memory per instance, and bounds on what
//!   crosses the boundary.
//! - **Events** ([`Event`], [`Stats`]): one per attempt, with outcome, phase,
//!   cause, changes, fuel and duration; statistics over all of them. Ids
//!   count 1, 2, 3, ... in recording order ([`Runtime::events_after`]);
//!   secret-looking values are shown as `"[redacted]"`.
//! - **Sources** ([`sources`]): a [`Source`](sources::Source) turns "something
//!   changed" into a [`Change`](sources::Change); [`Runtime::attach`] applies
//!   every source's changes through one apply loop. Files
//!   ([`FileSource`](sources::FileSource)) are one source.
//! - **State** ([`Settings::state_dir`]): every commit is persisted; a
//!   component whose first configuration is refused or unreadable starts on
//!   its last-known-good one; one runtime holds a state directory at a time.
//!
//! The async methods need a tokio runtime; see [`Runtime`].

#![deny(missing_docs)]

pub mod conform;
pub mod daemon;
mod diff;
mod error;
mod events;
#[cfg(feature = "etcd")]
pub mod fleet;
#[doc(hidden)]
pub mod fuzzing;
mod manager;
mod outcome;
mod probe;
mod redact;
pub mod replay;
mod sandbox;
mod settings;
pub mod sources;
pub mod state;
mod text;
mod transaction;

pub use crate::diff::{Change, ChangeOp, diff};
pub use crate::error::Error;
pub use crate::events::{ComponentStats, Event, EventError, EventsAfter, Stats};
pub use crate::manager::{
    BatchReport, ComponentInfo, ComponentSpec, HandlerDryRun, HandlerSource, Runtime,
    RuntimeBuilder,
};
pub use crate::outcome::{
    Cause, Contract, EventKind, HandlerFailure, Outcome, Phase, Plan, Prepared, RestartReason,
    SupportLevel,
};
pub use crate::probe::{Probe, ProbeCall};
pub use crate::redact::Redactor;
pub use crate::sandbox::{CallFailure, SandboxOptions};
pub use crate::settings::{LimitOverrides, Limits, Settings};
pub use crate::transaction::ConfigInput;
