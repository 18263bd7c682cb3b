//! What survives a restart: each component's last-known-good configuration.

mod lkg;

pub use self::lkg::{LastKnownGood, Persisted};
