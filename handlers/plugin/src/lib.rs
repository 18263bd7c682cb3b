//! The `plugin` handler: configuration of a worker-pool plugin, support level
//! `partial`.
//!
//! # Configuration
//!
//! A JSON object (duplicate keys: the last one wins). Every field is optional:
//!
//! | field      | type                         | default |
//! |------------|------------------------------|---------|
//! | `enabled`  | boolean                      | `true`  |
//! | `workers`  | integer literal from 1 to 64 | `4`     |
//! | `settings` | any object                   | `{}`    |
//!
//! # Validation
//!
//! Checks run in this order and the first failing one is reported. Every
//! failure has `transient = false`; `field` is an RFC 6901 JSON pointer.
//!
//! | check                                   | field       | message |
//! |-----------------------------------------|-------------|---------|
//! | text is not JSON                        | none        | `invalid JSON: <parser error>` |
//! | JSON is not an object                   | none        | `configuration must be a JSON object` |
//! | `enabled` is not a boolean              | `/enabled`  | `enabled must be a boolean` |
//! | `workers` is not an integer in 1..=64   | `/workers`  | `workers must be an integer from 1 to 64` |
//! | `settings` is not an object             | `/settings` | `settings must be an object` |
//! | unknown keys (smallest first)           | `/<key>`    | `unknown field "<key>"` |
//!
//! A `workers` written with a fraction or exponent (`4.0`, `4e0`) is rejected.
//!
//! # Exports
//!
//! - `support-level`: `partial`.
//! - `validate(config)`: the checks above.
//! - `can-reload(old, new)`: true when both configurations are valid and
//!   their effective `enabled` is the same; turning the plugin on or off
//!   needs a restart.
//! - `reload(old, new)`: validates `new` (returning its failure), makes it the
//!   current configuration, logs `plugin reconfigured: enabled=<bool>
//!   workers=<n>` at `info` through the host and returns the effective
//!   configuration as compact JSON,
//!   `{"enabled":true,"workers":4,"settings":{...}}`, with `settings`
//!   re-serialised compactly with its keys sorted.
//! - `rollback(config)`: validates `config` (returning its failure) and makes
//!   it the current configuration, without logging.

wit_bindgen::generate!({ path: "../../wit", world: "handler" });

use hotreload::handler::host::{LogLevel, log};
use serde_json::{Map, Value};
use std::cell::RefCell;

/// A validated configuration with every default filled in.
struct Config {
    enabled: bool,
    workers: u64,
    settings: Map<String, Value>,
}

thread_local! {
    /// The configuration applied by the last successful `reload` or `rollback`.
    static CURRENT: RefCell<Option<Config>> = const { RefCell::new(None) };
}

fn failure(message: impl Into<String>, field: Option<&str>) -> Failure {
    Failure {
        message: message.into(),
        field: field.map(str::to_owned),
        transient: false,
    }
}

fn parse(config: &str) -> Result<Config, Failure> {
    let value: Value =
        serde_json::from_str(config).map_err(|e| failure(format!("invalid JSON: {e}"), None))?;
    let Value::Object(object) = value else {
        return Err(failure("configuration must be a JSON object", None));
    };
    let enabled = match object.get("enabled") {
        None => true,
        Some(Value::Bool(enabled)) => *enabled,
        Some(_) => return Err(failure("enabled must be a boolean", Some("/enabled"))),
    };
    let workers = match object.get("workers") {
        None => 4,
        Some(workers) => match workers.as_u64() {
            Some(n @ 1..=64) => n,
            _ => {
                return Err(failure(
                    "workers must be an integer from 1 to 64",
                    Some("/workers"),
                ));
            }
        },
    };
    let settings = match object.get("settings") {
        None => Map::new(),
        Some(Value::Object(settings)) => settings.clone(),
        Some(_) => return Err(failure("settings must be an object", Some("/settings"))),
    };
    // serde_json's map is sorted, so the first unknown key is the smallest.
    let known = ["enabled", "workers", "settings"];
    if let Some(key) = object.keys().find(|k| !known.contains(&k.as_str())) {
        let pointer = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
        return Err(failure(format!("unknown field \"{key}\""), Some(&pointer)));
    }
    Ok(Config {
        enabled,
        workers,
        settings,
    })
}

impl Config {
    /// The effective configuration as compact JSON.
    fn to_json(&self) -> String {
        let settings = serde_json::to_string(&self.settings).expect("a map always serialises");
        format!(
            "{{\"enabled\":{},\"workers\":{},\"settings\":{settings}}}",
            self.enabled, self.workers
        )
    }
}

struct Plugin;

impl Guest for Plugin {
    fn support_level() -> SupportLevel {
        SupportLevel::Partial
    }

    fn validate(config: String) -> Result<(), Failure> {
        parse(&config).map(drop)
    }

    fn can_reload(old_config: String, new_config: String) -> bool {
        match (parse(&old_config), parse(&new_config)) {
            (Ok(old), Ok(new)) => old.enabled == new.enabled,
            _ => false,
        }
    }

    fn reload(_old_config: Option<String>, new_config: String) -> Result<Option<String>, Failure> {
        let config = parse(&new_config)?;
        let effective = config.to_json();
        log(
            LogLevel::Info,
            &format!(
                "plugin reconfigured: enabled={} workers={}",
                config.enabled, config.workers
            ),
        );
        CURRENT.with(|current| *current.borrow_mut() = Some(config));
        Ok(Some(effective))
    }

    fn rollback(config: String) -> Result<(), Failure> {
        let config = parse(&config)?;
        CURRENT.with(|current| *current.borrow_mut() = Some(config));
        Ok(())
    }
}

export!(Plugin);
