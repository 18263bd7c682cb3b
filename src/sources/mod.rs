//! Where new configurations come from: files on disk (watched), and the
//! formats they are written in.

mod files;
mod format;

pub use self::files::{FileWatcher, WatchTarget, WatchedKind, config_of, read_config_file};
pub use self::format::Format;
