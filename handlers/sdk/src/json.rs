//! Reading a configuration from JSON text, with failures that name their field.

use crate::Failure;
use crate::strict::{NOT_ONE_KEY, Strict};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

/// Builds an RFC 6901 JSON pointer from reference tokens (object keys and
/// array indices): each token is escaped (`~` as `~0`, then `/` as `~1`) and
/// preceded by `/`. No tokens give `""`, the pointer to the whole document.
///
/// ```
/// use hotreload_handler::pointer;
///
/// assert_eq!(pointer(["outputs", "1", "level"]), "/outputs/1/level");
/// assert_eq!(pointer(["fields", "a/b~c"]), "/fields/a~1b~0c");
/// assert_eq!(pointer(Vec::<String>::new()), "");
/// ```
pub fn pointer<I>(tokens: I) -> String
where
    I: IntoIterator<Item: AsRef<str>>,
{
    let mut pointer = String::new();
    for token in tokens {
        pointer.push('/');
        for c in token.as_ref().chars() {
            match c {
                '~' => pointer.push_str("~0"),
                '/' => pointer.push_str("~1"),
                c => pointer.push(c),
            }
        }
    }
    pointer
}

/// Reads `T` from JSON text with serde, as [`Handler::parse`](crate::Handler::parse)
/// does by default.
///
/// A failure names the JSON pointer of the offending value in `field` (found
/// with `serde_path_to_error`) and keeps serde's words, which say what was
/// expected, without serde_json's trailing ` at line N column M`:
///
/// ```
/// use hotreload_handler::{Failure, from_json};
/// use serde::Deserialize;
///
/// #[derive(Debug, Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config {
///     #[serde(default)]
///     level: Option<Level>,
///     #[serde(default)]
///     outputs: Vec<Output>,
/// }
///
/// #[derive(Debug, Deserialize)]
/// #[serde(rename_all = "lowercase")]
/// enum Level {
///     Trace,
///     Debug,
///     Info,
/// }
///
/// #[derive(Debug, Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Output {
///     path: String,
/// }
///
/// for (text, field, message) in [
///     (r#"{"level": 42}"#, "/level", "invalid type: integer `42`, expected one of `trace`, `debug`, `info`"),
///     (r#"{"level": "loud"}"#, "/level", "unknown variant `loud`, expected one of `trace`, `debug`, `info`"),
///     (r#"{"outputs": [{"path": "a"}, {"path": null}]}"#, "/outputs/1/path", "invalid type: null, expected a string"),
///     (r#"{"outputs": [{}]}"#, "/outputs/0/path", "missing field \"path\""),
///     (r#"{"outputs": [["a"]]}"#, "/outputs/0", "invalid type: sequence, expected struct Output"),
///     (r#"{"levle": "info"}"#, "/levle", "unknown field \"levle\", expected `level` or `outputs`"),
///     (r#"{"level": "info", "level": "debug"}"#, "/level", "duplicate field \"level\""),
/// ] {
///     assert_eq!(from_json::<Config>(text).unwrap_err(), Failure::at(field, message));
/// }
/// assert_eq!(
///     from_json::<Config>(r#"{"level": "#).unwrap_err(),
///     Failure::new("invalid JSON: EOF while parsing a value at line 1 column 10")
/// );
/// assert_eq!(
///     from_json::<Config>("[]").unwrap_err(),
///     Failure::new("invalid type: sequence, expected struct Config")
/// );
/// ```
///
/// - serde reports a missing, unknown or duplicate key on the object that
///   holds it; `from_json` names the key itself (parent pointer + `/key`) and
///   quotes it with `"` instead of serde's backticks.
/// - Text that is not JSON at all is a failure without `field`, whose
///   message is `invalid JSON: ` and serde_json's, position included.
/// - A failure about the whole document (empty pointer) has no `field`.
/// - A struct is read only from a JSON object (serde's derive would also
///   take an array of its fields in order, which a configuration never means).
/// - An enum is read from a string (a unit variant) or from an object with a
///   single key (a variant with content); any other value is a type error
///   naming the variants (serde_json alone stops there with a syntax error,
///   `expected value`, that names no field).
/// - A path segment serde_path_to_error cannot name (inside `flatten`ed or
///   untagged data) ends the pointer there.
///
/// Every failure has `transient = false`.
pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize(Strict(&mut deserializer)) {
        Ok(value) => {
            deserializer.end().map_err(invalid_json)?;
            Ok(value)
        }
        Err(error) if error.inner().is_data() => Err(data_failure(error)),
        Err(error) => Err(invalid_json(error.into_inner())),
    }
}

/// A failure for text that is not JSON: no field, the parser's words and position.
fn invalid_json(error: serde_json::Error) -> Failure {
    Failure::new(format!("invalid JSON: {error}"))
}

/// The keys serde names in a message about the object that holds them.
const KEY_ERRORS: &[&str] = &["missing field `", "unknown field `", "duplicate field `"];

/// A failure for JSON of the wrong shape: the pointer of the bad value, serde's words.
fn data_failure(error: serde_path_to_error::Error<serde_json::Error>) -> Failure {
    let mut tokens = Vec::new();
    let mut complete = true;
    let ends_in_variant = matches!(error.path().iter().next_back(), Some(Segment::Enum { .. }));
    for segment in error.path() {
        match segment {
            Segment::Seq { index } => tokens.push(index.to_string()),
            Segment::Map { key } => tokens.push(key.clone()),
            Segment::Enum { variant } => tokens.push(variant.clone()),
            Segment::Unknown => {
                complete = false;
                break;
            }
        }
    }
    let inner = error.into_inner();
    let mut message = inner.to_string();
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    if let Some(kept) = message.strip_suffix(&position) {
        message.truncate(kept.len());
    }
    // A variant's name ends the path of what is in it, but some failures are
    // about the variant's form, a string (`"file"` for a variant with content)
    // or an object with more keys than the variant's: they belong to the enum.
    if complete
        && ends_in_variant
        && (message.starts_with("invalid type: unit variant,") || message.ends_with(NOT_ONE_KEY))
    {
        tokens.pop();
    }
    if let Some((prefix, key, rest)) = key_error(&message, tokens.last()) {
        // serde_path_to_error already ends an unknown key's path with the key;
        // a missing or duplicate key's path ends at the object.
        let key_in_path = complete && tokens.last().is_some_and(|last| *last == key);
        if complete && !(prefix.starts_with("unknown") && key_in_path) {
            tokens.push(key.clone());
        }
        message = format!("{prefix}\"{key}\"{rest}");
    }
    let field = pointer(&tokens);
    let mut failure = Failure::new(message);
    if !field.is_empty() {
        failure.field = Some(field);
    }
    failure
}

/// Splits serde's "missing field `x`", "unknown field `x`, expected ..." and
/// "duplicate field `x`" into the words before the key, the key and the rest.
/// `last` is the last key of the path, which an unknown key already is.
fn key_error(message: &str, last: Option<&String>) -> Option<(String, String, String)> {
    let start = KEY_ERRORS
        .iter()
        .find(|start| message.starts_with(**start))?;
    let after = &message[start.len()..];
    let key_len = match last {
        Some(last) if after.starts_with(last.as_str()) && after[last.len()..].starts_with('`') => {
            last.len()
        }
        _ => {
            // The key may hold backticks; serde's text after it does not
            // hold "`, " except in a list of expected keys, which follows.
            match after
                .find("`, expected ")
                .or_else(|| after.find("`, there are"))
            {
                Some(end) if start.starts_with("unknown") => end,
                _ => after.strip_suffix('`').map(str::len)?,
            }
        }
    };
    let prefix = start.trim_end_matches('`').to_owned();
    let key = after[..key_len].to_owned();
    let rest = after[key_len + 1..].to_owned();
    Some((prefix, key, rest))
}
