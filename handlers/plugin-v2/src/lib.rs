//! The `plugin` handler on contract 0.2 (`hotreload:handler@0.2.0`), written
//! with the `hotreload-handler` SDK and plain serde derive: configuration of
//! a worker-pool plugin, support level `partial`.
//!
//! This is the SDK's showcase: serde checks the types and fills in the
//! defaults, [`Handler::check`] the range, [`Handler::restart`] names the
//! field that needs a restart. It is stricter than the 0.1 `plugin` handler
//! on duplicate keys (refused here; 0.1 keeps the last one) and words its
//! type failures as serde does.
//!
//! # Configuration
//!
//! A JSON object; every field is optional, unknown fields are refused:
//!
//! | field      | type                         | default |
//! |------------|------------------------------|---------|
//! | `enabled`  | boolean                      | `true`  |
//! | `workers`  | integer from 1 to 64         | `4`     |
//! | `settings` | any object                   | `{}`    |
//!
//! `null` is not a value of any field.
//!
//! # Failures
//!
//! Every failure has `transient = false`; `field` is an RFC 6901 JSON pointer.
//!
//! | configuration                          | field       | message |
//! |----------------------------------------|-------------|---------|
//! | `{"enabled` (not JSON)                 | none        | `invalid JSON: EOF while parsing a string at line 1 column 9` |
//! | `[]` (not an object)                   | none        | ``invalid type: sequence, expected struct Config`` |
//! | `{"enabled": null}`                    | `/enabled`  | ``invalid type: null, expected a boolean`` |
//! | `{"workers": "4"}`                     | `/workers`  | ``invalid type: string "4", expected u32`` |
//! | `{"workers": 4.0}`                     | `/workers`  | ``invalid type: floating point `4.0`, expected u32`` |
//! | `{"workers": -1}`                      | `/workers`  | ``invalid value: integer `-1`, expected u32`` |
//! | `{"workers": 0}` or `65` (the check)   | `/workers`  | `workers must be an integer from 1 to 64` |
//! | `{"settings": []}`                     | `/settings` | ``invalid type: sequence, expected a map`` |
//! | `{"workers": 2, "workers": 3}`         | `/workers`  | `duplicate field "workers"` |
//! | `{"threads": 2}`                       | `/threads`  | ``unknown field "threads", expected one of `enabled`, `workers`, `settings` `` |
//!
//! # Effective configuration
//!
//! The configuration serialised compactly, defaults filled in, `settings`
//! with its keys sorted: `{"enabled":true,"workers":4,"settings":{}}` (as the
//! 0.1 handler's).
//!
//! # Exports (contract 0.2)
//!
//! - `support-level`: `partial`.
//! - `prepare(old, new)`: the checks above; the plan is a restart with
//!   reason `the plugin registers its routes at start` on field `/enabled`
//!   when the effective `enabled` changes, else in place.
//! - `apply(old, new)`: makes `new` the configuration in force and logs
//!   `plugin reconfigured: enabled=<bool> workers=<n>` at `info`.
//! - `rollback(config)`: checks `config` and makes it the configuration in
//!   force, without logging (as the 0.1 `rollback`).
//!
//! ```
//! use hotreload_handler::{Plan, Restart, Runner};
//!
//! let mut runner = Runner::<plugin_v2::Plugin>::new();
//! runner.apply(None, "{}").unwrap();
//! let prepared = runner.prepare(Some("{}"), r#"{"enabled": false}"#).unwrap();
//! assert_eq!(
//!     prepared.plan,
//!     Plan::Restart(vec![Restart::new("/enabled", "the plugin registers its routes at start")])
//! );
//! assert_eq!(
//!     prepared.effective.as_deref(),
//!     Some(r#"{"enabled":false,"workers":4,"settings":{}}"#)
//! );
//! ```

use hotreload_handler::{Failure, Handler, LogLevel, Restart, SupportLevel, export_handler, log};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The plugin's configuration; missing fields take their defaults.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Whether the plugin runs; changing it needs a restart. Default `true`.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Size of the worker pool, 1 to 64. Default 4.
    #[serde(default = "workers")]
    pub workers: u32,
    /// The plugin's own settings, any object. Default `{}`.
    #[serde(default)]
    pub settings: Map<String, Value>,
}

fn enabled() -> bool {
    true
}

fn workers() -> u32 {
    4
}

/// The plugin handler: support level partial.
#[derive(Debug, Default)]
pub struct Plugin;

impl Handler for Plugin {
    type Config = Config;
    const SUPPORT: SupportLevel = SupportLevel::Partial;

    fn check(config: &Config) -> Result<(), Failure> {
        if !(1..=64).contains(&config.workers) {
            return Err(Failure::at(
                "/workers",
                "workers must be an integer from 1 to 64",
            ));
        }
        Ok(())
    }

    fn restart(old: &Config, new: &Config) -> Vec<Restart> {
        if old.enabled == new.enabled {
            return Vec::new();
        }
        vec![Restart::new(
            "/enabled",
            "the plugin registers its routes at start",
        )]
    }

    fn apply(&mut self, _old: Option<&Config>, new: &Config) -> Result<(), Failure> {
        log(
            LogLevel::Info,
            &format!(
                "plugin reconfigured: enabled={} workers={}",
                new.enabled, new.workers
            ),
        );
        Ok(())
    }

    /// As the 0.1 `rollback`: no log line.
    fn rollback(&mut self, _config: &Config) -> Result<(), Failure> {
        Ok(())
    }
}

export_handler!(Plugin);

#[cfg(test)]
mod tests;
