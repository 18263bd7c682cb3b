//! Crash consistency of the last-known-good store: a full disk and a
//! read-only state directory. Both need a filesystem of their own, so the
//! test mounts a small tmpfs (root only; CI runs as root).

use std::path::{Path, PathBuf};
use std::process::Command;

use hotreload::state::Persisted;
use hotreload::{Cause, ComponentSpec, Outcome, Phase, Runtime, Settings};
use serde_json::json;

struct Mount {
    dir: tempfile::TempDir,
}

impl Mount {
    /// A tmpfs of `kib` KiB, or `None` when this process may not mount.
    fn tmpfs(kib: u32) -> Option<Mount> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("cannot mount a tmpfs here (not root?): crash-consistency test not run");
            return None;
        }
        Some(Mount { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, opts: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(self.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {opts}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn record(state: &Path) -> Persisted {
    let bytes = std::fs::read(state.join("logging.json")).unwrap();
    serde_json::from_slice(&bytes).expect("the record is whole")
}

async fn logging_on(state: PathBuf) -> Runtime {
    let rt = Runtime::new(Settings {
        state_dir: Some(state),
        ..crate::settings()
    })
    .unwrap();
    rt.add_component(ComponentSpec::new(
        "logging",
        hotreload_handlers::LOGGING,
        r#"{"level":"info"}"#,
    ))
    .await
    .unwrap();
    rt
}

#[tokio::test]
async fn a_full_disk_keeps_the_last_good_and_reports_it() {
    let Some(m) = Mount::tmpfs(64) else { return };
    let state = m.path().join("state");
    let rt = logging_on(state.clone()).await;
    assert_eq!(record(&state).version, 1);
    // Fill the disk to the last byte.
    let mut filler = std::fs::File::create(m.path().join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    let _ = std::io::Write::write_all(&mut filler, &[0u8; 1]);
    drop(filler);
    let sub = rt.subscribe_json("logging").unwrap();
    let e = rt
        .reload(
            "logging",
            json!({"level": "debug", "fields": {"pad": "x".repeat(2000)}}),
        )
        .await
        .unwrap();
    assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Commit), Some(Cause::Storage))
    );
    assert!(
        e.error.as_ref().unwrap().message.contains("No space left"),
        "{}",
        e.summary()
    );
    assert!(
        !sub.has_changed().unwrap(),
        "subscribers never saw the uncommitted configuration"
    );
    assert_eq!(rt.current("logging").unwrap()["level"], "info");
    let r = record(&state);
    assert_eq!((r.version, r.input.clone()), (1, json!({"level": "info"})));
    // No half-written temporary file is left behind to be read back.
    let leftovers: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Space again: the next reload commits.
    std::fs::remove_file(m.path().join("filler")).unwrap();
    let e = rt
        .reload("logging", json!({"level": "debug"}))
        .await
        .unwrap();
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(record(&state).version, 2);
}

#[tokio::test]
async fn a_read_only_state_directory_keeps_the_last_good() {
    let Some(m) = Mount::tmpfs(4096) else { return };
    let state = m.path().join("state");
    let rt = logging_on(state.clone()).await;
    m.remount("ro");
    let e = rt
        .reload("logging", json!({"level": "error"}))
        .await
        .unwrap();
    assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
    assert_eq!(e.cause, Some(Cause::Storage));
    assert!(
        e.error.as_ref().unwrap().message.contains("Read-only"),
        "{}",
        e.summary()
    );
    assert_eq!(rt.current("logging").unwrap()["level"], "info");
    assert_eq!(record(&state).version, 1);
    m.remount("rw");
    let e = rt
        .reload("logging", json!({"level": "error"}))
        .await
        .unwrap();
    assert_eq!(e.outcome, Outcome::Applied);
    // A restart comes back on what was committed.
    rt.shutdown().await;
    let rt = Runtime::new(Settings {
        state_dir: Some(state.clone()),
        ..crate::settings()
    })
    .unwrap();
    let saved = rt
        .last_known_good()
        .unwrap()
        .load("logging")
        .unwrap()
        .unwrap();
    assert_eq!(saved.input, json!({"level": "error"}));
}
