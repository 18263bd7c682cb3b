//! The daemon's manifest (TOML): `[runtime]` settings and `[[component]]`s.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;
use crate::manager::HandlerSource;
use crate::settings::{LimitOverrides, Settings};

/// The largest manifest read (a thousand components take about 100 KiB).
const MANIFEST_LIMIT: u64 = 16 << 20;

/// One component of a manifest, with paths resolved against the manifest's directory.
#[derive(Debug, Clone)]
pub struct ComponentDecl {
    /// The component's name.
    pub name: String,
    /// Its handler: a file (watched for hot swaps) or `bundled:NAME`.
    pub handler: HandlerSource,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its limits, where they differ from the runtime's.
    pub limits: LimitOverrides,
    /// Its group: components of one group whose files change within one
    /// debounce window reload as one all-or-nothing batch.
    pub group: Option<String>,
}

/// A loaded manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file.
    pub path: PathBuf,
    /// The runtime settings; `state_dir` resolved (default `.hotreload`
    /// beside the manifest).
    pub settings: Settings,
    /// The components, in manifest order.
    pub components: Vec<ComponentDecl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    runtime: Settings,
    #[serde(default, rename = "component")]
    components: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    handler: String,
    config: PathBuf,
    fuel: Option<u64>,
    memory_mib: Option<u64>,
    validation_timeout_ms: Option<u64>,
    reload_timeout_ms: Option<u64>,
    max_retries: Option<u32>,
    retry_interval_ms: Option<u64>,
    group: Option<String>,
}

impl Manifest {
    /// Reads and checks a manifest: unknown keys, duplicate names and
    /// missing handler files are errors that name what is wrong.
    /// Configuration files are not required to exist yet (the daemon may
    /// start on a last-known-good one).
    ///
    /// # Errors
    /// [`Error::Manifest`] naming the manifest and the problem.
    pub fn load(path: &Path) -> Result<Manifest, Error> {
        let bad = |reason: String| Error::Manifest {
            path: path.to_owned(),
            reason,
        };
        // A regular file only (a FIFO would hang the start), and bounded.
        let bytes = crate::sources::read_regular(path, MANIFEST_LIMIT)
            .map_err(|e| bad(format!("cannot read the manifest: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text: {e}")))?;
        Manifest::parse(path, &text)
    }

    /// As [`Manifest::load`], from text.
    ///
    /// # Errors
    /// As [`Manifest::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, Error> {
        let bad = |reason: String| Error::Manifest {
            path: path.to_owned(),
            reason,
        };
        let file: File = toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().into()))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut settings = file.runtime;
        settings.state_dir =
            Some(dir.join(settings.state_dir.unwrap_or_else(|| ".hotreload".into())));
        settings.config_roots = settings.config_roots.iter().map(|r| dir.join(r)).collect();
        if file.components.is_empty() {
            return Err(bad("no [[component]] is declared".into()));
        }
        let mut components: Vec<ComponentDecl> = Vec::new();
        for e in file.components {
            if !crate::manager::valid_name(&e.name) {
                return Err(bad(format!(
                    "component {:?}: not a valid name: use 1 to 64 ASCII letters, digits, '-', \
                     '_' or '.', not starting with '.'",
                    e.name
                )));
            }
            if components.iter().any(|c| c.name == e.name) {
                return Err(bad(format!("component {:?} is declared twice", e.name)));
            }
            let handler = match e.handler.strip_prefix("bundled:") {
                Some(name) => HandlerSource::Bundled(name.to_owned()),
                None => {
                    let p = dir.join(&e.handler);
                    if let Err(why) = crate::sources::check_regular(&p) {
                        return Err(bad(format!("component {:?}: handler {why}", e.name)));
                    }
                    HandlerSource::Path(p)
                }
            };
            components.push(ComponentDecl {
                name: e.name,
                handler,
                config: dir.join(e.config),
                limits: LimitOverrides {
                    fuel: e.fuel,
                    memory_mib: e.memory_mib,
                    validation_timeout_ms: e.validation_timeout_ms,
                    reload_timeout_ms: e.reload_timeout_ms,
                    max_retries: e.max_retries,
                    retry_interval_ms: e.retry_interval_ms,
                },
                group: e.group,
            });
        }
        Ok(Manifest {
            path: path.to_owned(),
            settings,
            components,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(Path::new("m/hotreload.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_settings_components_and_overrides() {
        let m = parse(
            r#"
            [runtime]
            debounce_ms = 50
            state_dir = "state"
            [[component]]
            name = "logging"
            handler = "bundled:logging"
            config = "conf/logging.yaml"
            fuel = 1000
            "#,
        )
        .unwrap();
        assert_eq!(m.settings.debounce_ms, 50);
        assert_eq!(m.settings.state_dir, Some(PathBuf::from("m/state")));
        let c = &m.components[0];
        assert!(matches!(&c.handler, HandlerSource::Bundled(n) if n == "logging"));
        assert_eq!(c.config, PathBuf::from("m/conf/logging.yaml"));
        assert_eq!(c.limits.fuel, Some(1000));
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("[runtime]\ndebounce = 5\n").unwrap_err();
        assert!(e.contains("unknown field `debounce`"), "{e}");
        let e = parse(
            "[[component]]\nname = \"a\"\nhandler = \"bundled:x\"\nconfig = \"c\"\nfeul = 1\n",
        )
        .unwrap_err();
        assert!(e.contains("unknown field `feul`"), "{e}");
    }

    #[test]
    fn missing_handler_and_duplicates_are_named() {
        let e = parse("[[component]]\nname = \"a\"\nhandler = \"nope.wasm\"\nconfig = \"c\"\n")
            .unwrap_err();
        assert!(e.contains("handler m/nope.wasm does not exist"), "{e}");
        let two = "[[component]]\nname = \"a\"\nhandler = \"bundled:x\"\nconfig = \"c\"\n";
        let e = parse(&format!("{two}{two}")).unwrap_err();
        assert!(e.contains("declared twice"), "{e}");
        assert!(parse("").unwrap_err().contains("no [[component]]"));
    }
}
