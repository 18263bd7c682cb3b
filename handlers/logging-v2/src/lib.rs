//! The `logging` handler on contract 0.2 (`hotreload:handler@0.2.0`), written
//! with the `hotreload-handler` SDK: configuration of a logger, support level
//! `full`.
//!
//! It behaves exactly as the 0.1 reference handler, `handlers/logging`, whose
//! crate documentation specifies the configuration, every check (in order)
//! with its failure's field and message, and the effective configuration:
//! the same texts are accepted and refused, with the same `field` and
//! `message` (`transient = false`), the same effective configuration text,
//! and the same line logged at `info` when a configuration is applied:
//! `logging reconfigured: level=<level> format=<format> outputs=<number>`.
//! The shared behaviour table `handlers/cases/logging.json` is the spec.
//!
//! # Why not serde's derive
//!
//! The reference's validation and normalisation code (`logging/src/config.rs`)
//! is compiled into this crate verbatim (`#[path]`), and overrides
//! [`Handler::parse`] and [`Handler::effective`]. A `#[derive(Deserialize)]`
//! configuration read by [`hotreload_handler::from_json`] cannot reproduce
//! the table:
//!
//! - duplicate keys: the reference keeps the last one, derive refuses
//!   (`duplicate field "level"`);
//! - check order: the reference checks `level`, `format`, `outputs`, then
//!   `fields`, and unknown keys last, smallest key first; serde reports the
//!   first problem in document order;
//! - words: the reference's messages (`unknown level "loud": expected one of
//!   trace, debug, info, warn, error`, `output type is required: ...`,
//!   `file output requires a path`, `path is only allowed for file outputs`)
//!   are not serde's, and `type`/`path` depend on each other;
//! - the effective text: key order `type`, `level`, `path` with an output's
//!   level defaulting to the top-level one, and the reference's escaping.
//!
//! # Exports (contract 0.2)
//!
//! - `support-level`: `full`.
//! - `prepare(old, new)`: the reference's checks on `new`; the plan is always
//!   in place; `effective` is the effective configuration.
//! - `apply(old, new)`: makes `new` the configuration in force (reusing what
//!   `prepare` computed), logs `logging reconfigured: ...` at `info`.
//! - `rollback(config)`: checks `config` and makes it the configuration in
//!   force, without logging (as the 0.1 `rollback`).
//!
//! # Natively
//!
//! The crate is also an `rlib` that compiles natively, for benchmarks:
//!
//! ```
//! use hotreload_handler::{Plan, Runner};
//!
//! let mut runner = Runner::<logging_v2::Logging>::new();
//! let prepared = runner.prepare(None, r#"{"level": "warn"}"#).unwrap();
//! assert_eq!(prepared.plan, Plan::InPlace);
//! assert_eq!(
//!     prepared.effective.as_deref(),
//!     Some(r#"{"level":"warn","format":"text","outputs":[{"type":"stdout","level":"warn"}],"fields":{}}"#)
//! );
//! runner.apply(None, r#"{"level": "warn"}"#).unwrap();
//!
//! let refused = runner.prepare(None, r#"{"level": "loud"}"#).unwrap_err();
//! assert_eq!(refused.field.as_deref(), Some("/level"));
//! assert_eq!(
//!     refused.message,
//!     "unknown level \"loud\": expected one of trace, debug, info, warn, error"
//! );
//! ```

#[path = "../../logging/src/config.rs"]
mod config;

use hotreload_handler::{Failure, Handler, LogLevel, SupportLevel, export_handler, log};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated logging configuration with every default filled in: the
/// reference's `Config`.
///
/// Its serde implementations exist for [`Handler::Config`]'s bounds; the
/// handler itself reads and writes it with the reference's code. Deserialising
/// reads a JSON value and checks it as the reference does (a refusal becomes
/// a custom error with the reference's message); serialising writes the
/// effective configuration.
pub struct LoggingConfig(config::Config);

impl LoggingConfig {
    /// The logging level: `trace`, `debug`, `info`, `warn` or `error`.
    pub fn level(&self) -> &'static str {
        self.0.level
    }

    /// The line format: `text` or `json`.
    pub fn format(&self) -> &'static str {
        self.0.format
    }

    /// The number of outputs, at least one.
    pub fn outputs(&self) -> usize {
        self.0.outputs.len()
    }
}

impl<'de> Deserialize<'de> for LoggingConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        config::parse(&value.to_string())
            .map(LoggingConfig)
            .map_err(|refusal| D::Error::custom(refusal.message))
    }
}

impl Serialize for LoggingConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value: serde_json::Value =
            serde_json::from_str(&self.0.to_json()).expect("the effective configuration is JSON");
        value.serialize(serializer)
    }
}

/// The line logged at `info` when `config` is applied, as the 0.1 `reload` logs it.
fn reconfigured(config: &LoggingConfig) -> String {
    format!(
        "logging reconfigured: level={} format={} outputs={}",
        config.0.level,
        config.0.format,
        config.0.outputs.len()
    )
}

/// The logging handler: support level full, every change applied in place.
#[derive(Debug, Default)]
pub struct Logging;

impl Handler for Logging {
    type Config = LoggingConfig;
    const SUPPORT: SupportLevel = SupportLevel::Full;

    /// The reference's parsing and checks, in its order, with its failures.
    fn parse(text: &str) -> Result<LoggingConfig, Failure> {
        config::parse(text)
            .map(LoggingConfig)
            .map_err(|refusal| Failure {
                message: refusal.message,
                field: refusal.field,
                transient: false,
            })
    }

    /// The reference's effective configuration text.
    fn effective(config: &LoggingConfig) -> String {
        config.0.to_json()
    }

    fn apply(&mut self, _old: Option<&LoggingConfig>, new: &LoggingConfig) -> Result<(), Failure> {
        log(LogLevel::Info, &reconfigured(new));
        Ok(())
    }

    /// As the 0.1 `rollback`: no log line.
    fn rollback(&mut self, _config: &LoggingConfig) -> Result<(), Failure> {
        Ok(())
    }
}

export_handler!(Logging);

#[cfg(test)]
mod tests;
