//! The daemon: a manifest's components loaded, their files watched, and
//! every change applied through the runtime — what `hotreload run` is.

mod manifest;

use std::sync::Arc;
use std::time::Duration;

pub use self::manifest::{
    AdminSettings, ComponentDecl, ConfigRef, EtcdSettings, Manifest, NodeSettings, NotifySettings,
};
use crate::error::Error;
use crate::events::Event;
use crate::manager::{ComponentSpec, HandlerSource, Runtime};
use crate::outcome::EventKind;
use crate::sources::{
    Change, FileRules, FileSource, Format, Origin, Payload, SourceHandle, WatchTarget, WatchedKind,
    config_of, unreadable_message,
};
use crate::state::Revision;
use crate::transaction::ConfigInput;

#[cfg(feature = "etcd")]
mod etcd;

/// A configuration a start keeps instead of its file's ([`Daemon::kept`]).
struct Kept {
    config: String,
    from_version: Option<u64>,
    handler: Option<HandlerSource>,
    why: String,
}

/// Finds a handler bundled with the binary by name (`bundled:NAME`).
pub type BundledHandlers = fn(&str) -> Option<&'static [u8]>;

/// A manifest's components in a runtime, with their files watched once started.
pub struct Daemon {
    runtime: Runtime,
    manifest: Manifest,
    bundled: BundledHandlers,
    files: Option<SourceHandle>,
    #[cfg(feature = "etcd")]
    etcd: Option<etcd::Parts>,
}

impl Daemon {
    /// A daemon for `manifest`, its runtime built but no component loaded
    /// yet (so a caller can subscribe to events first).
    ///
    /// # Errors
    /// When the runtime cannot be built (engine, state directory).
    pub fn new(manifest: Manifest, bundled: BundledHandlers) -> Result<Daemon, Error> {
        let mut settings = manifest.settings.clone();
        // Two slots per component (the live instance and a fresh one
        // replacing it), and some for the hot swaps in flight.
        let wanted = u32::try_from(manifest.components.len())
            .unwrap_or(u32::MAX)
            .saturating_mul(2)
            .saturating_add(16);
        settings.pool_instances.get_or_insert(wanted);
        let runtime = Runtime::new(settings)?;
        #[cfg(feature = "etcd")]
        let etcd = manifest.etcd.as_ref().map(etcd::Parts::new);
        Ok(Daemon {
            runtime,
            manifest,
            bundled,
            files: None,
            #[cfg(feature = "etcd")]
            etcd,
        })
    }

    /// The etcd connection's state, when a component's configuration
    /// lives in etcd.
    #[cfg(feature = "etcd")]
    pub fn source_state(&self) -> Option<Arc<crate::fleet::SourceState>> {
        self.etcd.as_ref().map(|p| p.state.clone())
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The handler as the runtime takes it: a bundled one by its bytes.
    fn handler_source(&self, decl: &ComponentDecl) -> Result<HandlerSource, Error> {
        match &decl.handler {
            HandlerSource::Bundled(name) => (self.bundled)(name)
                .map(HandlerSource::from)
                .ok_or_else(|| Error::HandlerLoad {
                    component: decl.name.clone(),
                    handler: format!("bundled:{name}"),
                    reason: "no bundled handler has this name".into(),
                }),
            other => Ok(other.clone()),
        }
    }

    /// Loads every component from its current file; when the file is
    /// refused or unreadable the runtime starts it on its last-known-good
    /// configuration (with an event saying why), and with neither the start
    /// is refused, naming the component and the reason. Then watches the
    /// files, unless `enabled = false`.
    ///
    /// Needs a tokio runtime.
    ///
    /// # Errors
    /// The first component that cannot start, and why.
    pub async fn start(&mut self) -> Result<(), Error> {
        // Watch first, apply later: a file saved while the components load
        // is then seen, not missed.
        let rules = self.rules();
        let mut files = if self.manifest.settings.enabled {
            Some(FileSource::watch(
                self.watch_targets(),
                Duration::from_millis(self.manifest.settings.debounce_ms),
                rules.clone(),
            )?)
        } else {
            None
        };
        #[cfg(feature = "etcd")]
        let mut fleet = self.start_fleet().await?;
        for decl in self.manifest.components.clone() {
            let handler = self.handler_source(&decl)?;
            let finish = |spec: ComponentSpec| {
                let spec = spec.limits(decl.limits.clone());
                match &decl.group {
                    Some(g) => spec.group(g.clone()),
                    None => spec,
                }
            };
            let config = match &decl.config {
                ConfigRef::File(p) => p.clone(),
                #[cfg(feature = "etcd")]
                ConfigRef::Etcd { key, format } => {
                    let Some(fleet) = fleet.as_mut() else {
                        unreachable!("the manifest checks that etcd keys have [source.etcd]")
                    };
                    let spec = self
                        .etcd_spec(&decl.name, handler, key, *format, fleet)
                        .await;
                    self.runtime.add_component(finish(spec)).await?;
                    continue;
                }
                #[cfg(not(feature = "etcd"))]
                ConfigRef::Etcd { .. } => {
                    unreachable!("the manifest refuses etcd keys without the feature")
                }
            };
            if let (Some(files), HandlerSource::Path(p)) = (&mut files, &handler)
                && let Ok(bytes) = rules.read_async(p, WatchedKind::Handler).await
            {
                files.loaded(&decl.name, WatchedKind::Handler, bytes);
            }
            let path = config.display().to_string();
            // A kept configuration (the API's, across a restart) falls back
            // to the file's when it cannot be loaded any more.
            let mut fallback = None;
            let spec = match rules.read_async(&config, WatchedKind::Config).await {
                Ok(bytes) => {
                    if let Some(files) = &mut files {
                        files.loaded(&decl.name, WatchedKind::Config, bytes.clone());
                    }
                    match config_of(&config, bytes) {
                        Ok(input) => match self.kept(&decl.name, &input, &handler).await {
                            Some(kept) => {
                                tracing::info!(component = %decl.name, "starting on {}", kept.why);
                                fallback = Some(
                                    ComponentSpec::new(decl.name.clone(), handler.clone(), input)
                                        .config_path(path.clone()),
                                );
                                let spec = ComponentSpec::new(
                                    decl.name.clone(),
                                    kept.handler.unwrap_or(handler),
                                    ConfigInput::Json(kept.config),
                                );
                                match kept.from_version {
                                    Some(v) => spec.kept_from(v),
                                    None => spec,
                                }
                            }
                            None => ComponentSpec::new(decl.name.clone(), handler, input)
                                .config_path(path.clone()),
                        },
                        Err(why) => ComponentSpec::unavailable(decl.name.clone(), handler, why)
                            .config_path(path.clone()),
                    }
                }
                Err(e) => {
                    if let Some(files) = &mut files {
                        files.unreadable(&decl.name, WatchedKind::Config, &e);
                    }
                    ComponentSpec::unavailable(decl.name.clone(), handler, e.into())
                        .config_path(path.clone())
                }
            };
            match (self.runtime.add_component(finish(spec)).await, fallback) {
                (Ok(_), _) => {}
                (Err(e), Some(file)) => {
                    tracing::warn!(
                        component = %decl.name,
                        "the kept configuration cannot be loaded ({e}); starting on the file"
                    );
                    self.runtime.add_component(finish(file)).await?;
                }
                (Err(e), None) => return Err(e),
            }
        }
        #[cfg(feature = "etcd")]
        if let Some(fleet) = fleet {
            self.attach_fleet(fleet)?;
        }
        if let Some(files) = files {
            self.files = Some(self.runtime.attach(files)?);
        }
        Ok(())
    }

    /// The latest change wins across a restart. When the file still holds
    /// what it held at its own newest revision (it has not changed since),
    /// a newer change made otherwise stays in force: a restart-required
    /// configuration waiting for this start, or a newest revision that did
    /// not come from the file (an API change, a rollback, a handler swap) —
    /// with its handler, when the manifest's handler is also unchanged
    /// since. `None`: the file wins.
    async fn kept(
        &self,
        component: &str,
        file: &ConfigInput,
        handler: &HandlerSource,
    ) -> Option<Kept> {
        let store = self.runtime.revisions()?.clone();
        let name = component.to_owned();
        let handler_hash = match handler {
            HandlerSource::Bytes(b) => Some(crate::sandbox::hex_sha256(b)),
            HandlerSource::Path(p) => std::fs::read(p)
                .ok()
                .map(|b| crate::sandbox::hex_sha256(&b)),
            HandlerSource::Bundled(_) => None,
        };
        let file = crate::transaction::parse(file.clone(), usize::MAX).ok()?.0;
        tokio::task::spawn_blocking(move || {
            let pending = store.latest(&name).ok()??.pending;
            let history = store.history(&name, usize::MAX).ok()?;
            let newest = history.first()?;
            let from_file = |r: &Revision| {
                r.source.path.is_some()
                    && r.source.from_version.is_none()
                    && matches!(r.source.kind, EventKind::Initial | EventKind::FileChange)
            };
            let last_file = history.iter().find(|r| from_file(r))?;
            let held: serde_json::Value = serde_json::from_str(&last_file.config).ok()?;
            if held != *file {
                return None;
            }
            if let Some(pending) = pending {
                return Some(Kept {
                    config: pending,
                    from_version: None,
                    handler: None,
                    why: "the restart-required configuration that waited for this start".into(),
                });
            }
            if from_file(newest) {
                return None;
            }
            let handler = match handler_hash {
                Some(h) if h == last_file.handler_hash && h != newest.handler_hash => store
                    .handler(&newest.handler_hash)
                    .ok()
                    .flatten()
                    .map(HandlerSource::from),
                _ => None,
            };
            Some(Kept {
                config: newest.config.clone(),
                from_version: Some(newest.version),
                handler,
                why: format!(
                    "version {} ({}): the file has not changed since, so the latest change \
                     stays in force",
                    newest.version,
                    newest.source.label()
                ),
            })
        })
        .await
        .ok()
        .flatten()
    }

    /// What the daemon's files may be: where they may resolve, how large.
    fn rules(&self) -> FileRules {
        let s = &self.manifest.settings;
        FileRules {
            config_limit: s.output_limit_bytes,
            handler_limit: s.handler_limit_mib.saturating_mul(1 << 20),
            roots: s.config_roots.clone(),
        }
    }

    fn watch_targets(&self) -> Vec<WatchTarget> {
        let mut targets = Vec::new();
        for decl in &self.manifest.components {
            let Some(config) = decl.config.file() else {
                continue;
            };
            targets.push(WatchTarget {
                component: decl.name.clone(),
                path: config.to_owned(),
                kind: WatchedKind::Config,
            });
            if let HandlerSource::Path(p) = &decl.handler {
                targets.push(WatchTarget {
                    component: decl.name.clone(),
                    path: p.clone(),
                    kind: WatchedKind::Handler,
                });
            }
        }
        targets
    }

    /// Reads every configuration file again and applies it (what SIGHUP
    /// does). Configurations in etcd are watched, not re-read.
    pub async fn reread_all(&self) -> Vec<Arc<Event>> {
        let mut events = Vec::new();
        let rules = self.rules();
        for decl in &self.manifest.components {
            let Some(config) = decl.config.file() else {
                continue;
            };
            let payload = match rules.read_async(config, WatchedKind::Config).await {
                Ok(bytes) => Payload::Config {
                    bytes,
                    format: Format::of(config),
                },
                Err(e) => Payload::Unreadable {
                    cause: e.cause(),
                    message: unreadable_message(&e),
                },
            };
            let change = Change {
                component: decl.name.clone(),
                origin: Origin::File(config.to_owned()),
                payload,
            };
            match self.runtime.apply(change).await {
                Ok(e) => events.push(e),
                Err(e) => tracing::warn!(component = %decl.name, "{e}"),
            }
        }
        events
    }

    /// Stops watching, then shuts the runtime down, letting a reload in
    /// flight finish or roll back.
    pub async fn shutdown(&mut self) {
        self.files = None;
        #[cfg(feature = "etcd")]
        if let Some(parts) = self.etcd.as_mut() {
            parts.stop().await;
        }
        self.runtime.shutdown().await;
    }
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
///
/// Must be awaited inside a tokio runtime.
pub async fn validate(
    manifest: &Manifest,
    bundled: BundledHandlers,
) -> Result<Vec<Verdict>, Error> {
    let mut settings = manifest.settings.clone();
    // Nothing is persisted, but the daemon's compiled-code cache is used
    // (and filled): a validate before `run` makes its start fast, and after.
    settings.cache_dir = settings.cache_dir();
    settings.state_dir = None;
    let probe = Daemon::new(
        Manifest {
            settings,
            ..manifest.clone()
        },
        bundled,
    )?;
    let mut verdicts = Vec::new();
    #[cfg(feature = "etcd")]
    let etcd = match &manifest.etcd {
        Some(settings) => Some(etcd::read_all(manifest, settings).await),
        None => None,
    };
    for decl in &manifest.components {
        let result = async {
            let handler = probe.handler_source(decl).map_err(|e| e.to_string())?;
            let input = match &decl.config {
                ConfigRef::File(config) => {
                    let bytes = probe
                        .rules()
                        .read_async(config, WatchedKind::Config)
                        .await
                        .map_err(|e| e.to_string())?;
                    config_of(config, bytes).map_err(|e| e.to_string())?
                }
                #[cfg(feature = "etcd")]
                ConfigRef::Etcd { key, format } => match &etcd {
                    Some(read) => etcd::input_of(read, key, *format, &manifest.settings)?,
                    None => unreachable!("the manifest checks that etcd keys have [source.etcd]"),
                },
                #[cfg(not(feature = "etcd"))]
                ConfigRef::Etcd { .. } => {
                    unreachable!("the manifest refuses etcd keys without the feature")
                }
            };
            probe
                .runtime
                .add_component(
                    ComponentSpec::new(decl.name.clone(), handler, input)
                        .limits(decl.limits.clone()),
                )
                .await
                .map(|_| decl.config.to_string())
                .map_err(|e| match e {
                    Error::InitialLoad { event, .. } => format!(
                        "{}: {}",
                        decl.config,
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
