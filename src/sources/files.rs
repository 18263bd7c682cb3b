//! Watching configuration and handler files.
//!
//! Each file's *directory* is watched (not the file): editors save by
//! writing a temporary file and renaming it over the original, vim renames
//! the original away first, Kubernetes swaps a `..data` symlink; in all of
//! these the file's inode changes and a watch on the file itself would be
//! lost. Any event in a directory wakes every target in it; after a quiet
//! period (`debounce_ms`, capped so a never-ending stream of writes still
//! gets through, timed by a thread of its own to the tens of microseconds)
//! the target's file is read again and, if its bytes changed, reloaded. The
//! reading, not the event, decides, so a burst of events becomes one reload
//! of the final content.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::sync::{Condvar, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::format::Format;
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

/// The file source: watches configuration and handler files and sends
/// their new contents as changes, until dropped.
pub struct FileSource {
    _watcher: RecommendedWatcher,
    debouncer: Arc<Debouncer>,
    targets: Vec<WatchTarget>,
    loaded: HashMap<(String, WatchedKind), Vec<u8>>,
}

/// A started file source: stops its debounce thread and tasks when dropped.
struct Running {
    _watcher: RecommendedWatcher,
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

/// Quiet periods, timed by a thread of their own: tokio's timers tick in
/// whole milliseconds, which alone would add up to a millisecond to every
/// change; this thread wakes within tens of microseconds of the deadline.
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
    stop: bool,
}

impl Debouncer {
    fn touch(&self, target: usize) {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let first = st.due[target].map_or(now, |(_, first)| first);
        st.due[target] = Some((now + self.debounce, first));
        self.wake.notify_one();
    }

    fn stop(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.wake.notify_one();
    }

    fn run(&self) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let st = &mut *guard;
            if st.stop {
                return;
            }
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

/// Reads a configuration file in the format its extension names (for
/// code that is not async; async code reads with `tokio::fs` and calls
/// [`config_of`]).
///
/// # Errors
/// A message naming the file and what is wrong (missing, unreadable, not
/// valid in its format).
pub fn read_config_file(path: &Path) -> Result<ConfigInput, String> {
    let text = std::fs::read(path).map_err(|e| describe_io(path, &e))?;
    config_of(path, text)
}

/// Makes a configuration of a file's bytes, in the format its extension names.
///
/// # Errors
/// A message naming the file and what is wrong.
pub fn config_of(path: &Path, bytes: Vec<u8>) -> Result<ConfigInput, String> {
    Format::of(path)
        .decode(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// What a file that cannot be read is reported as.
pub(crate) fn describe_io(path: &Path, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!(
            "{}: the file was removed; the last good configuration stays in force",
            path.display()
        ),
        io::ErrorKind::PermissionDenied => format!(
            "{}: permission denied; the last good configuration stays in force",
            path.display()
        ),
        _ => format!("{}: {e}", path.display()),
    }
}

impl FileSource {
    /// Starts watching the targets' directories. Nothing is sent until the
    /// source is attached to a runtime ([`Runtime::attach`](crate::Runtime::attach));
    /// changes seen before then are kept, so a file saved while components
    /// load is not missed.
    ///
    /// # Errors
    /// When a directory cannot be watched.
    pub fn watch(targets: Vec<WatchTarget>, debounce: Duration) -> Result<FileSource, Error> {
        let debouncer = Arc::new(Debouncer {
            state: Mutex::new(DebounceState {
                due: vec![None; targets.len()],
                go: vec![None; targets.len()],
                stop: false,
            }),
            wake: Condvar::new(),
            debounce,
            max_wait: (debounce * 10).max(Duration::from_millis(500)),
        });
        let mut by_dir: HashMap<PathBuf, Vec<usize>> = HashMap::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let dir = parent_dir(&target.path);
            if !dirs.contains(&dir) {
                dirs.push(dir.clone());
            }
            // Events may name the directory as watched or resolved; know both.
            let mut keys = vec![dir.clone()];
            if let Ok(real) = dir.canonicalize()
                && real != dir
            {
                keys.push(real);
            }
            for key in keys {
                by_dir.entry(key).or_default().push(i);
            }
        }
        let touched = debouncer.clone();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(event) => {
                    for path in &event.paths {
                        for key in [Some(path.as_path()), path.parent()].into_iter().flatten() {
                            for &i in by_dir.get(key).into_iter().flatten() {
                                touched.touch(i);
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!("file watcher: {e}"),
            })
            .map_err(|e| Error::Watch {
                path: PathBuf::from("."),
                source: e,
            })?;
        for dir in dirs {
            watcher
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|e| Error::Watch {
                    path: dir.clone(),
                    source: e,
                })?;
        }
        Ok(FileSource {
            _watcher: watcher,
            debouncer,
            targets,
            loaded: HashMap::new(),
        })
    }

    /// Says which bytes a component was loaded from: a file that still
    /// holds them when the source starts is not sent again. A target with
    /// no loaded bytes is read when the source starts.
    pub fn loaded(&mut self, component: &str, kind: WatchedKind, bytes: Vec<u8>) {
        self.loaded.insert((component.to_owned(), kind), bytes);
    }
}

impl Source for FileSource {
    fn start(self: Box<Self>, sink: ChangeSink) -> Result<SourceHandle, Error> {
        let FileSource {
            _watcher,
            debouncer,
            targets,
            mut loaded,
        } = *self;
        let mut tasks = Vec::with_capacity(targets.len());
        for (i, target) in targets.into_iter().enumerate() {
            let last = loaded.remove(&(target.component.clone(), target.kind));
            let (tx, rx) = mpsc::unbounded_channel();
            debouncer.state.lock().unwrap_or_else(|e| e.into_inner()).go[i] = Some(tx);
            tasks.push(tokio::spawn(watch_target(sink.clone(), target, rx, last)));
        }
        let thread_debouncer = debouncer.clone();
        let thread = std::thread::Builder::new()
            .name("hotreload-debounce".into())
            .spawn(move || thread_debouncer.run())
            .map_err(|source| Error::Io {
                path: PathBuf::from("<debounce thread>"),
                source,
            })?;
        Ok(SourceHandle::new(Running {
            _watcher,
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

async fn watch_target(
    sink: ChangeSink,
    target: WatchTarget,
    mut go: mpsc::UnboundedReceiver<()>,
    mut last: Option<Vec<u8>>,
) {
    if last.is_none() {
        // Not loaded from: what the file holds now is the first change.
        last = tokio::fs::read(&target.path).await.ok();
    }
    while go.recv().await.is_some() {
        let payload = match tokio::fs::read(&target.path).await {
            Ok(bytes) => {
                if last.as_deref() == Some(&bytes[..]) {
                    continue;
                }
                last = Some(bytes.clone());
                match target.kind {
                    WatchedKind::Config => Payload::Config {
                        bytes,
                        format: Format::of(&target.path),
                    },
                    WatchedKind::Handler => Payload::Handler(bytes),
                }
            }
            Err(e) => {
                // Report a missing or unreadable file once, not on every event.
                if last.is_none() {
                    continue;
                }
                last = None;
                Payload::Unreadable(describe_io(&target.path, &e))
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
