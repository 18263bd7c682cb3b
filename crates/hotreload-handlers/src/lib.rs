//! The handler components bundled with hotreload, as bytes.
//!
//! The handlers live in `handlers/` at the root of the repository, a cargo
//! workspace of their own written against `wit/handler.wit`. This crate's
//! build script builds them in release mode for `wasm32-wasip2` (which needs
//! `rustup target add wasm32-wasip2`) and embeds the resulting components:
//!
//! - [`LOGGING`]: configures a logger (support level `full`);
//! - [`PLUGIN`]: configures a worker-pool plugin (support level `partial`);
//! - [`CHAOS`]: misbehaves on request, to test the host's sandbox.
//!
//! Each constant has a `_PATH` twin naming the component file on the build
//! machine, for tools that prefer a path.

#![deny(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/handlers.rs"));

/// A bundled handler by name (`logging`, `plugin`, `chaos`), as the
/// daemon's `handler = "bundled:NAME"` names it.
pub fn by_name(name: &str) -> Option<&'static [u8]> {
    match name {
        "logging" => Some(LOGGING),
        "plugin" => Some(PLUGIN),
        "chaos" => Some(CHAOS),
        _ => None,
    }
}
