//! Replay: a recorded event runs again in a fresh instance, with
//! deterministic clocks and random numbers, and comes out the same.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use hotreload::replay::{ReplayError, ReplayMode, ReplayReport, replay};
use hotreload::{Cause, ComponentSpec, Outcome, Runtime, Settings};
use serde_json::json;

/// Replays an event, waiting for its record (kept off the transaction's
/// path, so a moment after the event).
fn replayed(state: &Path, id: u64) -> ReplayReport {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match replay(state, id, None) {
            Ok(r) => return r,
            Err(ReplayError::NoRecord(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("event {id}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_events_replay_the_same() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = Runtime::new(Settings {
        state_dir: Some(dir.path().to_owned()),
        ..crate::settings()
    })?;
    let first = rt
        .add_component(ComponentSpec::new(
            "logging",
            hotreload_handlers::LOGGING,
            r#"{"level": "info"}"#,
        ))
        .await?;
    let applied = rt
        .reload("logging", json!({"level": "debug", "format": "json"}))
        .await?;
    let rejected = rt.reload("logging", json!({"level": "loud"})).await?;
    assert_eq!(applied.outcome, Outcome::Applied);
    assert_eq!(rejected.outcome, Outcome::Rejected);
    rt.shutdown().await;
    drop(rt);
    let state = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let r = replayed(&state, first.id);
        assert_eq!(r.recorded.mode, ReplayMode::Load);
        assert!(r.same(), "{:?}", r.differences);

        let r = replayed(&state, applied.id);
        assert_eq!(r.recorded.mode, ReplayMode::Reload);
        assert_eq!(
            r.recorded.old_config.as_deref(),
            Some(r#"{"level": "info"}"#)
        );
        assert!(r.same(), "{:?}", r.differences);
        assert_eq!(r.replayed.outcome, Outcome::Applied);
        assert_eq!(r.effective.as_ref().unwrap()["format"], "json");

        let r = replayed(&state, rejected.id);
        assert!(r.same(), "{:?}", r.differences);
        assert_eq!(r.replayed.outcome, Outcome::Rejected);
        assert_eq!(r.replayed.cause, Some(Cause::Invalid));

        // No record of an event that never was.
        assert!(matches!(
            replay(&state, 9999, None),
            Err(ReplayError::NoRecord(9999))
        ));
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_reads_the_clock_at_the_events_time() -> Result<()> {
    // `fail_after:T` succeeds while the wall clock is before T. A reload
    // that failed because its time was past T fails again on replay, years
    // later: the replay's clock starts at the event's time.
    let dir = tempfile::tempdir()?;
    let rt = Runtime::new(Settings {
        state_dir: Some(dir.path().to_owned()),
        ..crate::settings()
    })?;
    rt.add_component(ComponentSpec::new(
        "chaos",
        hotreload_handlers::CHAOS,
        json!({"n": 0}).to_string(),
    ))
    .await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let past = rt
        .reload(
            "chaos",
            json!({"reload": format!("fail_after:{}", now_ms - 1)}),
        )
        .await?;
    assert_ne!(past.outcome, Outcome::Applied, "{}", past.summary());
    let future = rt
        .reload(
            "chaos",
            json!({"reload": format!("fail_after:{}", now_ms + 600_000)}),
        )
        .await?;
    assert_eq!(future.outcome, Outcome::Applied, "{}", future.summary());
    rt.shutdown().await;
    drop(rt);
    let state = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        for id in [past.id, future.id] {
            let r = replayed(&state, id);
            assert!(r.same(), "event {id}: {:?}", r.differences);
        }
    })
    .await?;
    Ok(())
}
