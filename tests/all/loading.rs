//! Handlers that cannot be loaded are refused with a message naming why.

use hotreload::{ComponentSpec, Error, HandlerSource};

async fn load_error(bytes: Vec<u8>) -> String {
    let rt = crate::runtime();
    match rt.add_component(ComponentSpec::new("x", bytes, "{}")).await {
        Err(Error::HandlerLoad { reason, .. }) => reason,
        Err(other) => panic!("expected a load error, got {other}"),
        Ok(_) => panic!("a bad handler loaded"),
    }
}

#[tokio::test]
async fn random_bytes_are_not_wasm() {
    let reason = load_error(b"\x7fELF\x02\x01\x01 definitely not wasm".to_vec()).await;
    assert!(reason.contains("not a WebAssembly binary"), "{reason}");
}

#[tokio::test]
async fn empty_file_is_not_wasm() {
    let reason = load_error(Vec::new()).await;
    assert!(reason.contains("not a WebAssembly binary"), "{reason}");
}

#[tokio::test]
async fn core_module_is_not_a_component() {
    let module = wat::parse_str("(module (func (export \"validate\")))").unwrap();
    let reason = load_error(module).await;
    assert!(
        reason.contains("core WebAssembly module, not a component"),
        "{reason}"
    );
}

#[tokio::test]
async fn truncated_component_is_invalid() {
    let bytes = hotreload_handlers::LOGGING[..hotreload_handlers::LOGGING.len() / 2].to_vec();
    let reason = load_error(bytes).await;
    assert!(
        reason.contains("not a valid WebAssembly component"),
        "{reason}"
    );
}

#[tokio::test]
async fn component_of_another_world_is_refused() {
    let other = wat::parse_str(
        r#"(component
            (core module $m (func (export "f") (result i32) i32.const 1))
            (core instance $i (instantiate $m))
            (func (export "something-else") (result u32) (canon lift (core func $i "f"))))"#,
    )
    .unwrap();
    let reason = load_error(other).await;
    assert!(
        reason.contains("exports neither the world hotreload:handler/handler@0.1.0")
            && reason.contains("nor hotreload:handler/handler@0.2.0"),
        "{reason}"
    );
}

#[tokio::test]
async fn component_importing_unknown_interfaces_is_refused() {
    let importer = wat::parse_str(
        r#"(component
            (import "evil:net/raw-socket" (instance (export "open" (func (result u32))))))"#,
    )
    .unwrap();
    let reason = load_error(importer).await;
    assert!(
        reason.contains("imports something this host does not provide"),
        "{reason}"
    );
}

#[tokio::test]
async fn missing_file_is_named() {
    let rt = crate::runtime();
    let err = rt
        .add_component(ComponentSpec::new(
            "x",
            HandlerSource::Path("no/such/handler.wasm".into()),
            "{}",
        ))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no/such/handler.wasm"), "{text}");
}

#[tokio::test]
async fn initial_configuration_must_be_accepted() {
    let rt = crate::runtime();
    let err = rt
        .add_component(ComponentSpec::new(
            "logging",
            hotreload_handlers::LOGGING,
            r#"{"level": "shouting"}"#,
        ))
        .await
        .unwrap_err();
    match err {
        Error::InitialLoad { event, .. } => {
            assert_eq!(event.outcome, hotreload::Outcome::Rejected);
            assert_eq!(crate::field(&event), Some("/level"));
        }
        other => panic!("{other}"),
    }
    assert!(matches!(
        rt.current("logging"),
        Err(Error::UnknownComponent(_))
    ));
}

#[tokio::test]
async fn names_are_checked() {
    let rt = crate::runtime();
    for bad in ["", "../etc", ".hidden", "a b"] {
        let err = rt
            .add_component(ComponentSpec::new(bad, hotreload_handlers::LOGGING, "{}"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidName(_)), "{bad:?}: {err}");
    }
    rt.add_component(ComponentSpec::new("ok", hotreload_handlers::LOGGING, "{}"))
        .await
        .unwrap();
    let err = rt
        .add_component(ComponentSpec::new("ok", hotreload_handlers::LOGGING, "{}"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateComponent(_)));
}
