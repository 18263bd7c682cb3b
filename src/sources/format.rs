//! Configuration file formats: JSON, TOML and YAML, all handed to handlers as JSON.

use std::path::Path;

use serde_json::Value;

use crate::transaction::ConfigInput;

/// A configuration file's format, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json` (and any unknown extension).
    Json,
    /// `.toml`.
    Toml,
    /// `.yaml` or `.yml`.
    Yaml,
}

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
    /// are converted to JSON here.
    ///
    /// # Errors
    /// A message saying what is wrong (not UTF-8, not valid in the format).
    pub fn decode(self, bytes: Vec<u8>) -> Result<ConfigInput, String> {
        let text = String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
        match self {
            Format::Json => Ok(ConfigInput::Json(text)),
            format => format.parse(&text).map(ConfigInput::Value),
        }
    }

    /// Parses `text` in this format into JSON.
    ///
    /// # Errors
    /// A message naming the format and where the text is wrong.
    pub fn parse(self, text: &str) -> Result<Value, String> {
        match self {
            Format::Json => serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}")),
            Format::Toml => toml::from_str::<toml::Table>(text)
                .map(|t| toml_to_json(toml::Value::Table(t)))
                .map_err(|e| format!("not valid TOML: {}", e.to_string().trim_end())),
            Format::Yaml => {
                if text.trim().is_empty() {
                    return Err("not valid YAML: the file is empty".into());
                }
                serde_saphyr::from_str::<Value>(text)
                    .map_err(|e| format!("not valid YAML: {}", e.to_string().trim_end()))
            }
        }
    }
}

/// TOML's datetimes become RFC 3339 strings; everything else maps one to one.
fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
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
}
