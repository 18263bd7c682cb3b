//! Integration tests, one binary: a module per topic, shared helpers here.

mod batch;
mod cache;
mod capacity;
mod conform;
mod contract;
mod contract_v2;
mod daemon;
mod dry_run;
mod embedder;
mod events;
mod fuzz_corpus;
mod groups;
mod hostile;
mod hostile_files;
mod limits;
mod load;
mod loading;
mod logs;
mod properties;
mod replay;
mod revisions;
mod sandbox;
mod spans;
mod subscribers;
mod transaction;
mod utf8;

use std::sync::Arc;

use hotreload::{ComponentSpec, Event, LimitOverrides, Runtime, Settings};
use serde_json::{Value, json};

pub(crate) fn settings() -> Settings {
    Settings {
        retry_interval_ms: 1,
        ..Settings::default()
    }
}

pub(crate) fn runtime() -> Runtime {
    Runtime::new(settings()).expect("runtime")
}

pub(crate) async fn with_logging(config: Value) -> Runtime {
    let rt = runtime();
    rt.add_component(ComponentSpec::new(
        "logging",
        hotreload_handlers::LOGGING,
        config.to_string(),
    ))
    .await
    .expect("logging loads");
    rt
}

pub(crate) async fn with_chaos(limits: LimitOverrides) -> Runtime {
    let rt = runtime();
    rt.add_component(
        ComponentSpec::new(
            "chaos",
            hotreload_handlers::CHAOS,
            json!({"n": 0}).to_string(),
        )
        .limits(limits),
    )
    .await
    .expect("chaos loads");
    rt
}

/// A hand-written handler from `tests/all/fixtures`, assembled.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/all/fixtures/{name}.wat",
        env!("CARGO_MANIFEST_DIR")
    );
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) async fn reload(rt: &Runtime, name: &str, config: Value) -> Arc<Event> {
    rt.reload(name, config).await.expect("component exists")
}

pub(crate) async fn instances(rt: &Runtime, name: &str) -> u64 {
    rt.components()
        .await
        .into_iter()
        .find(|c| c.name == name)
        .expect("component")
        .instances_created
}

pub(crate) fn field(e: &Event) -> Option<&str> {
    e.error.as_ref().and_then(|e| e.field.as_deref())
}

pub(crate) fn message(e: &Event) -> &str {
    e.error.as_ref().map_or("", |e| e.message.as_str())
}

/// Whether this runs under CI (`CI` set, as CI services do, and not to
/// `false` or `0`): there a test that cannot run must fail, not skip.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}
