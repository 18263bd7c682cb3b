//! The event record: one event per reload attempt, kept in a ring bounded by
//! count and bytes, and statistics over every event ever recorded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::SystemTime;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::diff::{Change, approx_size};
use crate::outcome::{Cause, EventKind, Outcome, Phase, RestartReason, SupportLevel};

/// The record of one reload attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique and increasing within a runtime.
    pub id: u64,
    /// The component's name.
    pub component: String,
    /// What started the attempt.
    pub kind: EventKind,
    /// The file the configuration came from, if any.
    pub config_path: Option<String>,
    /// The configuration in force before (the input the handler accepted).
    pub old_config: Option<Arc<Value>>,
    /// The configuration asked for, if it parsed.
    pub new_config: Option<Arc<Value>>,
    /// What subscribers were given, when the attempt applied.
    pub effective_config: Option<Arc<Value>>,
    /// The differences from `old_config` to `new_config`.
    pub changes: Vec<Change>,
    /// When the attempt started (RFC 3339, UTC).
    pub timestamp: String,
    /// What the attempt came to.
    pub outcome: Outcome,
    /// Where it failed.
    pub failed_phase: Option<Phase>,
    /// Why it failed.
    pub cause: Option<Cause>,
    /// The handler's or the host's message.
    pub error: Option<EventError>,
    /// How many retries the attempt took.
    pub retries: u32,
    /// Wall time of the whole attempt, in microseconds.
    pub duration_us: u64,
    /// Fuel used by all handler calls of the attempt. A call cut off by its
    /// deadline reports less than it used.
    pub fuel_consumed: u64,
    /// The committed version in force after the attempt (0 before the first).
    pub version: u64,
    /// SHA-256 of the handler that handled the attempt.
    pub handler_hash: String,
    /// For `rollback_to_version`: the version whose configuration (and
    /// handler) was asked for again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<u64>,
    /// For a member of a batch: the batch's id, shared by every member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// A dry run's event: what a reload would do; nothing was applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// For `restart_required`: each field that cannot change in place, and
    /// why (a 0.2.0 handler's plan; for a 0.1.0 handler, found by the host,
    /// see `docs/handlers.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart: Vec<RestartReason>,
}

/// What went wrong, as the handler or the host said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventError {
    /// The message.
    pub message: String,
    /// JSON pointer of the field to blame, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Event {
    /// A one-line summary for logs and the CLI: a handler's multi-line
    /// message (a panic with its captured stderr) is joined with ` ⏎ `.
    pub fn summary(&self) -> String {
        let mut s = format!("{} {:?} v{}", self.component, self.outcome, self.version);
        if let (Some(phase), Some(cause)) = (self.failed_phase, self.cause) {
            s.push_str(&format!(" ({cause:?} in {phase:?})"));
        }
        if let Some(err) = &self.error {
            s.push_str(": ");
            s.push_str(&err.message);
            if let Some(field) = &err.field {
                s.push_str(&format!(" at {field}"));
            }
        }
        for (i, r) in self.restart.iter().enumerate() {
            s.push_str(if i == 0 { ": " } else { "; " });
            s.push_str(&r.to_string());
        }
        if s.contains(['\n', '\r']) {
            s = s
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ⏎ ");
        }
        s
    }

    fn approx_bytes(&self) -> usize {
        let configs: usize = [&self.old_config, &self.new_config, &self.effective_config]
            .into_iter()
            .flatten()
            .map(|v| approx_size(v))
            .sum();
        let changes: usize = self
            .changes
            .iter()
            .map(|c| {
                64 + c.path.len()
                    + c.old.as_ref().map_or(0, approx_size)
                    + c.new.as_ref().map_or(0, approx_size)
            })
            .sum();
        let error = self.error.as_ref().map_or(0, |e| {
            e.message.len() + e.field.as_ref().map_or(0, String::len)
        });
        let restart: usize = self
            .restart
            .iter()
            .map(|r| 48 + r.field.len() + r.reason.len())
            .sum();
        std::mem::size_of::<Event>()
            + self.component.len()
            + self.config_path.as_ref().map_or(0, String::len)
            + self.timestamp.len()
            + self.handler_hash.len()
            + configs
            + changes
            + error
            + restart
    }
}

pub(crate) fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

/// What [`Runtime::events_after`](crate::Runtime::events_after) gives.
#[derive(Debug, Clone, Default)]
pub struct EventsAfter {
    /// The events recorded since, oldest first.
    pub events: Vec<Arc<Event>>,
    /// The first and last id of events recorded since that already left
    /// the ring (it keeps `event_store_events` events and
    /// `event_store_bytes`): they can no longer be read.
    pub missed: Option<(u64, u64)>,
}

/// Statistics over every event a runtime recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Events recorded.
    pub total: u64,
    /// Applied or unchanged, over all events (1.0 when there are none).
    pub success_rate: f64,
    /// Events per outcome.
    pub by_outcome: BTreeMap<Outcome, u64>,
    /// Failed events per cause.
    pub by_cause: BTreeMap<Cause, u64>,
    /// Median attempt duration, microseconds.
    pub p50_us: u64,
    /// 99th percentile attempt duration, microseconds.
    pub p99_us: u64,
    /// Events still in the ring.
    pub events_kept: u64,
    /// The ring's estimated size in bytes.
    pub events_bytes: u64,
    /// The same figures per component.
    pub components: BTreeMap<String, ComponentStats>,
}

/// Statistics of one component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentStats {
    /// Events recorded.
    pub total: u64,
    /// Applied or unchanged, over all events.
    pub success_rate: f64,
    /// Events per outcome.
    pub by_outcome: BTreeMap<Outcome, u64>,
    /// Median attempt duration, microseconds.
    pub p50_us: u64,
    /// 99th percentile attempt duration, microseconds.
    pub p99_us: u64,
    /// The handler's support level, when an instance has told it.
    pub support_level: Option<SupportLevel>,
}

struct Tally {
    total: u64,
    successes: u64,
    by_outcome: BTreeMap<Outcome, u64>,
    by_cause: BTreeMap<Cause, u64>,
    durations: Histogram<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            total: 0,
            successes: 0,
            by_outcome: BTreeMap::new(),
            by_cause: BTreeMap::new(),
            // 1 µs to about an hour, 2 significant digits: a few KiB each.
            durations: Histogram::new_with_bounds(1, 3_600_000_000, 2)
                .expect("static histogram bounds are valid"),
        }
    }

    fn add(&mut self, e: &Event) {
        self.total += 1;
        if e.outcome.is_success() {
            self.successes += 1;
        }
        *self.by_outcome.entry(e.outcome).or_default() += 1;
        if let Some(cause) = e.cause {
            *self.by_cause.entry(cause).or_default() += 1;
        }
        self.durations.saturating_record(e.duration_us.max(1));
    }

    fn rate(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.successes as f64 / self.total as f64
        }
    }

    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.durations.value_at_quantile(q)
        }
    }
}

struct Ring {
    events: VecDeque<(Arc<Event>, usize)>,
    bytes: usize,
    all: Tally,
    components: BTreeMap<String, (Tally, Option<SupportLevel>)>,
}

/// Events and statistics, shared by a runtime's components.
pub(crate) struct EventStore {
    ring: Mutex<Ring>,
    max_events: usize,
    max_bytes: usize,
    notify: broadcast::Sender<Arc<Event>>,
    all: broadcast::Sender<Arc<Event>>,
    notify_on_success: bool,
    notify_on_failure: bool,
}

impl EventStore {
    pub(crate) fn new(
        max_events: usize,
        max_bytes: usize,
        notify_on_success: bool,
        notify_on_failure: bool,
    ) -> EventStore {
        EventStore {
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                bytes: 0,
                all: Tally::new(),
                components: BTreeMap::new(),
            }),
            max_events: max_events.max(1),
            max_bytes,
            notify: broadcast::channel(1024).0,
            all: broadcast::channel(4096).0,
            notify_on_success,
            notify_on_failure,
        }
    }

    /// Records an event, evicting the oldest ones past the budget, and
    /// notifies subscribers as the settings ask.
    /// Ids are given here, in the order events are recorded: 1, 2, 3, ...
    /// with no gap, so a reader that knows the last id it saw knows exactly
    /// what it missed.
    pub(crate) fn record(&self, mut event: Event, support: Option<SupportLevel>) -> Arc<Event> {
        let size = event.approx_bytes();
        let event = {
            let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            event.id = ring.all.total + 1;
            let event = Arc::new(event);
            ring.all.add(&event);
            let entry = ring
                .components
                .entry(event.component.clone())
                .or_insert_with(|| (Tally::new(), None));
            entry.0.add(&event);
            if support.is_some() {
                entry.1 = support;
            }
            ring.events.push_back((event.clone(), size));
            ring.bytes += size;
            while ring.events.len() > self.max_events
                || (ring.bytes > self.max_bytes && ring.events.len() > 1)
            {
                if let Some((_, s)) = ring.events.pop_front() {
                    ring.bytes -= s;
                }
            }
            event
        };
        let _ = self.all.send(event.clone());
        let wanted = if event.outcome.is_success() {
            self.notify_on_success
        } else {
            self.notify_on_failure
        };
        if wanted {
            // No receivers is fine: nobody asked to be told.
            let _ = self.notify.send(event.clone());
        }
        event
    }

    pub(crate) fn events(&self) -> Vec<Arc<Event>> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.events.iter().map(|(e, _)| e.clone()).collect()
    }

    /// The events recorded after the one with id `after`, oldest first,
    /// and the ids of those that already left the ring, if any.
    pub(crate) fn after(&self, after: u64) -> EventsAfter {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let first_kept = ring.all.total + 1 - ring.events.len() as u64;
        let missed = (after + 1 < first_kept).then(|| (after + 1, first_kept - 1));
        let skip = (after + 1).saturating_sub(first_kept) as usize;
        EventsAfter {
            events: ring
                .events
                .iter()
                .skip(skip)
                .map(|(e, _)| e.clone())
                .collect(),
            missed,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.notify.subscribe()
    }

    pub(crate) fn subscribe_all(&self) -> broadcast::Receiver<Arc<Event>> {
        self.all.subscribe()
    }

    pub(crate) fn stats(&self) -> Stats {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        Stats {
            total: ring.all.total,
            success_rate: ring.all.rate(),
            by_outcome: ring.all.by_outcome.clone(),
            by_cause: ring.all.by_cause.clone(),
            p50_us: ring.all.quantile(0.5),
            p99_us: ring.all.quantile(0.99),
            events_kept: ring.events.len() as u64,
            events_bytes: ring.bytes as u64,
            components: ring
                .components
                .iter()
                .map(|(name, (t, support))| {
                    (
                        name.clone(),
                        ComponentStats {
                            total: t.total,
                            success_rate: t.rate(),
                            by_outcome: t.by_outcome.clone(),
                            p50_us: t.quantile(0.5),
                            p99_us: t.quantile(0.99),
                            support_level: *support,
                        },
                    )
                })
                .collect(),
        }
    }
}
