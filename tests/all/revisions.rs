//! The revision store: every commit kept (up to `keep_revisions`), versions
//! that go on across restarts, rollback to any kept version (configuration
//! and handler together), retention of handler code, old records imported,
//! a damaged database refused.

use std::path::Path;

use anyhow::Result;
use hotreload::{ComponentSpec, Error, EventKind, Outcome, Runtime, Settings};
use serde_json::json;

fn runtime_in(state: &Path, keep: u64) -> Runtime {
    Runtime::new(Settings {
        state_dir: Some(state.to_owned()),
        keep_revisions: keep,
        // Replays keep the code of the handlers they ran: few, here, so
        // that retention of handler code shows.
        keep_events: 2,
        ..crate::settings()
    })
    .expect("runtime")
}

async fn logging(rt: &Runtime, level: &str) -> Result<()> {
    rt.add_component(ComponentSpec::new(
        "logging",
        hotreload_handlers::LOGGING,
        json!({ "level": level }).to_string(),
    ))
    .await?;
    Ok(())
}

#[tokio::test]
async fn every_commit_is_a_revision_and_versions_go_on_across_restarts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = runtime_in(dir.path(), 100);
    logging(&rt, "info").await?;
    for level in ["debug", "warn", "warn", "error"] {
        rt.reload("logging", json!({ "level": level })).await?;
    }
    let history = rt.history("logging", 100).await?;
    // "warn" twice is one revision: an unchanged reload commits nothing.
    let versions: Vec<u64> = history.iter().map(|r| r.version).collect();
    assert_eq!(versions, [4, 3, 2, 1]);
    assert_eq!(history[0].config, r#"{"level":"error"}"#);
    assert_eq!(history[0].effective["level"], "error");
    assert_eq!(history[0].source.kind, EventKind::Api);
    assert_eq!(history[3].source.kind, EventKind::Initial);
    assert_eq!(history[0].handler_hash, history[3].handler_hash);
    rt.shutdown().await;
    drop(rt);

    // A restart starts on the configuration given (here the same as v1's
    // text, but different from v4's), and numbering goes on at 5.
    let rt = runtime_in(dir.path(), 100);
    logging(&rt, "info").await?;
    let history = rt.history("logging", 100).await?;
    assert_eq!(history[0].version, 5);
    assert_eq!(history[0].config, r#"{"level":"info"}"#);
    assert_eq!(history.len(), 5);
    Ok(())
}

#[tokio::test]
async fn rollback_to_a_version_makes_a_new_version_through_the_handler() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = runtime_in(dir.path(), 100);
    logging(&rt, "info").await?;
    rt.reload("logging", json!({"level": "debug", "format": "json"}))
        .await?;
    rt.reload("logging", json!({"level": "error"})).await?;
    let sub = rt.subscribe_json("logging")?;

    let e = rt.rollback_to("logging", 2).await?;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(e.kind, EventKind::RollbackToVersion);
    assert_eq!(e.from_version, Some(2));
    assert_eq!(e.version, 4, "a rollback is a new version");
    assert!(e.fuel_consumed > 0, "the handler saw it again");
    assert_eq!(sub.borrow()["format"], "json");
    assert_eq!(rt.current("logging")?["level"], "debug");
    let head = &rt.history("logging", 1).await?[0];
    assert_eq!(head.version, 4);
    assert_eq!(head.source.from_version, Some(2));
    assert_eq!(head.source.kind, EventKind::RollbackToVersion);

    // Back to what is in force already: nothing to do.
    let e = rt.rollback_to("logging", 4).await?;
    assert_eq!(e.outcome, Outcome::Unchanged);
    assert_eq!(rt.history("logging", 100).await?.len(), 4);

    // Never committed, or unknown: clear errors, nothing changes.
    let err = rt.rollback_to("logging", 9).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NoRevision {
                version: 9,
                kept: Some((1, 4)),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("versions 1 to 4 are kept"),
        "{err}"
    );
    assert!(matches!(
        rt.rollback_to("nope", 1).await.unwrap_err(),
        Error::UnknownComponent(_)
    ));
    assert_eq!(rt.current("logging")?["level"], "debug");
    Ok(())
}

#[tokio::test]
async fn rollback_brings_back_the_handler_with_the_configuration() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = runtime_in(dir.path(), 100);
    logging(&rt, "debug").await?;
    let logging_hash = rt.history("logging", 1).await?[0].handler_hash.clone();
    // v2: another handler (chaos accepts any object and gives it back as
    // it is); v3: a configuration only it has seen.
    let e = rt
        .swap_handler("logging", hotreload_handlers::CHAOS.into())
        .await?;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    rt.reload("logging", json!({"level": "warn"})).await?;
    assert!(rt.current("logging")?.get("format").is_none());
    let chaos_hash = rt.history("logging", 1).await?[0].handler_hash.clone();
    assert_ne!(chaos_hash, logging_hash);

    let e = rt.rollback_to("logging", 1).await?;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(e.handler_hash, logging_hash);
    assert_eq!(e.version, 4);
    // The logging handler's effective configuration has its defaults again.
    assert_eq!(rt.current("logging")?["level"], "debug");
    assert!(rt.current("logging")?.get("format").is_some());
    let head = &rt.history("logging", 1).await?[0];
    assert_eq!(head.handler_hash, logging_hash);
    // Reloads go on with the restored handler.
    let e = rt.reload("logging", json!({"level": "nonsense"})).await?;
    assert_eq!(e.outcome, Outcome::Rejected, "logging validates levels");
    Ok(())
}

#[tokio::test]
async fn retention_keeps_the_last_n_and_the_code_they_use() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = runtime_in(dir.path(), 3);
    logging(&rt, "debug").await?;
    let logging_hash = rt.history("logging", 1).await?[0].handler_hash.clone();
    rt.swap_handler("logging", hotreload_handlers::CHAOS.into())
        .await?;
    let store = rt.revisions().expect("a store");
    assert!(store.handler(&logging_hash)?.is_some());
    for n in 0..4 {
        rt.reload("logging", json!({ "n": n })).await?;
    }
    let versions: Vec<u64> = rt
        .history("logging", 100)
        .await?
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, [6, 5, 4]);
    // No kept revision (nor kept replay record, written a moment after
    // each event) uses the logging handler: its code goes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.handler(&logging_hash)?.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the unused handler's code is still kept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let err = rt.rollback_to("logging", 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NoRevision {
                kept: Some((4, 6)),
                ..
            }
        ),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn an_old_last_known_good_record_is_imported_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // What the previous release wrote: one JSON record per component.
    std::fs::write(
        dir.path().join("logging.json"),
        serde_json::to_vec(&json!({
            "component": "logging",
            "version": 7,
            "input": {"level": "warn"},
            "effective": {"level": "warn", "format": "text"},
            "handler_hash": "0".repeat(64),
        }))?,
    )?;
    let rt = runtime_in(dir.path(), 100);
    assert!(!dir.path().join("logging.json").exists());
    assert!(dir.path().join("logging.json.imported").exists());
    // The configuration file is unreadable: the imported one is in force.
    let e = rt
        .add_component(ComponentSpec::unavailable(
            "logging",
            hotreload_handlers::LOGGING,
            hotreload::sources::InputError {
                cause: hotreload::Cause::Unreadable,
                message: "gone".into(),
            },
        ))
        .await?;
    assert_eq!(e.kind, EventKind::Restart);
    assert_eq!(rt.current("logging")?["level"], "warn");
    let history = rt.history("logging", 100).await?;
    assert_eq!(
        history.iter().map(|r| r.version).collect::<Vec<_>>(),
        [8, 7]
    );
    assert!(history[1].source.imported);
    // Version 7's handler code was never kept.
    let err = rt.rollback_to("logging", 7).await.unwrap_err();
    assert!(
        matches!(err, Error::HandlerNotKept { version: 7, .. }),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_damaged_database_is_refused_naming_the_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let rt = runtime_in(dir.path(), 100);
        logging(&rt, "info").await?;
        rt.shutdown().await;
    }
    let db = dir.path().join(hotreload::state::DATABASE);
    // Garbage over the header: not a database any more.
    let mut bytes = std::fs::read(&db)?;
    bytes[..16].copy_from_slice(b"this is garbage!");
    std::fs::write(&db, bytes)?;
    let err = Runtime::new(Settings {
        state_dir: Some(dir.path().to_owned()),
        ..crate::settings()
    })
    .err()
    .expect("a damaged database is refused");
    let text = err.to_string();
    assert!(matches!(err, Error::Record { .. }), "{text}");
    assert!(text.contains("revisions.db"), "{text}");
    assert!(text.contains("Move it away"), "{text}");
    Ok(())
}

#[tokio::test]
async fn a_rollback_without_a_state_dir_says_so() -> Result<()> {
    let rt = crate::with_logging(json!({"level": "info"})).await;
    let err = rt.rollback_to("logging", 1).await.unwrap_err();
    assert!(matches!(err, Error::NoHistory), "{err}");
    Ok(())
}
