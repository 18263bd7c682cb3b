//! A thousand components in one daemon, and a pool that runs out: the host's
//! capacity is its own cause, never blamed on the handler.

use hotreload::daemon::{Daemon, Manifest};
use hotreload::{Cause, ComponentSpec, Error, Outcome, Phase, Runtime, Settings};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_with_1000_components_loads_and_reloads_every_one() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut manifest = String::from("[runtime]\ndebounce_ms = 50\n");
    for i in 0..1000 {
        std::fs::write(
            dir.path().join(format!("c{i}.json")),
            json!({"level": "info", "fields": {"i": i.to_string()}}).to_string(),
        )?;
        manifest.push_str(&format!(
            "[[component]]\nname = \"c{i}\"\nhandler = \"bundled:logging\"\nconfig = \"c{i}.json\"\n"
        ));
    }
    let path = dir.path().join("hotreload.toml");
    std::fs::write(&path, manifest)?;
    let mut daemon = Daemon::new(Manifest::load(&path)?, hotreload_handlers::by_name)?;
    daemon.start().await?;
    let runtime = daemon.runtime().clone();
    assert_eq!(runtime.components().await.len(), 1000);
    // Every one of them still has a live instance to reload with.
    for i in [0, 256, 257, 511, 512, 999] {
        let name = format!("c{i}");
        let event = runtime
            .reload(
                &name,
                json!({"level": "debug", "fields": {"i": i.to_string()}}),
            )
            .await?;
        assert_eq!(event.outcome, Outcome::Applied, "{}", event.summary());
        assert_eq!(runtime.current(&name)?["level"], "debug");
    }
    daemon.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn running_out_of_instance_slots_is_cause_capacity() -> anyhow::Result<()> {
    let runtime = Runtime::new(Settings {
        pool_instances: Some(3),
        ..crate::settings()
    })?;
    let config = json!({"level": "info"}).to_string();
    for name in ["a", "b", "c"] {
        runtime
            .add_component(ComponentSpec::new(
                name,
                hotreload_handlers::LOGGING,
                config.as_str(),
            ))
            .await?;
    }
    let err = runtime
        .add_component(ComponentSpec::new(
            "d",
            hotreload_handlers::LOGGING,
            config.as_str(),
        ))
        .await
        .expect_err("a fourth instance does not fit in three slots");
    let Error::InitialLoad { event, .. } = err else {
        panic!("expected InitialLoad, got {err}");
    };
    assert_eq!(event.cause, Some(Cause::Capacity), "{}", event.summary());
    assert_eq!(event.failed_phase, Some(Phase::Instantiate));
    assert!(
        event
            .error
            .as_ref()
            .is_some_and(|e| e.message.contains("concurrent limit")),
        "{}",
        event.summary()
    );
    // The components that fit are unharmed.
    let event = runtime.reload("a", json!({"level": "warn"})).await?;
    assert_eq!(event.outcome, Outcome::Applied);
    Ok(())
}
