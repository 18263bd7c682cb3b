//! Contract 0.2.0 beside 0.1.0: one runtime runs both; the behaviour table
//! passes for a 0.1.0 and a 0.2.0 build of the logging handler; a 0.2.0
//! reload calls `prepare` once and `apply` once, a dry run `prepare` alone;
//! restart reasons come field by field from either contract.

use std::path::Path;

use hotreload::{
    CallFailure, ComponentSpec, Contract, Limits, Outcome, Plan, Probe, RestartReason,
    SandboxOptions,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::logs::{SpanRecord, capture, spans};

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    config: String,
    accept: bool,
    field: Option<String>,
    message: Option<String>,
    effective: Option<Value>,
}

fn cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("handlers/cases/logging.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the case table")).expect("cases")
}

/// Every case of the table through one build; gives the failures.
fn table(wasm: &[u8]) -> (Contract, Vec<String>) {
    let mut probe = Probe::new(wasm, Limits::default(), SandboxOptions::default()).unwrap();
    let mut failures = Vec::new();
    for case in cases() {
        let checked = probe.check(&case.config);
        match (&checked.result, case.accept) {
            (Ok(()), true) => match probe.load(&case.config).result {
                Ok(Some(out)) => {
                    let got: Value = serde_json::from_str(&out).expect("effective JSON");
                    if Some(&got) != case.effective.as_ref() {
                        failures.push(format!("{}: effective {got}", case.name));
                    }
                }
                other => failures.push(format!("{}: load gave {other:?}", case.name)),
            },
            (Err(CallFailure::Refused(f)), false) => {
                let want = case.message.as_deref().unwrap_or_default();
                // The host keeps 4 KiB of a message, and says how long it was.
                let same_message = if want.starts_with("invalid JSON: ") {
                    f.message.starts_with("invalid JSON: ")
                } else if let Some((kept, _)) = f.message.split_once("… (") {
                    want.len() > 4096
                        && want.starts_with(kept)
                        && f.message
                            .ends_with(&format!("({} bytes in all)", want.len()))
                } else {
                    f.message == want
                };
                if f.field != case.field || !same_message || f.transient {
                    let short = |m: &str| m.chars().take(200).collect::<String>();
                    failures.push(format!(
                        "{}: {:?} at {:?}, want {:?} at {:?}",
                        case.name,
                        short(&f.message),
                        f.field,
                        short(want),
                        case.field
                    ));
                }
            }
            (other, _) => failures.push(format!("{}: check gave {other:?}", case.name)),
        }
    }
    (probe.contract(), failures)
}

#[test]
fn the_behaviour_table_passes_for_a_0_1_and_a_0_2_build_of_logging() {
    assert_eq!(cases().len(), 105);
    for (wasm, contract) in [
        (hotreload_handlers::LOGGING, Contract::V0_1),
        (hotreload_handlers::LOGGING_V2, Contract::V0_2),
    ] {
        let (told, failures) = table(wasm);
        assert_eq!(told, contract);
        assert!(
            failures.is_empty(),
            "{}: {} cases failed:\n{}",
            contract.version(),
            failures.len(),
            failures.join("\n")
        );
    }
}

#[test]
fn the_sdk_carries_the_contract_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ours = std::fs::read(root.join("wit/v0.2/handler.wit")).unwrap();
    let sdk = std::fs::read(root.join("handlers/sdk/wit/handler.wit")).unwrap();
    assert!(ours.starts_with(b"/// Version 0.2"));
    assert!(
        ours == sdk,
        "handlers/sdk/wit/handler.wit differs from wit/v0.2/handler.wit"
    );
    if let Ok(shared) = std::fs::read(root.join("../shared/wit/v0.2/handler.wit")) {
        assert!(
            ours == shared,
            "wit/v0.2/handler.wit differs from the shared contract"
        );
    }
}

fn field<'a>(s: &'a SpanRecord, name: &str) -> &'a str {
    s.fields.get(name).map_or("", String::as_str)
}

/// The handler calls of each transaction of `component`, in order.
fn calls(component: &str) -> Vec<Vec<String>> {
    spans(|s| s.name == "transaction" && field(s, "component") == component)
        .iter()
        .map(|tx| {
            spans(|s| s.parent == Some(tx.id) && s.name == "phase")
                .iter()
                .map(|p| field(p, "phase").to_owned())
                .collect()
        })
        .collect()
}

fn restart(field: &str, reason: &str) -> RestartReason {
    RestartReason {
        field: field.into(),
        reason: reason.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_runtime_runs_both_contracts_and_says_why_a_restart_is_needed() {
    capture();
    let rt = crate::runtime();
    let plugin = json!({"enabled": true, "workers": 4});
    for (name, wasm) in [
        ("both-plugin-0.1", hotreload_handlers::PLUGIN),
        ("both-plugin-0.2", hotreload_handlers::PLUGIN_V2),
    ] {
        let e = rt
            .add_component(ComponentSpec::new(name, wasm, plugin.to_string()))
            .await
            .unwrap();
        assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    }
    rt.add_component(ComponentSpec::new(
        "both-logging-0.2",
        hotreload_handlers::LOGGING_V2,
        json!({"level": "info"}).to_string(),
    ))
    .await
    .unwrap();

    // In place, in both.
    for name in ["both-plugin-0.1", "both-plugin-0.2"] {
        let e = rt
            .reload(name, json!({"enabled": true, "workers": 8}).to_string())
            .await
            .unwrap();
        assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
        assert_eq!(e.effective_config.as_ref().unwrap()["workers"], 8);
        assert!(e.restart.is_empty());
    }
    // A restart: the 0.2.0 handler says which field and why; for the
    // 0.1.0 one the host finds the field by asking can-reload field by field.
    let off = json!({"enabled": false, "workers": 2}).to_string();
    let v2 = rt.reload("both-plugin-0.2", off.clone()).await.unwrap();
    assert_eq!(v2.outcome, Outcome::RestartRequired, "{}", v2.summary());
    assert_eq!(
        v2.restart,
        [restart(
            "/enabled",
            "the plugin registers its routes at start"
        )]
    );
    assert!(
        v2.summary()
            .ends_with(": /enabled: the plugin registers its routes at start"),
        "{}",
        v2.summary()
    );
    let v1 = rt.reload("both-plugin-0.1", off).await.unwrap();
    assert_eq!(v1.outcome, Outcome::RestartRequired, "{}", v1.summary());
    assert_eq!(v1.restart.len(), 1, "{:?}", v1.restart);
    assert_eq!(v1.restart[0].field, "/enabled");
    assert!(v1.restart[0].reason.contains("found by the host"));
    // The event as JSON carries them.
    let json = serde_json::to_value(&*v2).unwrap();
    assert_eq!(json["restart"][0]["field"], "/enabled");

    // A refusal names the field, as in 0.1.0; nothing changes.
    let bad = rt
        .reload("both-logging-0.2", json!({"level": 42}).to_string())
        .await
        .unwrap();
    assert_eq!(bad.outcome, Outcome::Rejected);
    assert_eq!(bad.failed_phase, Some(hotreload::Phase::Prepare));
    assert_eq!(bad.error.as_ref().unwrap().field.as_deref(), Some("/level"));
    assert_eq!(
        rt.current("both-logging-0.2").unwrap()["level"],
        json!("info")
    );

    // One reload of a 0.2.0 handler: prepare once, apply once, commit.
    let ok = rt
        .reload("both-logging-0.2", json!({"level": "debug"}).to_string())
        .await
        .unwrap();
    assert_eq!(ok.outcome, Outcome::Applied);
    assert_eq!(ok.effective_config.as_ref().unwrap()["level"], "debug");
    let seen = calls("both-logging-0.2");
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], ["instantiate", "prepare", "apply", "commit"]);
    assert_eq!(seen[1], ["prepare"]);
    assert_eq!(seen[2], ["prepare", "apply", "commit"]);
    // A restart-required 0.2.0 change calls prepare alone.
    assert_eq!(calls("both-plugin-0.2")[2], ["prepare"]);

    // A dry run of a 0.2.0 handler: a fresh instance and prepare, nothing else.
    let dry = rt
        .dry_run("both-logging-0.2", json!({"level": "warn"}).to_string())
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.outcome, Outcome::Applied, "{}", dry.summary());
    assert_eq!(dry.effective_config.as_ref().unwrap()["level"], "warn");
    assert_eq!(
        rt.current("both-logging-0.2").unwrap()["level"],
        json!("debug")
    );
    let dry = rt
        .dry_run("both-plugin-0.2", json!({"enabled": false}).to_string())
        .await
        .unwrap();
    assert_eq!(dry.outcome, Outcome::RestartRequired);
    assert_eq!(dry.restart[0].field, "/enabled");
    rt.shutdown().await;
}

#[test]
fn prepare_plans_and_apply_follows() {
    let mut probe = Probe::new(
        hotreload_handlers::PLUGIN_V2,
        Limits::default(),
        SandboxOptions::default(),
    )
    .unwrap();
    assert_eq!(probe.contract(), Contract::V0_2);
    let on = r#"{"enabled": true}"#;
    let off = r#"{"enabled": false, "workers": 2}"#;
    // apply only right after a successful prepare of the same text: the
    // host refuses to enter the handler otherwise, whoever asks.
    probe.instantiate();
    match probe.apply(None, on).result {
        Err(CallFailure::Fault { message, .. }) => {
            assert!(message.starts_with("apply was not called"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let first = probe.prepare(None, on).result.unwrap();
    assert_eq!(first.plan, Plan::InPlace);
    let effective: Value = serde_json::from_str(first.effective.as_deref().unwrap()).unwrap();
    assert_eq!(
        effective,
        json!({"enabled": true, "workers": 4, "settings": {}})
    );
    assert!(
        probe.apply(None, off).result.is_err(),
        "another text than prepared"
    );
    probe.prepare(None, on).result.unwrap();
    probe.apply(None, on).result.unwrap();
    assert!(
        probe.apply(None, on).result.is_err(),
        "a second apply without prepare"
    );
    assert_eq!(
        probe.prepare(Some(on), on).result.unwrap().plan,
        Plan::InPlace
    );
    assert_eq!(
        probe.prepare(Some(on), off).result.unwrap().plan,
        Plan::Restart(vec![restart(
            "/enabled",
            "the plugin registers its routes at start"
        )])
    );
    // Strict types, with the pointer of the bad value.
    for (config, field) in [
        (r#"{"workers": "4"}"#, "/workers"),
        (r#"{"enabled": null}"#, "/enabled"),
        (r#"{"workers": 65}"#, "/workers"),
        (r#"{"colour": "red"}"#, "/colour"),
    ] {
        match probe.prepare(None, config).result {
            Err(CallFailure::Refused(f)) => {
                assert_eq!(f.field.as_deref(), Some(field), "{config}: {}", f.message)
            }
            other => panic!("{config}: {other:?}"),
        }
    }
    // A 0.1.0 export on a 0.2.0 handler is the host's mistake, said plainly.
    match probe.validate(on).result {
        Err(CallFailure::Fault { message, .. }) => {
            assert!(
                message.contains("a 0.2.0 handler has no `validate`"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_sdk_handlers_conform() {
    let logging = hotreload::conform::conform(
        hotreload_handlers::LOGGING_V2,
        &[
            r#"{"level":"debug"}"#.into(),
            r#"{"level":"warn","format":"json"}"#.into(),
        ],
    )
    .unwrap();
    let failed: Vec<String> = logging
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(logging.passed(), "{failed:#?}");
    assert_eq!(logging.contract, Some(Contract::V0_2));
    let names: Vec<&str> = logging.checks.iter().map(|c| c.name.as_str()).collect();
    for name in [
        "prepare is deterministic",
        "apply(none, c) right after a successful prepare succeeds",
        "prepare accepts its own effective configuration",
        "a plan from a configuration to itself is in place",
        "prepare has no effect: preparing other configurations first changes nothing",
        "rollback to the previous configuration succeeds",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:#?}");
    }
    let phases: Vec<&str> = logging.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(phases, ["prepare", "apply", "rollback"]);
    assert!(logging.instantiate_micros > 0 && logging.compile_micros > 0);

    // The plugin with a pair that needs a restart: its reasons are checked.
    let plugin = hotreload::conform::conform(
        hotreload_handlers::PLUGIN_V2,
        &[
            r#"{"enabled":true}"#.into(),
            r#"{"enabled":false,"workers":2}"#.into(),
        ],
    )
    .unwrap();
    let reasons = plugin
        .checks
        .iter()
        .find(|c| c.name == "restart reasons name only fields that changed")
        .expect("the restart path was exercised");
    assert!(
        reasons.passed && reasons.detail.contains("/enabled"),
        "{reasons:?}"
    );
    assert!(plugin.passed());
    // Without such a pair the kit says the restart path was not tried.
    let plugin = hotreload::conform::conform(
        hotreload_handlers::PLUGIN_V2,
        &[r#"{"workers":2}"#.into(), r#"{"workers":3}"#.into()],
    )
    .unwrap();
    assert!(plugin.passed());
    assert!(
        plugin.notes.iter().any(|n| n.contains("restart path")),
        "{:?}",
        plugin.notes
    );

    let quickstart = hotreload::conform::conform(
        hotreload_handlers::QUICKSTART,
        &[
            r#"{"level":"info"}"#.into(),
            r#"{"level":"warn","json":true}"#.into(),
        ],
    )
    .unwrap();
    assert!(quickstart.passed(), "{:#?}", quickstart.checks);
    assert!(
        quickstart
            .checks
            .iter()
            .any(|c| c.name == "restart reasons name only fields that changed" && c.passed)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_0_2_handler_is_cut_off_and_nothing_is_lost() {
    capture();
    let rt = crate::runtime();
    let name = "chaos-0.2";
    let spec = ComponentSpec::new(
        name,
        hotreload_handlers::CHAOS_V2,
        json!({"n": 0}).to_string(),
    )
    .limits(hotreload::LimitOverrides {
        validation_timeout_ms: Some(50),
        reload_timeout_ms: Some(100),
        ..Default::default()
    });
    let first = rt.add_component(spec).await.unwrap();
    assert_eq!(first.outcome, Outcome::Applied, "{}", first.summary());
    let reload = |config: Value| {
        let rt = rt.clone();
        async move { rt.reload(name, config.to_string()).await.unwrap() }
    };
    let n = |rt: &hotreload::Runtime| rt.current(name).unwrap()["n"].clone();

    // An effective configuration that is not JSON: refused in prepare,
    // before anything is applied.
    let e = reload(json!({"n": 1, "prepare": "bad_effective"})).await;
    assert_eq!(e.outcome, Outcome::Rejected, "{}", e.summary());
    assert_eq!(e.failed_phase, Some(hotreload::Phase::Prepare));
    assert_eq!(e.cause, Some(hotreload::Cause::BadOutput));
    // apply refuses: the handler rolls back to the configuration in force.
    let e = reload(json!({"n": 2, "apply": "fail"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
    assert_eq!(e.failed_phase, Some(hotreload::Phase::Reload));
    assert_eq!(e.cause, Some(hotreload::Cause::Invalid));
    // apply refuses once, as transient: tried again, prepared again first.
    let e = reload(json!({"n": 3, "apply": "transient_once"})).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(e.retries, 1);
    assert_eq!(n(&rt), 3);
    // apply traps: cut off, a fresh instance brought back to n = 3.
    let e = reload(json!({"n": 4, "apply": "panic"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
    assert_eq!(e.cause, Some(hotreload::Cause::Trap));
    assert!(
        e.error
            .as_ref()
            .unwrap()
            .message
            .contains("panicked on purpose in apply")
    );
    // prepare spins: cut off at its deadline; nothing was applied.
    let e = reload(json!({"n": 5, "prepare": "spin"})).await;
    assert_eq!(e.outcome, Outcome::Rejected, "{}", e.summary());
    assert_eq!(e.cause, Some(hotreload::Cause::Timeout));
    assert_eq!(e.failed_phase, Some(hotreload::Phase::Prepare));
    // A configuration whose rollback refuses is in force; then an apply
    // fails: the rollback refuses, so a fresh instance is brought back.
    let e = reload(json!({"n": 6, "rollback": "fail"})).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    let e = reload(json!({"n": 7, "apply": "fail"})).await;
    assert_eq!(e.outcome, Outcome::RolledBack, "{}", e.summary());
    assert_eq!(n(&rt), 6);
    let e = reload(json!({"n": 8})).await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    assert_eq!(n(&rt), 8);

    let seen = calls(name);
    assert_eq!(seen[1], ["prepare"], "bad effective: {seen:?}");
    assert_eq!(seen[2], ["prepare", "apply", "rollback"], "{seen:?}");
    assert_eq!(
        seen[3],
        ["prepare", "apply", "prepare", "apply", "commit"],
        "a transient retry prepares again: {seen:?}"
    );
    // Cut off, then a fresh instance brought back to the configuration in
    // force (n = 3), which refuses its first apply in an instance as
    // transient: two tries of prepare + apply.
    for cut_off in [&seen[4], &seen[5]] {
        assert!(
            cut_off.ends_with(&["instantiate".into(), "reload".into(), "reload".into()]),
            "{seen:?}"
        );
    }
    assert_eq!(seen[5][0], "prepare", "spin: {seen:?}");
    assert_eq!(
        seen[7],
        ["prepare", "apply", "rollback", "instantiate", "reload"],
        "a refused rollback: a fresh instance loads the old configuration: {seen:?}"
    );
    rt.shutdown().await;
}

/// The quick starts in docs/handlers.md are the sources CI builds and
/// checks (handlers/quickstart, handlers/python-v2/quickstart), word for word.
#[test]
fn the_quick_starts_in_the_docs_are_the_ones_built() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/handlers.md")).unwrap();
    let blocks = |lang: &str| -> Vec<String> {
        let fence = format!("```{lang}\n");
        docs.split(fence.as_str())
            .skip(1)
            .map(|rest| rest.split("```").next().unwrap().to_owned())
            .collect()
    };
    let rust = std::fs::read_to_string(root.join("handlers/quickstart/src/lib.rs")).unwrap();
    let python =
        std::fs::read_to_string(root.join("handlers/python-v2/quickstart/app.py")).unwrap();
    assert!(
        rust.lines().count() < 30,
        "the Rust quick start is under 30 lines"
    );
    assert!(
        blocks("rust").contains(&rust),
        "docs/handlers.md lacks handlers/quickstart/src/lib.rs"
    );
    assert!(
        blocks("python").contains(&python),
        "docs/handlers.md lacks handlers/python-v2/quickstart/app.py"
    );
}
