//! The conformance kit on handlers that pass and handlers that do not.

fn failed(report: &hotreload::conform::ConformReport) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

#[test]
fn the_bundled_handlers_conform() {
    let logging = hotreload::conform::conform(
        hotreload_handlers::LOGGING,
        &[
            r#"{"level":"debug"}"#.into(),
            r#"{"level":"warn","format":"json"}"#.into(),
        ],
    )
    .unwrap();
    assert!(logging.passed(), "{:#?}", failed(&logging));
    assert!(logging.checks.len() >= 15);
    let names: Vec<&str> = logging.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(names, ["validate", "reload", "can-reload", "rollback"]);
    assert!(
        logging
            .phases
            .iter()
            .all(|p| p.fuel > 0 && p.fuel < p.fuel_limit)
    );
    let plugin = hotreload::conform::conform(hotreload_handlers::PLUGIN, &[]).unwrap();
    assert!(plugin.passed(), "{:#?}", failed(&plugin));
}

#[test]
fn a_handler_that_traps_or_refuses_its_own_config_fails() {
    // validate panics on this configuration: the kit says so.
    let report = hotreload::conform::conform(
        hotreload_handlers::CHAOS,
        &[r#"{"validate":"panic"}"#.into()],
    )
    .unwrap();
    let failed = failed(&report);
    assert!(!report.passed());
    assert!(
        failed.iter().any(
            |f| f.starts_with("validate accepts the given configuration") && f.contains("Trap")
        ),
        "{failed:#?}"
    );
    // The logging handler refuses `{"level":"loud"}`: the kit says to pass a valid one.
    let report =
        hotreload::conform::conform(hotreload_handlers::LOGGING, &[r#"{"level":"loud"}"#.into()])
            .unwrap();
    let failed = self::failed(&report);
    assert!(failed.iter().any(|f| f.contains("--config")), "{failed:#?}");
    // A rollback that hangs fails the rollback check.
    let report = hotreload::conform::conform(
        hotreload_handlers::CHAOS,
        &["{}".into(), r#"{"rollback":"trap"}"#.into()],
    )
    .unwrap();
    let failed = self::failed(&report);
    assert!(
        failed
            .iter()
            .any(|f| f.starts_with("rollback to the previous configuration succeeds")),
        "{failed:#?}"
    );
}

#[test]
fn a_file_that_is_not_a_component_is_an_error() {
    let err = hotreload::conform::conform(b"definitely not wasm", &[]).unwrap_err();
    assert!(
        err.to_string().contains("not a WebAssembly binary"),
        "{err}"
    );
}
