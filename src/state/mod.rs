//! What survives a restart: every component's revisions (the latest is its
//! last-known-good configuration), in one SQLite database.

mod atomic;
mod lock;
mod revisions;

pub(crate) use self::lock::StateLock;

pub(crate) use self::atomic::write_atomically;

pub(crate) use self::revisions::NewRevision;
pub use self::revisions::{DATABASE, Latest, Revision, RevisionSource, Revisions};
