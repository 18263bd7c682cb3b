//! The `hotreload` binary as a process: its commands, the daemon under
//! signals and crashes, and its exit codes. The library's own tests are in
//! the root package (`tests/all`).

mod admin;
mod cli;
mod crash;
mod daemon_cli;
mod fleet;
mod hostile_fs;
mod load;
mod observe;
mod ui;

use std::io::Write;
use std::path::{Path, PathBuf};

use hotreload::Settings;

/// A component's latest revision in a state directory, read as
/// `hotreload history` does (read-only, while a daemon may run).
pub(crate) fn latest(state: &Path, component: &str) -> anyhow::Result<hotreload::state::Revision> {
    let store = hotreload::state::Revisions::open_read_only(state)?
        .ok_or_else(|| anyhow::anyhow!("no revision store in {}", state.display()))?;
    let latest = store
        .latest(component)?
        .ok_or_else(|| anyhow::anyhow!("no revision of {component}"))?;
    Ok(latest.revision)
}

/// A revision's configuration as a value.
pub(crate) fn config_of(r: &hotreload::state::Revision) -> serde_json::Value {
    serde_json::from_str(&r.config).expect("a revision's configuration is JSON")
}

/// Quiet period the daemon tests use.
const DEBOUNCE_MS: u64 = 50;

/// Whether this runs under CI (`CI` set, as CI services do, and not to
/// `false` or `0`): there a test that cannot run must fail, not skip.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A test that cannot run here: a failure under CI; elsewhere a skip,
/// said loudly. Gives `None` to return early with.
pub(crate) fn cannot_run<T>(test: &str, why: &str) -> Option<T> {
    assert!(
        !in_ci(),
        "{test}: {why}; under CI this test must run (CI={:?})",
        std::env::var("CI").unwrap_or_default()
    );
    // Straight to stderr: the test harness captures `eprintln!` of a test
    // that passes, and a skip must not pass unseen.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED {test}: {why}. It tests nothing here; run it as root \
         (CI=true makes this a failure). !!!\n"
    );
    None
}

pub(crate) fn settings() -> Settings {
    Settings {
        retry_interval_ms: 1,
        ..Settings::default()
    }
}

/// Writes each component's file (unless its content is empty) and a
/// manifest naming them, in `dir`.
pub(crate) fn write_manifest(dir: &Path, components: &[(&str, &str, &str, &str)]) -> PathBuf {
    let mut manifest = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndebounce_ms = {DEBOUNCE_MS}\nretry_interval_ms = 1\n"
    );
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
