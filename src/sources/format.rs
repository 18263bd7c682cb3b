//! Configuration file formats: JSON, TOML and YAML, all handed to handlers as JSON.

use std::path::Path;

use serde_json::Value;

use crate::outcome::Cause;
use crate::transaction::ConfigInput;

/// A configuration's format. A property of the change (a file's extension
/// decides it for files; other sources say it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json` (and any unknown extension).
    Json,
    /// `.toml`.
    Toml,
    /// `.yaml` or `.yml`.
    Yaml,
}

/// Why bytes are not a configuration: the event's cause and what to say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    /// `empty`, `unreadable`, or `invalid` (does not parse, too large).
    pub cause: Cause,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    fn invalid(message: String) -> InputError {
        InputError {
            cause: Cause::Invalid,
            message,
        }
    }

    /// The same error, its message prefixed with where the input came from.
    pub fn at(self, origin: &str) -> InputError {
        InputError {
            message: format!("{origin}: {}", self.message),
            ..self
        }
    }
}

/// What an empty file is told: it is never a configuration (an editor's
/// truncate-then-write leaves one for a moment), and how to write an
/// intentionally empty one.
const EMPTY: &str = "the file is empty (or only whitespace), which is never a configuration: \
     an editor may be half-way through saving it. An intentionally empty configuration is \
     written `{}` in JSON or YAML, or as a comment line such as `# empty` in TOML";

impl Format {
    /// The format of `path`, by its extension; JSON when it has none.
    pub fn of(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("toml") => Format::Toml,
            Some("yaml" | "yml") => Format::Yaml,
            _ => Format::Json,
        }
    }

    /// Makes a configuration of bytes written in this format. JSON goes to
    /// the handler as written (the transaction parses it); TOML and YAML
    /// are converted to JSON here. A UTF-8 byte-order mark is ignored.
    ///
    /// # Errors
    /// [`InputError`]: cause `empty` for an empty or whitespace-only input,
    /// `invalid` for text that is not UTF-8 or not valid in the format.
    pub fn decode(self, bytes: Vec<u8>) -> Result<ConfigInput, InputError> {
        let mut text = String::from_utf8(bytes)
            .map_err(|e| InputError::invalid(format!("not UTF-8 text: {e}")))?;
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        if text.trim().is_empty() {
            return Err(InputError {
                cause: Cause::Empty,
                message: EMPTY.into(),
            });
        }
        match self {
            Format::Json => Ok(ConfigInput::Json(text)),
            format => format
                .parse(&text)
                .map(ConfigInput::Value)
                .map_err(InputError::invalid),
        }
    }

    /// Parses `text` in this format into JSON. Numbers that JSON cannot
    /// hold (TOML's and YAML's `nan` and `inf`) are refused.
    ///
    /// # Errors
    /// A message naming the format and where the text is wrong; it never
    /// quotes the text itself (it may hold secrets).
    pub fn parse(self, text: &str) -> Result<Value, String> {
        match self {
            Format::Json => serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}")),
            Format::Toml => match toml::from_str::<toml::Table>(text) {
                Ok(t) => toml_to_json(toml::Value::Table(t), &mut String::new()),
                Err(e) => Err(format!("not valid TOML: {}", toml_error(&e, text))),
            },
            Format::Yaml => {
                if text.trim().is_empty() {
                    return Err("not valid YAML: the file is empty".into());
                }
                let value = serde_saphyr::from_str::<Value>(text)
                    .map_err(|e| format!("not valid YAML: {}", e.to_string().trim_end()))?;
                Ok(value)
            }
        }
    }
}

/// A TOML error as a line, a column and the parser's message, without the
/// excerpt of the source the `toml` crate's own text includes.
fn toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{message} at line {line} column {column}")
        }
        None => message.to_owned(),
    }
}

/// TOML's datetimes become RFC 3339 strings; a float JSON cannot hold is an
/// error naming where it is; everything else maps one to one.
fn toml_to_json(v: toml::Value, at: &mut String) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => match serde_json::Number::from_f64(f) {
            Some(n) => Value::Number(n),
            None => {
                return Err(format!(
                    "{f} at {} is not a number JSON can hold (no nan or inf)",
                    if at.is_empty() { "/" } else { at }
                ));
            }
        },
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, v) in a.into_iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                out.push(toml_to_json(v, at)?);
                at.truncate(len);
            }
            Value::Array(out)
        }
        toml::Value::Table(t) => {
            let mut out = serde_json::Map::with_capacity(t.len());
            for (k, v) in t {
                let len = at.len();
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                let v = toml_to_json(v, at)?;
                at.truncate(len);
                out.insert(k, v);
            }
            Value::Object(out)
        }
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("a/b.toml")), Format::Toml);
        assert_eq!(Format::of(Path::new("a/b.YML")), Format::Yaml);
        assert_eq!(Format::of(Path::new("a/b.yaml")), Format::Yaml);
        assert_eq!(Format::of(Path::new("a/b.json")), Format::Json);
        assert_eq!(Format::of(Path::new("a/config")), Format::Json);
    }

    #[test]
    fn all_three_give_the_same_json() {
        let want =
            json!({"level": "debug", "outputs": [{"type": "stderr"}], "fields": {"app": "x"}});
        let toml = "level = \"debug\"\n[[outputs]]\ntype = \"stderr\"\n[fields]\napp = \"x\"\n";
        let yaml = "level: debug\noutputs:\n  - type: stderr\nfields:\n  app: x\n";
        let json = r#"{"level":"debug","outputs":[{"type":"stderr"}],"fields":{"app":"x"}}"#;
        assert_eq!(Format::Toml.parse(toml).unwrap(), want);
        assert_eq!(Format::Yaml.parse(yaml).unwrap(), want);
        assert_eq!(Format::Json.parse(json).unwrap(), want);
    }

    #[test]
    fn malformed_input_is_named() {
        assert!(
            Format::Json
                .parse("{\"level\": ")
                .unwrap_err()
                .starts_with("not valid JSON")
        );
        assert!(
            Format::Toml
                .parse("level = ")
                .unwrap_err()
                .starts_with("not valid TOML")
        );
        assert!(
            Format::Yaml
                .parse("a: [1, 2")
                .unwrap_err()
                .starts_with("not valid YAML")
        );
        assert!(Format::Yaml.parse("").unwrap_err().contains("empty"));
        assert!(
            Format::Json
                .parse("")
                .unwrap_err()
                .starts_with("not valid JSON")
        );
    }

    #[test]
    fn toml_datetimes_become_strings() {
        let v = Format::Toml.parse("at = 1979-05-27T07:32:00Z").unwrap();
        assert_eq!(v, json!({"at": "1979-05-27T07:32:00Z"}));
    }

    #[test]
    fn empty_and_whitespace_files_are_never_configurations() {
        for format in [Format::Json, Format::Toml, Format::Yaml] {
            for text in ["", "  \n\t\n", "\u{feff}", "\u{feff} \n"] {
                let e = format.decode(text.as_bytes().to_vec()).unwrap_err();
                assert_eq!(e.cause, Cause::Empty, "{format:?} {text:?}");
                assert!(e.message.contains("`{}`"), "{}", e.message);
            }
        }
        // What the message says to write instead works.
        assert_eq!(
            Format::Toml.decode(b"# empty\n".to_vec()).unwrap(),
            ConfigInput::Value(json!({}))
        );
        assert_eq!(
            Format::Yaml.decode(b"{}".to_vec()).unwrap(),
            ConfigInput::Value(json!({}))
        );
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        assert_eq!(
            Format::Json
                .decode(b"\xef\xbb\xbf{\"a\": 1}".to_vec())
                .unwrap(),
            ConfigInput::Json("{\"a\": 1}".into())
        );
    }

    #[test]
    fn numbers_json_cannot_hold_are_refused_in_every_format() {
        for text in ["a = nan", "a = inf", "a = -inf", "[t]\nb = [1.0, nan]"] {
            let e = Format::Toml.parse(text).unwrap_err();
            assert!(e.contains("no nan or inf"), "{text}: {e}");
        }
        assert!(
            Format::Toml
                .parse("[t]\nb = [1.0, nan]")
                .unwrap_err()
                .contains("/t/b/1")
        );
        for text in ["a: .inf", "a: -.inf", "a: .nan"] {
            assert!(Format::Yaml.parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_toml_error_does_not_quote_the_file() {
        let e = Format::Toml
            .parse("password = \"hunter2\"\nbroken = [\n")
            .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("line 2") || e.contains("line 3"), "{e}");
    }
}
