//! Host bindings generated from the two contracts: `wit/handler.wit`
//! (`hotreload:handler@0.1.0`) and `wit/v0.2/handler.wit`
//! (`hotreload:handler@0.2.0`). Nothing here is public: the rest of the
//! crate speaks of handlers through `sandbox::instance`.

/// Contract 0.1.0: `validate`, `can-reload`, `reload`, `rollback`.
pub(crate) mod v1 {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "handler",
    });
}

/// Contract 0.2.0: `prepare`, `apply`, `rollback`.
pub(crate) mod v2 {
    wasmtime::component::bindgen!({
        path: "wit/v0.2",
        world: "handler",
    });
}

pub(crate) use self::v1::hotreload::handler::host::LogLevel;
