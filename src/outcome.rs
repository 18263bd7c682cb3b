//! The vocabulary of events: what happened to a reload, in which phase, and why.

use serde::{Deserialize, Serialize};

/// What a reload attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The new configuration is in force.
    Applied,
    /// The new configuration equals the one in force; nothing was called.
    Unchanged,
    /// The new configuration was refused before anything was applied.
    Rejected,
    /// The change cannot be applied in place; it is pending until the
    /// component restarts.
    RestartRequired,
    /// Applying failed and the old configuration was restored.
    RolledBack,
    /// Applying failed and the handler could not be brought back to the old
    /// configuration; subscribers keep the old one.
    Degraded,
}

impl Outcome {
    /// Applied or unchanged: the component serves what was asked for.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Applied | Outcome::Unchanged)
    }

    /// The name events use (`rolled_back`), for labels and spans.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::Rejected => "rejected",
            Outcome::RestartRequired => "restart_required",
            Outcome::RolledBack => "rolled_back",
            Outcome::Degraded => "degraded",
        }
    }
}

impl Cause {
    /// The name events use (`out_of_fuel`), for labels and spans.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Invalid => "invalid",
            Cause::Trap => "trap",
            Cause::Timeout => "timeout",
            Cause::OutOfFuel => "out_of_fuel",
            Cause::MemoryLimit => "memory_limit",
            Cause::BadOutput => "bad_output",
            Cause::Subscriber => "subscriber",
            Cause::Storage => "storage",
            Cause::Empty => "empty",
            Cause::Unreadable => "unreadable",
            Cause::Capacity => "capacity",
            Cause::Batch => "batch",
        }
    }
}

impl EventKind {
    /// The name events use (`file_change`), for labels and spans.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Initial => "initial",
            EventKind::FileChange => "file_change",
            EventKind::Api => "api",
            EventKind::Restart => "restart",
            EventKind::HandlerSwap => "handler_swap",
            EventKind::EtcdChange => "etcd_change",
            EventKind::EtcdResync => "etcd_resync",
            EventKind::RollbackToVersion => "rollback_to_version",
        }
    }
}

/// Why a reload failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// The configuration did not parse, or the handler refused it.
    Invalid,
    /// The handler trapped (panic, `unreachable`, out-of-bounds access, ...).
    Trap,
    /// The call ran past its wall-time deadline.
    Timeout,
    /// The call used up its fuel.
    OutOfFuel,
    /// The handler asked for more memory or table space than allowed.
    MemoryLimit,
    /// The handler's output was not JSON or was too large.
    BadOutput,
    /// A subscriber refused the effective configuration.
    Subscriber,
    /// The committed configuration could not be persisted.
    Storage,
    /// The configuration is empty or only whitespace (never a
    /// configuration: an editor may be half-way through saving it).
    Empty,
    /// The configuration or handler file could not be read: removed,
    /// permission denied, not a regular file (a FIFO, a device), or
    /// resolving outside the directories it may come from.
    Unreadable,
    /// The host ran out of instance slots (`[runtime] pool_instances`):
    /// the host's capacity, not the handler's fault.
    Capacity,
    /// Another member of the same batch failed, so this member's change,
    /// though its handler accepted it, was rolled back with the rest.
    Batch,
}

/// The step of the reload transaction where it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Reading the configuration text.
    Parse,
    /// Creating a fresh instance of the handler.
    Instantiate,
    /// The handler's `validate`.
    Validate,
    /// The handler's `can-reload`.
    CanReload,
    /// The handler's `prepare` (contract 0.2.0: check and plan).
    Prepare,
    /// The handler's `reload` (contract 0.1.0), or its `apply` (0.2.0).
    Reload,
    /// Handing the effective configuration to subscribers.
    Apply,
    /// Persisting the new last-known-good configuration.
    Commit,
}

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The first load of a component.
    Initial,
    /// A watched file changed.
    FileChange,
    /// A call of the library or the API.
    Api,
    /// A component started again, on its pending or last-known-good configuration.
    Restart,
    /// A new handler `.wasm` replaced the old one.
    HandlerSwap,
    /// A rollback to an earlier version: a new version with that version's
    /// configuration (and handler), through the whole transaction.
    RollbackToVersion,
    /// A watched etcd key changed.
    EtcdChange,
    /// An etcd key read again in full: its watch could not resume because
    /// the revisions it missed were compacted away.
    EtcdResync,
}

/// How much of a component's configuration can change without a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportLevel {
    /// Every change can be applied in place.
    Full,
    /// Some changes can; the handler's `can-reload` says which.
    Partial,
    /// Every change needs a restart.
    None,
}

/// The contract a handler implements, told from its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Contract {
    /// `hotreload:handler@0.1.0`: `validate`, `can-reload`, `reload`,
    /// `rollback` (frozen).
    #[serde(rename = "0.1.0")]
    V0_1,
    /// `hotreload:handler@0.2.0`: `prepare` (check and plan, no effect),
    /// `apply`, `rollback`.
    #[serde(rename = "0.2.0")]
    V0_2,
}

impl Contract {
    /// The package version, `0.1.0` or `0.2.0`.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }
}

/// A changed field that cannot take effect in place, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartReason {
    /// JSON pointer of the field (RFC 6901); empty for the whole configuration.
    pub field: String,
    /// Why a restart is needed, for the operator.
    pub reason: String,
}

impl std::fmt::Display for RestartReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // "/" is the pointer of the empty key, so the whole configuration
        // is said in words.
        let field = if self.field.is_empty() {
            "(the whole configuration)"
        } else {
            &self.field
        };
        write!(f, "{field}: {}", self.reason)
    }
}

/// How a prepared configuration can take effect (contract 0.2.0's `plan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "plan", content = "restart")]
pub enum Plan {
    /// In place, by `apply`.
    InPlace,
    /// Only by restarting the component; each field that needs it, and why.
    Restart(Vec<RestartReason>),
}

/// What a 0.2.0 handler's `prepare` gave: its plan and the effective
/// configuration (`None`: the candidate itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// In place, or a restart and why.
    pub plan: Plan,
    /// The effective configuration as JSON text, when the handler gave one.
    pub effective: Option<String>,
}

/// A handler's refusal: its `failure` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerFailure {
    /// What went wrong, for the operator.
    pub message: String,
    /// JSON pointer of the offending field, if one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// True when the same call may succeed later.
    pub transient: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name()` is the serialised name, for every variant.
    #[test]
    fn names_are_the_serialised_names() {
        fn same<T: Serialize + Copy>(all: &[T], name: fn(T) -> &'static str) {
            for &v in all {
                assert_eq!(serde_json::to_value(v).unwrap(), name(v));
            }
        }
        use Cause::*;
        same(
            &[
                Invalid,
                Trap,
                Timeout,
                OutOfFuel,
                MemoryLimit,
                BadOutput,
                Subscriber,
                Storage,
                Empty,
                Unreadable,
                Capacity,
                Batch,
            ],
            Cause::name,
        );
        use Outcome::*;
        same(
            &[
                Applied,
                Unchanged,
                Rejected,
                RestartRequired,
                RolledBack,
                Degraded,
            ],
            Outcome::name,
        );
        use EventKind::*;
        same(
            &[
                Initial,
                FileChange,
                Api,
                Restart,
                HandlerSwap,
                RollbackToVersion,
            ],
            EventKind::name,
        );
    }
}
