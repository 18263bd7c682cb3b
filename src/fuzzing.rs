//! Entry points for the fuzz targets in `fuzz/` and for replaying their
//! corpus in the ordinary test suite. Each takes untrusted bytes the way
//! the host receives them and must never panic.

use std::path::Path;

use serde_json::Value;

use crate::sources::Format;

/// A configuration file's bytes in each format, and the diff of what parsed
/// against a fixed configuration and against itself.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = serde_json::json!({"level": "info", "outputs": [{"type": "stdout"}]});
    for format in [Format::Json, Format::Toml, Format::Yaml] {
        if let Ok(v) = format.parse(text) {
            let changes = crate::diff(&base, &v);
            assert!(crate::diff(&v, &v).is_empty());
            for c in &changes {
                assert!(c.path.is_empty() || c.path.starts_with('/'));
            }
            let _ = serde_json::to_string(&v).expect("parsed values serialise");
        }
    }
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

/// A manifest's text.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = crate::daemon::Manifest::parse(Path::new("fuzz/hotreload.toml"), text) {
        assert!(!m.components.is_empty());
        assert!(m.settings.state_dir.is_some());
    }
}

/// What a handler hands back: an effective configuration and a failure's
/// message and field, as the host bounds and records them.
pub fn handler_output(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let (output, rest) = text.split_once('\u{0}').unwrap_or((&text, ""));
    let (message, field) = rest.split_once('\u{0}').unwrap_or((rest, ""));
    crate::transaction::check_output_handling(output, message, field);
}
