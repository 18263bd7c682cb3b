//! Host bindings generated from `wit/handler.wit`. Nothing here is public:
//! the rest of the crate speaks of handlers through `sandbox::instance`.

wasmtime::component::bindgen!({
    path: "wit",
    world: "handler",
});

pub(crate) use self::hotreload::handler::host::LogLevel;
