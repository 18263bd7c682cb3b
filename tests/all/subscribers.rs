//! Typed subscriptions to effective configurations.

use std::time::Duration;

use hotreload::{Error, Outcome};
use serde::Deserialize;
use serde_json::json;

use crate::{reload, with_logging};

#[derive(Debug, Deserialize, PartialEq)]
struct Output {
    #[serde(rename = "type")]
    kind: String,
    level: String,
}

#[derive(Debug, Deserialize)]
struct Logging {
    level: String,
    outputs: Vec<Output>,
}

#[tokio::test]
async fn typed_subscriber_sees_each_commit_and_nothing_else() -> anyhow::Result<()> {
    let rt = with_logging(json!({"level": "warn"})).await;
    let mut rx = rt.subscribe::<Logging>("logging")?;
    assert_eq!(rx.borrow().level, "warn");
    assert_eq!(
        rx.borrow().outputs,
        [Output {
            kind: "stdout".into(),
            level: "warn".into()
        }]
    );
    let e = reload(
        &rt,
        "logging",
        json!({"level": "error", "outputs": [{"type": "stderr"}]}),
    )
    .await;
    assert_eq!(e.outcome, Outcome::Applied);
    tokio::time::timeout(Duration::from_secs(5), rx.changed()).await??;
    assert_eq!(rx.borrow_and_update().outputs[0].kind, "stderr");
    reload(&rt, "logging", json!({"level": "nope"})).await;
    assert!(
        !rx.has_changed()?,
        "a rejected configuration reached the subscriber"
    );
    Ok(())
}

#[tokio::test]
async fn a_type_that_does_not_fit_is_refused_at_subscribe() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        port: u16,
    }
    let rt = with_logging(json!({})).await;
    let err = rt.subscribe::<Wrong>("logging").unwrap_err();
    assert!(matches!(err, Error::Subscribe { .. }), "{err}");
    assert!(err.to_string().contains("port"), "{err}");
}

#[tokio::test]
async fn dropped_subscribers_do_not_block_reloads() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct OnlyInfo {
        level: Info,
    }
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Info {
        Info,
    }
    let rt = with_logging(json!({"level": "info"})).await;
    let rx = rt.subscribe::<OnlyInfo>("logging").unwrap();
    drop(rx);
    let e = reload(&rt, "logging", json!({"level": "debug"})).await;
    assert_eq!(e.outcome, Outcome::Applied);
}
