//! What the runtime logs, for the tests that check it: a process-wide
//! `tracing` subscriber keeping the events of the library and of handlers.
//!
//! It is global because handler calls run on blocking threads, where a
//! thread-local subscriber would not see them. Tests tell their lines apart
//! by a field only they produce (a component name, a handler hash).

use std::collections::BTreeMap;
use std::sync::{Mutex, Once};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One logged event: its target, level and fields (`message` included),
/// each field as it would be displayed.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) target: String,
    pub(crate) level: Level,
    pub(crate) fields: BTreeMap<String, String>,
}

impl Line {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

static LINES: Mutex<Vec<Line>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Starts keeping log lines (from here on, for the whole test binary).
pub(crate) fn capture() {
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(Capture)
            .expect("no other global subscriber in this test binary");
    });
}

/// The lines kept so far that `wanted` picks.
pub(crate) fn lines(wanted: impl Fn(&Line) -> bool) -> Vec<Line> {
    LINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| wanted(l))
        .cloned()
        .collect()
}

struct Capture;

impl Capture {
    fn wanted(meta: &Metadata<'_>) -> bool {
        meta.is_event()
            && *meta.level() <= Level::DEBUG
            && (meta.target() == "handler" || meta.target().starts_with("hotreload"))
    }
}

impl Subscriber for Capture {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        Capture::wanted(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }

    // Spans are never enabled, so these are never called with real spans.
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        let meta = event.metadata();
        LINES.lock().unwrap_or_else(|e| e.into_inner()).push(Line {
            target: meta.target().to_owned(),
            level: *meta.level(),
            fields: fields.0,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}
