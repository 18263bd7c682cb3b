//! `hotreload test`: the built-in scenario suite against the bundled handlers.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use hotreload::{
    Cause, ComponentSpec, Event, LimitOverrides, Outcome, Phase, Runtime, Settings, SupportLevel,
};
use serde::Deserialize;
use serde_json::json;

type Check = Result<(), String>;

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Check {
    if cond { Ok(()) } else { Err(what()) }
}

fn expect_event(e: &Event, outcome: Outcome, phase: Option<Phase>, cause: Option<Cause>) -> Check {
    ensure(
        e.outcome == outcome && e.failed_phase == phase && e.cause == cause,
        || {
            format!(
                "expected {outcome:?}/{phase:?}/{cause:?}, got {:?}/{:?}/{:?}: {:?}",
                e.outcome, e.failed_phase, e.cause, e.error
            )
        },
    )
}

#[derive(Debug, Deserialize)]
struct Logging {
    level: String,
    format: String,
}

fn runtime() -> Result<Runtime, String> {
    Runtime::new(Settings {
        retry_interval_ms: 5,
        ..Settings::default()
    })
    .map_err(|e| e.to_string())
}

async fn add(rt: &Runtime, spec: ComponentSpec) -> Check {
    rt.add_component(spec)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn add_logging(rt: &Runtime, config: &str) -> Check {
    add(
        rt,
        ComponentSpec::new("logging", hotreload_handlers::LOGGING, config),
    )
    .await
}

async fn reload(rt: &Runtime, name: &str, config: serde_json::Value) -> Result<Arc<Event>, String> {
    rt.reload(name, config).await.map_err(|e| e.to_string())
}

async fn logging_reload(rt: &Runtime) -> Check {
    add_logging(rt, r#"{"level":"info"}"#).await?;
    let mut sub = rt
        .subscribe::<Logging>("logging")
        .map_err(|e| e.to_string())?;
    ensure(
        sub.borrow().level == "info" && sub.borrow().format == "text",
        || "the subscriber did not start on the initial configuration".into(),
    )?;
    let e = reload(rt, "logging", json!({"level": "debug", "format": "json"})).await?;
    expect_event(&e, Outcome::Applied, None, None)?;
    ensure(e.version == 2, || {
        format!("version {} after one reload", e.version)
    })?;
    ensure(e.changes.iter().any(|c| c.path == "/level"), || {
        format!("changes do not list /level: {:?}", e.changes)
    })?;
    let seen = sub.borrow_and_update();
    ensure(seen.level == "debug" && seen.format == "json", || {
        format!("subscriber sees {seen:?}")
    })
}

async fn logging_rejects_bad_field(rt: &Runtime) -> Check {
    add_logging(rt, r#"{"level":"info"}"#).await?;
    let e = reload(
        rt,
        "logging",
        json!({"outputs": [{"type": "carrier-pigeon"}]}),
    )
    .await?;
    expect_event(
        &e,
        Outcome::Rejected,
        Some(Phase::Validate),
        Some(Cause::Invalid),
    )?;
    let field = e.error.as_ref().and_then(|er| er.field.clone());
    ensure(field.as_deref() == Some("/outputs/0/type"), || {
        format!("field pointer {field:?}")
    })?;
    let current = rt.current("logging").map_err(|e| e.to_string())?;
    ensure(current["level"] == "info", || {
        format!("config in force {current}")
    })
}

async fn unchanged_is_noticed(rt: &Runtime) -> Check {
    add_logging(rt, r#"{"level":"warn","format":"text"}"#).await?;
    let e = rt
        .reload("logging", "{ \"format\": \"text\",   \"level\": \"warn\" }")
        .await
        .map_err(|e| e.to_string())?;
    expect_event(&e, Outcome::Unchanged, None, None)?;
    ensure(e.version == 1 && e.fuel_consumed == 0, || {
        format!(
            "unchanged called the handler: v{} fuel {}",
            e.version, e.fuel_consumed
        )
    })
}

async fn malformed_json_is_rejected(rt: &Runtime) -> Check {
    add_logging(rt, r#"{"level":"info"}"#).await?;
    let e = rt
        .reload("logging", r#"{"level": "debug""#)
        .await
        .map_err(|e| e.to_string())?;
    expect_event(
        &e,
        Outcome::Rejected,
        Some(Phase::Parse),
        Some(Cause::Invalid),
    )?;
    ensure(
        rt.current("logging").map_err(|e| e.to_string())?["level"] == "info",
        || "a half-written file changed the config in force".into(),
    )
}

async fn plugin_reloads_in_place(rt: &Runtime) -> Check {
    add(
        rt,
        ComponentSpec::new(
            "plugin",
            hotreload_handlers::PLUGIN,
            r#"{"enabled":true,"workers":4}"#,
        ),
    )
    .await?;
    let e = reload(rt, "plugin", json!({"enabled": true, "workers": 8})).await?;
    expect_event(&e, Outcome::Applied, None, None)?;
    let info = rt.components().await;
    ensure(info[0].support_level == Some(SupportLevel::Partial), || {
        format!("support level {:?}", info[0].support_level)
    })?;
    ensure(info[0].effective["workers"] == 8, || {
        format!("effective {}", info[0].effective)
    })
}

async fn plugin_restart_required(rt: &Runtime) -> Check {
    add(
        rt,
        ComponentSpec::new("plugin", hotreload_handlers::PLUGIN, r#"{"enabled":true}"#),
    )
    .await?;
    let e = reload(rt, "plugin", json!({"enabled": false})).await?;
    expect_event(&e, Outcome::RestartRequired, None, None)?;
    let info = &rt.components().await[0];
    ensure(info.effective["enabled"] == true, || {
        "restart-required change applied in place".into()
    })?;
    ensure(
        info.pending.as_deref() == Some(&json!({"enabled": false})),
        || format!("pending {:?}", info.pending),
    )?;
    let e = rt
        .restart_component("plugin")
        .await
        .map_err(|e| e.to_string())?;
    expect_event(&e, Outcome::Applied, None, None)?;
    ensure(
        rt.current("plugin").map_err(|e| e.to_string())?["enabled"] == false,
        || "restart did not apply the pending change".into(),
    )
}

fn chaos(name: &str, overrides: LimitOverrides) -> ComponentSpec {
    ComponentSpec::new(name, hotreload_handlers::CHAOS, r#"{"n":0}"#).limits(overrides)
}

async fn trap_rolls_back_with_panic_message(rt: &Runtime) -> Check {
    add(rt, chaos("chaos", LimitOverrides::default())).await?;
    let e = reload(rt, "chaos", json!({"n": 1, "reload": "panic"})).await?;
    expect_event(
        &e,
        Outcome::RolledBack,
        Some(Phase::Reload),
        Some(Cause::Trap),
    )?;
    let message = e
        .error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    ensure(message.contains("panicked on purpose"), || {
        format!("the panic message did not reach the event: {message}")
    })?;
    let e = reload(rt, "chaos", json!({"n": 2})).await?;
    expect_event(&e, Outcome::Applied, None, None)
}

async fn spin_is_cut_off(rt: &Runtime) -> Check {
    let limits = LimitOverrides {
        validation_timeout_ms: Some(50),
        // a tight loop burns the default fuel in ~100 ms: only the deadline should cut
        fuel: Some(u64::MAX / 2),
        ..LimitOverrides::default()
    };
    add(rt, chaos("chaos", limits)).await?;
    let started = Instant::now();
    let e = reload(rt, "chaos", json!({"validate": "spin"})).await?;
    let took = started.elapsed();
    expect_event(
        &e,
        Outcome::Rejected,
        Some(Phase::Validate),
        Some(Cause::Timeout),
    )?;
    ensure(took.as_millis() < 2000, || format!("took {took:?}"))?;
    ensure(
        rt.current("chaos").map_err(|e| e.to_string())? == json!({"n": 0}).into(),
        || "config in force changed".into(),
    )
}

async fn fuel_runs_out(rt: &Runtime) -> Check {
    let limits = LimitOverrides {
        fuel: Some(5_000_000),
        validation_timeout_ms: Some(10_000),
        ..LimitOverrides::default()
    };
    add(rt, chaos("chaos", limits)).await?;
    let e = reload(rt, "chaos", json!({"validate": "spin"})).await?;
    expect_event(
        &e,
        Outcome::Rejected,
        Some(Phase::Validate),
        Some(Cause::OutOfFuel),
    )
}

async fn memory_limit_holds(rt: &Runtime) -> Check {
    let limits = LimitOverrides {
        memory_mib: Some(16),
        ..LimitOverrides::default()
    };
    add(rt, chaos("chaos", limits)).await?;
    let e = reload(rt, "chaos", json!({"reload": "oom"})).await?;
    expect_event(
        &e,
        Outcome::RolledBack,
        Some(Phase::Reload),
        Some(Cause::MemoryLimit),
    )
}

async fn bad_output_rolls_back(rt: &Runtime) -> Check {
    add(rt, chaos("chaos", LimitOverrides::default())).await?;
    let e = reload(rt, "chaos", json!({"reload": "non_json"})).await?;
    expect_event(
        &e,
        Outcome::RolledBack,
        Some(Phase::Reload),
        Some(Cause::BadOutput),
    )
}

async fn transient_failure_is_retried(rt: &Runtime) -> Check {
    add(rt, chaos("chaos", LimitOverrides::default())).await?;
    let e = reload(rt, "chaos", json!({"reload": "transient:1"})).await?;
    expect_event(&e, Outcome::Applied, None, None)?;
    ensure(e.retries == 1, || format!("retries {}", e.retries))
}

async fn events_and_stats_add_up(rt: &Runtime) -> Check {
    add_logging(rt, r#"{"level":"info"}"#).await?;
    reload(rt, "logging", json!({"level": "debug"})).await?;
    reload(rt, "logging", json!({"level": "nope"})).await?;
    let stats = rt.stats();
    ensure(stats.total == 3, || format!("total {}", stats.total))?;
    ensure((stats.success_rate - 2.0 / 3.0).abs() < 1e-9, || {
        format!("success rate {}", stats.success_rate)
    })?;
    ensure(stats.by_outcome.get(&Outcome::Rejected) == Some(&1), || {
        format!("by outcome {:?}", stats.by_outcome)
    })?;
    let ids: Vec<u64> = rt.events().iter().map(|e| e.id).collect();
    ensure(ids == [1, 2, 3], || format!("event ids {ids:?}"))
}

type Scenario = for<'a> fn(&'a Runtime) -> Pin<Box<dyn Future<Output = Check> + 'a>>;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), {
            fn f(rt: &Runtime) -> Pin<Box<dyn Future<Output = Check> + '_>> {
                Box::pin($name(rt))
            }
            f as Scenario
        })),*]
    };
}

pub(crate) async fn run(verbose: bool) -> ExitCode {
    let all = scenarios![
        logging_reload,
        logging_rejects_bad_field,
        unchanged_is_noticed,
        malformed_json_is_rejected,
        plugin_reloads_in_place,
        plugin_restart_required,
        trap_rolls_back_with_panic_message,
        spin_is_cut_off,
        fuel_runs_out,
        memory_limit_holds,
        bad_output_rolls_back,
        transient_failure_is_retried,
        events_and_stats_add_up,
    ];
    let (mut passed, mut failed, mut events, mut successes) = (0u32, 0u32, 0u64, 0f64);
    for (name, scenario) in all {
        let started = Instant::now();
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let result = scenario(&rt).await;
        let took = started.elapsed();
        let stats = rt.stats();
        events += stats.total;
        successes += stats.success_rate * stats.total as f64;
        match result {
            Ok(()) => {
                passed += 1;
                println!("PASS {name} ({:.1} ms)", took.as_secs_f64() * 1e3);
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
        if verbose {
            for e in rt.events() {
                println!("    event {}", e.summary());
            }
        }
        rt.shutdown().await;
    }
    let rate = if events == 0 {
        1.0
    } else {
        successes / events as f64
    };
    println!("{events} events, success rate {:.1}%", rate * 100.0);
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
