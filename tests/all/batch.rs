//! All-or-nothing batches: every member commits, or none does and
//! subscribers never see a mix.

use std::time::Duration;

use anyhow::Result;
use hotreload::{Cause, ComponentSpec, Error, Outcome, Runtime, Settings};
use serde_json::{Value, json};

async fn three(state: Option<&std::path::Path>) -> Result<Runtime> {
    let rt = Runtime::new(Settings {
        state_dir: state.map(|s| s.to_owned()),
        ..crate::settings()
    })?;
    for name in ["a", "b", "c"] {
        rt.add_component(ComponentSpec::new(
            name,
            hotreload_handlers::LOGGING,
            r#"{"level": "info"}"#,
        ))
        .await?;
    }
    Ok(rt)
}

fn level(rt: &Runtime, name: &str) -> Value {
    rt.current(name).expect("a component")["level"].clone()
}

#[tokio::test]
async fn a_batch_commits_every_member_together() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = three(Some(dir.path())).await?;
    let report = rt
        .reload_batch([
            ("c", json!({"level": "warn"})),
            ("a", json!({"level": "debug"})),
            ("b", json!({"level": "info"})),
        ])
        .await?;
    assert_eq!(report.outcome, Outcome::Applied, "{report:?}");
    // One event per member, in name order, all with the batch's id.
    let names: Vec<&str> = report.events.iter().map(|e| e.component.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    for e in &report.events {
        assert_eq!(e.batch.as_deref(), Some(report.id.as_str()));
    }
    let outcomes: Vec<Outcome> = report.events.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Applied, Outcome::Unchanged, Outcome::Applied]
    );
    assert_eq!(level(&rt, "a"), "debug");
    assert_eq!(level(&rt, "c"), "warn");
    // The revisions say which batch made them.
    let head = &rt.history("a", 1).await?[0];
    assert_eq!(head.version, 2);
    assert_eq!(head.source.batch.as_deref(), Some(report.id.as_str()));
    assert_eq!(rt.history("b", 10).await?.len(), 1, "unchanged: no version");
    Ok(())
}

#[tokio::test]
async fn one_refusal_aborts_every_member() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = three(Some(dir.path())).await?;
    let mut subs = Vec::new();
    for name in ["a", "b", "c"] {
        subs.push(rt.subscribe_json(name)?);
    }
    let report = rt
        .reload_batch([
            ("a", json!({"level": "debug"})),
            ("b", json!({"level": "loud"})),
            ("c", json!({"level": "warn"})),
        ])
        .await?;
    assert_ne!(report.outcome, Outcome::Applied, "{report:?}");
    let by_name = |n: &str| {
        report
            .events
            .iter()
            .find(|e| e.component == n)
            .cloned()
            .expect("an event per member")
    };
    // The member the handler refused says why ...
    let b = by_name("b");
    assert_eq!(b.outcome, Outcome::Rejected);
    assert_eq!(b.cause, Some(Cause::Invalid));
    // ... the others, applied in their handlers, were rolled back.
    for n in ["a", "c"] {
        let e = by_name(n);
        assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
        assert_eq!(e.cause, Some(Cause::Batch), "{}", e.summary());
        let message = &e.error.as_ref().expect("an error").message;
        assert!(message.contains("\"b\""), "names the member: {message}");
    }
    for name in ["a", "b", "c"] {
        assert_eq!(
            level(&rt, name),
            "info",
            "{name} kept the old configuration"
        );
        assert_eq!(rt.history(name, 10).await?.len(), 1, "{name}: no revision");
    }
    for sub in &subs {
        assert!(!sub.has_changed()?, "a subscriber saw part of a batch");
    }
    // Every handler is back on the old configuration: a later reload of
    // one member sees `info` as the old one.
    let e = rt.reload("a", json!({"level": "error"})).await?;
    assert_eq!(e.outcome, Outcome::Applied);
    assert_eq!(e.old_config.as_deref(), Some(&json!({"level": "info"})));
    Ok(())
}

#[tokio::test]
async fn a_batch_names_unknown_and_repeated_members_before_doing_anything() -> Result<()> {
    let rt = three(None).await?;
    let err = rt
        .reload_batch([("a", json!({"level": "debug"})), ("zz", json!({}))])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownComponent(ref n) if n == "zz"),
        "{err}"
    );
    let err = rt
        .reload_batch([("a", json!({"level": "debug"})), ("a", json!({}))])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"a\""), "{err}");
    assert_eq!(level(&rt, "a"), "info");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_batches_in_any_order_never_deadlock() -> Result<()> {
    let rt = three(None).await?;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            let level = ["debug", "warn"][i % 2];
            // Members listed in opposite orders: locks are taken by name.
            let members = if i % 2 == 0 {
                vec![
                    ("a", json!({ "level": level })),
                    ("c", json!({ "level": level })),
                ]
            } else {
                vec![
                    ("c", json!({ "level": level })),
                    ("a", json!({ "level": level })),
                ]
            };
            rt.reload_batch(members).await
        }));
    }
    for t in tasks {
        let report = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("no deadlock")??;
        assert_eq!(report.outcome, Outcome::Applied, "{report:?}");
    }
    // a and c always moved together.
    assert_eq!(level(&rt, "a"), level(&rt, "c"));
    Ok(())
}

#[tokio::test]
async fn an_aborted_member_gets_a_fresh_instance_when_the_handler_does_not_roll_back() -> Result<()>
{
    let rt = Runtime::new(Settings {
        rollback_on_failure: false,
        ..crate::settings()
    })?;
    for name in ["a", "b"] {
        rt.add_component(ComponentSpec::new(
            name,
            hotreload_handlers::LOGGING,
            r#"{"level": "info"}"#,
        ))
        .await?;
    }
    let before = crate::instances(&rt, "a").await;
    let report = rt
        .reload_batch([
            ("a", json!({"level": "debug"})),
            ("b", json!({"level": "loud"})),
        ])
        .await?;
    let a = &report.events[0];
    assert_eq!(a.outcome, Outcome::RolledBack, "{}", a.summary());
    assert_eq!(a.cause, Some(Cause::Batch));
    // a's handler applied the batch's configuration and is not asked to
    // roll back: a fresh instance on the old configuration replaces it.
    assert_eq!(crate::instances(&rt, "a").await, before + 1);
    assert_eq!(level(&rt, "a"), "info");
    Ok(())
}

#[tokio::test]
async fn a_member_needing_a_restart_fails_the_batch_and_leaves_nothing_pending() -> Result<()> {
    let rt = three(None).await?;
    rt.add_component(ComponentSpec::new(
        "plugin",
        hotreload_handlers::PLUGIN,
        r#"{"enabled": true}"#,
    ))
    .await?;
    let report = rt
        .reload_batch([
            ("a", json!({"level": "debug"})),
            ("plugin", json!({"enabled": false})),
        ])
        .await?;
    assert_ne!(report.outcome, Outcome::Applied);
    let plugin = report
        .events
        .iter()
        .find(|e| e.component == "plugin")
        .expect("an event");
    assert_eq!(plugin.outcome, Outcome::RestartRequired);
    assert_eq!(report.events[0].cause, Some(Cause::Batch));
    assert_eq!(level(&rt, "a"), "info");
    let info = rt.components().await;
    let p = info.iter().find(|c| c.name == "plugin").expect("plugin");
    assert!(p.pending.is_none(), "nothing kept for the next start");
    Ok(())
}
