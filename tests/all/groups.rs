//! The daemon's groups: components with the same `group` whose files change
//! together (a Kubernetes ConfigMap swap) reload as one batch.

use std::os::unix::fs::symlink;
use std::path::Path;

use hotreload::daemon::{Daemon, Manifest};
use hotreload::{Cause, EventKind, Outcome};
use hotreload_handlers::by_name as bundled;

use crate::daemon::Setup;

/// A ConfigMap-like directory: `..data` links to a timestamped directory
/// holding every file; each config file links through `..data`.
fn swap_data(dir: &Path, generation: u32, levels: [&str; 3]) {
    let data = dir.join(format!("..gen{generation}"));
    std::fs::create_dir(&data).unwrap();
    for (name, level) in ["a", "b", "c"].iter().zip(levels) {
        std::fs::write(
            data.join(format!("{name}.json")),
            format!(r#"{{"level": "{level}"}}"#),
        )
        .unwrap();
    }
    let tmp = dir.join("..data_tmp");
    symlink(format!("..gen{generation}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

async fn grouped() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    swap_data(d, 1, ["info", "info", "info"]);
    let mut manifest = String::from("[runtime]\ndebounce_ms = 50\nretry_interval_ms = 1\n");
    for name in ["a", "b", "c"] {
        symlink(
            format!("..data/{name}.json"),
            d.join(format!("{name}.json")),
        )
        .unwrap();
        manifest.push_str(&format!(
            "[[component]]\nname = \"{name}\"\nhandler = \"bundled:logging\"\n\
             config = \"{name}.json\"\ngroup = \"logging\"\n"
        ));
    }
    std::fs::write(d.join("hotreload.toml"), manifest).unwrap();
    let manifest = Manifest::load(&d.join("hotreload.toml")).unwrap();
    assert_eq!(manifest.components[0].group.as_deref(), Some("logging"));
    let mut daemon = Daemon::new(manifest, bundled).unwrap();
    let events = daemon.runtime().event_stream();
    daemon.start().await.unwrap();
    let mut s = Setup {
        dir,
        daemon,
        events,
    };
    for name in ["a", "b", "c"] {
        assert_eq!(s.next(name, 10).await.kind, EventKind::Initial);
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_swap_reloads_the_group_as_one_batch() {
    let mut s = grouped().await;
    swap_data(s.dir.path(), 2, ["debug", "warn", "error"]);
    let mut batch = None;
    for (name, level) in [("a", "debug"), ("b", "warn"), ("c", "error")] {
        let e = s.next(name, 10).await;
        assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
        assert_eq!(e.kind, EventKind::FileChange);
        assert!(e.batch.is_some(), "{}", e.summary());
        batch.get_or_insert_with(|| e.batch.clone());
        assert_eq!(&e.batch, batch.as_ref().unwrap(), "one batch");
        assert_eq!(s.current(name)["level"], level);
    }
    s.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_file_in_a_swap_keeps_every_member_on_the_old_configuration() {
    let mut s = grouped().await;
    // b's level is refused by its handler; a and c's are fine alone.
    swap_data(s.dir.path(), 2, ["debug", "loud", "error"]);
    let a = s.next("a", 10).await;
    let b = s.next("b", 10).await;
    let c = s.next("c", 10).await;
    assert_eq!(b.outcome, Outcome::Rejected, "{}", b.summary());
    for e in [&a, &c] {
        assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
        assert_eq!(e.cause, Some(Cause::Batch));
    }
    assert_eq!(a.batch, b.batch);
    for name in ["a", "b", "c"] {
        assert_eq!(s.current(name)["level"], "info", "{name}");
    }
    // A file that is not even JSON aborts the batch (only b's bytes change:
    // the batch still holds the whole group).
    std::fs::remove_dir_all(s.dir.path().join("..gen2")).unwrap();
    let gen3 = s.dir.path().join("..gen3");
    std::fs::create_dir(&gen3).unwrap();
    std::fs::write(gen3.join("a.json"), r#"{"level": "debug"}"#).unwrap();
    std::fs::write(gen3.join("b.json"), r#"{"level": "#).unwrap();
    std::fs::write(gen3.join("c.json"), r#"{"level": "error"}"#).unwrap();
    let tmp = s.dir.path().join("..data_tmp");
    symlink("..gen3", &tmp).unwrap();
    std::fs::rename(&tmp, s.dir.path().join("..data")).unwrap();
    let a = s.next("a", 10).await;
    let b = s.next("b", 10).await;
    let c = s.next("c", 10).await;
    assert_eq!(b.cause, Some(Cause::Invalid), "{}", b.summary());
    for e in [&a, &c] {
        assert_ne!(e.outcome, Outcome::Applied, "{}", e.summary());
        assert_eq!(e.cause, Some(Cause::Batch), "{}", e.summary());
    }
    for name in ["a", "b", "c"] {
        assert_eq!(s.current(name)["level"], "info", "{name}");
    }
    // The next swap fixes b alone (a's and c's bytes are the same): the
    // group moves together to what its files say.
    swap_data(s.dir.path(), 4, ["debug", "warn", "error"]);
    for (name, level) in [("a", "debug"), ("b", "warn"), ("c", "error")] {
        let e = s.next(name, 10).await;
        assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
        assert_eq!(s.current(name)["level"], level);
    }
    s.daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_batch_does_not_send_the_other_files_again() {
    let mut s = grouped().await;
    swap_data(s.dir.path(), 2, ["debug", "warn", "error"]);
    for name in ["a", "b", "c"] {
        let e = s.next(name, 10).await;
        assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    }
    // a is rolled back by hand (as an operator would through the API).
    let e = s.daemon.runtime().rollback_to("a", 1).await.unwrap();
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(s.next("a", 10).await.kind, EventKind::RollbackToVersion);
    // The next swap changes only b's file: b reloads alone, and a's file
    // (unchanged since its batch applied) is not sent again over the
    // rollback.
    swap_data(s.dir.path(), 3, ["debug", "trace", "error"]);
    let b = s.next("b", 10).await;
    assert_eq!(b.outcome, Outcome::Applied, "{}", b.summary());
    s.quiet(400).await;
    assert_eq!(s.current("a")["level"], "info");
    assert_eq!(s.current("b")["level"], "trace");
    s.daemon.shutdown().await;
}
