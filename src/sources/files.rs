//! Watching configuration and handler files.
//!
//! Each file's *directory* is watched (not the file): editors save by
//! writing a temporary file and renaming it over the original, vim renames
//! the original away first, Kubernetes swaps a `..data` symlink; in all of
//! these the file's inode changes and a watch on the file itself would be
//! lost. Any event in a directory wakes every target in it; after a quiet
//! period (`debounce_ms`, capped so a never-ending stream of writes still
//! gets through) the target's file is read again and, if its bytes changed,
//! reloaded. The reading, not the event, decides, so a burst of events
//! becomes one reload of the final content.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::format::Format;
use crate::error::Error;
use crate::manager::{HandlerSource, Runtime};
use crate::outcome::EventKind;
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

/// Watches files and reloads their components until dropped.
pub struct FileWatcher {
    _watcher: RecommendedWatcher,
    pending: Vec<(WatchTarget, Arc<Notify>)>,
    debounce: Duration,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FileWatcher {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Reads a configuration file in the format its extension names.
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
    let text =
        String::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8 text: {e}", path.display()))?;
    match Format::of(path) {
        // JSON goes to the handler as written; the transaction parses it.
        Format::Json => Ok(ConfigInput::Json(text)),
        format => format
            .parse(&text)
            .map(ConfigInput::Value)
            .map_err(|e| format!("{}: {e}", path.display())),
    }
}

fn describe_io(path: &Path, e: &io::Error) -> String {
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

impl FileWatcher {
    /// Starts watching the targets' directories. Nothing is reloaded until
    /// [`FileWatcher::run`]; changes seen before then are kept, so a file
    /// saved while components load is not missed.
    ///
    /// # Errors
    /// When a directory cannot be watched.
    pub fn watch(targets: Vec<WatchTarget>, debounce: Duration) -> Result<FileWatcher, Error> {
        let mut by_dir: HashMap<PathBuf, Vec<Arc<Notify>>> = HashMap::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut pending = Vec::new();
        for target in targets {
            let dir = parent_dir(&target.path);
            let wake = Arc::new(Notify::new());
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
                by_dir.entry(key).or_default().push(wake.clone());
            }
            pending.push((target, wake));
        }
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(event) => {
                    for path in &event.paths {
                        for key in [Some(path.as_path()), path.parent()].into_iter().flatten() {
                            if let Some(wakes) = by_dir.get(key) {
                                wakes.iter().for_each(|w| w.notify_one());
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!("file watcher: {e}"),
            })
            .map_err(|e| Error::Io {
                path: PathBuf::from("."),
                source: io::Error::other(e),
            })?;
        for dir in dirs {
            watcher
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|e| Error::Io {
                    path: dir.clone(),
                    source: io::Error::other(e),
                })?;
        }
        Ok(FileWatcher {
            _watcher: watcher,
            pending,
            debounce,
            tasks: Vec::new(),
        })
    }

    /// Starts applying changes. `loaded` gives, per component and kind, the
    /// bytes the component was loaded from; a file that still holds them is
    /// not reloaded. A target missing from `loaded` is read now.
    pub fn run(&mut self, runtime: &Runtime, loaded: &HashMap<(String, WatchedKind), Vec<u8>>) {
        for (target, wake) in self.pending.drain(..) {
            let last = loaded
                .get(&(target.component.clone(), target.kind))
                .cloned()
                .or_else(|| std::fs::read(&target.path).ok());
            self.tasks.push(tokio::spawn(watch_target(
                runtime.clone(),
                target,
                wake,
                self.debounce,
                last,
            )));
        }
    }

    /// Watches and applies changes at once (the files' current bytes count
    /// as loaded).
    ///
    /// # Errors
    /// When a directory cannot be watched.
    pub fn start(
        runtime: Runtime,
        targets: Vec<WatchTarget>,
        debounce: Duration,
    ) -> Result<FileWatcher, Error> {
        let mut watcher = FileWatcher::watch(targets, debounce)?;
        watcher.run(&runtime, &HashMap::new());
        Ok(watcher)
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
    runtime: Runtime,
    target: WatchTarget,
    wake: Arc<Notify>,
    debounce: Duration,
    mut last: Option<Vec<u8>>,
) {
    // A stream of writes that never pauses still gets applied this often.
    let max_wait = (debounce * 10).max(Duration::from_millis(500));
    let path_text = target.path.display().to_string();
    loop {
        wake.notified().await;
        let first = Instant::now();
        while tokio::time::timeout(debounce, wake.notified())
            .await
            .is_ok()
        {
            if first.elapsed() >= max_wait {
                break;
            }
        }
        let read = tokio::fs::read(&target.path).await;
        let result = match read {
            Ok(bytes) => {
                if last.as_deref() == Some(&bytes[..]) {
                    continue;
                }
                last = Some(bytes.clone());
                match target.kind {
                    WatchedKind::Config => match config_of(&target.path, bytes) {
                        Ok(input) => {
                            runtime
                                .reload_from(
                                    &target.component,
                                    input,
                                    EventKind::FileChange,
                                    Some(path_text.clone()),
                                )
                                .await
                        }
                        Err(message) => {
                            runtime
                                .reject_input(
                                    &target.component,
                                    EventKind::FileChange,
                                    Some(path_text.clone()),
                                    message,
                                )
                                .await
                        }
                    },
                    WatchedKind::Handler => {
                        runtime
                            .swap_handler(&target.component, HandlerSource::Bytes(bytes.into()))
                            .await
                    }
                }
            }
            Err(e) => {
                // Report a missing or unreadable file once, not on every event.
                if last.is_none() {
                    continue;
                }
                last = None;
                runtime
                    .reject_input(
                        &target.component,
                        EventKind::FileChange,
                        Some(path_text.clone()),
                        describe_io(&target.path, &e),
                    )
                    .await
            }
        };
        match result {
            Ok(_) => {}
            Err(Error::ShutDown) => return,
            Err(e) => tracing::warn!(component = %target.component, "{e}"),
        }
    }
}
