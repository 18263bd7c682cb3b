//! Hostile handlers written by hand (tests/all/fixtures): each leaves the
//! host serving the old configuration, with a correct event.

use hotreload::{Cause, ComponentSpec, Error, HandlerSource, Outcome, Phase};
use serde_json::json;

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/all/fixtures/{name}.wat",
        env!("CARGO_MANIFEST_DIR")
    );
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn a_huge_table_is_the_memory_limit() {
    let rt = crate::runtime();
    let err = rt
        .add_component(ComponentSpec::new("table", fixture("huge_table"), "{}"))
        .await
        .unwrap_err();
    let Error::InitialLoad { event, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(event.outcome, Outcome::Rejected);
    assert_eq!(
        (event.failed_phase, event.cause),
        (Some(Phase::Validate), Some(Cause::MemoryLimit))
    );
    // As a hot swap for a working component, it is refused and the old stays.
    let rt = crate::with_logging(json!({"level": "warn"})).await;
    let e = rt
        .swap_handler(
            "logging",
            HandlerSource::Bytes(fixture("huge_table").into()),
        )
        .await
        .unwrap();
    assert_eq!(
        (e.outcome, e.cause),
        (Outcome::Rejected, Some(Cause::MemoryLimit))
    );
    assert_eq!(rt.current("logging").unwrap()["level"], "warn");
    let e = rt
        .reload("logging", json!({"level": "error"}))
        .await
        .unwrap();
    assert_eq!(e.outcome, Outcome::Applied, "the old handler still serves");
}

#[tokio::test]
async fn a_trapping_support_level_is_refused() {
    let rt = crate::runtime();
    let err = rt
        .add_component(ComponentSpec::new(
            "s",
            fixture("support_level_traps"),
            "{}",
        ))
        .await
        .unwrap_err();
    let Error::InitialLoad { event, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(
        (event.failed_phase, event.cause),
        (Some(Phase::Instantiate), Some(Cause::Trap))
    );
    let rt = crate::with_logging(json!({"level": "warn"})).await;
    let e = rt
        .swap_handler(
            "logging",
            HandlerSource::Bytes(fixture("support_level_traps").into()),
        )
        .await
        .unwrap();
    assert_eq!((e.outcome, e.cause), (Outcome::Rejected, Some(Cause::Trap)));
    assert!(
        e.error
            .as_ref()
            .unwrap()
            .message
            .contains("the old handler stays")
    );
    assert_eq!(rt.current("logging").unwrap()["level"], "warn");
}
