//! The handler components bundled with hotreload, as bytes.
//!
//! The handlers live in `handlers/` at the root of the repository, a cargo
//! workspace of their own: the contract 0.1 handlers are written against
//! `wit/handler.wit`, the contract 0.2 ones against `wit/v0.2/handler.wit`
//! through the handler SDK (`handlers/sdk`, crate `hotreload_handler`). This
//! crate's build script builds them in release mode for `wasm32-wasip2`
//! (which needs `rustup target add wasm32-wasip2`) and embeds the resulting
//! components:
//!
//! - [`LOGGING`]: configures a logger (contract 0.1, support level `full`);
//! - [`PLUGIN`]: configures a worker-pool plugin (contract 0.1, support
//!   level `partial`);
//! - [`CHAOS`]: misbehaves on request, to test the host's sandbox (contract 0.1);
//! - [`LOGGING_V2`]: the `logging` handler on contract 0.2, same behaviour
//!   (support level `full`);
//! - [`PLUGIN_V2`]: the `plugin` handler on contract 0.2, plain serde
//!   (support level `partial`);
//! - [`QUICKSTART`]: the quick start's handler, contract 0.2 (support level
//!   `partial`);
//! - [`CHAOS_V2`]: misbehaves on request on contract 0.2, to test the host's
//!   0.2 paths.
//!
//! Each constant has a `_PATH` twin naming the component file on the build
//! machine, for tools that prefer a path.

#![deny(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/handlers.rs"));

/// A bundled handler by name (`logging`, `plugin`, `chaos`, `logging-v2`,
/// `plugin-v2`, `quickstart`, `chaos-v2`), as the daemon's `handler = "bundled:NAME"`
/// names it.
pub fn by_name(name: &str) -> Option<&'static [u8]> {
    match name {
        "logging" => Some(LOGGING),
        "plugin" => Some(PLUGIN),
        "chaos" => Some(CHAOS),
        "logging-v2" => Some(LOGGING_V2),
        "plugin-v2" => Some(PLUGIN_V2),
        "quickstart" => Some(QUICKSTART),
        "chaos-v2" => Some(CHAOS_V2),
        _ => None,
    }
}
