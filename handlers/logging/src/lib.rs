//! The `logging` handler: configuration of a logger, support level `full`.
//!
//! This is the reference implementation; ports to other languages must behave
//! exactly as described here.
//!
//! # Configuration
//!
//! A JSON object (duplicate keys: the last one wins). Every field is optional:
//!
//! | field     | type                               | default                |
//! |-----------|------------------------------------|------------------------|
//! | `level`   | `"trace"` `"debug"` `"info"` `"warn"` `"error"` | `"info"`  |
//! | `format`  | `"text"` `"json"`                  | `"text"`               |
//! | `outputs` | non-empty array of outputs         | `[{"type": "stdout"}]` |
//! | `fields`  | object whose values are strings    | `{}`                   |
//!
//! An output is an object with
//! - `type` (required): `"stdout"`, `"stderr"` or `"file"`;
//! - `path`: a non-empty string, required for `"file"` and not allowed for
//!   the other types;
//! - `level` (optional): a level as above, defaulting to the top-level `level`.
//!
//! # Validation
//!
//! Checks run in this order and the first failing one is reported. Every
//! failure has `transient = false`; `field` is an RFC 6901 JSON pointer in
//! which `~` is written `~0` and `/` is written `~1`. "Smallest key" means
//! smallest in Unicode code point order.
//!
//! | check                                         | field              | message |
//! |-----------------------------------------------|--------------------|---------|
//! | text is not JSON                              | none               | `invalid JSON: <parser error>` |
//! | JSON is not an object                         | none               | `configuration must be a JSON object` |
//! | `level` is not a string                       | `/level`           | `level must be a string: expected one of trace, debug, info, warn, error` |
//! | `level` is another string                     | `/level`           | `unknown level "<value>": expected one of trace, debug, info, warn, error` |
//! | `format` is not a string                      | `/format`          | `format must be a string: expected one of text, json` |
//! | `format` is another string                    | `/format`          | `unknown format "<value>": expected one of text, json` |
//! | `outputs` is not an array                     | `/outputs`         | `outputs must be an array` |
//! | `outputs` is empty                            | `/outputs`         | `at least one output is required` |
//!
//! then, for each output `N` in index order:
//!
//! | check                                         | field              | message |
//! |-----------------------------------------------|--------------------|---------|
//! | output is not an object                       | `/outputs/N`       | `output must be an object` |
//! | `type` is missing                             | `/outputs/N/type`  | `output type is required: expected one of stdout, stderr, file` |
//! | `type` is not a string                        | `/outputs/N/type`  | `output type must be a string: expected one of stdout, stderr, file` |
//! | `type` is another string                      | `/outputs/N/type`  | `unknown output type "<value>": expected one of stdout, stderr, file` |
//! | `file` output without `path`                  | `/outputs/N/path`  | `file output requires a path` |
//! | `file` output, `path` not a non-empty string  | `/outputs/N/path`  | `path must be a non-empty string` |
//! | other output with a `path`                    | `/outputs/N/path`  | `path is only allowed for file outputs` |
//! | `level` invalid                               | `/outputs/N/level` | as for the top-level `level` |
//! | unknown keys (smallest first)                 | `/outputs/N/<key>` | `unknown field "<key>"` |
//!
//! then:
//!
//! | check                                         | field              | message |
//! |-----------------------------------------------|--------------------|---------|
//! | `fields` is not an object                     | `/fields`          | `fields must be an object` |
//! | a value is not a string (smallest key first)  | `/fields/<key>`    | `field "<key>" must be a string` |
//! | unknown top-level keys (smallest first)       | `/<key>`           | `unknown field "<key>"` |
//!
//! `<value>` and `<key>` are inserted verbatim, without escaping.
//!
//! # Effective configuration
//!
//! `reload` returns the effective configuration as compact JSON (no
//! whitespace) with every default filled in, keys in this order:
//!
//! ```json
//! {"level":"info","format":"text","outputs":[{"type":"file","level":"info","path":"/var/log/app.log"}],"fields":{"app":"demo"}}
//! ```
//!
//! Output keys are `type`, `level` (the output's own level or the top-level
//! one), then `path` for `file` outputs only; `fields` keys are sorted by code
//! point. Strings are escaped as JSON requires (`"`, `\` and control
//! characters; `\b \f \n \r \t` by name, other control characters as
//! lower-case `\u00xx`); nothing else is escaped.
//!
//! # Exports
//!
//! - `support-level`: `full`.
//! - `validate(config)`: the checks above.
//! - `can-reload(old, new)`: always true.
//! - `reload(old, new)`: validates `new` (returning its failure), makes it the
//!   current configuration, logs `logging reconfigured: level=<level>
//!   format=<format> outputs=<number of outputs>` at `info` through the host,
//!   and returns `Ok(Some(<effective configuration>))`.
//! - `rollback(config)`: validates `config` (returning its failure) and makes
//!   it the current configuration, without logging.

wit_bindgen::generate!({ path: "../../wit", world: "handler" });

mod config;

use config::{Config, Refusal};
use hotreload::handler::host::{LogLevel, log};
use std::cell::RefCell;

thread_local! {
    /// The configuration applied by the last successful `reload` or `rollback`.
    static CURRENT: RefCell<Option<Config>> = const { RefCell::new(None) };
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Failure {
        Failure {
            message: r.message,
            field: r.field,
            transient: false,
        }
    }
}

struct Logging;

impl Guest for Logging {
    fn support_level() -> SupportLevel {
        SupportLevel::Full
    }

    fn validate(config: String) -> Result<(), Failure> {
        config::parse(&config).map(drop).map_err(Failure::from)
    }

    fn can_reload(_old_config: String, _new_config: String) -> bool {
        true
    }

    fn reload(_old_config: Option<String>, new_config: String) -> Result<Option<String>, Failure> {
        let config = config::parse(&new_config)?;
        let effective = config.to_json();
        log(
            LogLevel::Info,
            &format!(
                "logging reconfigured: level={} format={} outputs={}",
                config.level,
                config.format,
                config.outputs.len()
            ),
        );
        CURRENT.with(|current| *current.borrow_mut() = Some(config));
        Ok(Some(effective))
    }

    fn rollback(config: String) -> Result<(), Failure> {
        let config = config::parse(&config)?;
        CURRENT.with(|current| *current.borrow_mut() = Some(config));
        Ok(())
    }
}

export!(Logging);
