//! Entry points for the fuzz targets in `fuzz/` and for replaying their
//! corpus in the ordinary test suite. Each takes untrusted bytes the way
//! the host receives them, must never panic, and asserts what the host
//! made of them against an independent reading of the same bytes, so a
//! bug makes it fail.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::daemon::Manifest;
use crate::manager::HandlerSource;
use crate::outcome::Cause;
use crate::sandbox::{CallFailure, FAILURE_TEXT_BYTES, bound_failure, bound_output};
use crate::sources::Format;
use crate::transaction::{ConfigInput, effective_of, error_of, parse};

/// A configuration file's bytes, read as JSON, TOML and YAML.
///
/// For each format that accepts them: the value's diff with itself is
/// empty and every change against a fixed configuration has a pointer;
/// the value written back as JSON, TOML and YAML reads back as the same
/// value in each format that can write it; and the transaction hands the
/// handler its JSON text within the size limit.
///
/// The bytes themselves, as a JSON configuration: one byte over the limit
/// is refused before they are parsed; at their own length they are
/// accepted exactly when they are JSON, and handed to the handler as
/// written.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = serde_json::json!({"level": "info", "outputs": [{"type": "stdout"}]});
    for format in [Format::Json, Format::Toml, Format::Yaml] {
        if let Ok(v) = format.parse(text) {
            assert!(crate::diff(&v, &v).is_empty());
            for c in &crate::diff(&base, &v) {
                assert!(c.path.is_empty() || c.path.starts_with('/'));
            }
            written_back(&v, format);
            within_the_limit(&v);
        }
    }

    let n = text.len();
    if n > 0 {
        assert_eq!(
            parse(ConfigInput::Json(text.to_owned()), n - 1).map(|_| ()),
            Err(over_the_limit(n, n - 1)),
            "an over-limit JSON text must be refused for its size"
        );
    }
    match (
        parse(ConfigInput::Json(text.to_owned()), n),
        Format::Json.parse(text),
    ) {
        (Ok((value, handed)), Ok(read)) => {
            assert_eq!(*value, read);
            assert_eq!(&*handed, text, "JSON reaches the handler as written");
        }
        (Err(why), Err(_)) => assert!(why.starts_with("not valid JSON: "), "{why}"),
        (taken, read) => panic!("the transaction took {taken:?}, the JSON reader {read:?}"),
    }
}

/// `v`, read from a file in `from`, written back in each format and read
/// again: the same value. A format that cannot write it (TOML: a value
/// that is not a table, a null, an integer over `i64::MAX`) or cannot read
/// what it wrote is skipped.
fn written_back(v: &Value, from: Format) {
    // What the host hands a handler for a TOML or YAML file.
    if let Ok(back) = Format::Json.parse(&v.to_string()) {
        assert!(
            same_up_to_json_rounding(v, &back),
            "{from:?} value {v} reads back from JSON as {back}"
        );
    }
    if let Ok(toml) = toml::to_string(v)
        && let Ok(back) = Format::Toml.parse(&toml)
    {
        assert_eq!(&back, v, "{from:?} value written as TOML:\n{toml}");
    }
    if let Ok(yaml) = serde_saphyr::to_string(v)
        && let Ok(back) = Format::Yaml.parse(&yaml)
    {
        assert_eq!(&back, v, "{from:?} value written as YAML:\n{yaml}");
    }
}

/// Units in the last place the host's JSON reader may differ from an
/// exact one: serde_json without its `float_roundtrip` feature rounds
/// 16–17 digit floats approximately (measured: up to 2 on 5 million
/// random doubles written by serde_json itself).
const JSON_FLOAT_ULPS: u64 = 4;

/// Equal, but for floats that differ by at most [`JSON_FLOAT_ULPS`].
fn same_up_to_json_rounding(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| {
                x == y
                    || (x.is_sign_negative() == y.is_sign_negative()
                        && x.to_bits().abs_diff(y.to_bits()) <= JSON_FLOAT_ULPS)
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_up_to_json_rounding(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_up_to_json_rounding(v, w)))
        }
        _ => a == b,
    }
}

fn over_the_limit(size: usize, limit: usize) -> String {
    format!("the configuration is {size} bytes, over the {limit} byte limit")
}

/// `v` as the transaction takes a parsed TOML or YAML file: the handler
/// gets `v` as compact JSON, accepted when that text is at most the limit
/// and refused, naming both sizes, when it is one byte longer.
fn within_the_limit(v: &Value) {
    let text = v.to_string();
    let n = text.len();
    let (value, handed) =
        parse(ConfigInput::Value(v.clone()), n).expect("a value exactly at the limit is taken");
    assert_eq!(&*value, v);
    assert_eq!(&*handed, text);
    assert_eq!(
        parse(ConfigInput::Value(v.clone()), n - 1).map(|_| ()),
        Err(over_the_limit(n, n - 1))
    );
}

/// Two configurations' diff: every pointer must resolve in the side it names.
pub fn diff_pair(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('\n').unwrap_or((text, "{}"));
    let (Ok(a), Ok(b)) = (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) else {
        return;
    };
    let changes = crate::diff(&a, &b);
    if changes.len() < 100 {
        for c in &changes {
            match c.op {
                crate::ChangeOp::Added => assert_eq!(b.pointer(&c.path), c.new.as_ref()),
                crate::ChangeOp::Removed => assert_eq!(a.pointer(&c.path), c.old.as_ref()),
                crate::ChangeOp::Changed => {
                    assert_eq!(a.pointer(&c.path), c.old.as_ref());
                    assert_eq!(b.pointer(&c.path), c.new.as_ref());
                }
            }
        }
    }
    assert_eq!(changes.is_empty(), a == b);
}

/// The manifest the fuzzer's texts are read as.
const MANIFEST: &str = "fuzz/hotreload.toml";

/// A manifest's text.
///
/// Accepted: it is TOML, and what the manifest says is what the text says
/// (see `as_written`). Refused: the error names the manifest, then a line of
/// it (TOML and key errors), a component, or the missing `[[component]]`.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::parse(Path::new(MANIFEST), text) {
        Ok(m) => as_written(&m, text),
        Err(e) => {
            let e = e.to_string();
            let why = e
                .strip_prefix(&format!("{MANIFEST}: "))
                .unwrap_or_else(|| panic!("the error does not name the manifest: {e}"));
            assert!(
                why.contains(" at line ")
                    || why.starts_with("component \"")
                    || why == "no [[component]] is declared",
                "the error names no line, component or key: {e}"
            );
        }
    }
}

/// An accepted manifest against the same text read as a plain TOML table:
/// every `[runtime]` key given is the setting in force, `state_dir` is
/// resolved beside the manifest, and the components are the
/// `[[component]]` entries in order, with distinct names, their paths
/// resolved beside the manifest, a handler file that exists, and exactly
/// the limit overrides given.
fn as_written(m: &Manifest, text: &str) {
    let doc = Format::Toml
        .parse(text)
        .expect("an accepted manifest is TOML");
    let dir = Path::new(MANIFEST)
        .parent()
        .expect("the manifest has a directory");
    assert_eq!(m.path, Path::new(MANIFEST));

    let empty = serde_json::Map::new();
    let runtime = doc
        .get("runtime")
        .map_or(Some(&empty), Value::as_object)
        .expect("[runtime] is a table");
    let settings = serde_json::to_value(&m.settings).expect("settings serialise");
    for (key, given) in runtime {
        if key != "state_dir" {
            assert_eq!(&settings[key], given, "runtime.{key}");
        }
    }
    let state_dir = runtime
        .get("state_dir")
        .map_or(Some(".hotreload"), Value::as_str)
        .expect("state_dir is a string");
    assert_eq!(m.settings.state_dir.as_deref(), Some(&*dir.join(state_dir)));

    let entries = doc["component"].as_array().expect("[[component]] entries");
    assert!(!entries.is_empty());
    assert_eq!(entries.len(), m.components.len());
    for (i, (c, e)) in m.components.iter().zip(entries).enumerate() {
        assert_eq!(c.name, e["name"].as_str().expect("a name"));
        assert!(
            m.components[..i].iter().all(|d| d.name != c.name),
            "{:?} is declared twice",
            c.name
        );
        let config = e["config"].as_str().expect("a configuration path");
        assert_eq!(c.config.file(), Some(dir.join(config).as_path()));
        let handler = e["handler"].as_str().expect("a handler");
        match (&c.handler, handler.strip_prefix("bundled:")) {
            (HandlerSource::Bundled(name), Some(given)) => assert_eq!(name, given),
            (HandlerSource::Path(path), None) => {
                assert_eq!(*path, dir.join(handler));
                assert!(path.is_file(), "{}", path.display());
            }
            (got, _) => panic!("handler {handler:?} became {got:?}"),
        }
        let limits = serde_json::to_value(&c.limits).expect("overrides serialise");
        let limits = limits.as_object().expect("overrides are a table");
        for (key, value) in limits {
            assert_eq!(
                value,
                e.get(key).unwrap_or(&Value::Null),
                "{}.{key}",
                c.name
            );
        }
    }
}

/// What a handler hands back (NUL-separated): an effective configuration,
/// then a failure's message and field.
///
/// The output bound `reload` applies lets an output of exactly the limit
/// through and refuses one a byte longer as bad output, naming both
/// sizes. What passes becomes the effective configuration exactly when it
/// is JSON, and then it is the value that text means; otherwise the
/// refusal says it is not JSON and why. A failure's message and field are
/// kept whole up to the bound, else cut at a character boundary and marked
/// with their full length, and the event records them as kept.
pub fn handler_output(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let (output, rest) = text.split_once('\u{0}').unwrap_or((&text, ""));
    let (message, field) = rest.split_once('\u{0}').unwrap_or((rest, ""));

    let n = output.len();
    assert_eq!(
        bound_output(Some(output.to_owned()), n),
        Ok(Some(output.to_owned()))
    );
    assert_eq!(bound_output(None, 0), Ok(None));
    if n > 0 {
        let refused = bound_output(Some(output.to_owned()), n - 1).expect_err("over the limit");
        let why = format!(
            "the effective configuration is {n} bytes, over the {} byte output limit",
            n - 1
        );
        assert_eq!(
            refused,
            CallFailure::Fault {
                cause: Cause::BadOutput,
                message: why.clone(),
            }
        );
        assert_eq!(error_of(&refused).message, why);
    }

    let given = Arc::new(serde_json::json!({"given": true}));
    let effective = effective_of(Some(output.to_owned()), &given);
    match (&effective, serde_json::from_str::<Value>(output)) {
        (Ok(v), Ok(read)) => assert_eq!(**v, read),
        (Err(why), Err(e)) => {
            assert_eq!(
                *why,
                format!("the effective configuration is not JSON: {e}")
            );
        }
        _ => panic!("took {effective:?} from {output:?}"),
    }
    let none = effective_of(None, &given).expect("no output is the given configuration");
    assert!(Arc::ptr_eq(&none, &given));

    let failure = bound_failure(message.to_owned(), Some(field.to_owned()));
    let CallFailure::Refused(kept) = &failure else {
        panic!("a handler's failure became {failure:?}");
    };
    assert!(!kept.transient);
    kept_within_the_bound(message, &kept.message);
    kept_within_the_bound(field, kept.field.as_deref().expect("the field is kept"));
    let recorded = error_of(&failure);
    assert_eq!(recorded.message, kept.message);
    assert_eq!(recorded.field, kept.field);
}

/// `kept` is `original`, or, when that is over the bound, its first
/// bytes up to the bound (cut at a character boundary) and a mark of its
/// full length.
fn kept_within_the_bound(original: &str, kept: &str) {
    if original.len() <= FAILURE_TEXT_BYTES {
        assert_eq!(kept, original);
        return;
    }
    let mark = format!("… ({} bytes in all)", original.len());
    let start = kept
        .strip_suffix(&mark)
        .unwrap_or_else(|| panic!("a cut text says how long it was: {kept:?}"));
    assert!(original.starts_with(start));
    // A UTF-8 character is at most 4 bytes, so the cut loses at most 3.
    assert!(
        (FAILURE_TEXT_BYTES - 3..=FAILURE_TEXT_BYTES).contains(&start.len()),
        "cut at {} bytes",
        start.len()
    );
}
