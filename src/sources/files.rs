//! Watching configuration and handler files.
//!
//! Each file's *directory* is watched (not the file): editors save by
//! writing a temporary file and renaming it over the original, vim renames
//! the original away first, Kubernetes swaps a `..data` symlink; in all of
//! these the file's inode changes and a watch on the file itself would be
//! lost. Directories are watched by their resolved path, once however many
//! spellings reach them (two symlinks, a `..` path), and so is each one's
//! parent: a directory that is deleted and created again, swapped by a
//! symlink flip, or missing at start is watched again as soon as it is
//! back. Reading a file is not a change (the watcher's own reads would
//! otherwise wake it forever).
//!
//! Any change in a directory wakes every target in it; after a quiet
//! period (`debounce_ms`, capped so a never-ending stream of writes still
//! gets through, timed by a thread of its own to the tens of microseconds)
//! the target's file is read again and, if its bytes changed, sent as a
//! change. The reading, not the event, decides, so a burst of events
//! becomes one reload of the final content. A file is read only if it is a
//! regular file inside the directory the manifest names (or a root it
//! allows), and never past its size limit ([`read_regular`]).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::format::{Format, InputError};
use super::read::{ReadError, read_regular};
use super::{Change, ChangeSink, Origin, Payload, Source, SourceHandle};
use crate::error::Error;
use crate::transaction::ConfigInput;

/// What a watched file is to its component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchedKind {
    /// Its configuration file.
    Config,
    /// Its handler `.wasm`.
    Handler,
}

/// A file to watch for a component.
#[derive(Debug, Clone)]
pub struct WatchTarget {
    /// The component.
    pub component: String,
    /// The file, as the manifest names it (not resolved through symlinks).
    pub path: PathBuf,
    /// Configuration or handler.
    pub kind: WatchedKind,
}

/// Where a file may be read from and how much of it: the rules every read
/// of a watched file follows.
#[derive(Debug, Clone)]
pub struct FileRules {
    /// Largest configuration file, in bytes.
    pub config_limit: u64,
    /// Largest handler file, in bytes.
    pub handler_limit: u64,
    /// Directories a configuration file may resolve into besides its own
    /// (as the manifest names it).
    pub roots: Vec<PathBuf>,
}

impl Default for FileRules {
    fn default() -> Self {
        FileRules {
            config_limit: 1 << 20,
            handler_limit: 256 << 20,
            roots: Vec::new(),
        }
    }
}

impl FileRules {
    /// Reads a watched file: a configuration must resolve inside its own
    /// directory or one of the roots (a link out of them is refused, and
    /// nothing of its target is read), and both kinds must be regular files
    /// under their limit.
    ///
    /// # Errors
    /// [`ReadError`] naming the file and what is wrong.
    pub fn read(&self, path: &Path, kind: WatchedKind) -> Result<Vec<u8>, ReadError> {
        match kind {
            WatchedKind::Handler => read_regular(path, self.handler_limit),
            WatchedKind::Config => {
                let resolved = self.confine(path)?;
                read_regular(&resolved, self.config_limit)
            }
        }
    }

    /// [`FileRules::read`] on a blocking thread, for async code.
    pub(crate) async fn read_async(
        &self,
        path: &Path,
        kind: WatchedKind,
    ) -> Result<Vec<u8>, ReadError> {
        let (rules, p) = (self.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || rules.read(&p, kind))
            .await
            .unwrap_or_else(|e| {
                Err(ReadError::Io {
                    path: path.to_owned(),
                    source: std::io::Error::other(e.to_string()),
                })
            })
    }

    /// The file's resolved path, if it lies inside its own directory or a root.
    fn confine(&self, path: &Path) -> Result<PathBuf, ReadError> {
        let resolved = path.canonicalize().map_err(|e| ReadError::io(path, e))?;
        let own = parent_dir(path).canonicalize().ok();
        let inside = own.iter().chain(self.roots.iter()).any(|root| {
            let root = root.canonicalize().unwrap_or_else(|_| root.clone());
            resolved.starts_with(&root)
        });
        if inside {
            Ok(resolved)
        } else {
            Err(ReadError::Outside {
                path: path.to_owned(),
            })
        }
    }
}

/// Reads a configuration file in the format its extension names, with the
/// default [`FileRules`] (for code that is not async).
///
/// # Errors
/// What is wrong (unreadable, not a regular file, too large, empty, not
/// valid in its format), naming the file.
pub fn read_config_file(path: &Path) -> Result<ConfigInput, InputError> {
    let bytes = FileRules::default()
        .read(path, WatchedKind::Config)
        .map_err(InputError::from)?;
    config_of(path, bytes)
}

/// Makes a configuration of a file's bytes, in the format its extension names.
///
/// # Errors
/// What is wrong, naming the file.
pub fn config_of(path: &Path, bytes: Vec<u8>) -> Result<ConfigInput, InputError> {
    Format::of(path)
        .decode(bytes)
        .map_err(|e| e.at(&path.display().to_string()))
}

/// The file source: watches configuration and handler files and sends
/// their new contents as changes, until dropped.
pub struct FileSource {
    watching: Arc<Watching>,
    debouncer: Arc<Debouncer>,
    targets: Vec<WatchTarget>,
    rules: Arc<FileRules>,
    loaded: HashMap<(String, WatchedKind), Result<Vec<u8>, String>>,
}

/// A started file source: stops its debounce thread and tasks when dropped.
struct Running {
    _watching: Arc<Watching>,
    debouncer: Arc<Debouncer>,
    thread: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.debouncer.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The directories targets live in, grouped by how the manifest spells
/// them, and what is watched for them.
struct Watching {
    watcher: Mutex<RecommendedWatcher>,
    groups: Vec<Group>,
    state: Mutex<WatchState>,
}

/// The targets of one directory spelling.
struct Group {
    /// The directory, absolute but not resolved through symlinks.
    dir: PathBuf,
    targets: Vec<usize>,
}

#[derive(Default)]
struct WatchState {
    /// Per group: its directory resolved, while it exists.
    resolved: Vec<Option<PathBuf>>,
    /// Resolved directories watched now.
    watched: HashSet<PathBuf>,
}

impl Watching {
    /// Brings the watches in line with the directories as they are now:
    /// each group's directory (resolved) and its nearest existing parent.
    /// Groups in `renewed` had their directory itself removed, created or
    /// renamed: the kernel may have dropped its watch even if the path is
    /// the same, so it is watched anew. Gives the groups whose directory
    /// changed (appeared, moved, came back).
    fn resync(&self, renewed: &HashSet<usize>) -> Vec<usize> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut wanted: HashSet<PathBuf> = HashSet::new();
        let mut moved = Vec::new();
        let mut resolved = Vec::with_capacity(self.groups.len());
        for (g, group) in self.groups.iter().enumerate() {
            let now = group.dir.canonicalize().ok().filter(|d| d.is_dir());
            if let Some(d) = &now {
                wanted.insert(d.clone());
            }
            // The parent: sees the directory deleted, created or swapped.
            let mut up = group.dir.parent();
            while let Some(p) = up {
                if let Ok(real) = p.canonicalize() {
                    wanted.insert(real);
                    break;
                }
                up = p.parent();
            }
            if state.resolved[g] != now || (renewed.contains(&g) && now.is_some()) {
                moved.push(g);
            }
            resolved.push(now);
        }
        state.resolved = resolved;
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        for &g in &moved {
            if let Some(d) = &state.resolved[g] {
                let _ = watcher.unwatch(d);
                let d = d.clone();
                state.watched.remove(&d);
            }
        }
        for gone in state
            .watched
            .difference(&wanted)
            .cloned()
            .collect::<Vec<_>>()
        {
            let _ = watcher.unwatch(&gone);
            state.watched.remove(&gone);
        }
        for dir in wanted {
            if state.watched.contains(&dir) {
                continue;
            }
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    state.watched.insert(dir);
                }
                Err(e) => tracing::warn!(dir = %dir.display(), "cannot watch: {e}"),
            }
        }
        moved
    }

    /// The targets an event at `path` concerns: every target in a group
    /// whose resolved directory holds `path`. Says whether the event may
    /// have changed the tree's shape (a directory of a group, or one above
    /// it, or a group whose directory is missing), and which groups'
    /// directories it names.
    fn targets_of(
        &self,
        path: &Path,
        out: &mut HashSet<usize>,
        renewed: &mut HashSet<usize>,
    ) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut structural = false;
        for (g, group) in self.groups.iter().enumerate() {
            if group.dir == path {
                renewed.insert(g);
                structural = true;
            }
            let Some(dir) = &state.resolved[g] else {
                // Missing: anything may be its return.
                structural = true;
                continue;
            };
            if path.parent() == Some(dir.as_path()) {
                out.extend(group.targets.iter().copied());
            }
            if dir == path {
                renewed.insert(g);
            }
            if dir.starts_with(path) || group.dir.starts_with(path) {
                structural = true;
            }
        }
        structural
    }
}

/// Quiet periods, timed by a thread of their own: tokio's timers tick in
/// whole milliseconds, which alone would add up to a millisecond to every
/// change; this thread wakes within tens of microseconds of the deadline.
/// It also routes the watcher's events, and watches directories anew when
/// they come and go.
struct Debouncer {
    state: Mutex<DebounceState>,
    wake: Condvar,
    debounce: Duration,
    /// A stream of writes that never pauses is still applied this often.
    max_wait: Duration,
}

struct DebounceState {
    /// Per target: when its quiet period ends, and when its first unhandled
    /// event came.
    due: Vec<Option<(Instant, Instant)>>,
    /// Per target: where to send "read your file now", once running.
    go: Vec<Option<mpsc::UnboundedSender<()>>>,
    /// Paths of events not routed yet; `None` when events were lost and
    /// everything must be looked at again.
    events: Vec<Option<PathBuf>>,
    stop: bool,
}

impl Debouncer {
    fn push(&self, paths: impl IntoIterator<Item = Option<PathBuf>>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.events.extend(paths);
        self.wake.notify_one();
    }

    fn stop(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.wake.notify_one();
    }

    fn run(&self, watching: &Watching) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if guard.stop {
                return;
            }
            if !guard.events.is_empty() {
                let events = std::mem::take(&mut guard.events);
                drop(guard);
                let touched = route(watching, events);
                let now = Instant::now();
                guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
                for i in touched {
                    let first = guard.due[i].map_or(now, |(_, first)| first);
                    guard.due[i] = Some((now + self.debounce, first));
                }
                continue;
            }
            let st = &mut *guard;
            let now = Instant::now();
            let mut next: Option<Instant> = None;
            for i in 0..st.due.len() {
                let Some((quiet, first)) = st.due[i] else {
                    continue;
                };
                let at = quiet.min(first + self.max_wait);
                if at <= now {
                    if let Some(go) = st.go[i].clone() {
                        st.due[i] = None;
                        let _ = go.send(());
                    }
                } else {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
            let wait = next.map_or(Duration::from_secs(3600), |n| {
                n.saturating_duration_since(now)
            });
            guard = self
                .wake
                .wait_timeout(guard, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The targets a batch of events wakes, watching directories anew first
/// when the tree's shape changed.
fn route(watching: &Watching, events: Vec<Option<PathBuf>>) -> HashSet<usize> {
    let mut touched = HashSet::new();
    let mut renewed = HashSet::new();
    let mut structural = false;
    let mut lost = false;
    for path in &events {
        match path {
            Some(p) => structural |= watching.targets_of(p, &mut touched, &mut renewed),
            None => lost = true,
        }
    }
    if structural || lost {
        for g in watching.resync(&renewed) {
            touched.extend(watching.groups[g].targets.iter().copied());
        }
        if lost {
            for group in &watching.groups {
                touched.extend(group.targets.iter().copied());
            }
        }
        // Events under a directory just watched again concern its targets.
        let mut ignored = HashSet::new();
        for path in events.iter().flatten() {
            watching.targets_of(path, &mut touched, &mut ignored);
        }
    }
    touched
}

/// Whether a watcher event can mean that a file changed: opening, reading
/// and closing a file unwritten cannot (and the source's own reads cause
/// exactly those).
fn is_change(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Access(
            AccessKind::Read
                | AccessKind::Open(_)
                | AccessKind::Close(AccessMode::Read | AccessMode::Execute | AccessMode::Any)
                | AccessKind::Any
        )
    )
}

impl FileSource {
    /// Starts watching the targets' directories. Nothing is sent until the
    /// source is attached to a runtime ([`Runtime::attach`](crate::Runtime::attach));
    /// changes seen before then are kept, so a file saved while components
    /// load is not missed. A directory that does not exist yet is watched
    /// for from its nearest existing parent.
    ///
    /// # Errors
    /// When the watcher cannot be created.
    pub fn watch(
        targets: Vec<WatchTarget>,
        debounce: Duration,
        rules: FileRules,
    ) -> Result<FileSource, Error> {
        let debouncer = Arc::new(Debouncer {
            state: Mutex::new(DebounceState {
                due: vec![None; targets.len()],
                go: vec![None; targets.len()],
                events: Vec::new(),
                stop: false,
            }),
            wake: Condvar::new(),
            debounce,
            max_wait: (debounce * 10).max(Duration::from_millis(500)),
        });
        let mut groups: Vec<Group> = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let dir = parent_dir(&target.path);
            match groups.iter_mut().find(|g| g.dir == dir) {
                Some(g) => g.targets.push(i),
                None => groups.push(Group {
                    dir,
                    targets: vec![i],
                }),
            }
        }
        let sink = debouncer.clone();
        let watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(event) if event.need_rescan() => sink.push([None]),
                Ok(event) if is_change(&event.kind) => sink.push(event.paths.into_iter().map(Some)),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("file watcher: {e}");
                    sink.push([None]);
                }
            })
            .map_err(|e| Error::Watch {
                path: PathBuf::from("."),
                source: e,
            })?;
        let watching = Arc::new(Watching {
            watcher: Mutex::new(watcher),
            state: Mutex::new(WatchState {
                resolved: vec![None; groups.len()],
                watched: HashSet::new(),
            }),
            groups,
        });
        watching.resync(&HashSet::new());
        Ok(FileSource {
            watching,
            debouncer,
            targets,
            rules: Arc::new(rules),
            loaded: HashMap::new(),
        })
    }

    /// Says which bytes a component was loaded from: a file that still
    /// holds them when the source starts is not sent again. A target with
    /// no loaded bytes is read when the source starts.
    pub fn loaded(&mut self, component: &str, kind: WatchedKind, bytes: Vec<u8>) {
        self.loaded.insert((component.to_owned(), kind), Ok(bytes));
    }

    /// Says that a component's file could not be read when it loaded
    /// (`error` as [`ReadError`] gives it): the file counts as changed
    /// as soon as it can be read, whatever it then holds.
    pub fn unreadable(&mut self, component: &str, kind: WatchedKind, error: &ReadError) {
        self.loaded
            .insert((component.to_owned(), kind), Err(unreadable_message(error)));
    }
}

impl Source for FileSource {
    fn start(self: Box<Self>, sink: ChangeSink) -> Result<SourceHandle, Error> {
        let FileSource {
            watching,
            debouncer,
            targets,
            rules,
            mut loaded,
        } = *self;
        let mut tasks = Vec::with_capacity(targets.len());
        for (i, target) in targets.into_iter().enumerate() {
            let last = loaded.remove(&(target.component.clone(), target.kind));
            let (tx, rx) = mpsc::unbounded_channel();
            debouncer.state.lock().unwrap_or_else(|e| e.into_inner()).go[i] = Some(tx);
            tasks.push(tokio::spawn(watch_target(
                sink.clone(),
                target,
                rules.clone(),
                rx,
                last,
            )));
        }
        let thread_debouncer = debouncer.clone();
        let thread_watching = watching.clone();
        let thread = std::thread::Builder::new()
            .name("hotreload-debounce".into())
            .spawn(move || thread_debouncer.run(&thread_watching))
            .map_err(|source| Error::Io {
                path: PathBuf::from("<debounce thread>"),
                source,
            })?;
        Ok(SourceHandle::new(Running {
            _watching: watching,
            debouncer,
            thread: Some(thread),
            tasks,
        }))
    }
}

/// The file's directory, absolute (but not resolved through symlinks).
fn parent_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

/// What a watched file holds now, read off the async threads.
async fn read_target(target: &WatchTarget, rules: &FileRules) -> Result<Vec<u8>, ReadError> {
    rules.read_async(&target.path, target.kind).await
}

async fn watch_target(
    sink: ChangeSink,
    target: WatchTarget,
    rules: Arc<FileRules>,
    mut go: mpsc::UnboundedReceiver<()>,
    loaded: Option<Result<Vec<u8>, String>>,
) {
    let (mut last, mut last_error) = match loaded {
        Some(Ok(bytes)) => (Some(bytes), None),
        Some(Err(message)) => (None, Some(message)),
        None => (None, None),
    };
    if last.is_none() && last_error.is_none() {
        // Not loaded from: what the file holds now is the first change.
        match read_target(&target, &rules).await {
            Ok(bytes) => last = Some(bytes),
            // Unreadable at start (the component started on its
            // last-known-good): the reason was told then.
            Err(e) => last_error = Some(unreadable_message(&e)),
        }
    }
    while go.recv().await.is_some() {
        let payload = match read_target(&target, &rules).await {
            Ok(bytes) => {
                if last.as_deref() == Some(&bytes[..]) {
                    continue;
                }
                last = Some(bytes.clone());
                last_error = None;
                match target.kind {
                    WatchedKind::Config => Payload::Config {
                        bytes,
                        format: Format::of(&target.path),
                    },
                    WatchedKind::Handler => Payload::Handler(bytes),
                }
            }
            Err(e) => {
                // Report an unreadable file once, not on every event; a
                // different reason (removed, then a FIFO) is news.
                let message = unreadable_message(&e);
                if last_error.as_deref() == Some(message.as_str()) {
                    continue;
                }
                last = None;
                last_error = Some(message.clone());
                Payload::Unreadable {
                    cause: e.cause(),
                    message,
                }
            }
        };
        let change = Change {
            component: target.component.clone(),
            origin: Origin::File(target.path.clone()),
            payload,
        };
        if sink.send(change).is_err() {
            return;
        }
    }
}

/// What an unreadable watched file is reported as.
pub(crate) fn unreadable_message(e: &ReadError) -> String {
    match e {
        ReadError::Missing { path } => format!(
            "{}: the file was removed; the last good configuration stays in force",
            path.display()
        ),
        e => format!("{e}; the last good configuration stays in force"),
    }
}

impl From<ReadError> for InputError {
    fn from(e: ReadError) -> InputError {
        InputError {
            cause: e.cause(),
            message: e.to_string(),
        }
    }
}
