//! Events, statistics and notifications.

use std::sync::Arc;

use anyhow::Result;
use hotreload::{ComponentSpec, Event, EventKind, Outcome, Runtime, Settings};
use serde_json::json;
use tokio::sync::broadcast::error::TryRecvError;

use crate::{reload, with_logging};

#[tokio::test]
async fn every_attempt_is_an_event_and_stats_add_up() {
    let rt = with_logging(json!({"level": "info"})).await;
    reload(&rt, "logging", json!({"level": "debug"})).await;
    reload(&rt, "logging", json!({"level": "debug"})).await;
    reload(&rt, "logging", json!({"level": "bogus"})).await;
    let events = rt.events();
    let outcomes: Vec<Outcome> = events.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Unchanged,
            Outcome::Rejected
        ]
    );
    assert_eq!(events[0].kind, EventKind::Initial);
    assert_eq!(events[1].kind, EventKind::Api);
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert!(
        events
            .iter()
            .all(|e| e.timestamp.ends_with('Z') && e.handler_hash.len() == 64)
    );
    let stats = rt.stats();
    assert_eq!(stats.total, 4);
    assert_eq!(stats.success_rate, 0.75);
    assert_eq!(stats.by_outcome[&Outcome::Applied], 2);
    assert_eq!(stats.by_cause[&hotreload::Cause::Invalid], 1);
    assert!(stats.p50_us > 0 && stats.p99_us >= stats.p50_us);
    let c = &stats.components["logging"];
    assert_eq!(c.total, 4);
    assert_eq!(c.support_level, Some(hotreload::SupportLevel::Full));
}

#[tokio::test]
async fn the_ring_is_bounded_but_stats_count_everything() -> Result<()> {
    let rt = Runtime::new(Settings {
        event_store_events: 5,
        ..crate::settings()
    })?;
    rt.add_component(ComponentSpec::new(
        "logging",
        hotreload_handlers::LOGGING,
        "{}",
    ))
    .await?;
    for i in 0..20 {
        let level = ["debug", "info"][i % 2];
        reload(&rt, "logging", json!({"level": level})).await;
    }
    let events = rt.events();
    assert_eq!(events.len(), 5);
    assert_eq!(events.last().map(|e| e.id), Some(21));
    assert_eq!(rt.stats().total, 21);
    assert_eq!(rt.stats().events_kept, 5);
    Ok(())
}

#[tokio::test]
async fn the_ring_keeps_to_its_byte_budget() -> Result<()> {
    let rt = Runtime::new(Settings {
        event_store_bytes: 64 * 1024,
        ..crate::settings()
    })?;
    let fields: serde_json::Map<String, serde_json::Value> = (0..40)
        .map(|i| (format!("k{i}"), json!("v".repeat(40))))
        .collect();
    rt.add_component(ComponentSpec::new(
        "logging",
        hotreload_handlers::LOGGING,
        json!({"fields": fields}).to_string(),
    ))
    .await?;
    for i in 0..200 {
        let level = ["debug", "info"][i % 2];
        reload(&rt, "logging", json!({"level": level, "fields": fields})).await;
    }
    let stats = rt.stats();
    assert!(
        stats.events_bytes <= 64 * 1024,
        "{} bytes",
        stats.events_bytes
    );
    assert!(stats.events_kept < 201 && stats.events_kept > 1);
    assert_eq!(stats.total, 201);
    Ok(())
}

/// A logging runtime with these notification settings; reloads an
/// accepted and a refused configuration; gives what the notification
/// stream delivered, and every event recorded.
async fn notified(success: bool, failure: bool) -> Result<(Vec<Arc<Event>>, Vec<Arc<Event>>)> {
    let rt = Runtime::new(Settings {
        notify_on_success: success,
        notify_on_failure: failure,
        ..crate::settings()
    })?;
    let mut rx = rt.notifications();
    rt.add_component(ComponentSpec::new(
        "logging",
        hotreload_handlers::LOGGING,
        "{}",
    ))
    .await?;
    reload(&rt, "logging", json!({"level": "debug"})).await;
    reload(&rt, "logging", json!({"level": "nope"})).await;
    // Events are sent as they are recorded, before `reload` returns: what
    // is not in the stream now was filtered out.
    let mut delivered = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(e) => delivered.push(e),
            Err(TryRecvError::Empty) => break,
            Err(other) => anyhow::bail!("notification stream: {other}"),
        }
    }
    Ok((delivered, rt.events()))
}

fn outcomes(events: &[Arc<Event>]) -> Vec<Outcome> {
    events.iter().map(|e| e.outcome).collect()
}

#[tokio::test]
async fn notify_on_success_false_sends_only_failures() -> Result<()> {
    let (delivered, recorded) = notified(false, true).await?;
    assert_eq!(outcomes(&delivered), [Outcome::Rejected]);
    assert_eq!(
        delivered[0].error.as_ref().and_then(|e| e.field.as_deref()),
        Some("/level")
    );
    // The filter is the stream's only: every event is still recorded.
    assert_eq!(
        outcomes(&recorded),
        [Outcome::Applied, Outcome::Applied, Outcome::Rejected]
    );
    Ok(())
}

#[tokio::test]
async fn notify_on_failure_false_sends_only_successes() -> Result<()> {
    let (delivered, recorded) = notified(true, false).await?;
    assert_eq!(outcomes(&delivered), [Outcome::Applied, Outcome::Applied]);
    assert_eq!(delivered[0].kind, EventKind::Initial);
    assert_eq!(
        delivered[1]
            .effective_config
            .as_deref()
            .map(|c| &c["level"]),
        Some(&json!("debug"))
    );
    assert_eq!(
        outcomes(&recorded),
        [Outcome::Applied, Outcome::Applied, Outcome::Rejected]
    );
    Ok(())
}

#[tokio::test]
async fn notifications_send_everything_by_default() -> Result<()> {
    let (delivered, recorded) = notified(true, true).await?;
    assert_eq!(outcomes(&delivered), outcomes(&recorded));
    assert_eq!(delivered.len(), 3);
    Ok(())
}

#[tokio::test]
async fn events_serialise_with_every_field() -> Result<()> {
    let rt = with_logging(json!({"level": "info"})).await;
    let e = reload(&rt, "logging", json!({"level": "bogus"})).await;
    let v = serde_json::to_value(&*e)?;
    for key in [
        "id",
        "component",
        "kind",
        "config_path",
        "old_config",
        "new_config",
        "effective_config",
        "changes",
        "timestamp",
        "outcome",
        "failed_phase",
        "cause",
        "error",
        "retries",
        "duration_us",
        "fuel_consumed",
        "version",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["outcome"], "rejected");
    assert_eq!(v["failed_phase"], "validate");
    assert_eq!(v["cause"], "invalid");
    assert_eq!(v["error"]["field"], "/level");
    assert_eq!(v["changes"][0]["path"], "/level");
    Ok(())
}

#[tokio::test]
async fn components_reload_in_parallel_and_each_serially() -> Result<()> {
    let rt = crate::runtime();
    for name in ["a", "b", "c", "d"] {
        rt.add_component(ComponentSpec::new(name, hotreload_handlers::LOGGING, "{}"))
            .await?;
    }
    let mut tasks = Vec::new();
    for name in ["a", "b", "c", "d"] {
        for i in 0..10 {
            let rt = rt.clone();
            tasks.push(tokio::spawn(async move {
                let level = ["debug", "info", "warn"][i % 3];
                rt.reload(
                    name,
                    json!({"level": level, "fields": {"i": i.to_string()}}),
                )
                .await
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await??.outcome, Outcome::Applied);
    }
    for c in rt.components().await {
        assert_eq!(
            c.version, 11,
            "{}: every reload committed exactly once",
            c.name
        );
    }
    Ok(())
}
