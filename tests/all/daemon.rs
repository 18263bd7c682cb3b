//! The daemon against real files in a temporary directory: what editors,
//! Kubernetes and people do to configuration files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotreload::daemon::{Daemon, Manifest};
use hotreload::{Cause, Event, EventKind, Outcome, Phase};
use serde_json::{Value, json};
use tokio::sync::broadcast;

const DEBOUNCE_MS: u64 = 50;

use hotreload_handlers::by_name as bundled;

pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) daemon: Daemon,
    pub(crate) events: broadcast::Receiver<Arc<Event>>,
}

impl Setup {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The next event of `component`, within `secs` seconds.
    pub(crate) async fn next(&mut self, component: &str, secs: u64) -> Arc<Event> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Ok(e)) if e.component == component => return e,
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => panic!("event stream: {e}"),
                Err(_) => panic!("no event for {component} within {secs} s"),
            }
        }
    }

    /// Asserts no event arrives for a while.
    pub(crate) async fn quiet(&mut self, ms: u64) {
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(ms), self.events.recv()).await
        {
            panic!("unexpected event: {}", e.summary());
        }
    }

    pub(crate) fn current(&self, component: &str) -> Value {
        (*self.daemon.runtime().current(component).unwrap()).clone()
    }
}

/// Writes a manifest with `components` (name, handler, config file name,
/// content) and starts a daemon on it.
pub(crate) async fn start(components: &[(&str, &str, &str, &str)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    start_in(dir, components).await.unwrap()
}

pub(crate) fn write_manifest(dir: &Path, components: &[(&str, &str, &str, &str)]) -> PathBuf {
    write_manifest_with(dir, components, DEBOUNCE_MS)
}

fn write_manifest_with(
    dir: &Path,
    components: &[(&str, &str, &str, &str)],
    debounce_ms: u64,
) -> PathBuf {
    let mut manifest = format!("[runtime]\ndebounce_ms = {debounce_ms}\nretry_interval_ms = 1\n");
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

pub(crate) async fn start_in(
    dir: tempfile::TempDir,
    components: &[(&str, &str, &str, &str)],
) -> Result<Setup, String> {
    start_with(dir, components, DEBOUNCE_MS).await
}

async fn start_with(
    dir: tempfile::TempDir,
    components: &[(&str, &str, &str, &str)],
    debounce_ms: u64,
) -> Result<Setup, String> {
    let path = write_manifest_with(dir.path(), components, debounce_ms);
    let manifest = Manifest::load(&path).map_err(|e| e.to_string())?;
    let mut daemon = Daemon::new(manifest, bundled).map_err(|e| e.to_string())?;
    let events = daemon.runtime().event_stream();
    daemon.start().await.map_err(|e| e.to_string())?;
    let mut setup = Setup {
        dir,
        daemon,
        events,
    };
    for (name, ..) in components {
        let e = setup.next(name, 10).await;
        assert!(
            matches!(e.kind, EventKind::Initial | EventKind::Restart),
            "{}",
            e.summary()
        );
    }
    Ok(setup)
}

fn atomic_write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn logging() -> Setup {
    start(&[(
        "logging",
        "bundled:logging",
        "logging.json",
        r#"{"level": "info"}"#,
    )])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_save_is_applied() {
    let mut s = logging().await;
    atomic_write(&s.path("logging.json"), r#"{"level": "debug"}"#);
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(e.kind, EventKind::FileChange);
    assert!(e.config_path.as_deref().unwrap().ends_with("logging.json"));
    assert_eq!(s.current("logging")["level"], "debug");
    s.quiet(3 * DEBOUNCE_MS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vim_style_backup_rename_is_applied_once() {
    let mut s = logging().await;
    let file = s.path("logging.json");
    // vim with `backupcopy=no`: rename the original away, write a new file,
    // remove the backup.
    std::fs::rename(&file, s.path("logging.json~")).unwrap();
    std::fs::write(&file, r#"{"level": "warn"}"#).unwrap();
    std::fs::remove_file(s.path("logging.json~")).unwrap();
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(s.current("logging")["level"], "warn");
    s.quiet(3 * DEBOUNCE_MS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_truncate_and_write_is_applied() {
    use std::io::Write;
    let mut s = logging().await;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(s.path("logging.json"))
        .unwrap();
    f.write_all(br#"{"level": "error"}"#).unwrap();
    drop(f);
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(s.current("logging")["level"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_written_file_never_applies() {
    use std::io::Write;
    let mut s = logging().await;
    let full = r#"{"level": "trace", "format": "json"}"#;
    let (first, rest) = full.split_at(14);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(s.path("logging.json"))
        .unwrap();
    f.write_all(first.as_bytes()).unwrap();
    f.flush().unwrap();
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Rejected, "{}", e.summary());
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Parse), Some(Cause::Invalid))
    );
    assert_eq!(s.current("logging")["level"], "info", "the half applied");
    f.write_all(rest.as_bytes()).unwrap();
    drop(f);
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(s.current("logging")["format"], "json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_then_recreate() {
    let mut s = logging().await;
    std::fs::remove_file(s.path("logging.json")).unwrap();
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert!(
        e.error.as_ref().unwrap().message.contains("removed"),
        "{}",
        e.summary()
    );
    assert_eq!(s.current("logging")["level"], "info");
    std::fs::write(s.path("logging.json"), r#"{"level": "debug"}"#).unwrap();
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(s.current("logging")["level"], "debug");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_for_good_keeps_the_last_good_and_says_so_once() {
    let mut s = logging().await;
    std::fs::remove_file(s.path("logging.json")).unwrap();
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert!(
        e.error
            .as_ref()
            .unwrap()
            .message
            .contains("the last good configuration stays")
    );
    // Other files in the directory come and go; the removal is not repeated.
    std::fs::write(s.path("unrelated.txt"), "x").unwrap();
    s.quiet(4 * DEBOUNCE_MS).await;
    assert_eq!(s.current("logging")["level"], "info");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_configmap_swap_is_applied_once() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("..2026_11_26_10_00_00.1")).unwrap();
    std::fs::write(
        d.join("..2026_11_26_10_00_00.1/config.json"),
        r#"{"level": "info"}"#,
    )
    .unwrap();
    symlink("..2026_11_26_10_00_00.1", d.join("..data")).unwrap();
    symlink("..data/config.json", d.join("config.json")).unwrap();
    let mut s = start_in(dir, &[("logging", "bundled:logging", "config.json", "")])
        .await
        .unwrap();
    let d = s.dir.path().to_owned();
    // What the kubelet does: a new timestamped directory, a temporary
    // symlink to it, renamed over `..data`, then the old directory removed.
    std::fs::create_dir(d.join("..2026_11_26_10_05_00.2")).unwrap();
    std::fs::write(
        d.join("..2026_11_26_10_05_00.2/config.json"),
        r#"{"level": "debug"}"#,
    )
    .unwrap();
    symlink("..2026_11_26_10_05_00.2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    std::fs::remove_dir_all(d.join("..2026_11_26_10_00_00.1")).unwrap();
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(s.current("logging")["level"], "debug");
    s.quiet(4 * DEBOUNCE_MS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_within_the_debounce_is_one_reload_of_the_last_content() {
    // A generous debounce, so the burst stays inside it on a loaded machine.
    let debounce_ms = 500;
    let dir = tempfile::tempdir().unwrap();
    let specs = [(
        "logging",
        "bundled:logging",
        "logging.json",
        r#"{"level": "info"}"#,
    )];
    let mut s = start_with(dir, &specs, debounce_ms).await.unwrap();
    let started = Instant::now();
    for level in ["trace", "debug", "warn", "error", "debug", "warn"] {
        atomic_write(
            &s.path("logging.json"),
            &json!({"level": level}).to_string(),
        );
    }
    let burst = started.elapsed();
    assert!(
        burst < Duration::from_millis(debounce_ms),
        "the burst took {burst:?}"
    );
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Applied);
    assert_eq!(e.new_config.as_deref(), Some(&json!({"level": "warn"})));
    s.quiet(2 * debounce_ms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_1000_atomic_writes_ends_on_the_last_content() {
    let mut s = logging().await;
    let file = s.path("logging.json");
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        for i in 0..1000 {
            let level = ["trace", "debug", "info", "warn", "error"][i % 5];
            let text = json!({"level": level, "fields": {"seq": i.to_string()}}).to_string();
            let tmp = file.with_extension(format!("{i}.tmp"));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &file).unwrap();
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    writer.join().unwrap();
    let wrote_in = started.elapsed();
    let mut reloads = 0;
    loop {
        let e = s.next("logging", 5).await;
        reloads += 1;
        if s.current("logging")["fields"]["seq"] == "999" {
            assert_eq!(e.outcome, Outcome::Applied);
            break;
        }
    }
    s.quiet(4 * DEBOUNCE_MS).await;
    eprintln!("1000 atomic writes in {wrote_in:?} led to {reloads} reloads");
    assert!(reloads < 100, "{reloads} reloads for 1000 writes");
    assert_eq!(s.current("logging")["level"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_and_toml_files_apply_and_malformed_ones_are_rejected() {
    let mut s = start(&[
        (
            "plugin",
            "bundled:plugin",
            "plugin.yaml",
            "enabled: true\nworkers: 2\n",
        ),
        (
            "logging",
            "bundled:logging",
            "logging.toml",
            "level = \"info\"\n",
        ),
    ])
    .await;
    atomic_write(
        &s.path("plugin.yaml"),
        "enabled: true\nworkers: 6\nsettings:\n  a: 1\n",
    );
    let e = s.next("plugin", 5).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(s.current("plugin")["workers"], 6);
    atomic_write(&s.path("plugin.yaml"), "enabled: true\nworkers: [6\n");
    let e = s.next("plugin", 5).await;
    assert_eq!(
        (e.outcome, e.failed_phase),
        (Outcome::Rejected, Some(Phase::Parse))
    );
    assert!(
        e.error.as_ref().unwrap().message.contains("not valid YAML"),
        "{}",
        e.summary()
    );
    atomic_write(
        &s.path("logging.toml"),
        "level = \"debug\"\n[[outputs]]\ntype = \"stderr\"\n",
    );
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    atomic_write(&s.path("logging.toml"), "level = \n");
    let e = s.next("logging", 5).await;
    assert!(
        e.error.as_ref().unwrap().message.contains("not valid TOML"),
        "{}",
        e.summary()
    );
    assert_eq!(s.current("logging")["outputs"][0]["type"], "stderr");
    assert_eq!(s.current("plugin")["workers"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_on_last_known_good_when_the_file_is_bad() {
    let mut s = logging().await;
    atomic_write(&s.path("logging.json"), r#"{"level": "warn"}"#);
    assert_eq!(s.next("logging", 5).await.outcome, Outcome::Applied);
    let s_dir = s.dir;
    s.daemon.shutdown().await;
    std::fs::write(
        s_dir.path().join("logging.json"),
        r#"{"level": "nonsense"}"#,
    )
    .unwrap();
    let path = s_dir.path().join("hotreload.toml");
    let mut daemon = Daemon::new(Manifest::load(&path).unwrap(), bundled).unwrap();
    let mut events = daemon.runtime().event_stream();
    daemon.start().await.unwrap();
    assert_eq!(events.recv().await.unwrap().outcome, Outcome::Rejected); // the file, initial
    let restart = events.recv().await.unwrap();
    assert_eq!(
        (restart.kind, restart.outcome),
        (EventKind::Restart, Outcome::Applied)
    );
    let note = events.recv().await.unwrap();
    assert_eq!(note.outcome, Outcome::Rejected);
    assert!(
        note.error
            .as_ref()
            .unwrap()
            .message
            .contains("last-known-good"),
        "{}",
        note.summary()
    );
    assert_eq!(
        daemon.runtime().current("logging").unwrap()["level"],
        "warn"
    );
    daemon.shutdown().await;
    // Without a last-known-good, a bad file refuses the start.
    std::fs::remove_dir_all(s_dir.path().join(".hotreload")).unwrap();
    let mut daemon = Daemon::new(Manifest::load(&path).unwrap(), bundled).unwrap();
    let err = daemon.start().await.unwrap_err().to_string();
    assert!(err.contains("component logging: cannot start"), "{err}");
    assert!(err.contains("nonsense"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_required_change_is_pending_then_applied_at_next_start() {
    let mut s = start(&[(
        "plugin",
        "bundled:plugin",
        "plugin.json",
        r#"{"enabled": true}"#,
    )])
    .await;
    atomic_write(&s.path("plugin.json"), r#"{"enabled": false}"#);
    let e = s.next("plugin", 5).await;
    assert_eq!(e.outcome, Outcome::RestartRequired);
    assert_eq!(s.current("plugin")["enabled"], true);
    let latest = s
        .daemon
        .runtime()
        .revisions()
        .unwrap()
        .latest("plugin")
        .unwrap()
        .unwrap();
    assert_eq!(latest.pending.as_deref(), Some(r#"{"enabled":false}"#));
    assert_eq!(latest.revision.config, r#"{"enabled": true}"#);
    s.daemon.shutdown().await;
    let path = s.dir.path().join("hotreload.toml");
    let mut daemon = Daemon::new(Manifest::load(&path).unwrap(), bundled).unwrap();
    daemon.start().await.unwrap();
    assert_eq!(
        daemon.runtime().current("plugin").unwrap()["enabled"],
        false
    );
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_hot_swap_only_when_the_new_handler_accepts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("handler.wasm"), hotreload_handlers::LOGGING).unwrap();
    let mut s = start_in(
        dir,
        &[(
            "logging",
            "handler.wasm",
            "logging.json",
            r#"{"level": "info"}"#,
        )],
    )
    .await
    .unwrap();
    let first_hash = s.daemon.runtime().components().await[0]
        .handler_hash
        .clone();
    // Not wasm at all: refused, the old handler stays.
    atomic_write(&s.path("handler.wasm"), "garbage");
    let e = s.next("logging", 5).await;
    assert_eq!(
        (e.kind, e.outcome),
        (EventKind::HandlerSwap, Outcome::Rejected)
    );
    assert!(
        e.error
            .as_ref()
            .unwrap()
            .message
            .contains("not a WebAssembly binary"),
        "{}",
        e.summary()
    );
    // A handler that refuses the configuration in force: refused.
    std::fs::write(s.path("h.tmp"), hotreload_handlers::PLUGIN).unwrap();
    std::fs::rename(s.path("h.tmp"), s.path("handler.wasm")).unwrap();
    let e = s.next("logging", 5).await;
    assert_eq!(
        (e.kind, e.outcome, e.failed_phase),
        (
            EventKind::HandlerSwap,
            Outcome::Rejected,
            Some(Phase::Validate)
        )
    );
    assert_eq!(
        s.daemon.runtime().components().await[0].handler_hash,
        first_hash
    );
    // Still served by the logging handler:
    atomic_write(&s.path("logging.json"), r#"{"level": "debug"}"#);
    let e = s.next("logging", 5).await;
    assert_eq!(e.outcome, Outcome::Applied);
    assert_eq!(
        e.effective_config.as_ref().unwrap()["outputs"][0]["level"],
        "debug"
    );
    // One that accepts it is swapped in.
    std::fs::write(s.path("h.tmp"), hotreload_handlers::CHAOS).unwrap();
    std::fs::rename(s.path("h.tmp"), s.path("handler.wasm")).unwrap();
    let e = s.next("logging", 5).await;
    assert_eq!(
        (e.kind, e.outcome),
        (EventKind::HandlerSwap, Outcome::Applied),
        "{}",
        e.summary()
    );
    let info = &s.daemon.runtime().components().await[0];
    assert_ne!(info.handler_hash, first_hash);
    assert_eq!(info.support_level, Some(hotreload::SupportLevel::Partial));
}
