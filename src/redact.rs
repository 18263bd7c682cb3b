//! Secrets in configurations. Values under keys that look secret
//! (`password`, `secret`, `token`, `private_key`, `api_key`, ... — the
//! manifest's `[runtime] redact_keys`) are replaced by `"[redacted]"` in
//! everything the host shows: events (and so the daemon's output, `try`,
//! logs and later the admin API and history). The handler and the
//! service's subscribers still get the real values.

use std::sync::Arc;

use serde_json::Value;

use crate::diff::Change;

/// What a secret value is shown as.
pub(crate) const REDACTED: &str = "[redacted]";

/// Decides which keys are secret and hides their values.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// Each secret key as words; a key is secret when these words appear in
    /// it in a row (`dbPassword`, `client_secret`, `API-Key`, but not
    /// `tokens_per_second`).
    fragments: Vec<Vec<String>>,
}

/// A key's words: split at `_`, `-`, `.`, spaces and lower-to-upper case
/// changes, lower-cased.
fn words(key: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Most words a key is split into without allocating.
const MAX_WORDS: usize = 16;

/// The byte ranges of `key`'s words, split as [`words`] splits them, into
/// `out`; `None` when there are more than `out` holds.
fn word_spans(key: &str, out: &mut [(usize, usize)]) -> Option<usize> {
    let mut n = 0;
    let mut start: Option<usize> = None;
    let mut prev_lower = false;
    let mut push = |s: usize, e: usize, n: &mut usize| -> Option<()> {
        *out.get_mut(*n)? = (s, e);
        *n += 1;
        Some(())
    };
    for (i, c) in key.char_indices() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            if let Some(s) = start.take() {
                push(s, i, &mut n)?;
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && start.is_some() {
            let s = start.take().expect("checked");
            push(s, i, &mut n)?;
        }
        if start.is_none() {
            start = Some(i);
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    if let Some(s) = start {
        push(s, key.len(), &mut n)?;
    }
    Some(n)
}

/// Whether `word` lower-cased (as [`words`] does) is `lower`.
fn lower_eq(word: &str, lower: &str) -> bool {
    if word.is_ascii() {
        return word.len() == lower.len()
            && word
                .bytes()
                .zip(lower.bytes())
                .all(|(a, b)| a.to_ascii_lowercase() == b);
    }
    word.chars().flat_map(char::to_lowercase).eq(lower.chars())
}

impl Redactor {
    /// A configuration's JSON text as shown: the same text when it holds no
    /// secret, else compact JSON with the secrets hidden.
    pub fn text(&self, text: &str) -> String {
        match serde_json::from_str::<Value>(text) {
            Ok(v) if self.holds_secret(&v) => {
                let mut v = v;
                self.hide(&mut v);
                v.to_string()
            }
            _ => text.to_owned(),
        }
    }

    /// A redactor for these secret keys (`Settings::redact_keys`).
    pub fn new(keys: &[String]) -> Redactor {
        Redactor {
            fragments: keys
                .iter()
                .map(|k| words(k))
                .filter(|w| !w.is_empty())
                .collect(),
        }
    }

    /// Whether a key names a secret.
    pub(crate) fn is_secret(&self, key: &str) -> bool {
        if self.fragments.is_empty() {
            return false;
        }
        // Without allocating (an event redacts every key of three
        // configurations, so this is on every reload's path): the key's
        // words as byte ranges, compared in lower case. A key of more than
        // `MAX_WORDS` words takes the allocating way.
        let mut spans = [(0usize, 0usize); MAX_WORDS];
        let Some(n) = word_spans(key, &mut spans) else {
            let key = words(key);
            return self
                .fragments
                .iter()
                .any(|f| key.windows(f.len()).any(|w| w == f.as_slice()));
        };
        let spans = &spans[..n];
        self.fragments.iter().any(|f| {
            spans.windows(f.len()).any(|w| {
                w.iter()
                    .zip(f)
                    .all(|(&(a, b), word)| lower_eq(&key[a..b], word))
            })
        })
    }

    fn holds_secret(&self, v: &Value) -> bool {
        match v {
            Value::Object(m) => m
                .iter()
                .any(|(k, v)| self.is_secret(k) || self.holds_secret(v)),
            Value::Array(a) => a.iter().any(|v| self.holds_secret(v)),
            _ => false,
        }
    }

    fn hide(&self, v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    if self.is_secret(k) {
                        *v = Value::String(REDACTED.into());
                    } else {
                        self.hide(v);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| self.hide(v)),
            _ => {}
        }
    }

    /// The value as shown: the same `Arc` when it holds no secret (the
    /// common case costs no copy), else a copy with secrets hidden.
    pub fn value(&self, v: &Arc<Value>) -> Arc<Value> {
        if !self.holds_secret(v) {
            return v.clone();
        }
        let mut copy = (**v).clone();
        self.hide(&mut copy);
        Arc::new(copy)
    }

    /// A change as shown: a value under a secret key (anywhere on its
    /// pointer) is hidden, and secrets inside a changed object too.
    pub fn change(&self, mut c: Change) -> Change {
        let secret_path = c
            .path
            .split('/')
            .skip(1)
            .any(|seg| self.is_secret(&seg.replace("~1", "/").replace("~0", "~")));
        for v in [&mut c.old, &mut c.new].into_iter().flatten() {
            if secret_path {
                *v = Value::String(REDACTED.into());
            } else {
                self.hide(v);
            }
        }
        c
    }
}

/// The default secret-looking keys.
pub(crate) fn default_keys() -> Vec<String> {
    [
        "password",
        "passwd",
        "secret",
        "token",
        "private_key",
        "api_key",
        "apikey",
        "credential",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_looking_keys_are_hidden_at_any_depth() {
        let r = Redactor::new(&default_keys());
        let v = Arc::new(json!({
            "level": "info",
            "db": {"Password": "hunter2", "user": "u"},
            "outputs": [{"apiKey": "k", "url": "x"}],
            "accessToken": "t",
            "private-key": "p"
        }));
        let shown = r.value(&v);
        assert_eq!(
            *shown,
            json!({
                "level": "info",
                "db": {"Password": REDACTED, "user": "u"},
                "outputs": [{"apiKey": REDACTED, "url": "x"}],
                "accessToken": REDACTED,
                "private-key": REDACTED
            })
        );
        let plain = Arc::new(json!({"level": "info", "tokens_per_second": 5}));
        assert!(Arc::ptr_eq(&r.value(&plain), &plain));
    }

    /// Matching without allocating says what splitting into words says.
    #[test]
    fn keys_are_judged_as_their_words_would_be() {
        let long = "a_".repeat(40) + "password";
        let mut keys = default_keys();
        keys.push("pin".into());
        let r = Redactor::new(&keys);
        for key in [
            "password",
            "password2",
            "secret",
            "secrets",
            "token",
            "tokens",
            "pin",
            "pins",
            "level",
            "",
            "0",
            "apikey",
            "key",
            "private",
            "Password",
            "api_key",
            "dbPassword",
            "key_00",
            "client_secret",
            "Client-Secret",
            "PRIVATE.KEY",
            "private key",
            "tokens_per_second",
            "APIKey",
            "myAPIKey",
            "ÄpiKey",
            "paßword",
            "__password__",
            "db-Password-2",
            "x_y_z_password",
            long.as_str(),
        ] {
            let by_words = {
                let w = words(key);
                r.fragments
                    .iter()
                    .any(|f| w.windows(f.len()).any(|x| x == f.as_slice()))
            };
            assert_eq!(r.is_secret(key), by_words, "{key:?}");
        }
        assert!(r.is_secret("password") && r.is_secret("pin") && !r.is_secret("level"));
    }

    #[test]
    fn changes_under_a_secret_key_are_hidden() {
        let r = Redactor::new(&default_keys());
        let c = r.change(Change {
            op: crate::diff::ChangeOp::Changed,
            path: "/db/password".into(),
            old: Some(json!("a")),
            new: Some(json!("b")),
        });
        assert_eq!(c.old, Some(json!(REDACTED)));
        assert_eq!(c.new, Some(json!(REDACTED)));
        let c = r.change(Change {
            op: crate::diff::ChangeOp::Added,
            path: "/db".into(),
            old: None,
            new: Some(json!({"token": "t", "host": "h"})),
        });
        assert_eq!(c.new, Some(json!({"token": REDACTED, "host": "h"})));
        assert!(!Redactor::new(&[]).is_secret("password"));
    }
}
