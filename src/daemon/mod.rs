//! The daemon: a manifest's components loaded, their files watched, and
//! every change applied through the runtime — what `hotreload run` is.

mod manifest;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use self::manifest::{ComponentDecl, HandlerRef, Manifest};
use crate::error::Error;
use crate::events::Event;
use crate::manager::{ComponentSpec, HandlerSource, Runtime};
use crate::outcome::EventKind;
use crate::sources::{FileWatcher, WatchTarget, WatchedKind, config_of, read_config_file};
use crate::transaction::ConfigInput;

/// Finds a handler bundled with the binary by name (`bundled:NAME`).
pub type BundledHandlers = fn(&str) -> Option<&'static [u8]>;

/// A manifest's components in a runtime, with their files watched once started.
pub struct Daemon {
    runtime: Runtime,
    manifest: Manifest,
    bundled: BundledHandlers,
    watcher: Option<FileWatcher>,
}

impl Daemon {
    /// A daemon for `manifest`, its runtime built but no component loaded
    /// yet (so a caller can subscribe to events first).
    ///
    /// # Errors
    /// When the runtime cannot be built (engine, state directory).
    pub fn new(manifest: Manifest, bundled: BundledHandlers) -> Result<Daemon, Error> {
        let runtime = Runtime::new(manifest.settings.clone())?;
        Ok(Daemon {
            runtime,
            manifest,
            bundled,
            watcher: None,
        })
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn handler_source(&self, decl: &ComponentDecl) -> Result<HandlerSource, String> {
        match &decl.handler {
            HandlerRef::File(p) => Ok(HandlerSource::Path(p.clone())),
            HandlerRef::Bundled(name) => {
                (self.bundled)(name)
                    .map(HandlerSource::from)
                    .ok_or_else(|| {
                        format!("component {}: no bundled handler named {name:?}", decl.name)
                    })
            }
        }
    }

    /// Loads every component: its current file if the handler accepts it;
    /// otherwise its last-known-good configuration (with an event saying
    /// why); with neither, the start is refused, naming the component and
    /// the reason. Then watches the files, unless `enabled = false`.
    ///
    /// # Errors
    /// A message naming the component and the reason it cannot start.
    pub async fn start(&mut self) -> Result<(), String> {
        // Watch first, apply later: a file saved while the components load
        // is then seen, not missed.
        let mut watcher = if self.manifest.settings.enabled {
            Some(
                FileWatcher::watch(
                    self.watch_targets(),
                    Duration::from_millis(self.manifest.settings.debounce_ms),
                )
                .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        let mut loaded = HashMap::new();
        let lkg = self.runtime.last_known_good().cloned();
        for decl in self.manifest.components.clone() {
            let handler = self.handler_source(&decl)?;
            let path_text = decl.config.display().to_string();
            let saved = match &lkg {
                Some(store) => store.load(&decl.name).unwrap_or_else(|e| {
                    tracing::warn!(component = %decl.name, "ignoring the last-known-good record: {e}");
                    None
                }),
                None => None,
            };
            let after = saved.as_ref().map_or(0, |s| s.version);
            let spec = |input: ConfigInput, kind: EventKind| {
                ComponentSpec::new(decl.name.clone(), handler.clone(), input)
                    .limits(decl.limits.clone())
                    .config_path(path_text.clone())
                    .kind(kind)
                    .after_version(after)
            };
            if let HandlerRef::File(p) = &decl.handler
                && let Ok(bytes) = std::fs::read(p)
            {
                loaded.insert((decl.name.clone(), WatchedKind::Handler), bytes);
            }
            let read = std::fs::read(&decl.config);
            if let Ok(bytes) = &read {
                loaded.insert((decl.name.clone(), WatchedKind::Config), bytes.clone());
            }
            let input = read
                .map_err(|e| describe_read_error(&decl.config, &e))
                .and_then(|bytes| config_of(&decl.config, bytes));
            let why = match input {
                Ok(input) => match self
                    .runtime
                    .add_component(spec(input, EventKind::Initial))
                    .await
                {
                    Ok(_) => continue,
                    Err(Error::InitialLoad { event, .. }) => event.summary(),
                    Err(e) => return Err(e.to_string()),
                },
                Err(message) => message,
            };
            let Some(saved) = saved else {
                return Err(format!(
                    "component {}: cannot start: {why}; and there is no last-known-good configuration",
                    decl.name
                ));
            };
            self.runtime
                .add_component(spec(ConfigInput::Value(saved.input), EventKind::Restart))
                .await
                .map_err(|e| {
                    format!(
                        "component {}: cannot start: {why}; and the last-known-good configuration \
                         failed too: {e}",
                        decl.name
                    )
                })?;
            self.runtime
                .reject_input(
                    &decl.name,
                    EventKind::Initial,
                    Some(path_text),
                    format!(
                        "{why}; started on the last-known-good configuration (version {})",
                        saved.version
                    ),
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(w) = &mut watcher {
            w.run(&self.runtime, &loaded);
        }
        self.watcher = watcher;
        Ok(())
    }

    fn watch_targets(&self) -> Vec<WatchTarget> {
        let mut targets = Vec::new();
        for decl in &self.manifest.components {
            targets.push(WatchTarget {
                component: decl.name.clone(),
                path: decl.config.clone(),
                kind: WatchedKind::Config,
            });
            if let HandlerRef::File(p) = &decl.handler {
                targets.push(WatchTarget {
                    component: decl.name.clone(),
                    path: p.clone(),
                    kind: WatchedKind::Handler,
                });
            }
        }
        targets
    }

    /// Reads every configuration file again and reloads it (what SIGHUP does).
    pub async fn reread_all(&self) -> Vec<Arc<Event>> {
        let mut events = Vec::new();
        for decl in &self.manifest.components {
            let path = Some(decl.config.display().to_string());
            let result = match read_config_file(&decl.config) {
                Ok(input) => {
                    self.runtime
                        .reload_from(&decl.name, input, EventKind::FileChange, path)
                        .await
                }
                Err(m) => {
                    self.runtime
                        .reject_input(&decl.name, EventKind::FileChange, path, m)
                        .await
                }
            };
            match result {
                Ok(e) => events.push(e),
                Err(e) => tracing::warn!(component = %decl.name, "{e}"),
            }
        }
        events
    }

    /// Stops watching, then shuts the runtime down, letting a reload in
    /// flight finish or roll back.
    pub async fn shutdown(&mut self) {
        self.watcher = None;
        self.runtime.shutdown().await;
    }
}

fn describe_read_error(path: &std::path::Path, e: &std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

/// One component's verdict from [`validate`].
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The component.
    pub component: String,
    /// `Ok` with the configuration file, or what is wrong.
    pub result: Result<String, String>,
}

/// Puts every component's current file through its handler in a
/// throw-away runtime, as `nginx -t` does: nothing is persisted or watched.
pub async fn validate(
    manifest: &Manifest,
    bundled: BundledHandlers,
) -> Result<Vec<Verdict>, Error> {
    let mut settings = manifest.settings.clone();
    settings.state_dir = None;
    let probe = Daemon::new(
        Manifest {
            settings,
            ..manifest.clone()
        },
        bundled,
    )?;
    let mut verdicts = Vec::new();
    for decl in &manifest.components {
        let result = async {
            let handler = probe.handler_source(decl)?;
            let input = read_config_file(&decl.config)?;
            probe
                .runtime
                .add_component(
                    ComponentSpec::new(decl.name.clone(), handler, input)
                        .limits(decl.limits.clone()),
                )
                .await
                .map(|_| decl.config.display().to_string())
                .map_err(|e| match e {
                    Error::InitialLoad { event, .. } => format!(
                        "{}: {}",
                        decl.config.display(),
                        event.error.as_ref().map_or_else(
                            || format!("{:?}", event.outcome),
                            |er| match &er.field {
                                Some(f) => format!("{} (at {f})", er.message),
                                None => er.message.clone(),
                            }
                        )
                    ),
                    other => other.to_string(),
                })
        }
        .await;
        verdicts.push(Verdict {
            component: decl.name.clone(),
            result,
        });
    }
    probe.runtime.shutdown().await;
    Ok(verdicts)
}
