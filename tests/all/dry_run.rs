//! Dry runs: what a reload would do, in a throw-away instance, with
//! nothing applied, recorded or persisted.

use anyhow::Result;
use hotreload::{Cause, ComponentSpec, Outcome, Runtime, Settings};
use serde::Deserialize;
use serde_json::json;

#[tokio::test]
async fn a_dry_run_says_what_a_reload_would_do_and_changes_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = Runtime::new(Settings {
        state_dir: Some(dir.path().to_owned()),
        ..crate::settings()
    })?;
    rt.add_component(ComponentSpec::new(
        "logging",
        hotreload_handlers::LOGGING,
        r#"{"level": "info"}"#,
    ))
    .await?;
    let sub = rt.subscribe_json("logging")?;
    let recorded = rt.events().len();
    let instances = crate::instances(&rt, "logging").await;

    let e = rt
        .dry_run("logging", json!({"level": "debug", "format": "json"}))
        .await?;
    assert!(e.dry_run);
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    let effective = e.effective_config.as_ref().expect("an effective config");
    assert_eq!(effective["level"], "debug");
    assert_eq!(effective["format"], "json");
    assert_eq!(e.changes.len(), 2, "{:?}", e.changes);
    assert!(e.fuel_consumed > 0);
    // Nothing happened.
    assert_eq!(rt.current("logging")?["level"], "info");
    assert!(!sub.has_changed()?);
    assert_eq!(rt.events().len(), recorded, "a dry run is not recorded");
    assert_eq!(rt.history("logging", 10).await?.len(), 1);
    assert_eq!(crate::instances(&rt, "logging").await, instances);

    // A refusal says why, with the field.
    let e = rt.dry_run("logging", json!({"level": "loud"})).await?;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(e.cause, Some(Cause::Invalid));
    assert_eq!(
        e.error.as_ref().and_then(|e| e.field.as_deref()),
        Some("/level")
    );
    // The live instance still reloads as before.
    let e = rt.reload("logging", json!({"level": "warn"})).await?;
    assert_eq!(e.outcome, Outcome::Applied);
    assert!(!e.dry_run);
    Ok(())
}

#[tokio::test]
async fn a_dry_run_of_a_restart_required_change_plans_a_restart() -> Result<()> {
    let rt = crate::runtime();
    rt.add_component(ComponentSpec::new(
        "plugin",
        hotreload_handlers::PLUGIN,
        r#"{"enabled": true}"#,
    ))
    .await?;
    let e = rt.dry_run("plugin", json!({"enabled": false})).await?;
    assert_eq!(e.outcome, Outcome::RestartRequired, "{}", e.summary());
    let info = rt.components().await;
    assert!(
        info[0].pending.is_none(),
        "a dry run leaves nothing pending"
    );
    Ok(())
}

#[tokio::test]
async fn a_dry_run_asks_the_subscribers() -> Result<()> {
    /// A service that only knows plain-text logging.
    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Format {
        Text,
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Strict {
        format: Format,
    }
    let rt = crate::with_logging(json!({"level": "info"})).await;
    let _typed = rt.subscribe::<Strict>("logging")?;
    // The handler takes `json`; this subscriber cannot.
    let e = rt
        .dry_run("logging", json!({"level": "info", "format": "json"}))
        .await?;
    assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
    assert_eq!(e.cause, Some(Cause::Subscriber));
    Ok(())
}

#[tokio::test]
async fn a_candidate_handler_is_tried_against_history() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = Runtime::new(Settings {
        state_dir: Some(dir.path().to_owned()),
        ..crate::settings()
    })?;
    // History on the chaos handler, which takes anything: one configuration
    // the logging handler would refuse, some it would take.
    rt.add_component(ComponentSpec::new(
        "c",
        hotreload_handlers::CHAOS,
        r#"{"level": "info"}"#,
    ))
    .await?;
    rt.reload("c", json!({"level": "loud"})).await?;
    rt.reload("c", json!({"level": "debug"})).await?;
    rt.reload("c", json!({"level": "warn"})).await?;
    let in_force = rt.current("c")?;
    let recorded = rt.events().len();

    let report = rt
        .dry_run_handler("c", hotreload_handlers::LOGGING.into())
        .await?;
    assert_eq!(
        report.in_force.outcome,
        Outcome::Applied,
        "{}",
        report.in_force.summary()
    );
    assert!(report.in_force.dry_run);
    let by_version: Vec<(u64, Outcome)> = report
        .history
        .iter()
        .map(|(v, e)| (*v, e.outcome))
        .collect();
    // Versions 3, 2, 1 (4, in force, is not tried twice); 2 is refused.
    assert_eq!(
        by_version,
        [
            (3, Outcome::Applied),
            (2, Outcome::Rejected),
            (1, Outcome::Applied)
        ]
    );
    let refused = &report.history[1].1;
    assert_eq!(
        refused.error.as_ref().and_then(|e| e.field.as_deref()),
        Some("/level")
    );
    assert!(!report.accepts_all());
    // Nothing changed: the handler, the configuration, the events.
    assert_eq!(rt.current("c")?, in_force);
    assert_eq!(rt.events().len(), recorded);
    let e = rt.reload("c", json!({"level": "loud"})).await?;
    assert_eq!(e.outcome, Outcome::Applied, "chaos is still the handler");
    Ok(())
}
