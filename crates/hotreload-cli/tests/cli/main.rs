//! The `hotreload` binary as a process: its commands, the daemon under
//! signals and crashes, and its exit codes. The library's own tests are in
//! the root package (`tests/all`).

mod cli;
mod crash;
mod daemon_cli;

use std::path::{Path, PathBuf};

use hotreload::Settings;

/// Quiet period the daemon tests use.
const DEBOUNCE_MS: u64 = 50;

pub(crate) fn settings() -> Settings {
    Settings {
        retry_interval_ms: 1,
        ..Settings::default()
    }
}

/// Writes each component's file (unless its content is empty) and a
/// manifest naming them, in `dir`.
pub(crate) fn write_manifest(dir: &Path, components: &[(&str, &str, &str, &str)]) -> PathBuf {
    let mut manifest = format!("[runtime]\ndebounce_ms = {DEBOUNCE_MS}\nretry_interval_ms = 1\n");
    for (name, handler, file, content) in components {
        if !content.is_empty() {
            std::fs::write(dir.join(file), content).unwrap();
        }
        manifest.push_str(&format!(
            "[[component]]\nname = \"{name}\"\nhandler = \"{handler}\"\nconfig = \"{file}\"\n"
        ));
    }
    let path = dir.join("hotreload.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}
