//! The runtime: components, their serialised reloads, events and statistics.

pub(crate) mod subscribers;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, watch};

use self::subscribers::Subscribers;
use crate::error::Error;
use crate::events::{Event, EventStore, EventsAfter, Stats};
use crate::outcome::{Cause, EventKind, Outcome, SupportLevel};
use crate::redact::Redactor;
use crate::sandbox::{CompiledHandler, Sandbox, SandboxConfig, SandboxOptions};
use crate::settings::{LimitOverrides, Settings};
use crate::sources::{
    Change, ChangeSink, InputError, Origin, Payload, Source, SourceHandle, read_regular,
};
use crate::state::{Latest, Revision, RevisionSource, Revisions, StateLock};
use crate::transaction::{ComponentState, ConfigInput, Context, Request};

/// Where a handler's WebAssembly comes from.
#[derive(Debug, Clone)]
pub enum HandlerSource {
    /// The component's bytes.
    Bytes(Arc<[u8]>),
    /// A `.wasm` file.
    Path(PathBuf),
    /// A handler bundled with the program that runs the runtime, by name
    /// (`bundled:logging` in a manifest); the daemon resolves it.
    Bundled(String),
}

impl From<&[u8]> for HandlerSource {
    fn from(b: &[u8]) -> Self {
        HandlerSource::Bytes(b.into())
    }
}

impl From<Vec<u8>> for HandlerSource {
    fn from(b: Vec<u8>) -> Self {
        HandlerSource::Bytes(b.into())
    }
}

impl From<PathBuf> for HandlerSource {
    fn from(p: PathBuf) -> Self {
        HandlerSource::Path(p)
    }
}

impl From<&std::path::Path> for HandlerSource {
    fn from(p: &std::path::Path) -> Self {
        HandlerSource::Path(p.to_owned())
    }
}

/// What a new component is: a name, a handler and its first configuration.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    name: String,
    handler: HandlerSource,
    /// The first configuration, or why its source could not give one.
    config: Result<ConfigInput, InputError>,
    limits: LimitOverrides,
    config_path: Option<String>,
    group: Option<String>,
    kept_from: Option<u64>,
}

impl ComponentSpec {
    /// A component named `name`, handled by `handler`, starting on `config`.
    pub fn new(
        name: impl Into<String>,
        handler: impl Into<HandlerSource>,
        config: impl Into<ConfigInput>,
    ) -> ComponentSpec {
        ComponentSpec {
            name: name.into(),
            handler: handler.into(),
            config: Ok(config.into()),
            limits: LimitOverrides::default(),
            config_path: None,
            group: None,
            kept_from: None,
        }
    }

    /// A component whose first configuration could not be read (`why`
    /// says what is wrong): it starts on its last-known-good configuration,
    /// which needs a state directory with a record of it.
    pub fn unavailable(
        name: impl Into<String>,
        handler: impl Into<HandlerSource>,
        why: InputError,
    ) -> ComponentSpec {
        ComponentSpec {
            config: Err(why),
            ..ComponentSpec::new(name, handler, ConfigInput::Value(Value::Null))
        }
    }

    /// Puts the component in a group: changes of a group's components that
    /// reach the apply loop within one debounce window (a Kubernetes
    /// ConfigMap swap changes every file at once) reload as one
    /// all-or-nothing batch ([`Runtime::reload_batch`]).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Overrides some of the runtime's limits for this component.
    pub fn limits(mut self, limits: LimitOverrides) -> Self {
        self.limits = limits;
        self
    }

    /// Says that the first configuration is version `version`'s, kept
    /// across a restart (an API change its file did not override): the
    /// revision's source says `initial` with this `from_version`.
    pub fn kept_from(mut self, version: u64) -> Self {
        self.kept_from = Some(version);
        self
    }

    /// Names the file the configuration comes from, for events.
    pub fn config_path(mut self, path: impl Into<String>) -> Self {
        self.config_path = Some(path.into());
        self
    }
}

/// Where a component stands, for status pages and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// The component's name.
    pub name: String,
    /// The handler's support level, as its instance said.
    pub support_level: Option<SupportLevel>,
    /// The committed version in force.
    pub version: u64,
    /// The configuration in force, as the handler accepted it.
    pub config: Arc<Value>,
    /// The effective configuration in force.
    pub effective: Arc<Value>,
    /// Where the configuration in force came from: a file (`initial` or
    /// `file_change` with its path), the API, a rollback, or `initial`
    /// with `from_version` when a start kept an API change the file had
    /// not overridden.
    pub source: Option<RevisionSource>,
    /// A restart-required configuration waiting for the next start.
    pub pending: Option<Arc<Value>>,
    /// True when the handler could not be brought back after a failure.
    pub degraded: bool,
    /// SHA-256 of the handler.
    pub handler_hash: String,
    /// Instances created so far: one at the start, one more after every
    /// instance that was cut off or could not roll back.
    pub instances_created: u64,
}

struct Slot {
    state: Arc<tokio::sync::Mutex<ComponentState>>,
    /// Where the component stands as of its last event (never waits).
    published: Arc<Mutex<Option<ComponentInfo>>>,
    /// The component's batch group, if any.
    group: Option<String>,
    subscribers: Arc<Mutex<Subscribers>>,
    /// The effective configuration in force, for readers.
    current: watch::Receiver<Arc<Value>>,
}

struct Inner {
    settings: Settings,
    sandbox: Sandbox,
    events: EventStore,
    revisions: Option<Arc<Revisions>>,
    components: RwLock<BTreeMap<String, Arc<Slot>>>,
    compiled: Mutex<HashMap<String, Arc<CompiledHandler>>>,
    closed: AtomicBool,
    /// Where sources send changes, once one is attached.
    apply_loop: Mutex<Option<mpsc::UnboundedSender<Change>>>,
    redact: Redactor,
    /// This runtime's hold on its state directory, until shut down.
    lock: Mutex<Option<StateLock>>,
    /// Batches made so far.
    batches: std::sync::atomic::AtomicU64,
    /// Where events' replay records go (with a revision store).
    replays: Option<crate::replay::ReplaySink>,
}

impl Inner {
    /// A batch id unique across restarts: this process's start (ms since
    /// the epoch, hex) and a counter.
    fn next_batch_id(&self) -> String {
        static START: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
        let start = START.get_or_init(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        });
        let n = self.batches.fetch_add(1, Ordering::SeqCst) + 1;
        format!("b{start:x}-{n}")
    }

    fn context(&self) -> Context<'_> {
        Context {
            sandbox: &self.sandbox,
            events: &self.events,
            revisions: self.revisions.as_deref(),
            rollback_on_failure: self.settings.rollback_on_failure,
            fresh_instance_per_reload: self.settings.fresh_instance_per_reload,
            redact: &self.redact,
            record: true,
            replays: self.replays.as_ref(),
        }
    }

    /// The context of a dry run: nothing recorded, nothing persisted.
    fn dry_context(&self) -> Context<'_> {
        Context {
            revisions: None,
            record: false,
            replays: None,
            ..self.context()
        }
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        self.components
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn slot(&self, name: &str) -> Result<Arc<Slot>, Error> {
        self.components
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownComponent(name.to_owned()))
    }
}

/// What a batch came to: its id, its own outcome (`applied` when every
/// member committed or was unchanged; otherwise what the worst member came
/// to), and one event per member, in name order.
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// The id every member's event carries.
    pub id: String,
    /// The batch's own outcome.
    pub outcome: Outcome,
    /// One event per member, in name order.
    pub events: Vec<Arc<Event>>,
}

/// What a candidate handler would do ([`Runtime::dry_run_handler`]).
#[derive(Debug, Clone)]
pub struct HandlerDryRun {
    /// The candidate's SHA-256.
    pub handler_hash: String,
    /// Loading the configuration in force, as a swap would.
    pub in_force: Arc<Event>,
    /// From the configuration in force to each of the last 20 distinct
    /// configurations in history (newest first, by version): `applied`,
    /// `rejected` with the field, `restart_required`. Empty when the
    /// candidate refuses the configuration in force.
    pub history: Vec<(u64, Arc<Event>)>,
}

impl HandlerDryRun {
    /// Whether a swap would take the candidate and it accepts (in place or
    /// with a restart) every configuration tried.
    pub fn accepts_all(&self) -> bool {
        self.in_force.outcome == Outcome::Applied
            && self.history.iter().all(|(_, e)| {
                matches!(
                    e.outcome,
                    Outcome::Applied | Outcome::Unchanged | Outcome::RestartRequired
                )
            })
    }
}

/// Builds a [`Runtime`].
#[derive(Debug, Default)]
pub struct RuntimeBuilder {
    settings: Settings,
    options: SandboxOptions,
}

impl RuntimeBuilder {
    /// Uses these settings.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Turns fuel or epoch instrumentation off, to measure what they cost.
    pub fn sandbox_options(mut self, options: SandboxOptions) -> Self {
        self.options = options;
        self
    }

    /// Builds the engine and, when `state_dir` is set, opens the
    /// last-known-good store.
    ///
    /// # Errors
    /// When the engine cannot be built or the state directory cannot be created.
    pub fn build(self) -> Result<Runtime, Error> {
        let sandbox = Sandbox::new(SandboxConfig {
            options: self.options,
            pool_instances: self
                .settings
                .pool_instances
                .unwrap_or(Settings::DEFAULT_POOL_INSTANCES),
            cache_dir: self.settings.cache_dir(),
            cache_max_bytes: self.settings.cache_max_mib.saturating_mul(1 << 20),
            replay_clock: None,
        })?;
        // The lock first: a second runtime on this directory touches nothing.
        let lock = match &self.settings.state_dir {
            Some(dir) => Some(StateLock::acquire(dir)?),
            None => None,
        };
        let revisions = match &self.settings.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| Error::StateDir {
                    dir: dir.clone(),
                    source,
                })?;
                Some(Arc::new(Revisions::open(
                    dir,
                    self.settings.keep_revisions,
                    self.settings.keep_events,
                )?))
            }
            None => None,
        };
        let replays = revisions.clone().map(crate::replay::ReplaySink::start);
        let s = &self.settings;
        let events = EventStore::new(
            s.event_store_events as usize,
            s.event_store_bytes as usize,
            s.notify_on_success,
            s.notify_on_failure,
        );
        let redact = Redactor::new(&self.settings.redact_keys);
        Ok(Runtime {
            inner: Arc::new(Inner {
                settings: self.settings,
                sandbox,
                events,
                revisions,
                components: RwLock::new(BTreeMap::new()),
                compiled: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
                apply_loop: Mutex::new(None),
                redact,
                lock: Mutex::new(lock),
                batches: std::sync::atomic::AtomicU64::new(0),
                replays,
            }),
        })
    }
}

/// A change from a source, read for the transaction.
enum Incoming {
    /// A configuration, decoded from its format.
    Config(ConfigInput),
    /// A configuration that cannot be one: why, and what is wrong.
    Refused(Cause, String),
    /// A new handler's bytes.
    Handler(Vec<u8>),
}

impl Incoming {
    /// Where a change came from (as a revision would say) and what it
    /// carries: a configuration is decoded in its format, and an error names
    /// the file.
    fn read(origin: &Origin, payload: Payload) -> (RevisionSource, Incoming) {
        let kind = match origin {
            Origin::File(_) => EventKind::FileChange,
            Origin::Api => EventKind::Api,
            Origin::Etcd { resync: false, .. } => EventKind::EtcdChange,
            Origin::Etcd { resync: true, .. } => EventKind::EtcdResync,
        };
        let path = origin.label();
        let incoming = match payload {
            Payload::Config { bytes, format } => match format.decode(bytes) {
                Ok(input) => Incoming::Config(input),
                Err(e) => {
                    let e = match &path {
                        Some(p) => e.at(p),
                        None => e,
                    };
                    Incoming::Refused(e.cause, e.message)
                }
            },
            Payload::Unreadable { cause, message } => Incoming::Refused(cause, message),
            Payload::Handler(bytes) => Incoming::Handler(bytes),
        };
        let source = RevisionSource {
            path,
            ..RevisionSource::of(kind)
        };
        (source, incoming)
    }
}

/// The apply loop: hands each change to its component's worker, so changes
/// of one component are applied in order and components run in parallel.
/// Configuration changes of a grouped component are held for one debounce
/// window and applied with the rest of their group as one batch. It holds
/// the runtime weakly: it ends when the runtime is dropped.
async fn apply_loop(inner: Weak<Inner>, mut changes: mpsc::UnboundedReceiver<Change>) {
    let mut workers: HashMap<String, mpsc::UnboundedSender<Change>> = HashMap::new();
    let mut group_workers: HashMap<String, mpsc::UnboundedSender<Vec<(u64, Change)>>> =
        HashMap::new();
    let mut held: HashMap<String, Vec<Change>> = HashMap::new();
    let desired: Desired = Arc::new(Mutex::new(HashMap::new()));
    let mut next_seq: u64 = 0;
    let (flush_tx, mut flush_rx) = mpsc::unbounded_channel::<(String, u64)>();
    let mut quiet: HashMap<String, u64> = HashMap::new();
    loop {
        tokio::select! {
            change = changes.recv() => {
                let Some(change) = change else { return };
                let group = match &change.payload {
                    // A handler swap is never part of a configuration batch.
                    Payload::Handler(_) => None,
                    _ => inner.upgrade().and_then(|i| {
                        i.slot(&change.component).ok().and_then(|s| s.group.clone())
                    }),
                };
                if let Some(group) = group {
                    // The group is flushed once it has been quiet for a
                    // debounce window: every arrival starts the window again.
                    held.entry(group.clone()).or_default().push(change);
                    let arrivals = quiet.entry(group.clone()).or_insert(0);
                    *arrivals += 1;
                    let seen = *arrivals;
                    let window = inner.upgrade().map_or(0, |i| i.settings.debounce_ms);
                    let flush = flush_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(window)).await;
                        let _ = flush.send((group, seen));
                    });
                    continue;
                }
                let worker = workers.entry(change.component.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(component_worker(inner.clone(), rx));
                    tx
                });
                let _ = worker.send(change);
            }
            Some((group, seen)) = flush_rx.recv() => {
                if quiet.get(&group) != Some(&seen) {
                    // Something arrived since: its own timer flushes.
                    continue;
                }
                let Some(changes) = held.remove(&group) else { continue };
                // The group's desired state: the latest change of every
                // member seen so far. A batch holds all of it, not only what
                // changed in this window, so that after an aborted batch a
                // later fix of one file brings the whole group along.
                // Once a batch applies, its members leave it (the group worker
                // removes them), so a later change of one member does not
                // send the others' old files again over a rollback or an
                // API reload made since.
                let members: Vec<(u64, Change)> = {
                    let mut all = desired.lock().unwrap_or_else(|e| e.into_inner());
                    let state = all.entry(group.clone()).or_default();
                    for change in changes {
                        next_seq += 1;
                        state.insert(change.component.clone(), (next_seq, change));
                    }
                    state.values().cloned().collect()
                };
                let worker = group_workers.entry(group.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(group_worker(inner.clone(), group, desired.clone(), rx));
                    tx
                });
                let _ = worker.send(members);
            }
        }
    }
}

/// Per group, the latest change of each member not yet applied by a batch,
/// with its arrival number.
type Desired = Arc<Mutex<HashMap<String, BTreeMap<String, (u64, Change)>>>>;

async fn group_worker(
    inner: Weak<Inner>,
    group: String,
    desired: Desired,
    mut batches: mpsc::UnboundedReceiver<Vec<(u64, Change)>>,
) {
    while let Some(members) = batches.recv().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let applied: Vec<(String, u64)> = members
            .iter()
            .map(|(seq, c)| (c.component.clone(), *seq))
            .collect();
        let changes = members.into_iter().map(|(_, c)| c).collect();
        match (Runtime { inner }).apply_group(changes).await {
            Ok(true) => {
                // Applied: these changes are in force; a newer change of a
                // member that arrived meanwhile stays.
                let mut all = desired.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(state) = all.get_mut(&group) {
                    for (component, seq) in applied {
                        if state.get(&component).is_some_and(|(s, _)| *s == seq) {
                            state.remove(&component);
                        }
                    }
                }
            }
            Ok(false) => {}
            Err(Error::ShutDown) => return,
            Err(e) => tracing::warn!("a group's batch: {e}"),
        }
    }
}

async fn component_worker(inner: Weak<Inner>, mut changes: mpsc::UnboundedReceiver<Change>) {
    while let Some(change) = changes.recv().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let component = change.component.clone();
        match (Runtime { inner }).apply(change).await {
            Ok(_) => {}
            Err(Error::ShutDown) => return,
            Err(e) => tracing::warn!(component = %component, "{e}"),
        }
    }
}

/// A `Runtime` keeps components, each with a sandboxed handler and the
/// configuration in force, and applies reloads to them transactionally.
///
/// Reloads of one component are serialised; different components reload in
/// parallel. Handler calls run on blocking threads, never on the async
/// worker threads. Cloning a `Runtime` gives another handle to the same one.
///
/// # Tokio
///
/// Building a runtime, [`Runtime::current`], [`Runtime::subscribe`],
/// [`Runtime::events`] and [`Runtime::stats`] need no async runtime. Every
/// `async` method, and [`Runtime::attach`], must run inside a tokio runtime
/// (multi-thread, or current-thread with blocking threads, the default):
/// handler calls run on tokio's blocking pool. [`Runtime::reload_blocking`]
/// is for plain threads and must not be called on an async worker thread.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Runtime {
    /// A builder with default settings.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with these settings.
    ///
    /// # Errors
    /// See [`RuntimeBuilder::build`].
    pub fn new(settings: Settings) -> Result<Runtime, Error> {
        Runtime::builder().settings(settings).build()
    }

    /// The runtime's settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The revision store, when `state_dir` is set: every committed
    /// configuration, the latest of each component being its last-known-good.
    pub fn revisions(&self) -> Option<&Arc<Revisions>> {
        self.inner.revisions.as_ref()
    }

    /// Compiles a handler (or reuses one compiled earlier from the same
    /// bytes) without adding a component: the check `hotreload try` and
    /// hot swaps start with.
    ///
    /// # Errors
    /// [`Error::HandlerLoad`] naming what is wrong with the handler.
    ///
    /// Must be awaited inside a tokio runtime: handler calls run on its
    /// blocking thread pool.
    pub async fn check_handler(
        &self,
        component: &str,
        handler: HandlerSource,
    ) -> Result<String, Error> {
        self.compile(component, handler)
            .await
            .map(|c| c.hash.clone())
    }

    async fn compile(
        &self,
        component: &str,
        handler: HandlerSource,
    ) -> Result<Arc<CompiledHandler>, Error> {
        let (label, bytes): (String, Arc<[u8]>) = match handler {
            HandlerSource::Bytes(b) => ("<bytes>".into(), b),
            HandlerSource::Path(p) => {
                let limit = self
                    .inner
                    .settings
                    .handler_limit_mib
                    .saturating_mul(1 << 20);
                let read = p.clone();
                let bytes = tokio::task::spawn_blocking(move || read_regular(&read, limit))
                    .await
                    .map_err(|e| Error::Panicked(format!("reading a handler: {e}")))?
                    .map_err(|e| Error::HandlerLoad {
                        component: component.to_owned(),
                        handler: p.display().to_string(),
                        reason: e.to_string(),
                    })?;
                (p.display().to_string(), bytes.into())
            }
            HandlerSource::Bundled(name) => {
                return Err(Error::HandlerLoad {
                    component: component.to_owned(),
                    handler: format!("bundled:{name}"),
                    reason: "no handlers are bundled with this runtime".into(),
                });
            }
        };
        let hash = crate::sandbox::hex_sha256(&bytes);
        if let Some(c) = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
        {
            return Ok(c.clone());
        }
        let sandbox = self.inner.sandbox.clone();
        let compiled = tokio::task::spawn_blocking(move || sandbox.compile(&bytes))
            .await
            .map_err(|e| Error::Panicked(format!("compiling: {e}")))?
            .map_err(|reason| Error::HandlerLoad {
                component: component.to_owned(),
                handler: label,
                reason,
            })?;
        let compiled = Arc::new(compiled);
        self.inner
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash, compiled.clone());
        Ok(compiled)
    }

    /// Adds a component: compiles its handler, loads the first
    /// configuration in a fresh instance (`validate`, then
    /// `reload(none, config)`), and commits it.
    ///
    /// # Errors
    /// [`Error::HandlerLoad`] when the handler cannot be loaded,
    /// [`Error::InitialLoad`] (with the event) when the configuration is not
    /// accepted, and name errors.
    ///
    /// ```no_run
    /// # async fn f(runtime: hotreload::Runtime, wasm: Vec<u8>) -> Result<(), hotreload::Error> {
    /// use hotreload::ComponentSpec;
    /// let event = runtime
    ///     .add_component(ComponentSpec::new("logging", wasm, r#"{"level": "info"}"#))
    ///     .await?;
    /// assert_eq!(event.version, 1);
    /// # Ok(()) }
    /// ```
    ///
    /// Must be awaited inside a tokio runtime: handler calls run on its
    /// blocking thread pool.
    pub async fn add_component(&self, spec: ComponentSpec) -> Result<Arc<Event>, Error> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        if !valid_name(&spec.name) {
            return Err(Error::InvalidName(spec.name));
        }
        if self.inner.slot(&spec.name).is_ok() {
            return Err(Error::DuplicateComponent(spec.name));
        }
        let saved = self.saved(&spec.name).await;
        // Numbering goes on after the last committed version, even when that
        // revision could not be read back (then there is no fallback, but
        // no version is ever reused).
        let base_version = match self.inner.revisions.clone() {
            Some(store) => {
                let name = spec.name.clone();
                tokio::task::spawn_blocking(move || store.head_version(&name))
                    .await
                    .map_err(|e| Error::Panicked(format!("reading revisions: {e}")))??
            }
            None => 0,
        };
        let group = spec.group.clone();
        let handler = self.compile(&spec.name, spec.handler).await?;
        let name: Arc<str> = spec.name.as_str().into();
        let subscribers = Arc::new(Mutex::new(Subscribers::new(Arc::new(Value::Null))));
        let state = ComponentState {
            name,
            handler,
            instance: None,
            limits: spec.limits.apply(self.inner.settings.limits()),
            committed: None,
            pending: None,
            degraded: false,
            subscribers: subscribers.clone(),
            support: None,
            instances_created: 0,
            base_version,
            published: Arc::new(Mutex::new(None)),
        };
        let config_path = spec.config_path;
        let (state, why, cause, refused) = match spec.config {
            Ok(input) => {
                let mut request = Request::new(input, EventKind::Initial, config_path.clone());
                request.source.from_version = spec.kept_from;
                let (state, event) = self.blocking(state, |s, ctx| s.load(ctx, request)).await?;
                if state.committed.is_some() {
                    return self.insert(spec.name, group, state, subscribers, event);
                }
                let cause = event.cause.unwrap_or(Cause::Invalid);
                (state, event.summary(), cause, Some(event))
            }
            Err(e) => (state, e.message, e.cause, None),
        };
        // The first configuration was refused or could not be read: start
        // on the last-known-good one, if there is one, and say so.
        let Some(saved) = saved else {
            return Err(match refused {
                Some(event) => Error::InitialLoad {
                    component: spec.name,
                    event,
                },
                None => Error::ConfigUnavailable {
                    component: spec.name,
                    reason: why,
                },
            });
        };
        let saved_version = saved.revision.version;
        // The event names where the restored configuration came from (an
        // etcd key's older revision, say), not the one just refused.
        let saved_path = saved.revision.source.path.clone();
        let request = Request::new(
            ConfigInput::Json(saved.revision.config),
            EventKind::Restart,
            saved_path.or_else(|| config_path.clone()),
        );
        let (state, restored) = self.blocking(state, |s, ctx| s.load(ctx, request)).await?;
        if state.committed.is_none() {
            return Err(Error::RestoreFailed {
                component: spec.name,
                why,
                event: restored,
            });
        }
        let message = format!(
            "{why}; started on the last-known-good configuration (version {saved_version})"
        );
        let (state, _) = self
            .blocking(state, move |s, ctx| {
                let source = RevisionSource {
                    path: config_path,
                    ..RevisionSource::of(EventKind::Initial)
                };
                s.reject_input(ctx, source, cause, message)
            })
            .await?;
        self.insert(spec.name, group, state, subscribers, restored)
    }

    /// A component's latest revision, read off the async threads.
    async fn saved(&self, component: &str) -> Option<Latest> {
        let store = self.inner.revisions.clone()?;
        let name = component.to_owned();
        let read = tokio::task::spawn_blocking(move || store.latest(&name)).await;
        match read {
            Ok(Ok(saved)) => saved,
            Ok(Err(e)) => {
                tracing::warn!(component, "ignoring the last-known-good record: {e}");
                None
            }
            Err(e) => {
                tracing::warn!(component, "reading the last-known-good record failed: {e}");
                None
            }
        }
    }

    /// Runs `f` on a component's state on a blocking thread.
    async fn blocking<R: Send + 'static>(
        &self,
        mut state: ComponentState,
        f: impl FnOnce(&mut ComponentState, &Context<'_>) -> R + Send + 'static,
    ) -> Result<(ComponentState, R), Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let r = f(&mut state, &inner.context());
            (state, r)
        })
        .await
        .map_err(|e| Error::Panicked(e.to_string()))
    }

    fn insert(
        &self,
        name: String,
        group: Option<String>,
        state: ComponentState,
        subscribers: Arc<Mutex<Subscribers>>,
        event: Arc<Event>,
    ) -> Result<Arc<Event>, Error> {
        let current = subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .watch_raw();
        let slot = Arc::new(Slot {
            published: state.published.clone(),
            state: Arc::new(tokio::sync::Mutex::new(state)),
            group,
            subscribers,
            current,
        });
        let mut components = self
            .inner
            .components
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if components.contains_key(&name) {
            return Err(Error::DuplicateComponent(name));
        }
        components.insert(name, slot);
        Ok(event)
    }

    /// Reloads a component with a new configuration (an `api` event).
    ///
    /// A refused or failed reload is not an error: the returned event says
    /// what happened, and the old configuration stays in force.
    ///
    /// # Errors
    /// [`Error::UnknownComponent`], [`Error::Disabled`], [`Error::ShutDown`].
    ///
    /// Must be awaited inside a tokio runtime: handler calls run on its
    /// blocking thread pool.
    pub async fn reload(
        &self,
        component: &str,
        config: impl Into<ConfigInput>,
    ) -> Result<Arc<Event>, Error> {
        self.reload_request(component, Request::new(config.into(), EventKind::Api, None))
            .await
    }

    /// Reloads a component from a thread that is not running async code
    /// (a plain thread, a benchmark): as [`Runtime::reload`], blocking.
    ///
    /// # Errors
    /// As [`Runtime::reload`].
    ///
    /// # Panics
    /// When called from inside an async runtime's worker thread.
    pub fn reload_blocking(
        &self,
        component: &str,
        config: impl Into<ConfigInput>,
    ) -> Result<Arc<Event>, Error> {
        if !self.inner.settings.enabled {
            return Err(Error::Disabled);
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        let slot = self.inner.slot(component)?;
        let mut state = slot.state.blocking_lock();
        Ok(state.reload(
            &self.inner.context(),
            Request::new(config.into(), EventKind::Api, None),
        ))
    }

    /// Reloads a component, saying what started it and where the
    /// configuration came from.
    async fn reload_request(&self, component: &str, request: Request) -> Result<Arc<Event>, Error> {
        if !self.inner.settings.enabled {
            return Err(Error::Disabled);
        }
        self.with_component(component, move |state, ctx| state.reload(ctx, request))
            .await
    }

    /// Restarts a component: a fresh instance loads its pending
    /// (restart-required) configuration if there is one, or the one in force.
    ///
    /// # Errors
    /// [`Error::UnknownComponent`], [`Error::ShutDown`].
    ///
    /// Must be awaited inside a tokio runtime: handler calls run on its
    /// blocking thread pool.
    pub async fn restart_component(&self, component: &str) -> Result<Arc<Event>, Error> {
        self.with_component(component, |state, ctx| {
            let config = state
                .pending
                .clone()
                .or_else(|| state.committed.as_ref().map(|c| c.input.clone()))
                .map(|v| (*v).clone())
                .unwrap_or(Value::Null);
            state.load(
                ctx,
                Request::new(ConfigInput::Value(config), EventKind::Restart, None),
            )
        })
        .await
    }

    async fn with_component<F, R>(&self, component: &str, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut ComponentState, &Context<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        let slot = self.inner.slot(component)?;
        let mut guard = slot.state.clone().lock_owned().await;
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&mut guard, &inner.context()))
            .await
            .map_err(|e| Error::Panicked(e.to_string()))
    }

    /// Subscribes to a component's effective configuration as a typed value.
    ///
    /// The receiver starts with the configuration in force and sees every
    /// committed change. A subscriber whose type does not fit a new
    /// configuration refuses it, and the reload is rolled back (cause
    /// `subscriber`), so a service never receives what it cannot read.
    ///
    /// # Errors
    /// [`Error::UnknownComponent`], or [`Error::Subscribe`] when the
    /// configuration in force does not fit `T`.
    pub fn subscribe<T>(&self, component: &str) -> Result<watch::Receiver<T>, Error>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let slot = self.inner.slot(component)?;
        let mut subscribers = slot.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.add::<T>().map_err(|reason| Error::Subscribe {
            component: component.to_owned(),
            reason,
        })
    }

    /// Subscribes to a component's effective configuration as JSON.
    ///
    /// # Errors
    /// [`Error::UnknownComponent`].
    pub fn subscribe_json(&self, component: &str) -> Result<watch::Receiver<Arc<Value>>, Error> {
        let slot = self.inner.slot(component)?;
        let subscribers = slot.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        Ok(subscribers.watch_raw())
    }

    /// The effective configuration in force.
    ///
    /// # Errors
    /// [`Error::UnknownComponent`].
    pub fn current(&self, component: &str) -> Result<Arc<Value>, Error> {
        let slot = self.inner.slot(component)?;
        // A watch of its own: never waits for the subscribers' lock.
        let current = slot.current.borrow().clone();
        Ok(current)
    }

    /// Where every component stands, as of each one's last event: a
    /// reload in flight is not waited for (until it ends, what is in force
    /// is what was).
    ///
    /// Must be awaited inside a tokio runtime: handler calls run on its
    /// blocking thread pool.
    pub async fn components(&self) -> Vec<ComponentInfo> {
        let slots = self.inner.slots();
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            out.push(slot.info().await);
        }
        out
    }

    /// Where one component stands: as [`Runtime::components`].
    ///
    /// # Errors
    /// [`Error::UnknownComponent`].
    pub async fn component(&self, name: &str) -> Result<ComponentInfo, Error> {
        Ok(self.inner.slot(name)?.info().await)
    }

    /// The names of the components, in name order (never waits).
    pub fn component_names(&self) -> Vec<String> {
        self.inner
            .components
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The events still in the ring, oldest first.
    pub fn events(&self) -> Vec<Arc<Event>> {
        self.inner.events.events()
    }

    /// The events recorded after the one with id `after` (0 for all that
    /// are still kept), and the ids of those that already left the ring.
    /// Ids count 1, 2, 3, ... in the order events are recorded, so a reader
    /// that remembers the last id it saw misses nothing silently.
    pub fn events_after(&self, after: u64) -> EventsAfter {
        self.inner.events.after(after)
    }

    /// A stream of events as they are recorded, filtered by the settings'
    /// `notify_on_success` and `notify_on_failure`.
    pub fn notifications(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.events.subscribe()
    }

    /// Every event as it is recorded, whatever the notification settings
    /// say (what the daemon prints).
    pub fn event_stream(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.events.subscribe_all()
    }

    /// Records that a component's new configuration could not even be read
    /// (a removed file, a permission error, TOML or YAML that does not
    /// parse): a `rejected` event in the parse phase; nothing is called
    /// and the configuration in force stays.
    async fn reject_input(
        &self,
        component: &str,
        source: RevisionSource,
        cause: Cause,
        message: String,
    ) -> Result<Arc<Event>, Error> {
        self.with_component(component, move |state, ctx| {
            state.reject_input(ctx, source, cause, message)
        })
        .await
    }

    /// Replaces a component's handler: the new one is compiled, brought up
    /// in a fresh instance with the configuration in force (`validate`,
    /// then `reload(none, current)`), and swapped in only if it accepts it.
    /// Otherwise the old handler stays, and the event says why.
    ///
    /// # Errors
    /// [`Error::UnknownComponent`], [`Error::ShutDown`]. A handler that
    /// cannot be loaded is a `rejected` event, not an error.
    ///
    /// Must be awaited inside a tokio runtime: handler calls run on its
    /// blocking thread pool.
    pub async fn swap_handler(
        &self,
        component: &str,
        handler: HandlerSource,
    ) -> Result<Arc<Event>, Error> {
        self.inner.slot(component)?;
        let compiled = self.compile(component, handler).await;
        self.with_component(component, move |state, ctx| match compiled {
            Ok(compiled) => state.swap(ctx, compiled),
            Err(e) => state.reject_handler(ctx, e.to_string()),
        })
        .await
    }

    /// Rolls a component back to an earlier version: a **new** version is
    /// committed whose configuration — and handler, when it differed — are
    /// `version`'s, through the whole transaction (the handler validates it
    /// again; history is never applied blind). The event's kind is
    /// `rollback_to_version` and its `from_version` says which version.
    /// When `version`'s configuration and handler are the ones in force,
    /// the event is `unchanged` and no version is added.
    ///
    /// # Errors
    /// [`Error::NoHistory`] without a `state_dir`; [`Error::NoRevision`]
    /// when the version was never committed or is no longer kept;
    /// [`Error::HandlerNotKept`] when its handler's code is gone;
    /// [`Error::UnknownComponent`], [`Error::Disabled`], [`Error::ShutDown`].
    /// A handler that refuses the old configuration is a `rejected` event,
    /// not an error.
    ///
    /// Must be awaited inside a tokio runtime.
    pub async fn rollback_to(&self, component: &str, version: u64) -> Result<Arc<Event>, Error> {
        if !self.inner.settings.enabled {
            return Err(Error::Disabled);
        }
        let store = self.inner.revisions.clone().ok_or(Error::NoHistory)?;
        let slot = self.inner.slot(component)?;
        let name = component.to_owned();
        let read = store.clone();
        let revision = tokio::task::spawn_blocking(move || read.get(&name, version))
            .await
            .map_err(|e| Error::Panicked(format!("reading a revision: {e}")))??;
        let Some(revision) = revision else {
            let name = component.to_owned();
            let kept = tokio::task::spawn_blocking(move || -> Result<_, Error> {
                let kept = store.history(&name, usize::MAX)?;
                let newest = kept.first().map(|r| r.version);
                let oldest = kept.last().map(|r| r.version);
                Ok(oldest.zip(newest))
            })
            .await
            .map_err(|e| Error::Panicked(format!("reading revisions: {e}")))??;
            return Err(Error::NoRevision {
                component: component.to_owned(),
                version,
                kept,
            });
        };
        drop(slot);
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        // The version's handler, compiled: from this runtime's compiled
        // handlers (the one in force is there), else from the kept code.
        // Which one is in force is decided under the component's lock, so a
        // swap landing meanwhile cannot mix them up.
        let known = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&revision.handler_hash)
            .cloned();
        let handler = if let Some(known) = known {
            known
        } else {
            let hash = revision.handler_hash.clone();
            let wasm = tokio::task::spawn_blocking(move || store.handler(&hash))
                .await
                .map_err(|e| Error::Panicked(format!("reading a handler: {e}")))??;
            let Some(wasm) = wasm else {
                return Err(Error::HandlerNotKept {
                    component: component.to_owned(),
                    version,
                    hash: revision.handler_hash,
                });
            };
            self.compile(component, HandlerSource::Bytes(wasm.into()))
                .await?
        };
        let mut request = Request::new(
            ConfigInput::Json(revision.config),
            EventKind::RollbackToVersion,
            None,
        );
        request.source.from_version = Some(version);
        self.with_component(component, move |state, ctx| {
            if handler.hash == state.handler.hash {
                state.reload(ctx, request)
            } else {
                state.swap_with_config(ctx, handler, request)
            }
        })
        .await
    }

    /// Reloads several components as one, all or nothing: every member is
    /// prepared in its own handler (parse, validate, decide, reload) with
    /// the components locked in name order; then all commit together (one
    /// SQLite transaction, then every subscriber), or — if any member fails
    /// anywhere — every member is rolled back and keeps its old
    /// configuration, and no subscriber sees a mix. Each member's event
    /// carries the batch's id; a member rolled back for another's failure
    /// says cause `batch` and names that member.
    ///
    /// # Errors
    /// [`Error::UnknownComponent`] or [`Error::InvalidBatch`] (a member
    /// named twice, or none) before anything is done; [`Error::Disabled`],
    /// [`Error::ShutDown`].
    ///
    /// Must be awaited inside a tokio runtime.
    pub async fn reload_batch<I, N, C>(&self, members: I) -> Result<BatchReport, Error>
    where
        I: IntoIterator<Item = (N, C)>,
        N: Into<String>,
        C: Into<ConfigInput>,
    {
        let requests = members
            .into_iter()
            .map(|(n, c)| (n.into(), Request::new(c.into(), EventKind::Api, None)))
            .collect();
        self.batch(requests).await
    }

    pub(crate) async fn batch(
        &self,
        mut members: Vec<(String, Request)>,
    ) -> Result<BatchReport, Error> {
        if !self.inner.settings.enabled {
            return Err(Error::Disabled);
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        if members.is_empty() {
            return Err(Error::InvalidBatch(
                "a batch needs at least one member".into(),
            ));
        }
        // Locks in one fixed order (by name): two batches never deadlock.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = members.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::InvalidBatch(format!(
                "component {:?} is named twice",
                w[0].0
            )));
        }
        let slots = members
            .iter()
            .map(|(name, _)| self.inner.slot(name))
            .collect::<Result<Vec<_>, _>>()?;
        let mut guards = Vec::with_capacity(slots.len());
        for slot in &slots {
            guards.push(slot.state.clone().lock_owned().await);
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        let id = self.inner.next_batch_id();
        let inner = self.inner.clone();
        let batch = id.clone();
        let events = tokio::task::spawn_blocking(move || {
            let members = guards
                .iter_mut()
                .zip(members)
                .map(|(g, (_, req))| (&mut **g, req))
                .collect();
            crate::transaction::reload_batch(&inner.context(), members, &batch)
        })
        .await
        .map_err(|e| Error::Panicked(e.to_string()))?;
        let outcome = if events
            .iter()
            .all(|e| matches!(e.outcome, Outcome::Applied | Outcome::Unchanged))
        {
            Outcome::Applied
        } else if events.iter().any(|e| e.outcome == Outcome::Degraded) {
            Outcome::Degraded
        } else if events.iter().any(|e| e.outcome == Outcome::RolledBack) {
            Outcome::RolledBack
        } else {
            Outcome::Rejected
        };
        if outcome == Outcome::Applied {
            tracing::info!(batch = %id, members = events.len(), "batch applied");
        } else {
            tracing::warn!(batch = %id, members = events.len(), "batch aborted: {outcome:?}");
        }
        Ok(BatchReport {
            id,
            outcome,
            events,
        })
    }

    /// A dry run: what reloading `component` with `config` would do,
    /// prepared in a throw-away instance (brought to the configuration in
    /// force first, as the live one is): outcome, plan (applied or
    /// restart-required), effective configuration, changes, fuel and time
    /// of the reload. The live instance, history and subscribers are not
    /// touched; the subscribers are asked whether they would take the
    /// effective configuration (a refusal is `rolled_back`, cause
    /// `subscriber`, as it would be). The event has `dry_run: true` and is
    /// not recorded.
    ///
    /// # Errors
    /// [`Error::UnknownComponent`], [`Error::ShutDown`].
    ///
    /// Must be awaited inside a tokio runtime.
    pub async fn dry_run(
        &self,
        component: &str,
        config: impl Into<ConfigInput>,
    ) -> Result<Arc<Event>, Error> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        let slot = self.inner.slot(component)?;
        let mut shadow = slot.state.lock().await.shadow();
        let inner = self.inner.clone();
        let request = Request::new(config.into(), EventKind::Api, None);
        let (event, effective) =
            tokio::task::spawn_blocking(move || shadow.dry_run(&inner.dry_context(), request))
                .await
                .map_err(|e| Error::Panicked(e.to_string()))?;
        // The subscribers are asked with the real effective configuration
        // (the event shows it redacted).
        let Some(effective) = effective.filter(|_| event.outcome == Outcome::Applied) else {
            return Ok(event);
        };
        let refused = slot
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stage(effective)
            .err();
        Ok(match refused {
            None => event,
            Some(message) => {
                let mut e = (*event).clone();
                e.outcome = Outcome::RolledBack;
                e.failed_phase = Some(crate::outcome::Phase::Apply);
                e.cause = Some(Cause::Subscriber);
                e.error = Some(crate::events::EventError {
                    message,
                    field: None,
                });
                e.effective_config = None;
                Arc::new(e)
            }
        })
    }

    /// A canary for handler code: a candidate handler is tried, in
    /// throw-away instances, against the configuration in force (would a
    /// swap take it?) and, from there, against each of the component's last
    /// 20 distinct configurations in history (would it accept that change,
    /// refuse it — with the field — or need a restart for it?). Nothing
    /// live is touched; the events have `dry_run: true`.
    ///
    /// # Errors
    /// [`Error::UnknownComponent`], [`Error::HandlerLoad`] when the
    /// candidate cannot be loaded, [`Error::ShutDown`]. Without a
    /// `state_dir` there is no history: only the configuration in force is
    /// tried.
    ///
    /// Must be awaited inside a tokio runtime.
    pub async fn dry_run_handler(
        &self,
        component: &str,
        handler: HandlerSource,
    ) -> Result<HandlerDryRun, Error> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        let slot = self.inner.slot(component)?;
        let candidate = self.compile(component, handler).await?;
        let history = match &self.inner.revisions {
            Some(_) => self.history(component, 200).await?,
            None => Vec::new(),
        };
        let mut shadow = slot.state.lock().await.shadow();
        let in_force_text = shadow
            .committed
            .as_ref()
            .map(|c| c.input_text.to_string())
            .unwrap_or_default();
        // The last 20 distinct configurations other than the one in force.
        let mut seen = std::collections::HashSet::new();
        seen.insert(in_force_text.clone());
        let past: Vec<(u64, String)> = history
            .into_iter()
            .filter(|r| seen.insert(r.config.clone()))
            .take(20)
            .map(|r| (r.version, r.config))
            .collect();
        let inner = self.inner.clone();
        let hash = candidate.hash.clone();
        tokio::task::spawn_blocking(move || {
            let ctx = inner.dry_context();
            shadow.handler = candidate;
            shadow.committed = None;
            let in_force = shadow.load(
                &ctx,
                Request::new(
                    ConfigInput::Json(in_force_text),
                    EventKind::HandlerSwap,
                    None,
                ),
            );
            shadow.instance = None;
            let history = if shadow.committed.is_some() {
                past.into_iter()
                    .map(|(version, text)| {
                        let mut try_one = shadow.shadow();
                        let (event, _) = try_one.dry_run(
                            &ctx,
                            Request::new(ConfigInput::Json(text), EventKind::Api, None),
                        );
                        (version, event)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            HandlerDryRun {
                handler_hash: hash,
                in_force,
                history,
            }
        })
        .await
        .map_err(|e| Error::Panicked(e.to_string()))
    }

    /// A component's kept revisions, newest first, at most `limit`.
    ///
    /// # Errors
    /// [`Error::NoHistory`] without a `state_dir`; [`Error::Record`] when
    /// the store cannot be read.
    ///
    /// Must be awaited inside a tokio runtime (the read runs on its
    /// blocking pool).
    pub async fn history(&self, component: &str, limit: usize) -> Result<Vec<Revision>, Error> {
        let store = self.inner.revisions.clone().ok_or(Error::NoHistory)?;
        let name = component.to_owned();
        tokio::task::spawn_blocking(move || store.history(&name, limit))
            .await
            .map_err(|e| Error::Panicked(format!("reading revisions: {e}")))?
    }

    /// Applies one change from a source through the component's
    /// transaction: a configuration is read in its format and reloaded, a
    /// handler is swapped, an unreadable one is recorded as rejected. Every
    /// source's changes come through here.
    ///
    /// Needs a tokio runtime (it awaits the component's lock and runs the
    /// handler on a blocking thread).
    ///
    /// # Errors
    /// [`Error::UnknownComponent`], [`Error::Disabled`], [`Error::ShutDown`].
    pub async fn apply(&self, change: Change) -> Result<Arc<Event>, Error> {
        let (source, incoming) = Incoming::read(&change.origin, change.payload);
        let component = change.component;
        match incoming {
            Incoming::Config(input) => {
                self.reload_request(&component, Request { input, source })
                    .await
            }
            Incoming::Refused(cause, message) => {
                self.reject_input(&component, source, cause, message).await
            }
            Incoming::Handler(bytes) => {
                self.swap_handler(&component, HandlerSource::Bytes(bytes.into()))
                    .await
            }
        }
    }

    /// Applies a change on condition that `version` is the one in force
    /// when the transaction starts (checked under the component's lock, so
    /// of two writers expecting the same version exactly one goes through):
    /// an HTTP `If-Match`. A handler swap is not conditional.
    ///
    /// # Errors
    /// [`Error::VersionConflict`] when another version is in force, and as
    /// [`Runtime::apply`].
    pub async fn apply_expecting(&self, change: Change, version: u64) -> Result<Arc<Event>, Error> {
        if matches!(change.payload, Payload::Handler(_)) {
            return self.apply(change).await;
        }
        let (source, incoming) = Incoming::read(&change.origin, change.payload);
        let component = change.component;
        if !self.inner.settings.enabled {
            return Err(Error::Disabled);
        }
        let name = component.clone();
        self.with_component(&component, move |state, ctx| {
            let current = state.committed.as_ref().map_or(0, |c| c.version);
            if current != version {
                return Err(Error::VersionConflict {
                    component: name,
                    expected: version,
                    current,
                });
            }
            Ok(match incoming {
                Incoming::Config(input) => state.reload(ctx, Request { input, source }),
                Incoming::Refused(cause, message) => {
                    state.reject_input(ctx, source, cause, message)
                }
                Incoming::Handler(_) => unreachable!("handler payloads are applied above"),
            })
        })
        .await?
    }

    /// Applies a group's changes held over one debounce window as one
    /// batch: the last change of each component counts; a file that cannot
    /// be read or parsed aborts the whole batch (every member's event says
    /// so, with the batch's id).
    async fn apply_group(&self, changes: Vec<Change>) -> Result<bool, Error> {
        let mut last: BTreeMap<String, Change> = BTreeMap::new();
        for change in changes {
            last.insert(change.component.clone(), change);
        }
        let mut members = Vec::new();
        let mut refused: Vec<(String, RevisionSource, Cause, String)> = Vec::new();
        for (component, change) in last {
            match Incoming::read(&change.origin, change.payload) {
                (source, Incoming::Config(input)) => {
                    members.push((component, Request { input, source }));
                }
                (source, Incoming::Refused(cause, message)) => {
                    refused.push((component, source, cause, message));
                }
                (_, Incoming::Handler(bytes)) => {
                    self.swap_handler(&component, HandlerSource::Bytes(bytes.into()))
                        .await?;
                }
            }
        }
        if refused.is_empty() {
            if members.is_empty() {
                return Ok(true);
            }
            let report = self.batch(members).await?;
            return Ok(report.outcome == Outcome::Applied);
        }
        // One member's file is refused: no member is applied.
        let id = self.inner.next_batch_id();
        let names: Vec<String> = refused.iter().map(|r| format!("{:?}", r.0)).collect();
        let why = format!(
            "batch {id} aborted: the file of member {} was refused",
            names.join(", ")
        );
        tracing::warn!(batch = %id, "{why}");
        for (component, mut source, cause, message) in refused {
            source.batch = Some(id.clone());
            self.reject_input(&component, source, cause, message)
                .await?;
        }
        for (component, mut req) in members {
            req.source.batch = Some(id.clone());
            self.reject_input(&component, req.source, Cause::Batch, why.clone())
                .await?;
        }
        Ok(false)
    }

    /// Starts a source: what it sends is applied ([`Runtime::apply`]) by
    /// the runtime's one apply loop, which serialises the changes of each
    /// component and runs different components in parallel. The source
    /// stops when the returned handle is dropped.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::ShutDown`], or the source's own error when it cannot start.
    pub fn attach(&self, source: impl Source) -> Result<SourceHandle, Error> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        let sink = {
            let mut tx = self
                .inner
                .apply_loop
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match &*tx {
                Some(tx) => ChangeSink::new(tx.clone()),
                None => {
                    let (sender, rx) = mpsc::unbounded_channel();
                    tokio::spawn(apply_loop(Arc::downgrade(&self.inner), rx));
                    *tx = Some(sender.clone());
                    ChangeSink::new(sender)
                }
            }
        };
        Box::new(source).start(sink)
    }

    /// Statistics over every event recorded so far.
    pub fn stats(&self) -> Stats {
        self.inner.events.stats()
    }

    /// Stops the runtime: refuses new reloads, waits for those in flight to
    /// finish (or roll back), drops every handler instance, and releases
    /// the state directory.
    ///
    /// Must be awaited inside a tokio runtime: handler calls run on its
    /// blocking thread pool.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let slots = self.inner.slots();
        for slot in slots {
            let mut state = slot.state.lock().await;
            state.instance = None;
        }
        // The replay records of every event so far are written, then the
        // write-ahead log is folded into the database file (on a blocking
        // thread: both wait for the disk). Readers that still hold the
        // runtime (an admin server's tasks) must not keep the log alive.
        if self.inner.replays.is_some() || self.inner.revisions.is_some() {
            let inner = self.inner.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(replays) = &inner.replays {
                    replays.close();
                }
                if let Some(store) = &inner.revisions
                    && let Err(e) = store.checkpoint()
                {
                    tracing::warn!("folding the revision log into the database: {e}");
                }
            })
            .await;
        }
        // Nothing more is written: another runtime may take the directory.
        self.inner
            .lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

impl Slot {
    async fn info(&self) -> ComponentInfo {
        let published = self
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match published {
            Some(info) => info,
            None => info_of(&*self.state.lock().await),
        }
    }
}

pub(crate) fn info_of(state: &ComponentState) -> ComponentInfo {
    let committed = state.committed.as_ref();
    let null = || Arc::new(Value::Null);
    ComponentInfo {
        name: state.name.to_string(),
        support_level: state.support,
        version: committed.map_or(0, |c| c.version),
        config: committed.map_or_else(null, |c| c.input.clone()),
        effective: committed.map_or_else(null, |c| c.effective.clone()),
        source: committed.map(|c| c.source.clone()),
        pending: state.pending.clone(),
        degraded: state.degraded,
        handler_hash: state.handler.hash.clone(),
        instances_created: state.instances_created,
    }
}
