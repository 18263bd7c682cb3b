//! Every transaction is a `transaction` span with a `phase` span per
//! handler call and the commit, carrying fuel and outcome.

use hotreload::ComponentSpec;
use serde_json::json;

use crate::logs::{SpanRecord, capture, spans};

fn field<'a>(s: &'a SpanRecord, name: &str) -> &'a str {
    s.fields.get(name).map_or("", String::as_str)
}

/// The phase spans under a transaction span, in the order they began.
fn phases(tx: &SpanRecord) -> Vec<SpanRecord> {
    spans(|s| s.parent == Some(tx.id) && s.name == "phase")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_is_a_span_with_a_child_per_phase() {
    capture();
    let rt = crate::runtime();
    rt.add_component(ComponentSpec::new(
        "spans-logging",
        hotreload_handlers::LOGGING,
        json!({"level": "info"}).to_string(),
    ))
    .await
    .unwrap();
    rt.reload("spans-logging", json!({"level": "debug"}).to_string())
        .await
        .unwrap();
    rt.reload("spans-logging", json!({"level": "shouty"}).to_string())
        .await
        .unwrap();
    let txs = spans(|s| s.name == "transaction" && field(s, "component") == "spans-logging");
    assert_eq!(txs.len(), 3, "{txs:#?}");

    let (load, applied, rejected) = (&txs[0], &txs[1], &txs[2]);
    assert_eq!(field(load, "kind"), "initial");
    assert_eq!(field(load, "outcome"), "applied");
    assert_eq!(field(load, "version"), "1");

    assert_eq!(field(applied, "kind"), "api");
    assert_eq!(field(applied, "outcome"), "applied");
    assert_eq!(field(applied, "version"), "2");
    assert!(field(applied, "fuel").parse::<u64>().unwrap() > 0);
    let steps = phases(applied);
    let names: Vec<&str> = steps.iter().map(|p| field(p, "phase")).collect();
    assert_eq!(names, ["validate", "reload", "commit"], "{steps:#?}");
    let fuel: u64 = steps
        .iter()
        .filter_map(|p| p.fields.get("fuel")?.parse::<u64>().ok())
        .sum();
    assert_eq!(fuel.to_string(), field(applied, "fuel"));
    assert!(steps[..2].iter().all(|p| field(p, "outcome") == "ok"));

    assert_eq!(field(rejected, "outcome"), "rejected");
    assert_eq!(field(rejected, "version"), "2");
    let steps = phases(rejected);
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert_eq!(field(&steps[0], "phase"), "validate");
    assert_eq!(field(&steps[0], "outcome"), "invalid");
    rt.shutdown().await;
}
