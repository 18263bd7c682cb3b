//! The conformance kit on handlers that pass and handlers that do not.

const IMPORTS_CHECK: &str =
    "exports hotreload:handler/handler (0.1.0 or 0.2.0) and imports nothing else";

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
    assert!(logging.loaded);
    assert!(logging.checks.len() >= 15);
    // A Rust guest imports the world's interfaces and the WASI 0.2
    // interfaces std links, and nothing else; the check says what it found.
    let imports = &logging.checks[0];
    assert_eq!(imports.name, IMPORTS_CHECK);
    assert!(imports.passed);
    assert!(
        imports
            .detail
            .starts_with("imports hotreload:handler/host@0.1.0, hotreload:handler/types@0.1.0, ")
            && imports
                .detail
                .contains(" WASI 0.2 interfaces (wasi:cli, wasi:io)"),
        "{}",
        imports.detail
    );
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

/// `support_level_traps.wat`, a whole handler of the world, with `imports`
/// added: only the imports are wrong with it.
fn whole_handler_importing(imports: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/all/fixtures/support_level_traps.wat",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen("(component", &format!("(component\n  {imports}"), 1);
    wat::parse_str(&text).unwrap_or_else(|e| panic!("{path} with {imports}: {e}"))
}

#[test]
fn a_handler_importing_something_else_fails_and_is_named() -> anyhow::Result<()> {
    // The fixture alone imports the world's types interface and nothing
    // else: the check passes and says so (its support-level traps, which
    // later checks report).
    let report = hotreload::conform::conform(&crate::fixture("support_level_traps"), &[])?;
    assert!(report.loaded);
    assert_eq!(report.checks[0].name, IMPORTS_CHECK);
    assert!(report.checks[0].passed, "{:?}", report.checks[0]);
    assert_eq!(
        report.checks[0].detail,
        "imports hotreload:handler/types@0.1.0"
    );

    // A foreign interface and a WASI of another release, both empty: the
    // linker has nothing to find and loads the handler, but the check
    // names both, and the other checks still run.
    let report = hotreload::conform::conform(
        &whole_handler_importing(
            r#"(import "evil:net/sockets" (instance)) (import "wasi:cli/environment@0.3.0" (instance))"#,
        ),
        &[],
    )?;
    assert!(report.loaded);
    assert!(!report.passed());
    assert!(report.checks.len() >= 15, "{:#?}", report.checks);
    let check = &report.checks[0];
    assert_eq!(check.name, IMPORTS_CHECK);
    assert!(!check.passed);
    assert_eq!(
        check.detail,
        "imports evil:net/sockets, wasi:cli/environment@0.3.0: a handler may import only \
         hotreload:handler/host (and the world's hotreload:handler/types), 0.1.0 or 0.2.0, and \
         WASI 0.2 interfaces (wasi:*@0.2.x); besides, it imports hotreload:handler/types@0.1.0"
    );

    // A foreign interface with a function: the host refuses to load it,
    // and the report still names it, as the only check.
    let report = hotreload::conform::conform(
        &whole_handler_importing(
            r#"(import "evil:net/sockets" (instance (export "open" (func (result u32)))))"#,
        ),
        &[],
    )?;
    assert!(!report.loaded);
    assert!(!report.passed());
    assert_eq!(report.checks.len(), 1, "{:#?}", report.checks);
    assert!(report.phases.is_empty());
    let check = &report.checks[0];
    assert_eq!(check.name, IMPORTS_CHECK);
    assert!(!check.passed);
    assert!(
        check.detail.starts_with(
            "imports evil:net/sockets: a handler may import only hotreload:handler/host (and the \
             world's hotreload:handler/types), 0.1.0 or 0.2.0,"
        ),
        "{}",
        check.detail
    );

    // A WASI 0.2 interface the host does not provide is allowed by the
    // world but cannot be linked: the check fails with the linker's reason.
    let report = hotreload::conform::conform(
        &whole_handler_importing(
            r#"(import "wasi:http/outgoing-handler@0.2.0" (instance (export "handle" (func (result u32)))))"#,
        ),
        &[],
    )?;
    assert!(!report.loaded);
    let check = &report.checks[0];
    assert!(!check.passed);
    assert!(
        check
            .detail
            .contains("1 WASI 0.2 interface (wasi:http), but the host cannot load it")
            && check.detail.contains("wasi:http/outgoing-handler@0.2.0"),
        "{}",
        check.detail
    );
    Ok(())
}

#[test]
fn a_component_of_another_world_fails_the_first_check() -> anyhow::Result<()> {
    let other = wat::parse_str(
        r#"(component
            (core module $m (func (export "f") (result i32) i32.const 1))
            (core instance $i (instantiate $m))
            (func (export "something-else") (result u32) (canon lift (core func $i "f"))))"#,
    )?;
    let report = hotreload::conform::conform(&other, &[])?;
    assert!(!report.loaded);
    assert_eq!(report.checks.len(), 1);
    let check = &report.checks[0];
    assert!(!check.passed);
    assert!(
        check
            .detail
            .starts_with("imports nothing, but the host cannot load it")
            && check
                .detail
                .contains("exports neither the world hotreload:handler/handler@0.1.0"),
        "{}",
        check.detail
    );
    Ok(())
}
