//! `GET /metrics`: the daemon's metrics with `prometheus-client`, in the
//! OpenMetrics text format, or the classic Prometheus text format (0.0.4)
//! for a client that does not ask for OpenMetrics (`promtool`, `curl`).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use hotreload::{ComponentInfo, Event, Outcome, Runtime};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::feed::{Feed, Item};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabel {
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    component: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    component: String,
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Every metric the daemon exports, and the last event of each component.
pub(crate) struct Metrics {
    registry: Registry,
    last_successful: Family<ComponentLabel, Gauge>,
    last_success_time: Family<ComponentLabel, Gauge<f64, AtomicU64>>,
    reloads: Family<OutcomeLabels, Counter>,
    duration: Histogram,
    failures: Family<CauseLabels, Counter>,
    fuel: Histogram,
    degraded: Family<ComponentLabel, Gauge>,
    version: Family<ComponentLabel, Gauge>,
    source_connected: Family<SourceLabel, Gauge>,
    source_revision: Family<SourceLabel, Gauge>,
    pub(crate) requests: Family<RequestLabels, Counter>,
    events_missed: Counter,
    pub(crate) notify_delivered: Counter,
    pub(crate) notify_failed: Counter,
    pub(crate) notify_dropped: Counter,
    pub(crate) notify_queued: Gauge,
    last_events: Mutex<HashMap<String, Arc<Event>>>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            last_successful: Family::default(),
            last_success_time: Family::default(),
            reloads: Family::default(),
            // 100 µs to about 3.3 s.
            duration: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            failures: Family::default(),
            // 1,000 to 10^10 units.
            fuel: Histogram::new(exponential_buckets(1000.0, 10.0, 8)),
            degraded: Family::default(),
            version: Family::default(),
            source_connected: Family::default(),
            source_revision: Family::default(),
            requests: Family::default(),
            events_missed: Counter::default(),
            notify_delivered: Counter::default(),
            notify_failed: Counter::default(),
            notify_dropped: Counter::default(),
            notify_queued: Gauge::default(),
            last_events: Mutex::new(HashMap::new()),
        };
        registry.register(
            "hotreload_config_last_reload_successful",
            "Whether the component's last reload attempt was accepted (1: applied, unchanged or restart required) or failed (0)",
            m.last_successful.clone(),
        );
        registry.register(
            "hotreload_config_last_reload_success_timestamp_seconds",
            "When the component last reloaded successfully, seconds since the epoch",
            m.last_success_time.clone(),
        );
        registry.register(
            "hotreload_reloads",
            "Reload attempts by component and outcome",
            m.reloads.clone(),
        );
        registry.register(
            "hotreload_reload_duration_seconds",
            "Wall time of reload attempts",
            m.duration.clone(),
        );
        registry.register(
            "hotreload_handler_failures",
            "Failed reload attempts by component and cause",
            m.failures.clone(),
        );
        registry.register(
            "hotreload_handler_fuel_consumed",
            "Fuel used by the handler calls of a reload attempt",
            m.fuel.clone(),
        );
        registry.register(
            "hotreload_component_degraded",
            "Whether the component's handler could not be brought back (1)",
            m.degraded.clone(),
        );
        registry.register(
            "hotreload_config_version",
            "The committed configuration version in force",
            m.version.clone(),
        );
        registry.register(
            "hotreload_source_connected",
            "Whether the node is connected to its configuration source (1) or serves its last committed configurations (0)",
            m.source_connected.clone(),
        );
        registry.register(
            "hotreload_source_revision",
            "The newest revision of the configuration source the node has seen",
            m.source_revision.clone(),
        );
        registry.register(
            "hotreload_build",
            "The hotreload build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            }),
        );
        registry.register(
            "hotreload_admin_requests",
            "Admin API requests by method, route and status code",
            m.requests.clone(),
        );
        registry.register(
            "hotreload_events_missed",
            "Events that left the event ring before the metrics read them",
            m.events_missed.clone(),
        );
        registry.register(
            "hotreload_notify_delivered",
            "Events the webhook accepted",
            m.notify_delivered.clone(),
        );
        registry.register(
            "hotreload_notify_failed",
            "Events the webhook did not accept after every retry",
            m.notify_failed.clone(),
        );
        registry.register(
            "hotreload_notify_dropped",
            "Events dropped because the webhook queue was full",
            m.notify_dropped.clone(),
        );
        registry.register(
            "hotreload_notify_queue_length",
            "Events waiting to be sent to the webhook",
            m.notify_queued.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one recorded event.
    pub(crate) fn observe(&self, e: &Arc<Event>) {
        let component = ComponentLabel {
            component: e.component.clone(),
        };
        // A restart-required change was accepted (it waits for the next
        // start): not a failure, as the webhook sees it too.
        let ok = e.outcome.is_success() || e.outcome == Outcome::RestartRequired;
        self.last_successful
            .get_or_create(&component)
            .set(i64::from(ok));
        if ok {
            // When the attempt started (the event's own time), else now.
            let at = humantime::parse_rfc3339(&e.timestamp)
                .unwrap_or_else(|_| std::time::SystemTime::now())
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.last_success_time.get_or_create(&component).set(at);
        }
        self.reloads
            .get_or_create(&OutcomeLabels {
                component: e.component.clone(),
                outcome: e.outcome.name().to_owned(),
            })
            .inc();
        self.duration.observe(e.duration_us as f64 / 1e6);
        self.fuel.observe(e.fuel_consumed as f64);
        if let Some(cause) = e.cause.filter(|_| !ok) {
            self.failures
                .get_or_create(&CauseLabels {
                    component: e.component.clone(),
                    cause: cause.name().to_owned(),
                })
                .inc();
        }
        self.last_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(e.component.clone(), e.clone());
    }

    /// Sets what each component's standing says (degraded, version): a
    /// component stays degraded across events until a reload brings it
    /// back, which only its standing tells.
    pub(crate) fn refresh(&self, components: &[ComponentInfo]) {
        for c in components {
            let label = ComponentLabel {
                component: c.name.clone(),
            };
            self.degraded
                .get_or_create(&label)
                .set(i64::from(c.degraded));
            self.version
                .get_or_create(&label)
                .set(i64::try_from(c.version).unwrap_or(i64::MAX));
        }
    }

    /// Sets what the configuration source's connection says.
    pub(crate) fn refresh_source(&self, report: &hotreload::fleet::SourceReport) {
        let label = SourceLabel {
            source: report.source.clone(),
        };
        self.source_connected
            .get_or_create(&label)
            .set(i64::from(report.connected));
        self.source_revision
            .get_or_create(&label)
            .set(report.revision);
    }

    /// The last event recorded for a component.
    pub(crate) fn last_event(&self, component: &str) -> Option<Arc<Event>> {
        self.last_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(component)
            .cloned()
    }

    /// Reads every event of `runtime` from now on, until it is shut down.
    pub(crate) fn follow(self: &Arc<Self>, runtime: &Runtime) -> tokio::task::JoinHandle<()> {
        let metrics = self.clone();
        let mut feed = Feed::after(runtime, 0);
        tokio::spawn(async move {
            while let Some(item) = feed.next().await {
                match item {
                    Item::Event(e) => metrics.observe(&e),
                    Item::Missed(from, to) => {
                        metrics.events_missed.inc_by(to - from + 1);
                    }
                }
            }
        })
    }

    /// The OpenMetrics text.
    pub(crate) fn openmetrics(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format (0.0.4), for clients that do not
    /// ask for OpenMetrics.
    pub(crate) fn classic(&self) -> String {
        classic_of(&self.openmetrics())
    }
}

/// OpenMetrics text to the classic text format: a counter's family is
/// named with its `_total`, an info metric becomes a gauge named `_info`,
/// and `# UNIT` and `# EOF` go.
fn classic_of(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ');
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gaugehistogram" | "stateset" | "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_names_counters_and_info_as_the_text_format_wants() {
        let om = "# HELP a_reloads Reloads.\n# TYPE a_reloads counter\n\
                  a_reloads_total{x=\"1\"} 2\n# HELP a_build Build.\n# TYPE a_build info\n\
                  a_build_info{version=\"1\"} 1\n# HELP a_v V.\n# TYPE a_v gauge\n# UNIT a_v seconds\n\
                  a_v 3\n# EOF\n";
        assert_eq!(
            classic_of(om),
            "# HELP a_reloads_total Reloads.\n# TYPE a_reloads_total counter\n\
             a_reloads_total{x=\"1\"} 2\n# HELP a_build_info Build.\n# TYPE a_build_info gauge\n\
             a_build_info{version=\"1\"} 1\n# HELP a_v V.\n# TYPE a_v gauge\na_v 3\n"
        );
    }
}
