//! The logging configuration: parsing, validation and normalisation, with
//! no dependency on the WebAssembly bindings, so the same code also runs
//! natively (the benchmarks' floor).

use serde_json::{Map, Value};

/// Why a configuration is refused.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// For the operator.
    pub(crate) message: String,
    /// JSON pointer of the field to blame.
    pub(crate) field: Option<String>,
}

fn failure(message: impl Into<String>, field: Option<String>) -> Refusal {
    Refusal {
        message: message.into(),
        field,
    }
}

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];
const FORMATS: &[&str] = &["text", "json"];
const OUTPUT_TYPES: &[&str] = &["stdout", "stderr", "file"];

/// One destination of log lines.
pub(crate) struct Output {
    pub(crate) kind: &'static str,
    pub(crate) level: &'static str,
    pub(crate) path: Option<String>,
}

/// A validated configuration with every default filled in.
pub(crate) struct Config {
    pub(crate) level: &'static str,
    pub(crate) format: &'static str,
    pub(crate) outputs: Vec<Output>,
    /// Sorted by key.
    pub(crate) fields: Vec<(String, String)>,
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
) -> Result<&'static str, Refusal> {
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
fn unknown_key(object: &Map<String, Value>, known: &[&str], prefix: &str) -> Result<(), Refusal> {
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
) -> Result<Output, Refusal> {
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

pub(crate) fn parse(config: &str) -> Result<Config, Refusal> {
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
    pub(crate) fn to_json(&self) -> String {
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
