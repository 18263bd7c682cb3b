//! What survives a restart: each component's last-known-good configuration.

mod atomic;
mod lkg;
mod lock;

pub(crate) use self::lock::StateLock;

pub(crate) use self::atomic::write_atomically;

pub use self::lkg::{LastKnownGood, Persisted};
