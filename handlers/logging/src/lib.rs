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

use hotreload::handler::host::{LogLevel, log};
use serde_json::{Map, Value};
use std::cell::RefCell;

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];
const FORMATS: &[&str] = &["text", "json"];
const OUTPUT_TYPES: &[&str] = &["stdout", "stderr", "file"];

/// One destination of log lines.
struct Output {
    kind: &'static str,
    level: &'static str,
    path: Option<String>,
}

/// A validated configuration with every default filled in.
struct Config {
    level: &'static str,
    format: &'static str,
    outputs: Vec<Output>,
    /// Sorted by key.
    fields: Vec<(String, String)>,
}

thread_local! {
    /// The configuration applied by the last successful `reload` or `rollback`.
    static CURRENT: RefCell<Option<Config>> = const { RefCell::new(None) };
}

fn failure(message: impl Into<String>, field: Option<String>) -> Failure {
    Failure {
        message: message.into(),
        field,
        transient: false,
    }
}

/// Escapes one JSON pointer reference token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Checks that `value` is one of `allowed`; `name` is used in messages.
fn one_of(
    value: &Value,
    name: &str,
    allowed: &[&'static str],
    field: &str,
) -> Result<&'static str, Failure> {
    let expected = allowed.join(", ");
    let Value::String(s) = value else {
        return Err(failure(
            format!("{name} must be a string: expected one of {expected}"),
            Some(field.to_owned()),
        ));
    };
    allowed.iter().copied().find(|a| a == s).ok_or_else(|| {
        failure(
            format!("unknown {name} \"{s}\": expected one of {expected}"),
            Some(field.to_owned()),
        )
    })
}

/// The smallest key of `object` not in `known`, as a failure.
fn unknown_key(object: &Map<String, Value>, known: &[&str], prefix: &str) -> Result<(), Failure> {
    // serde_json's map is sorted, so the first unknown key is the smallest.
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(failure(
            format!("unknown field \"{key}\""),
            Some(format!("{prefix}/{}", escape(key))),
        )),
        None => Ok(()),
    }
}

fn parse_output(
    index: usize,
    item: &Value,
    default_level: &'static str,
) -> Result<Output, Failure> {
    let at = format!("/outputs/{index}");
    let Value::Object(item) = item else {
        return Err(failure("output must be an object", Some(at)));
    };
    let kind = match item.get("type") {
        None => {
            return Err(failure(
                "output type is required: expected one of stdout, stderr, file",
                Some(format!("{at}/type")),
            ));
        }
        Some(kind) => one_of(kind, "output type", OUTPUT_TYPES, &format!("{at}/type"))?,
    };
    let path = match (kind, item.get("path")) {
        ("file", None) => {
            return Err(failure(
                "file output requires a path",
                Some(format!("{at}/path")),
            ));
        }
        ("file", Some(Value::String(path))) if !path.is_empty() => Some(path.clone()),
        ("file", Some(_)) => {
            return Err(failure(
                "path must be a non-empty string",
                Some(format!("{at}/path")),
            ));
        }
        (_, None) => None,
        (_, Some(_)) => {
            return Err(failure(
                "path is only allowed for file outputs",
                Some(format!("{at}/path")),
            ));
        }
    };
    let level = match item.get("level") {
        None => default_level,
        Some(level) => one_of(level, "level", LEVELS, &format!("{at}/level"))?,
    };
    unknown_key(item, &["type", "path", "level"], &at)?;
    Ok(Output { kind, level, path })
}

fn parse(config: &str) -> Result<Config, Failure> {
    let value: Value =
        serde_json::from_str(config).map_err(|e| failure(format!("invalid JSON: {e}"), None))?;
    let Value::Object(object) = value else {
        return Err(failure("configuration must be a JSON object", None));
    };
    let level = match object.get("level") {
        None => "info",
        Some(level) => one_of(level, "level", LEVELS, "/level")?,
    };
    let format = match object.get("format") {
        None => "text",
        Some(format) => one_of(format, "format", FORMATS, "/format")?,
    };
    let outputs = match object.get("outputs") {
        None => vec![Output {
            kind: "stdout",
            level,
            path: None,
        }],
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(failure(
                "at least one output is required",
                Some("/outputs".into()),
            ));
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| parse_output(index, item, level))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(failure("outputs must be an array", Some("/outputs".into()))),
    };
    let fields = match object.get("fields") {
        None => Vec::new(),
        Some(Value::Object(fields)) => fields
            .iter()
            .map(|(key, value)| match value {
                Value::String(value) => Ok((key.clone(), value.clone())),
                _ => Err(failure(
                    format!("field \"{key}\" must be a string"),
                    Some(format!("/fields/{}", escape(key))),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(failure("fields must be an object", Some("/fields".into()))),
    };
    unknown_key(&object, &["level", "format", "outputs", "fields"], "")?;
    Ok(Config {
        level,
        format,
        outputs,
        fields,
    })
}

/// A string as a JSON string literal.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

impl Config {
    /// The effective configuration as compact JSON, keys in documented order.
    fn to_json(&self) -> String {
        let outputs: Vec<String> = self
            .outputs
            .iter()
            .map(|o| {
                let path = match &o.path {
                    Some(path) => format!(",\"path\":{}", quote(path)),
                    None => String::new(),
                };
                format!(
                    "{{\"type\":{},\"level\":{}{path}}}",
                    quote(o.kind),
                    quote(o.level)
                )
            })
            .collect();
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
            .collect();
        format!(
            "{{\"level\":{},\"format\":{},\"outputs\":[{}],\"fields\":{{{}}}}}",
            quote(self.level),
            quote(self.format),
            outputs.join(","),
            fields.join(",")
        )
    }
}

struct Logging;

impl Guest for Logging {
    fn support_level() -> SupportLevel {
        SupportLevel::Full
    }

    fn validate(config: String) -> Result<(), Failure> {
        parse(&config).map(drop)
    }

    fn can_reload(_old_config: String, _new_config: String) -> bool {
        true
    }

    fn reload(_old_config: Option<String>, new_config: String) -> Result<Option<String>, Failure> {
        let config = parse(&new_config)?;
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
        let config = parse(&config)?;
        CURRENT.with(|current| *current.borrow_mut() = Some(config));
        Ok(())
    }
}

export!(Logging);
