//! The changes between two configurations, as JSON pointers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest number of changes listed in one event; the rest are summed up.
const MAX_CHANGES: usize = 100;

/// One difference between two configurations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// What happened at `path`.
    pub op: ChangeOp,
    /// JSON pointer (RFC 6901) of the value.
    pub path: String,
    /// The value before, unless it was added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The value after, unless it was removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// The kind of a [`Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// Present only in the new configuration.
    Added,
    /// Present only in the old configuration.
    Removed,
    /// Present in both, with different values.
    Changed,
}

/// Lists the differences from `old` to `new`, objects and arrays compared
/// member by member, at most `MAX_CHANGES` of them (a last `Changed` entry
/// at the root says how many were left out).
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    let mut omitted = 0usize;
    walk(old, new, &mut String::new(), &mut out, &mut omitted);
    if omitted > 0 {
        out.push(Change {
            op: ChangeOp::Changed,
            path: String::new(),
            old: None,
            new: Some(Value::String(format!("{omitted} more changes not listed"))),
        });
    }
    out
}

fn push(out: &mut Vec<Change>, omitted: &mut usize, change: Change) {
    if out.len() < MAX_CHANGES {
        out.push(change);
    } else {
        *omitted += 1;
    }
}

fn walk(old: &Value, new: &Value, path: &mut String, out: &mut Vec<Change>, omitted: &mut usize) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, av) in a {
                let len = path.len();
                push_token(path, key);
                match b.get(key) {
                    Some(bv) => walk(av, bv, path, out, omitted),
                    None => push(
                        out,
                        omitted,
                        change(ChangeOp::Removed, path, Some(av), None),
                    ),
                }
                path.truncate(len);
            }
            for (key, bv) in b {
                if !a.contains_key(key) {
                    let len = path.len();
                    push_token(path, key);
                    push(out, omitted, change(ChangeOp::Added, path, None, Some(bv)));
                    path.truncate(len);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                push_token(path, &i.to_string());
                match (a.get(i), b.get(i)) {
                    (Some(av), Some(bv)) => walk(av, bv, path, out, omitted),
                    (Some(av), None) => push(
                        out,
                        omitted,
                        change(ChangeOp::Removed, path, Some(av), None),
                    ),
                    (None, Some(bv)) => {
                        push(out, omitted, change(ChangeOp::Added, path, None, Some(bv)))
                    }
                    (None, None) => {}
                }
                path.truncate(len);
            }
        }
        _ if old != new => push(
            out,
            omitted,
            change(ChangeOp::Changed, path, Some(old), Some(new)),
        ),
        _ => {}
    }
}

fn change(op: ChangeOp, path: &str, old: Option<&Value>, new: Option<&Value>) -> Change {
    Change {
        op,
        path: path.to_owned(),
        old: old.cloned(),
        new: new.cloned(),
    }
}

/// The pointer of a top-level key: `/key`, escaped as RFC 6901 says.
pub(crate) fn pointer_token(key: &str) -> String {
    let mut path = String::new();
    push_token(&mut path, key);
    path
}

/// Appends `/token` with `~` and `/` escaped as RFC 6901 says.
fn push_token(path: &mut String, token: &str) {
    path.push('/');
    for c in token.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

/// A cheap estimate of the memory a value takes, for the event store's budget.
pub(crate) fn approx_size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 16,
        Value::String(s) => 24 + s.len(),
        Value::Array(a) => 24 + a.iter().map(approx_size).sum::<usize>(),
        Value::Object(o) => {
            24 + o
                .iter()
                .map(|(k, v)| 32 + k.len() + approx_size(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_added_removed_and_changed_pointers() {
        let old = json!({"level": "info", "outputs": [{"type": "stdout"}], "a/b": 1, "gone": true});
        let new = json!({"level": "debug", "outputs": [{"type": "stdout"}, {"type": "stderr"}], "a/b": 2, "x~": 0});
        let changes = diff(&old, &new);
        let summary: Vec<(ChangeOp, &str)> =
            changes.iter().map(|c| (c.op, c.path.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                (ChangeOp::Changed, "/a~1b"),
                (ChangeOp::Removed, "/gone"),
                (ChangeOp::Changed, "/level"),
                (ChangeOp::Added, "/outputs/1"),
                (ChangeOp::Added, "/x~0"),
            ]
        );
        assert_eq!(changes[2].old, Some(json!("info")));
        assert_eq!(changes[2].new, Some(json!("debug")));
    }

    #[test]
    fn equal_values_have_no_changes_and_long_lists_are_capped() {
        assert!(diff(&json!({"a": [1, 2]}), &json!({"a": [1, 2]})).is_empty());
        let old = Value::Array((0..150).map(Value::from).collect());
        let new = Value::Array((1..151).map(Value::from).collect());
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), MAX_CHANGES + 1);
        assert_eq!(
            changes.last().unwrap().new,
            Some(json!("50 more changes not listed"))
        );
    }
}
