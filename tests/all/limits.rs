//! The sandbox's limits and what it denies.

use std::time::{Duration, Instant};

use anyhow::Result;
use hotreload::daemon::{Daemon, Manifest};
use hotreload::{Cause, ComponentSpec, LimitOverrides, Outcome, Runtime, Settings};
use serde_json::json;
use tracing::Level;

use crate::{logs, message, reload, with_chaos};

/// A spinning handler is cut off close to its deadline. The figure is
/// printed for the record; the bound is loose because CI machines are
/// shared (the benchmark measures the real overshoot).
#[tokio::test]
async fn spinning_handler_is_cut_off_near_its_deadline() {
    let rt = with_chaos(LimitOverrides {
        validation_timeout_ms: Some(50),
        // a tight loop burns the default fuel in ~100 ms: only the deadline should cut
        fuel: Some(u64::MAX / 2),
        ..LimitOverrides::default()
    })
    .await;
    let start = Instant::now();
    let e = reload(&rt, "chaos", json!({"validate": "spin"})).await;
    let took = start.elapsed();
    assert_eq!(e.cause, Some(Cause::Timeout));
    assert!(took >= Duration::from_millis(50), "cut off early: {took:?}");
    assert!(took < Duration::from_millis(1000), "cut off late: {took:?}");
    eprintln!(
        "spin with a 50 ms deadline cut off after {took:?} (event says {} us)",
        e.duration_us
    );
}

#[tokio::test]
async fn calls_on_other_components_are_not_interrupted_by_a_deadline() -> Result<()> {
    // One component spins into its 30 ms deadline while another's slow but
    // legal validate (150 ms of a 2 s budget) runs: the epoch bump meant for
    // the first must not cut off the second.
    let rt = crate::runtime();
    for (name, ms) in [("fast", 30), ("slow", 2000)] {
        rt.add_component(
            ComponentSpec::new(name, hotreload_handlers::CHAOS, "{}").limits(LimitOverrides {
                validation_timeout_ms: Some(ms),
                // a tight loop burns the default fuel in ~100 ms: only the deadline should cut
                fuel: Some(u64::MAX / 2),
                ..LimitOverrides::default()
            }),
        )
        .await?;
    }
    let (a, b) = tokio::join!(
        reload(&rt, "fast", json!({"validate": "spin"})),
        reload(&rt, "slow", json!({"validate": "slow:150"}))
    );
    assert_eq!(a.cause, Some(Cause::Timeout));
    assert_eq!(b.outcome, Outcome::Applied, "{:?}", b.error);
    Ok(())
}

#[tokio::test]
async fn stdout_and_stderr_are_captured_not_inherited() {
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(&rt, "chaos", json!({"reload": "print"})).await;
    assert_eq!(e.outcome, Outcome::Applied);
    // Captured output shows up with a trap; a print then a panic:
    let e = reload(&rt, "chaos", json!({"validate": "panic"})).await;
    assert!(message(&e).contains("handler stderr"), "{}", message(&e));
}

/// Floods the host's `log` from `reload` (100000 lines) on a component of
/// its own name; gives the handler lines logged for it, and the note of how
/// many were dropped.
async fn flood(name: &str, settings: Settings) -> Result<(Vec<String>, Vec<logs::Line>)> {
    logs::capture();
    let rt = Runtime::new(settings)?;
    rt.add_component(ComponentSpec::new(
        name,
        hotreload_handlers::CHAOS,
        json!({"n": 0}).to_string(),
    ))
    .await?;
    let e = reload(&rt, name, json!({"reload": "log_flood"})).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    let lines = logs::lines(|l| l.target == "handler" && l.field("component") == Some(name))
        .into_iter()
        .map(|l| l.field("message").unwrap_or_default().to_owned())
        .collect();
    let dropped_note = logs::lines(|l| l.field("dropped").is_some());
    Ok((lines, dropped_note))
}

#[tokio::test]
async fn log_flood_is_cut_at_100_lines_per_call() -> Result<()> {
    let (lines, notes) = flood("flood-default", crate::settings()).await?;
    // The first 100 lines reach the log, whole and in order; the rest are
    // counted and dropped.
    let want: Vec<String> = (1..=100)
        .map(|k| format!("chaos: log flood {k} of 100000"))
        .collect();
    assert_eq!(lines, want);
    assert!(
        notes.iter().any(|n| n.level == Level::WARN
            && n.field("lines") == Some("100")
            && n.field("dropped") == Some("99900")),
        "{notes:#?}"
    );
    Ok(())
}

#[tokio::test]
async fn log_lines_per_call_is_a_setting() -> Result<()> {
    let settings = Settings {
        log_lines_per_call: 7,
        ..crate::settings()
    };
    let (lines, notes) = flood("flood-seven", settings).await?;
    assert_eq!(lines.len(), 7, "{lines:#?}");
    assert_eq!(lines[6], "chaos: log flood 7 of 100000");
    assert!(
        notes
            .iter()
            .any(|n| n.field("lines") == Some("7") && n.field("dropped") == Some("99993")),
        "{notes:#?}"
    );
    Ok(())
}

#[tokio::test]
async fn megabyte_failure_message_is_truncated() {
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(&rt, "chaos", json!({"validate": "big_failure"})).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(e.cause, Some(Cause::Invalid));
    assert!(
        message(&e).len() < 8 * 1024,
        "kept {} bytes",
        message(&e).len()
    );
    assert!(
        message(&e).contains("bytes in all"),
        "{}",
        &message(&e)[..100]
    );
}

#[tokio::test]
async fn configuration_over_the_size_bound_is_rejected() {
    let rt = with_chaos(LimitOverrides::default()).await;
    let big = json!({"blob": "x".repeat(2 * 1024 * 1024)});
    let e = reload(&rt, "chaos", big).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(e.fuel_consumed, 0);
    assert!(message(&e).contains("byte limit"), "{}", message(&e));
}

#[test]
fn probe_cuts_off_a_spinning_validate_at_its_deadline() -> Result<()> {
    use hotreload::{Limits, Probe, SandboxOptions};
    for ms in [10u64, 100] {
        // Fuel out of the way: a tight loop burns 10⁹ in about 100 ms.
        let limits = Limits {
            validation_timeout: Duration::from_millis(ms),
            fuel: u64::MAX / 2,
            ..Limits::default()
        };
        let mut probe = Probe::new(hotreload_handlers::CHAOS, limits, SandboxOptions::default())?;
        for _ in 0..3 {
            let call = probe.validate(r#"{"validate": "spin"}"#);
            assert_eq!(call.result.unwrap_err().cause(), Cause::Timeout);
            assert!(
                call.elapsed >= Duration::from_millis(ms),
                "{:?}",
                call.elapsed
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_fuel_override_holds_only_for_its_component() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = crate::daemon::write_manifest(
        dir.path(),
        &[
            ("roomy", "bundled:chaos", "roomy.json", "{}"),
            ("tight", "bundled:chaos", "tight.json", "{}"),
        ],
    );
    // Deadlines far away, so only fuel may cut a call off; `fuel` on the
    // last `[[component]]`, "tight".
    let text = std::fs::read_to_string(&path)?.replace(
        "[runtime]\n",
        "[runtime]\nreload_timeout_ms = 20000\nvalidation_timeout_ms = 20000\n",
    ) + "fuel = 1000000\n";
    std::fs::write(&path, text)?;
    let manifest = Manifest::load(&path).map_err(anyhow::Error::msg)?;
    let mut daemon = Daemon::new(manifest, hotreload_handlers::by_name)?;
    daemon.start().await.map_err(anyhow::Error::msg)?;
    let rt = daemon.runtime();
    // 200 ms of busy-waiting on the clock: millions of instructions.
    let slow = json!({"reload": "slow:200"});
    let (t, r) = tokio::join!(
        reload(rt, "tight", slow.clone()),
        reload(rt, "roomy", slow.clone())
    );
    assert_eq!(
        (t.outcome, t.failed_phase, t.cause),
        (
            Outcome::RolledBack,
            Some(hotreload::Phase::Reload),
            Some(Cause::OutOfFuel)
        ),
        "{}",
        t.summary()
    );
    assert_eq!(*rt.current("tight")?, json!({}));
    assert_eq!(r.outcome, Outcome::Applied, "{}", r.summary());
    assert!(
        r.fuel_consumed > 1_000_000,
        "the same call on the default budget burnt only {} fuel",
        r.fuel_consumed
    );
    assert_eq!(*rt.current("roomy")?, slow);
    daemon.shutdown().await;
    Ok(())
}
