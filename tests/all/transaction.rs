//! Every outcome and every cause of the reload transaction, with the
//! configuration in force afterwards and the instance used.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use hotreload::{
    Cause, ChangeOp, ComponentSpec, LimitOverrides, Outcome, Phase, Runtime, Settings, SupportLevel,
};
use serde_json::{Value, json};

use crate::{field, instances, message, reload, with_chaos, with_logging};

#[tokio::test]
async fn applied_reaches_subscribers_and_bumps_the_version() {
    let rt = with_logging(json!({"level": "info"})).await;
    let mut json = rt.subscribe_json("logging").unwrap();
    let e = reload(&rt, "logging", json!({"level": "debug", "format": "json"})).await;
    assert_eq!(e.outcome, Outcome::Applied);
    assert_eq!(
        (e.failed_phase, e.cause, e.error.clone()),
        (None, None, None)
    );
    assert_eq!(e.version, 2);
    assert!(e.fuel_consumed > 0);
    assert!(e.duration_us > 0);
    let effective = e.effective_config.clone().unwrap();
    assert_eq!(effective["level"], "debug");
    assert_eq!(
        effective["outputs"],
        json!([{"type": "stdout", "level": "debug"}])
    );
    assert!(json.has_changed().unwrap());
    assert_eq!(*json.borrow_and_update(), effective);
    let level = e.changes.iter().find(|c| c.path == "/level").unwrap();
    assert_eq!(level.op, ChangeOp::Changed);
    assert_eq!(
        (level.old.clone(), level.new.clone()),
        (Some(json!("info")), Some(json!("debug")))
    );
    assert!(
        e.changes
            .iter()
            .any(|c| c.path == "/format" && c.op == ChangeOp::Added)
    );
}

#[tokio::test]
async fn unchanged_calls_nothing() {
    let rt = with_logging(json!({"level": "info", "format": "text"})).await;
    let e = rt
        .reload("logging", "{\"format\":\"text\",\n \"level\":\"info\"}")
        .await
        .unwrap();
    assert_eq!(e.outcome, Outcome::Unchanged);
    assert_eq!(e.fuel_consumed, 0);
    assert_eq!(e.version, 1);
    assert!(e.changes.is_empty());
}

#[tokio::test]
async fn rejected_by_the_handler_names_the_field_and_keeps_the_old() {
    let rt = with_logging(json!({"level": "info"})).await;
    let before = instances(&rt, "logging").await;
    let e = reload(&rt, "logging", json!({"outputs": [{"type": "file"}]})).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(e.failed_phase, Some(Phase::Validate));
    assert_eq!(e.cause, Some(Cause::Invalid));
    assert_eq!(field(&e), Some("/outputs/0/path"));
    assert_eq!(e.retries, 0, "validation failures are never retried");
    assert_eq!(rt.current("logging").unwrap()["level"], "info");
    // An ordinary failure leaves the instance usable.
    assert_eq!(instances(&rt, "logging").await, before);
    let e = reload(&rt, "logging", json!({"level": "error"})).await;
    assert_eq!(e.outcome, Outcome::Applied);
    assert_eq!(e.version, 2);
}

#[tokio::test]
async fn unparsable_configuration_is_rejected_before_any_call() {
    let rt = with_logging(json!({"level": "info"})).await;
    let e = rt.reload("logging", r#"{"level": "deb"#).await.unwrap();
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(e.failed_phase, Some(Phase::Parse));
    assert_eq!(e.cause, Some(Cause::Invalid));
    assert_eq!(e.fuel_consumed, 0);
    assert!(message(&e).contains("not valid JSON"), "{}", message(&e));
    assert_eq!(rt.current("logging").unwrap()["level"], "info");
}

#[tokio::test]
async fn restart_required_is_pending_not_applied() {
    let rt = crate::runtime();
    rt.add_component(ComponentSpec::new(
        "plugin",
        hotreload_handlers::PLUGIN,
        r#"{"enabled": true, "workers": 2}"#,
    ))
    .await
    .unwrap();
    let e = reload(&rt, "plugin", json!({"enabled": false, "workers": 2})).await;
    assert_eq!(e.outcome, Outcome::RestartRequired);
    assert_eq!(e.effective_config, None);
    let info = rt.components().await.remove(0);
    assert_eq!(info.support_level, Some(SupportLevel::Partial));
    assert_eq!(info.effective["enabled"], true, "never applied in place");
    assert_eq!(
        info.pending.as_deref(),
        Some(&json!({"enabled": false, "workers": 2}))
    );
    // Partial support: other changes still reload in place.
    let e = reload(&rt, "plugin", json!({"enabled": true, "workers": 3})).await;
    assert_eq!(e.outcome, Outcome::Applied);
    assert_eq!(rt.components().await[0].pending, None);
    // The next restart applies what is pending.
    reload(&rt, "plugin", json!({"enabled": false, "workers": 3})).await;
    let e = rt.restart_component("plugin").await.unwrap();
    assert_eq!(e.outcome, Outcome::Applied);
    assert_eq!(e.kind, hotreload::EventKind::Restart);
    assert_eq!(rt.current("plugin").unwrap()["enabled"], false);
}

#[tokio::test]
async fn trap_rolls_back_on_a_fresh_instance_with_the_panic_message() {
    let rt = with_chaos(LimitOverrides::default()).await;
    assert_eq!(instances(&rt, "chaos").await, 1);
    let e = reload(&rt, "chaos", json!({"n": 1, "reload": "panic"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack);
    assert_eq!(e.failed_phase, Some(Phase::Reload));
    assert_eq!(e.cause, Some(Cause::Trap));
    assert!(
        message(&e).contains("chaos handler panicked on purpose in reload"),
        "{}",
        message(&e)
    );
    assert_eq!(
        instances(&rt, "chaos").await,
        2,
        "the trapped instance was replaced"
    );
    assert_eq!(*rt.current("chaos").unwrap(), json!({"n": 0}));
    let e = reload(&rt, "chaos", json!({"n": 2})).await;
    assert_eq!(e.outcome, Outcome::Applied);
}

#[tokio::test]
async fn trap_in_validate_is_rejected_and_replaces_the_instance() {
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(&rt, "chaos", json!({"validate": "trap"})).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Validate), Some(Cause::Trap))
    );
    assert!(message(&e).contains("unreachable"), "{}", message(&e));
    assert_eq!(instances(&rt, "chaos").await, 2);
    assert_eq!(*rt.current("chaos").unwrap(), json!({"n": 0}));
}

#[tokio::test]
async fn failure_in_reload_calls_rollback_on_the_same_instance() {
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(&rt, "chaos", json!({"reload": "fail"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Reload), Some(Cause::Invalid))
    );
    assert_eq!(field(&e), Some("/reload"));
    assert_eq!(e.retries, 0);
    assert_eq!(instances(&rt, "chaos").await, 1);
}

#[tokio::test]
async fn timeout_in_reload_is_retried_once_then_rolled_back() {
    let rt = with_chaos(LimitOverrides {
        reload_timeout_ms: Some(60),
        // a tight loop burns the default fuel in ~100 ms: only the deadline should cut
        fuel: Some(u64::MAX / 2),
        ..LimitOverrides::default()
    })
    .await;
    let e = reload(&rt, "chaos", json!({"reload": "spin"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Reload), Some(Cause::Timeout))
    );
    assert_eq!(e.retries, 1);
    // first instance, a fresh one for the retry, a fresh one after it
    assert_eq!(instances(&rt, "chaos").await, 3);
    assert_eq!(*rt.current("chaos").unwrap(), json!({"n": 0}));
}

#[tokio::test]
async fn timeout_in_validate_is_not_retried() {
    let rt = with_chaos(LimitOverrides {
        validation_timeout_ms: Some(50),
        // a tight loop burns the default fuel in ~100 ms: only the deadline should cut
        fuel: Some(u64::MAX / 2),
        ..LimitOverrides::default()
    })
    .await;
    let e = reload(&rt, "chaos", json!({"validate": "spin"})).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Validate), Some(Cause::Timeout))
    );
    assert_eq!(e.retries, 0);
    assert!(message(&e).contains("50 ms deadline"), "{}", message(&e));
    assert_eq!(instances(&rt, "chaos").await, 2);
}

#[tokio::test]
async fn slow_can_reload_times_out() {
    let rt = with_chaos(LimitOverrides {
        validation_timeout_ms: Some(60),
        // a tight loop burns the default fuel in ~100 ms: only the deadline should cut
        fuel: Some(u64::MAX / 2),
        ..LimitOverrides::default()
    })
    .await;
    let e = reload(&rt, "chaos", json!({"can_reload": "slow:2000"})).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::CanReload), Some(Cause::Timeout))
    );
    assert!(
        e.duration_us < 1_000_000,
        "cut off after {} us",
        e.duration_us
    );
    assert_eq!(*rt.current("chaos").unwrap(), json!({"n": 0}));
}

#[tokio::test]
async fn out_of_fuel_is_its_own_cause() {
    let rt = with_chaos(LimitOverrides {
        fuel: Some(2_000_000),
        validation_timeout_ms: Some(20_000),
        ..LimitOverrides::default()
    })
    .await;
    let e = reload(&rt, "chaos", json!({"validate": "spin"})).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Validate), Some(Cause::OutOfFuel))
    );
    assert!(e.fuel_consumed >= 2_000_000, "fuel {}", e.fuel_consumed);
    assert_eq!(instances(&rt, "chaos").await, 2);
}

#[tokio::test]
async fn memory_limit_is_reported_even_when_rust_aborts() {
    let rt = with_chaos(LimitOverrides {
        memory_mib: Some(8),
        ..LimitOverrides::default()
    })
    .await;
    let e = reload(&rt, "chaos", json!({"reload": "oom"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Reload), Some(Cause::MemoryLimit))
    );
    assert!(message(&e).contains("memory allocation"), "{}", message(&e));
    assert_eq!(instances(&rt, "chaos").await, 2);
    assert_eq!(*rt.current("chaos").unwrap(), json!({"n": 0}));
}

#[tokio::test]
async fn deep_recursion_traps() {
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(&rt, "chaos", json!({"validate": "recurse"})).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(e.cause, Some(Cause::Trap));
    assert_eq!(instances(&rt, "chaos").await, 2);
}

#[tokio::test]
async fn output_that_is_not_json_is_bad_output() {
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(&rt, "chaos", json!({"reload": "non_json"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Reload), Some(Cause::BadOutput))
    );
    assert_eq!(*rt.current("chaos").unwrap(), json!({"n": 0}));
}

#[tokio::test]
async fn output_over_the_bound_is_bad_output() {
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(&rt, "chaos", json!({"reload": "huge_output"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack);
    assert_eq!(e.cause, Some(Cause::BadOutput));
    assert!(message(&e).contains("output limit"), "{}", message(&e));
}

#[tokio::test]
async fn transient_failures_are_retried_up_to_max_retries() {
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(&rt, "chaos", json!({"reload": "transient:2"})).await;
    assert_eq!(e.outcome, Outcome::Applied);
    assert_eq!(e.retries, 2);
    // The counter is per instance and this one has failed twice already:
    // `transient:3` has one failure left, so one retry applies it.
    let e = reload(&rt, "chaos", json!({"reload": "transient:3", "n": 5})).await;
    assert_eq!(
        (e.outcome, e.retries),
        (Outcome::Applied, 1),
        "{}",
        e.summary()
    );
    // A fresh component counts from zero: three failures, two retries.
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(&rt, "chaos", json!({"reload": "transient:3"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack);
    assert_eq!(e.retries, 2);
    assert_eq!(e.cause, Some(Cause::Invalid));
    assert_eq!(message(&e), "chaos: transient failure 3 of 3");
}

#[tokio::test]
async fn max_retries_is_a_setting_and_a_component_override() -> Result<()> {
    let rt = Runtime::new(Settings {
        max_retries: 1,
        ..crate::settings()
    })?;
    let three = LimitOverrides {
        max_retries: Some(3),
        ..LimitOverrides::default()
    };
    for (name, limits) in [("one", LimitOverrides::default()), ("three", three)] {
        rt.add_component(ComponentSpec::new(name, hotreload_handlers::CHAOS, "{}").limits(limits))
            .await?;
    }
    let flaky = json!({"reload": "transient:3"});
    // The runtime's one retry is not enough for three failures...
    let e = reload(&rt, "one", flaky.clone()).await;
    assert_eq!(
        (e.outcome, e.failed_phase, e.cause, e.retries),
        (
            Outcome::RolledBack,
            Some(Phase::Reload),
            Some(Cause::Invalid),
            1
        ),
        "{}",
        e.summary()
    );
    assert_eq!(message(&e), "chaos: transient failure 2 of 3");
    assert_eq!(*rt.current("one")?, json!({}));
    // ...the override's three are.
    let e = reload(&rt, "three", flaky.clone()).await;
    assert_eq!(
        (e.outcome, e.retries),
        (Outcome::Applied, 3),
        "{}",
        e.summary()
    );
    assert_eq!(*rt.current("three")?, flaky);
    Ok(())
}

#[tokio::test]
async fn rollback_that_hangs_is_cut_off_and_replaced() {
    let rt = with_chaos(LimitOverrides {
        reload_timeout_ms: Some(80),
        // a tight loop burns the default fuel in ~100 ms: only the deadline should cut
        fuel: Some(u64::MAX / 2),
        ..LimitOverrides::default()
    })
    .await;
    let e = reload(&rt, "chaos", json!({"reload": "fail", "rollback": "spin"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Reload), Some(Cause::Invalid))
    );
    assert_eq!(instances(&rt, "chaos").await, 2);
    assert_eq!(*rt.current("chaos").unwrap(), json!({"n": 0}));
    assert_eq!(
        reload(&rt, "chaos", json!({"n": 3})).await.outcome,
        Outcome::Applied
    );
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
}

/// A chaos component whose configuration in force (returned) accepts
/// `reload` only until a moment that has passed when this returns, so
/// restoring it on a fresh instance fails.
async fn unrestorable() -> Result<(Runtime, Value)> {
    let rt = with_chaos(LimitOverrides::default()).await;
    // The reload must finish before the moment: on a machine too busy for
    // that, a later moment is tried.
    let mut margin = 200;
    loop {
        let until = now_ms() + margin;
        let old = json!({"reload": format!("fail_after:{until}")});
        let e = reload(&rt, "chaos", old.clone()).await;
        if e.outcome == Outcome::Applied {
            while now_ms() <= until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            return Ok((rt, old));
        }
        ensure!(
            margin < 60_000,
            "could not apply {old} in time: {}",
            e.summary()
        );
        margin *= 2;
    }
}

#[tokio::test]
async fn degraded_when_the_old_configuration_cannot_be_restored() -> Result<()> {
    let (rt, old) = unrestorable().await?;
    let sub = rt.subscribe_json("chaos")?;
    let e = reload(&rt, "chaos", json!({"reload": "panic"})).await;
    assert_eq!(e.outcome, Outcome::Degraded, "{}", e.summary());
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Reload), Some(Cause::Trap))
    );
    assert!(message(&e).contains("degraded"), "{}", message(&e));
    let info = rt.components().await.remove(0);
    assert!(info.degraded);
    assert_eq!(
        *info.effective, old,
        "subscribers keep the old configuration"
    );
    assert_eq!(*rt.current("chaos")?, old);
    assert!(!sub.has_changed()?);
    Ok(())
}

#[tokio::test]
async fn a_degraded_component_recovers_on_a_good_reload() -> Result<()> {
    let (rt, old) = unrestorable().await?;
    let e = reload(&rt, "chaos", json!({"reload": "panic"})).await;
    assert_eq!(e.outcome, Outcome::Degraded, "{}", e.summary());
    let version = e.version;
    let mut sub = rt.subscribe_json("chaos")?;
    // The old configuration cannot come back, but a new one that the
    // handler accepts can be applied on a fresh instance.
    let good = json!({"n": 1});
    let e = reload(&rt, "chaos", good.clone()).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(e.old_config.as_deref(), Some(&old));
    assert_eq!(e.version, version + 1);
    let info = rt.components().await.remove(0);
    assert!(!info.degraded, "still degraded after {}", e.summary());
    assert_eq!(*rt.current("chaos")?, good);
    assert!(sub.has_changed()?);
    assert_eq!(**sub.borrow_and_update(), good);
    // And it stays healthy: the next change reloads as usual.
    let e = reload(&rt, "chaos", json!({"n": 2})).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    Ok(())
}

#[tokio::test]
async fn subscriber_refusal_rolls_back() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Strict {
        n: u8,
    }
    let rt = with_chaos(LimitOverrides::default()).await;
    let sub = rt.subscribe::<Strict>("chaos").unwrap();
    let e = reload(&rt, "chaos", json!({"n": 1000})).await;
    assert_eq!(e.outcome, Outcome::RolledBack);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Apply), Some(Cause::Subscriber))
    );
    assert!(message(&e).contains("Strict"), "{}", message(&e));
    assert_eq!(sub.borrow().n, 0);
    assert_eq!(*rt.current("chaos").unwrap(), json!({"n": 0}));
}

#[tokio::test]
async fn rollback_off_skips_the_handler_rollback() {
    let rt = hotreload::Runtime::new(hotreload::Settings {
        rollback_on_failure: false,
        ..crate::settings()
    })
    .unwrap();
    rt.add_component(ComponentSpec::new("chaos", hotreload_handlers::CHAOS, "{}"))
        .await
        .unwrap();
    // With rollback on, a hanging rollback would be cut off after the reload
    // timeout; with it off the handler's rollback is never entered.
    let e = reload(&rt, "chaos", json!({"reload": "fail", "rollback": "spin"})).await;
    assert_eq!(e.outcome, Outcome::Rejected);
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Reload), Some(Cause::Invalid))
    );
    assert_eq!(instances(&rt, "chaos").await, 1);
}

#[tokio::test]
async fn rollback_off_still_replaces_a_trapped_instance() -> Result<()> {
    let rt = Runtime::new(Settings {
        rollback_on_failure: false,
        ..crate::settings()
    })?;
    rt.add_component(ComponentSpec::new(
        "chaos",
        hotreload_handlers::CHAOS,
        json!({"n": 0}).to_string(),
    ))
    .await?;
    let sub = rt.subscribe_json("chaos")?;
    let e = reload(&rt, "chaos", json!({"n": 1, "reload": "panic"})).await;
    // No handler rollback is asked for, but a trapped instance is never
    // entered again: a fresh one is brought back to the old configuration.
    assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
    assert_eq!(
        (e.failed_phase, e.cause),
        (Some(Phase::Reload), Some(Cause::Trap))
    );
    assert!(
        message(&e).contains("chaos handler panicked on purpose in reload"),
        "{}",
        message(&e)
    );
    assert_eq!(instances(&rt, "chaos").await, 2);
    assert!(!rt.components().await[0].degraded);
    assert_eq!(*rt.current("chaos")?, json!({"n": 0}));
    assert!(
        !sub.has_changed()?,
        "subscribers never saw the failed configuration"
    );
    let e = reload(&rt, "chaos", json!({"n": 2})).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(
        instances(&rt, "chaos").await,
        2,
        "the fresh instance serves"
    );
    Ok(())
}

#[tokio::test]
async fn fresh_instance_per_reload_runs_each_reload_in_a_new_instance() -> Result<()> {
    let rt = Runtime::new(Settings {
        fresh_instance_per_reload: true,
        ..crate::settings()
    })?;
    rt.add_component(ComponentSpec::new(
        "chaos",
        hotreload_handlers::CHAOS,
        json!({"n": 0}).to_string(),
    ))
    .await?;
    assert_eq!(instances(&rt, "chaos").await, 1);
    // `transient:1` fails the first call of an instance: in a new instance
    // every time, each reload fails once and is retried once.
    for n in 1..=3 {
        let config = json!({"n": n, "reload": "transient:1"});
        let e = reload(&rt, "chaos", config.clone()).await;
        assert_eq!(
            (e.outcome, e.retries),
            (Outcome::Applied, 1),
            "{}",
            e.summary()
        );
        assert_eq!(instances(&rt, "chaos").await, 1 + n);
        assert_eq!(*rt.current("chaos")?, config);
    }
    // Nothing is called for an unchanged configuration, so no instance.
    let e = reload(&rt, "chaos", json!({"n": 3, "reload": "transient:1"})).await;
    assert_eq!(e.outcome, Outcome::Unchanged);
    assert_eq!(instances(&rt, "chaos").await, 4);
    // By default the warm instance has had its one failure already.
    let rt = with_chaos(LimitOverrides::default()).await;
    for (n, retries) in [(1, 1), (2, 0)] {
        let e = reload(&rt, "chaos", json!({"n": n, "reload": "transient:1"})).await;
        assert_eq!((e.outcome, e.retries), (Outcome::Applied, retries));
    }
    assert_eq!(instances(&rt, "chaos").await, 1);
    Ok(())
}

#[tokio::test]
async fn disabled_runtime_refuses_reloads() {
    let rt = hotreload::Runtime::new(hotreload::Settings {
        enabled: false,
        ..crate::settings()
    })
    .unwrap();
    rt.add_component(ComponentSpec::new(
        "logging",
        hotreload_handlers::LOGGING,
        "{}",
    ))
    .await
    .unwrap();
    let err = rt.reload("logging", "{}").await.unwrap_err();
    assert!(matches!(err, hotreload::Error::Disabled));
}

#[tokio::test]
async fn reloads_after_shutdown_are_refused() {
    let rt = with_logging(json!({})).await;
    rt.shutdown().await;
    assert!(matches!(
        rt.reload("logging", "{}").await,
        Err(hotreload::Error::ShutDown)
    ));
}

/// Found by the property test: the configuration in force fails once,
/// transiently, on every fresh instance. Restoring it after a trap must
/// retry that failure, as a reload does, not declare the component degraded.
#[tokio::test]
async fn restoring_retries_a_transient_failure() {
    let rt = with_chaos(LimitOverrides::default()).await;
    let e = reload(&rt, "chaos", json!({"n": 1, "reload": "transient:1"})).await;
    assert_eq!(e.outcome, Outcome::Applied);
    let e = reload(
        &rt,
        "chaos",
        json!({"n": 2, "reload": "fail", "rollback": "trap"}),
    )
    .await;
    assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
    assert_eq!(e.retries, 1, "the restore's transient failure was retried");
    assert!(!rt.components().await[0].degraded);
    assert_eq!(rt.current("chaos").unwrap()["n"], 1);
}
