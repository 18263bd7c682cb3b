//! Runtime settings and per-handler limits, as plain serde data.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The settings of a [`Runtime`](crate::Runtime): limits, retries, notification
/// policy and storage, as read from a manifest's `[runtime]` table.
///
/// Unknown keys are an error that names the key, so a typo never goes unseen.
/// Every field has a default; `Settings::default()` is a sensible runtime.
///
/// ```
/// let settings: hotreload::Settings = serde_json::from_str(r#"{"fuel": 5000000}"#).unwrap();
/// assert_eq!(settings.fuel, 5_000_000);
/// assert_eq!(settings.validation_timeout_ms, 100);
///
/// let typo = serde_json::from_str::<hotreload::Settings>(r#"{"feul": 1}"#).unwrap_err();
/// assert!(typo.to_string().contains("unknown field `feul`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Whether configuration changes are applied at all. When false, the
    /// initial configuration loads and every later reload is refused.
    pub enabled: bool,
    /// Quiet period after a file change before it is read (used by file sources).
    pub debounce_ms: u64,
    /// How many times a transient failure is retried.
    pub max_retries: u32,
    /// Pause between retries.
    pub retry_interval_ms: u64,
    /// Wall-time limit of `validate` and `can-reload`.
    pub validation_timeout_ms: u64,
    /// Wall-time limit of `reload` and `rollback`.
    pub reload_timeout_ms: u64,
    /// Fuel (instruction budget) per handler call.
    pub fuel: u64,
    /// Linear memory and tables per handler instance, in MiB.
    pub memory_mib: u64,
    /// Call the handler's `rollback` after a failed reload.
    pub rollback_on_failure: bool,
    /// Send successful outcomes to notification subscribers.
    pub notify_on_success: bool,
    /// Send failed outcomes to notification subscribers.
    pub notify_on_failure: bool,
    /// Where last-known-good configurations and compiled handlers are kept.
    pub state_dir: Option<PathBuf>,
    /// Largest configuration or handler output accepted, in bytes.
    pub output_limit_bytes: u64,
    /// Largest number of host log lines a handler may write per call; the rest
    /// are counted and dropped.
    pub log_lines_per_call: u32,
    /// Largest stdout/stderr text kept per handler call, in bytes.
    pub captured_output_bytes: u64,
    /// Byte budget of the event store.
    pub event_store_bytes: u64,
    /// Largest number of events kept in the event store.
    pub event_store_events: u64,
    /// Run every reload in a fresh instance that never saw the old
    /// configuration (isolation over speed), instead of a warm one.
    pub fresh_instance_per_reload: bool,
    /// How many handler instances can be live at once (the pooling
    /// allocator's slots; each component keeps one, and briefly a second
    /// while a fresh one replaces it). Unset: 512 for a runtime built by
    /// hand; the daemon sizes it from its manifest (two per component, plus
    /// 16). Running out is reported as cause `capacity`.
    pub pool_instances: Option<u32>,
    /// Where compiled handlers are cached across runs. Unset: the state
    /// directory's `compiled/` when there is one, else no cache.
    pub cache_dir: Option<PathBuf>,
    /// Size bound of the compiled-code cache, in MiB; the least recently
    /// used entries are evicted past it.
    pub cache_max_mib: u64,
    /// Largest handler `.wasm` file read, in MiB (a Python handler is
    /// about 18 MiB).
    pub handler_limit_mib: u64,
    /// Keys whose values are secrets: hidden as `"[redacted]"` in events,
    /// logs and every output (the handler still sees them). A key matches
    /// when these words appear in it in a row, whatever the case and
    /// separators (`dbPassword`, `client_secret`, `API-Key`). An empty list
    /// hides nothing.
    pub redact_keys: Vec<String>,
    /// Directories a configuration file may resolve into (through
    /// symlinks) besides its own; a file resolving anywhere else is not
    /// read. Relative to the manifest.
    pub config_roots: Vec<PathBuf>,
    /// Revisions kept per component in the state directory's revision
    /// store (the oldest are deleted past it, with handler code no kept
    /// revision uses). At least 1.
    pub keep_revisions: u64,
    /// Events whose inputs are kept in the revision store for
    /// `hotreload replay` (the oldest are deleted past it); an event whose
    /// record would exceed 256 KiB (large configurations) is not kept.
    pub keep_events: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            debounce_ms: 100,
            max_retries: 2,
            retry_interval_ms: 100,
            validation_timeout_ms: 100,
            reload_timeout_ms: 1000,
            fuel: 1_000_000_000,
            memory_mib: 64,
            rollback_on_failure: true,
            notify_on_success: true,
            notify_on_failure: true,
            state_dir: None,
            output_limit_bytes: 1024 * 1024,
            log_lines_per_call: 100,
            captured_output_bytes: 64 * 1024,
            event_store_bytes: 2 * 1024 * 1024,
            event_store_events: 10_000,
            fresh_instance_per_reload: false,
            pool_instances: None,
            cache_dir: None,
            cache_max_mib: 512,
            handler_limit_mib: 256,
            redact_keys: crate::redact::default_keys(),
            config_roots: Vec::new(),
            keep_revisions: 100,
            keep_events: 1_000,
        }
    }
}

impl Settings {
    /// Pool slots when [`Settings::pool_instances`] is unset.
    pub const DEFAULT_POOL_INSTANCES: u32 = 512;

    /// The compiled-code cache directory in use, if any.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        self.cache_dir
            .clone()
            .or_else(|| self.state_dir.as_ref().map(|d| d.join("compiled")))
    }

    /// The limits every component gets unless it overrides them.
    pub fn limits(&self) -> Limits {
        Limits {
            fuel: self.fuel,
            memory_bytes: self.memory_mib.saturating_mul(1024 * 1024),
            validation_timeout: Duration::from_millis(self.validation_timeout_ms),
            reload_timeout: Duration::from_millis(self.reload_timeout_ms),
            max_retries: self.max_retries,
            retry_interval: Duration::from_millis(self.retry_interval_ms),
            output_bytes: self.output_limit_bytes as usize,
            log_lines_per_call: self.log_lines_per_call,
            captured_output_bytes: self.captured_output_bytes as usize,
        }
    }
}

/// Per-component overrides of the runtime's limits, as read from a
/// manifest's `[[component]]` entry. A field left out keeps the runtime's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitOverrides {
    /// Fuel per call.
    pub fuel: Option<u64>,
    /// Memory per instance, in MiB.
    pub memory_mib: Option<u64>,
    /// Wall-time limit of `validate` and `can-reload`.
    pub validation_timeout_ms: Option<u64>,
    /// Wall-time limit of `reload` and `rollback`.
    pub reload_timeout_ms: Option<u64>,
    /// Retries of transient failures.
    pub max_retries: Option<u32>,
    /// Pause between retries.
    pub retry_interval_ms: Option<u64>,
}

impl LimitOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, mut base: Limits) -> Limits {
        if let Some(fuel) = self.fuel {
            base.fuel = fuel;
        }
        if let Some(mib) = self.memory_mib {
            base.memory_bytes = mib.saturating_mul(1024 * 1024);
        }
        if let Some(ms) = self.validation_timeout_ms {
            base.validation_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.reload_timeout_ms {
            base.reload_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = self.max_retries {
            base.max_retries = n;
        }
        if let Some(ms) = self.retry_interval_ms {
            base.retry_interval = Duration::from_millis(ms);
        }
        base
    }
}

/// The limits one component's handler calls run under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel per call.
    pub fuel: u64,
    /// Linear memory plus tables per instance, in bytes.
    pub memory_bytes: u64,
    /// Deadline of `validate`, `can-reload` and `support-level`.
    pub validation_timeout: Duration,
    /// Deadline of `reload` and `rollback`.
    pub reload_timeout: Duration,
    /// Retries of transient failures.
    pub max_retries: u32,
    /// Pause between retries.
    pub retry_interval: Duration,
    /// Largest configuration or output crossing the boundary, in bytes.
    pub output_bytes: usize,
    /// Host log lines per call.
    pub log_lines_per_call: u32,
    /// stdout/stderr bytes kept per call.
    pub captured_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Settings::default().limits()
    }
}
