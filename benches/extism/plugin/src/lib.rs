//! The `logging` handler as an Extism plugin, for the peer comparison in
//! `benches/extism`.
//!
//! It runs exactly the project's validation and normalisation code: the
//! module below is the handler's own `config.rs`, included by path, so the
//! two cannot drift. Only the binding differs: Extism's byte-in/byte-out
//! calls instead of the component model's typed ones.
//!
//! Exports (input: the configuration text, UTF-8):
//! - `support_level`: no input, outputs `full` (the handler's
//!   `support-level`; the host calls it to instantiate a fresh plugin, as the
//!   project's runtime does with a fresh component instance).
//! - `validate`: empty output on success; on refusal an Extism error whose
//!   text is the handler's `failure` record as JSON,
//!   `{"message":"...","field":"/level"|null,"transient":false}`.
//! - `reload`: validates (same error), logs `logging reconfigured: ...` at
//!   info through the host as the handler does, keeps the configuration as
//!   the current one, and outputs the effective configuration (compact JSON).

#[path = "../../../../handlers/logging/src/config.rs"]
mod config;

use config::{Config, Refusal};
use extism_pdk::{Error, FnResult, WithReturnCode, info, plugin_fn};
use std::cell::RefCell;

thread_local! {
    /// The configuration applied by the last successful `reload`.
    static CURRENT: RefCell<Option<Config>> = const { RefCell::new(None) };
}

/// The handler's `failure` record as the Extism error text.
fn refuse(r: Refusal) -> WithReturnCode<Error> {
    let failure = serde_json::json!({
        "message": r.message,
        "field": r.field,
        "transient": false,
    });
    WithReturnCode::new(Error::msg(failure.to_string()), 1)
}

/// `support_level()`: the handler's level of support.
#[plugin_fn]
pub fn support_level() -> FnResult<&'static str> {
    Ok("full")
}

/// `validate(config)`: the handler's checks.
#[plugin_fn]
pub fn validate(config: String) -> FnResult<()> {
    config::parse(&config).map(drop).map_err(refuse)
}

/// `reload(config)`: validates, applies, and returns the effective
/// configuration.
#[plugin_fn]
pub fn reload(config: String) -> FnResult<String> {
    let config = config::parse(&config).map_err(refuse)?;
    let effective = config.to_json();
    info!(
        "logging reconfigured: level={} format={} outputs={}",
        config.level,
        config.format,
        config.outputs.len()
    );
    CURRENT.with(|current| *current.borrow_mut() = Some(config));
    Ok(effective)
}
