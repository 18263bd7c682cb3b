//! The `hotreload` command's code: argument parsing and one module per
//! command ([`cli`]), and the reload-latency benchmark ([`bench`]) that
//! `hotreload bench` and the criterion benches share.
//!
//! This crate is the binary's; embedders depend on the library
//! (`hotreload-wasm`, used as `hotreload`) and get none of it.

#![deny(missing_docs)]

pub(crate) mod admin;
pub mod bench;
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod etcd_server;
