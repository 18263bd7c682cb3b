//! Write a hotreload configuration handler in Rust against contract 0.2
//! (`hotreload:handler@0.2.0`, `wit/handler.wit` in this crate, a copy of
//! the repository's `wit/v0.2/handler.wit`).
//!
//! A handler is a type implementing [`Handler`]: its configuration is a
//! serde type, so the types are checked by serde and every failure names the
//! JSON pointer of its field ([`from_json`]); what the types cannot say goes
//! in [`Handler::check`]; the fields that need a restart when they change,
//! and why, in [`Handler::restart`]; the effect in [`Handler::apply`].
//! [`export_handler!`] makes the crate a component exporting the contract's
//! `handler` world. The crate needs no WIT file and no `wit-bindgen` of its
//! own: the bindings are generated here.
//!
//! The contract's calls are run by a [`Runner`], plain Rust that also works
//! natively, for tests and benchmarks: `prepare` parses and checks the
//! configuration once and plans; `apply` right after reuses that work.
//!
//! # Example
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]   # add "rlib" to use the handler natively too
//!
//! [dependencies]
//! hotreload-handler = { path = "../sdk" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`, built with `cargo build --release --target wasm32-wasip2`:
//!
//! ```
//! use hotreload_handler::{
//!     Failure, Handler, LogLevel, Plan, Restart, Runner, SupportLevel, export_handler, log,
//!     pointer,
//! };
//! use serde::{Deserialize, Serialize};
//!
//! /// `{"level": "info", "json": false, "outputs": ["stdout"]}`, every field
//! /// optional: the defaults are serde's, and the effective configuration
//! /// (the `Config` serialised) shows them.
//! #[derive(Deserialize, Serialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct Config {
//!     #[serde(default = "info")]
//!     pub level: Level,
//!     #[serde(default)]
//!     pub json: bool,
//!     #[serde(default = "stdout")]
//!     pub outputs: Vec<String>,
//! }
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
//! #[serde(rename_all = "lowercase")]
//! pub enum Level {
//!     Trace,
//!     Debug,
//!     Info,
//!     Warn,
//!     Error,
//! }
//!
//! fn info() -> Level {
//!     Level::Info
//! }
//!
//! fn stdout() -> Vec<String> {
//!     vec!["stdout".to_owned()]
//! }
//!
//! /// The handler: what it holds lives as long as the component instance.
//! #[derive(Default)]
//! pub struct Logger {
//!     reloads: u64,
//! }
//!
//! impl Handler for Logger {
//!     type Config = Config;
//!     const SUPPORT: SupportLevel = SupportLevel::Partial;
//!
//!     fn check(config: &Config) -> Result<(), Failure> {
//!         if config.outputs.is_empty() {
//!             return Err(Failure::at("/outputs", "at least one output is required"));
//!         }
//!         for (index, output) in config.outputs.iter().enumerate() {
//!             if output.is_empty() {
//!                 let field = pointer(["outputs", &index.to_string()]);
//!                 return Err(Failure::at(field, "an output must not be empty"));
//!             }
//!         }
//!         Ok(())
//!     }
//!
//!     fn restart(old: &Config, new: &Config) -> Vec<Restart> {
//!         if old.json == new.json {
//!             return Vec::new();
//!         }
//!         vec![Restart::new("/json", "the format is chosen when the logger starts")]
//!     }
//!
//!     fn apply(&mut self, _old: Option<&Config>, new: &Config) -> Result<(), Failure> {
//!         self.reloads += 1;
//!         let outputs = new.outputs.len();
//!         log(LogLevel::Info, &format!("logger reconfigured: {outputs} outputs"));
//!         Ok(())
//!     }
//! }
//!
//! // On wasm32: the component's exports. Natively: nothing.
//! export_handler!(Logger);
//!
//! // Natively, a `Runner` makes the calls the host would make.
//! let mut runner = Runner::<Logger>::new();
//! let first = r#"{"level": "warn"}"#;
//! let prepared = runner.prepare(None, first)?;
//! assert_eq!(prepared.plan, Plan::InPlace);
//! assert_eq!(
//!     prepared.effective.as_deref(),
//!     Some(r#"{"level":"warn","json":false,"outputs":["stdout"]}"#)
//! );
//! runner.apply(None, first)?;
//!
//! let second = r#"{"level": "warn", "json": true}"#;
//! let prepared = runner.prepare(Some(first), second)?;
//! assert_eq!(
//!     prepared.plan,
//!     Plan::Restart(vec![Restart::new("/json", "the format is chosen when the logger starts")])
//! );
//!
//! let refused = runner.prepare(Some(first), r#"{"outputs": ["stdout", ""]}"#).unwrap_err();
//! assert_eq!(refused, Failure::at("/outputs/1", "an output must not be empty"));
//! let refused = runner.prepare(Some(first), r#"{"json": "yes"}"#).unwrap_err();
//! assert_eq!(
//!     refused,
//!     Failure::at("/json", "invalid type: string \"yes\", expected a boolean")
//! );
//! # Ok::<(), Failure>(())
//! ```
//!
//! # What the host sees
//!
//! - `support-level`: [`Handler::SUPPORT`].
//! - `prepare(old, new)`: [`Runner::prepare`]; `apply(old, new)`:
//!   [`Runner::apply`]; `rollback(config)`: [`Runner::rollback`].
//! - A panic in the handler traps the instance; the host reports it and
//!   starts a fresh instance.

#![warn(missing_docs)]

mod json;
mod runner;
mod strict;
#[cfg(test)]
mod tests;

pub use json::{from_json, pointer};
pub use runner::Runner;

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// How much of a component's configuration can change without a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SupportLevel {
    /// Every change can be applied in place.
    Full,
    /// Some changes can be applied in place; [`Handler::restart`] says which not.
    Partial,
    /// Every change needs a restart of the component.
    None,
}

/// The level of a line written with [`log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    /// Finest detail.
    Trace,
    /// For debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the handler survived.
    Warn,
    /// A failure.
    Error,
}

/// Writes a line to the host's log, tagged with the component's name (the
/// contract's `host.log`). Natively, where there is no host, does nothing.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::hotreload::handler::host::log(level.into(), message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

/// Why a handler refused or failed a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, for the operator.
    pub message: String,
    /// JSON pointer of the offending field (RFC 6901, e.g. `/outputs/0/level`,
    /// see [`pointer()`]), if one is to blame.
    pub field: Option<String>,
    /// True when the same call may succeed if tried again later.
    pub transient: bool,
}

impl Failure {
    /// A failure that blames no field, not transient.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            field: None,
            transient: false,
        }
    }

    /// A failure of the field at JSON pointer `field` (see [`pointer()`]), not transient.
    pub fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            field: Some(field.into()),
            transient: false,
        }
    }

    /// The same failure, marked transient: the same call may succeed later.
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Failure {}

/// A changed field that cannot take effect in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restart {
    /// JSON pointer of the field (RFC 6901, see [`pointer()`]).
    pub field: String,
    /// Why a restart is needed, for the operator.
    pub reason: String,
}

impl Restart {
    /// The field at JSON pointer `field` needs a restart, because of `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Restart {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// How a prepared configuration can take effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// In place, by `apply`.
    InPlace,
    /// Only by restarting the component; every field that needs it, with the reason.
    Restart(Vec<Restart>),
}

/// A candidate configuration that passed every check, as `prepare` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// How it can take effect.
    pub plan: Plan,
    /// The effective configuration (defaults filled in, normalised) as JSON,
    /// or `None` when it is the candidate itself. [`Runner`] always gives it.
    pub effective: Option<String>,
}

/// A configuration handler: its configuration type and what to do with it.
///
/// Only [`Config`](Handler::Config) is required; every method has a default.
/// The associated functions without `self` (`parse`, `check`, `restart`,
/// `effective`) must not depend on state: the host may call `prepare` for a
/// dry run on any instance. The value of the type (`Default` makes the first
/// one) is the handler's state, alive as long as the component instance.
pub trait Handler: Default + 'static {
    /// The configuration, read from JSON text by [`parse`](Handler::parse).
    ///
    /// With serde's derive, `#[serde(deny_unknown_fields)]` refuses unknown
    /// keys and `#[serde(default)]` fills in missing ones; `Option` fields
    /// accept `null`, other types refuse it.
    type Config: DeserializeOwned + Serialize;

    /// The support level the host is told.
    const SUPPORT: SupportLevel = SupportLevel::Full;

    /// Reads the configuration from its JSON text; by default [`from_json`].
    fn parse(text: &str) -> Result<Self::Config, Failure> {
        from_json(text)
    }

    /// Checks what the types do not (ranges, consistency between fields),
    /// naming the field with [`Failure::at`]. By default accepts everything.
    fn check(config: &Self::Config) -> Result<(), Failure> {
        let _ = config;
        Ok(())
    }

    /// The fields whose change from `old` to `new` needs a restart, and why.
    /// By default none. Only called when the effective configurations differ.
    fn restart(old: &Self::Config, new: &Self::Config) -> Vec<Restart> {
        let _ = (old, new);
        Vec::new()
    }

    /// The effective configuration as JSON text: by default the
    /// configuration serialised by serde_json (compact), defaults included.
    /// Two configurations with the same effective text are the same change.
    ///
    /// # Panics
    ///
    /// By default, if serde_json cannot serialise the configuration (a map
    /// with keys that are not strings).
    fn effective(config: &Self::Config) -> String {
        serde_json::to_string(config).expect("the configuration serialises to JSON")
    }

    /// Makes `new` take effect. `old` is the configuration in force on this
    /// instance, none on its first one. By default does nothing.
    fn apply(&mut self, old: Option<&Self::Config>, new: &Self::Config) -> Result<(), Failure> {
        let _ = (old, new);
        Ok(())
    }

    /// Returns to `config`, the last configuration applied successfully,
    /// after a failure further on in the host's transaction. By default
    /// `self.apply(None, config)`.
    fn rollback(&mut self, config: &Self::Config) -> Result<(), Failure> {
        self.apply(None, config)
    }
}

/// Makes the crate a component exporting contract 0.2's `handler` world for
/// the [`Handler`] type `$ty`: `export_handler!(MyHandler);` once, in a
/// `cdylib` crate.
///
/// Each instance keeps one [`Runner<$ty>`](Runner), created on the first
/// call. Only on `wasm32`; on other targets it expands to nothing, so the
/// crate still compiles natively.
#[macro_export]
macro_rules! export_handler {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct HotreloadHandlerExport;

            ::std::thread_local! {
                static RUNNER: ::core::cell::RefCell<$crate::Runner<$ty>> =
                    ::core::cell::RefCell::new($crate::Runner::new());
            }

            impl $crate::__private::Exported for HotreloadHandlerExport {
                type Handler = $ty;

                fn with_runner<R>(f: impl FnOnce(&mut $crate::Runner<$ty>) -> R) -> R {
                    RUNNER.with(|runner| f(&mut runner.borrow_mut()))
                }
            }

            $crate::bindings::__export_handler_world!(
                HotreloadHandlerExport with_types_in $crate::bindings
            );
        };
    };
}

/// The contract's bindings, generated by wit-bindgen from `wit/handler.wit`;
/// used by [`export_handler!`].
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "handler",
        pub_export_macro: true,
        export_macro_name: "__export_handler_world",
        default_bindings_module: "hotreload_handler::bindings",
    });
}

/// What [`export_handler!`] expands to needs; not part of the API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    use crate::bindings::hotreload::handler::{host, types};
    use crate::{Handler, Runner};

    /// A type whose instance-wide runner the exports use.
    pub trait Exported: 'static {
        /// The handler.
        type Handler: Handler;
        /// Calls `f` with the instance's runner.
        fn with_runner<R>(f: impl FnOnce(&mut Runner<Self::Handler>) -> R) -> R;
    }

    impl<E: Exported> crate::bindings::Guest for E {
        fn support_level() -> types::SupportLevel {
            <E::Handler as Handler>::SUPPORT.into()
        }

        fn prepare(
            old_config: Option<String>,
            new_config: String,
        ) -> Result<types::Prepared, types::Failure> {
            E::with_runner(|runner| runner.prepare(old_config.as_deref(), &new_config))
                .map(Into::into)
                .map_err(Into::into)
        }

        fn apply(old_config: Option<String>, new_config: String) -> Result<(), types::Failure> {
            E::with_runner(|runner| runner.apply(old_config.as_deref(), &new_config))
                .map_err(Into::into)
        }

        fn rollback(config: String) -> Result<(), types::Failure> {
            E::with_runner(|runner| runner.rollback(&config)).map_err(Into::into)
        }
    }

    impl From<crate::SupportLevel> for types::SupportLevel {
        fn from(level: crate::SupportLevel) -> Self {
            match level {
                crate::SupportLevel::Full => types::SupportLevel::Full,
                crate::SupportLevel::Partial => types::SupportLevel::Partial,
                crate::SupportLevel::None => types::SupportLevel::None,
            }
        }
    }

    impl From<crate::LogLevel> for host::LogLevel {
        fn from(level: crate::LogLevel) -> Self {
            match level {
                crate::LogLevel::Trace => host::LogLevel::Trace,
                crate::LogLevel::Debug => host::LogLevel::Debug,
                crate::LogLevel::Info => host::LogLevel::Info,
                crate::LogLevel::Warn => host::LogLevel::Warn,
                crate::LogLevel::Error => host::LogLevel::Error,
            }
        }
    }

    impl From<crate::Failure> for types::Failure {
        fn from(failure: crate::Failure) -> Self {
            types::Failure {
                message: failure.message,
                field: failure.field,
                transient: failure.transient,
            }
        }
    }

    impl From<crate::Prepared> for types::Prepared {
        fn from(prepared: crate::Prepared) -> Self {
            let plan = match prepared.plan {
                crate::Plan::InPlace => types::Plan::InPlace,
                crate::Plan::Restart(reasons) => types::Plan::Restart(
                    reasons
                        .into_iter()
                        .map(|r| types::RestartReason {
                            field: r.field,
                            reason: r.reason,
                        })
                        .collect(),
                ),
            };
            types::Prepared {
                plan,
                effective: prepared.effective,
            }
        }
    }
}
