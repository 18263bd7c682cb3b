//! Crash consistency of the last-known-good store: a full disk and a
//! read-only state directory. Both need a filesystem of their own, so the
//! test mounts a small tmpfs (root only; CI runs as root, and under CI a
//! test that cannot mount fails instead of skipping).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use hotreload::state::Revision;
use hotreload::{Cause, ComponentSpec, Outcome, Phase, Runtime, Settings};
use serde_json::json;

struct Mount {
    dir: tempfile::TempDir,
}

impl Mount {
    /// A tmpfs of `kib` KiB, or `None` when this process may not mount
    /// (see [`crate::cannot_run`]).
    fn tmpfs(test: &str, kib: u32) -> Result<Option<Mount>> {
        let dir = tempfile::tempdir()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .status();
        Ok(match status {
            Ok(s) if s.success() => Some(Mount { dir }),
            Ok(s) => crate::cannot_run(
                test,
                &format!("`mount -t tmpfs` failed ({s}): it needs root (CAP_SYS_ADMIN)"),
            ),
            Err(e) => crate::cannot_run(test, &format!("cannot run `mount`: {e}")),
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, opts: &str) -> Result<()> {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(self.path())
            .status()?;
        ensure!(status.success(), "remount {opts}: {status}");
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn record(state: &Path) -> Result<Revision> {
    crate::latest(state, "logging")
}

async fn logging_on(state: PathBuf) -> Result<Runtime> {
    let rt = Runtime::new(Settings {
        state_dir: Some(state),
        ..crate::settings()
    })?;
    rt.add_component(ComponentSpec::new(
        "logging",
        hotreload_handlers::LOGGING,
        r#"{"level":"info"}"#,
    ))
    .await?;
    Ok(rt)
}

#[tokio::test]
async fn a_full_disk_keeps_the_last_good_and_reports_it() -> Result<()> {
    let Some(m) = Mount::tmpfs("a_full_disk_keeps_the_last_good_and_reports_it", 4096)? else {
        return Ok(());
    };
    let state = m.path().join("state");
    let rt = logging_on(state.clone()).await?;
    assert_eq!(record(&state)?.version, 1);
    // Fill the disk to the last byte.
    let mut filler = std::fs::File::create(m.path().join("filler"))?;
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    let _ = std::io::Write::write_all(&mut filler, &[0u8; 1]);
    drop(filler);
    let sub = rt.subscribe_json("logging")?;
    let e = rt
        .reload(
            "logging",
            json!({"level": "debug", "fields": {"pad": "x".repeat(2000)}}),
        )
        .await?;
    assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Commit), Some(Cause::Storage))
    );
    let message = &e.error.as_ref().context("an error")?.message;
    assert!(
        message.contains("full") || message.contains("No space left"),
        "{}",
        e.summary()
    );
    assert!(
        !sub.has_changed()?,
        "subscribers never saw the uncommitted configuration"
    );
    assert_eq!(rt.current("logging")?["level"], "info");
    let r = record(&state)?;
    assert_eq!(
        (r.version, crate::config_of(&r)),
        (1, json!({"level": "info"}))
    );
    // No half-written temporary file is left behind to be read back.
    let mut leftovers = Vec::new();
    for entry in std::fs::read_dir(&state)? {
        let name = entry?.file_name();
        if name.to_string_lossy().contains(".tmp") {
            leftovers.push(name);
        }
    }
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Space again: the next reload commits.
    std::fs::remove_file(m.path().join("filler"))?;
    let e = rt.reload("logging", json!({"level": "debug"})).await?;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(record(&state)?.version, 2);
    Ok(())
}

#[tokio::test]
async fn a_read_only_state_directory_keeps_the_last_good() -> Result<()> {
    let Some(m) = Mount::tmpfs("a_read_only_state_directory_keeps_the_last_good", 4096)? else {
        return Ok(());
    };
    let state = m.path().join("state");
    let rt = logging_on(state.clone()).await?;
    let e = rt.reload("logging", json!({"level": "error"})).await?;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    // The revision store holds its files open for writing while the
    // runtime runs, so the kernel refuses to make the filesystem read-only
    // under it (EBUSY); only an emergency remount by the kernel can, and its
    // writes then fail as a full disk's do (the test above).
    assert!(
        m.remount("ro").is_err(),
        "a read-only remount under a running store"
    );
    rt.shutdown().await;
    drop(rt);
    // Stopped, the files are closed: now it can be made read-only, and a
    // runtime on it refuses to start, naming the directory.
    m.remount("ro")?;
    let err = Runtime::new(Settings {
        state_dir: Some(state.clone()),
        ..crate::settings()
    })
    .err()
    .context("a read-only state directory is refused")?;
    let text = err.to_string();
    assert!(text.contains("state"), "{text}");
    assert!(
        text.contains("Read-only") || text.contains("readonly"),
        "{text}"
    );
    // Writable again: the last committed revision is in force.
    m.remount("rw")?;
    let rt = Runtime::new(Settings {
        state_dir: Some(state.clone()),
        ..crate::settings()
    })?;
    let saved = rt
        .revisions()
        .context("a state directory")?
        .latest("logging")?
        .context("a revision")?;
    assert_eq!(crate::config_of(&saved.revision), json!({"level": "error"}));
    assert_eq!(saved.revision.version, 2);
    Ok(())
}
