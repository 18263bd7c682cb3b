//! Replay: what each event needs to run again is kept in the revision store
//! (the exact old and new configuration text, the handler's code by hash,
//! the limits, the retries), so that `hotreload replay` can run it again in
//! a fresh instance, with deterministic clocks and random numbers, and say
//! whether it comes out the same.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::events::{Event, EventStore};
use crate::manager::subscribers::Subscribers;
use crate::outcome::{Cause, EventKind, Outcome, Phase};
use crate::redact::Redactor;
use crate::sandbox::{Sandbox, SandboxConfig, SandboxOptions};
use crate::settings::Limits;
use crate::state::Revisions;
use crate::transaction::{ComponentState, ConfigInput, Context, Request};

/// The limits an event ran under, as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedLimits {
    fuel: u64,
    memory_bytes: u64,
    validation_timeout_us: u64,
    reload_timeout_us: u64,
    max_retries: u32,
    retry_interval_us: u64,
    output_bytes: usize,
    log_lines_per_call: u32,
    captured_output_bytes: usize,
}

impl From<&Limits> for RecordedLimits {
    fn from(l: &Limits) -> Self {
        RecordedLimits {
            fuel: l.fuel,
            memory_bytes: l.memory_bytes,
            validation_timeout_us: l.validation_timeout.as_micros() as u64,
            reload_timeout_us: l.reload_timeout.as_micros() as u64,
            max_retries: l.max_retries,
            retry_interval_us: l.retry_interval.as_micros() as u64,
            output_bytes: l.output_bytes,
            log_lines_per_call: l.log_lines_per_call,
            captured_output_bytes: l.captured_output_bytes,
        }
    }
}

impl From<&RecordedLimits> for Limits {
    fn from(l: &RecordedLimits) -> Self {
        Limits {
            fuel: l.fuel,
            memory_bytes: l.memory_bytes,
            validation_timeout: Duration::from_micros(l.validation_timeout_us),
            reload_timeout: Duration::from_micros(l.reload_timeout_us),
            max_retries: l.max_retries,
            retry_interval: Duration::from_micros(l.retry_interval_us),
            output_bytes: l.output_bytes,
            log_lines_per_call: l.log_lines_per_call,
            captured_output_bytes: l.captured_output_bytes,
        }
    }
}

/// How an event ran: a first load in a fresh instance (an initial load, a
/// restart, a handler swap, a rollback to another handler), or a reload of
/// the configuration in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayMode {
    /// `validate`, `reload(none, new)` in a fresh instance.
    Load,
    /// The old configuration loaded first, then the reload to the new one.
    Reload,
}

/// What is needed to run one event again, and what it came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayRecord {
    /// The event's id (within its run).
    pub event_id: u64,
    /// The event's timestamp: the replay's clocks start there.
    pub timestamp: String,
    /// The component.
    pub component: String,
    /// The event's kind.
    pub kind: EventKind,
    /// How it ran.
    pub mode: ReplayMode,
    /// SHA-256 of the handler that ran it (for a handler swap, the new one).
    pub handler_hash: String,
    /// The configuration in force before, as the handler saw it.
    pub old_config: Option<String>,
    /// The configuration asked for, as the handler saw it.
    pub new_config: Option<String>,
    /// The limits it ran under.
    pub limits: RecordedLimits,
    /// The retries it took.
    pub retries: u32,
    /// What it came to.
    pub outcome: Outcome,
    /// Why it failed, if it did.
    pub cause: Option<Cause>,
    /// Where it failed, if it did.
    pub failed_phase: Option<Phase>,
    /// The effective configuration (not redacted), when it applied.
    pub effective: Option<Value>,
}

/// Hands replay records to a writer thread, which keeps them in the store
/// in batches, off the transaction's path.
/// Largest replay record kept (old and new configuration, effective
/// configuration, as JSON): an event with larger configurations is not kept
/// for replay, so the store stays bounded at `keep_events` times this.
pub const MAX_RECORD_BYTES: usize = 256 << 10;

/// A record with the code of the handler it ran.
type Pending = (ReplayRecord, Arc<[u8]>);

pub(crate) struct ReplaySink {
    tx: Mutex<Option<std::sync::mpsc::Sender<Pending>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl ReplaySink {
    pub(crate) fn start(store: Arc<Revisions>) -> ReplaySink {
        let (tx, rx) = std::sync::mpsc::channel::<Pending>();
        let spawned = std::thread::Builder::new()
            .name("hotreload-replays".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < 256 {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    let mut records = Vec::with_capacity(batch.len());
                    let mut handlers: Vec<(String, Arc<[u8]>)> = Vec::new();
                    for (record, wasm) in batch {
                        if !handlers.iter().any(|(h, _)| *h == record.handler_hash) {
                            handlers.push((record.handler_hash.clone(), wasm));
                        }
                        match serde_json::to_string(&record) {
                            Ok(json) if json.len() > MAX_RECORD_BYTES => {
                                tracing::debug!(
                                    event = record.event_id,
                                    "not kept for replay: {} bytes of configuration",
                                    json.len()
                                );
                            }
                            Ok(json) => {
                                records.push((
                                    record.event_id,
                                    record.timestamp,
                                    record.handler_hash,
                                    json,
                                ));
                            }
                            Err(e) => tracing::warn!("a replay record: {e}"),
                        }
                    }
                    if let Err(e) = store.write_replays(&records, &handlers) {
                        tracing::warn!("cannot keep {} replay records: {e}", records.len());
                    }
                }
            });
        let writer = match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!("no replay records: cannot start their writer: {e}");
                None
            }
        };
        ReplaySink {
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(writer),
        }
    }

    pub(crate) fn send(&self, record: ReplayRecord, wasm: Arc<[u8]>) {
        if let Some(tx) = &*self.tx.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = tx.send((record, wasm));
        }
    }

    /// Writes what was sent and stops the writer (at shutdown); later
    /// records are dropped.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

/// What a replay came to.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// The event as it was recorded.
    pub recorded: ReplayRecord,
    /// The event the replay produced.
    pub replayed: Arc<Event>,
    /// The effective configuration the replay produced (not redacted).
    pub effective: Option<Value>,
    /// What differs: outcome, cause, effective configuration. Empty when
    /// the replay came out the same.
    pub differences: Vec<String>,
}

impl ReplayReport {
    /// Whether outcome, cause and effective configuration are the same.
    pub fn same(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Why an event cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The state directory has no revision store.
    #[error("{0}: no revision store (revisions.db) here")]
    NoStore(String),
    /// No record of that event is kept.
    #[error("no replay record of event {0} is kept (the last keep_events events are)")]
    NoRecord(u64),
    /// The handler's code is gone.
    #[error("the handler {0} that ran the event is no longer kept")]
    HandlerNotKept(String),
    /// The old configuration could not be brought back first.
    #[error("the configuration in force before the event could not be loaded again: {0}")]
    Setup(String),
    /// Anything else: the store, the engine, the handler.
    #[error(transparent)]
    Runtime(#[from] Error),
}

/// Replays event `event_id` (of the latest run that had one; or the one at
/// `timestamp`) kept in `state_dir`'s revision store, in a fresh instance
/// with deterministic clocks (starting at the event's time, one
/// microsecond per reading) and random numbers, and compares outcome,
/// cause and effective configuration with the record.
///
/// Blocks: call it off async threads.
///
/// # Errors
/// [`ReplayError`] when the event cannot be replayed.
pub fn replay(
    state_dir: &Path,
    event_id: u64,
    timestamp: Option<&str>,
) -> Result<ReplayReport, ReplayError> {
    let store = Revisions::open_read_only(state_dir)?
        .ok_or_else(|| ReplayError::NoStore(state_dir.display().to_string()))?;
    let json = store
        .replay_record(event_id, timestamp)?
        .ok_or(ReplayError::NoRecord(event_id))?;
    let recorded: ReplayRecord = serde_json::from_str(&json).map_err(|e| Error::Record {
        path: store.path().to_owned(),
        reason: format!("replay record of event {event_id}: {e}"),
    })?;
    let wasm = store
        .handler(&recorded.handler_hash)?
        .ok_or_else(|| ReplayError::HandlerNotKept(recorded.handler_hash.clone()))?;
    let start = humantime::parse_rfc3339(&recorded.timestamp).unwrap_or(SystemTime::UNIX_EPOCH);
    let sandbox = Sandbox::new(SandboxConfig {
        options: SandboxOptions::default(),
        pool_instances: 4,
        cache_dir: None,
        cache_max_bytes: 0,
        replay_clock: Some(start),
    })?;
    let compiled = sandbox
        .compile(&wasm)
        .map_err(|reason| Error::HandlerLoad {
            component: recorded.component.clone(),
            handler: recorded.handler_hash.clone(),
            reason,
        })?;
    let events = EventStore::new(16, 1 << 20, false, false);
    let redact = Redactor::new(&[]);
    let ctx = Context {
        sandbox: &sandbox,
        events: &events,
        revisions: None,
        rollback_on_failure: true,
        fresh_instance_per_reload: false,
        redact: &redact,
        record: true,
        replays: None,
    };
    let mut state = ComponentState {
        name: recorded.component.as_str().into(),
        handler: Arc::new(compiled),
        instance: None,
        limits: Limits::from(&recorded.limits),
        committed: None,
        pending: None,
        degraded: false,
        subscribers: Arc::new(Mutex::new(Subscribers::new(Arc::new(Value::Null)))),
        support: None,
        instances_created: 0,
        base_version: 0,
        published: Arc::new(Mutex::new(None)),
    };
    let request = |text: &Option<String>| {
        Request::new(
            ConfigInput::Json(text.clone().unwrap_or_default()),
            recorded.kind,
            None,
        )
    };
    let replayed = match recorded.mode {
        ReplayMode::Load => state.load(&ctx, request(&recorded.new_config)),
        ReplayMode::Reload => {
            let setup = state.load(&ctx, request(&recorded.old_config));
            if state.committed.is_none() {
                return Err(ReplayError::Setup(setup.summary()));
            }
            state.reload(&ctx, request(&recorded.new_config))
        }
    };
    let effective = match replayed.outcome {
        Outcome::Applied | Outcome::Unchanged => {
            state.committed.as_ref().map(|c| (*c.effective).clone())
        }
        _ => None,
    };
    let mut differences = Vec::new();
    if replayed.outcome != recorded.outcome {
        differences.push(format!(
            "outcome: {:?} then, {:?} now",
            recorded.outcome, replayed.outcome
        ));
    }
    if replayed.cause != recorded.cause {
        differences.push(format!(
            "cause: {:?} then, {:?} now",
            recorded.cause, replayed.cause
        ));
    }
    if effective != recorded.effective {
        differences.push("effective configuration: differs".into());
    }
    Ok(ReplayReport {
        recorded,
        replayed,
        effective,
        differences,
    })
}
