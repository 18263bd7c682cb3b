//! What the runtime logs, for the tests that check it: a process-wide
//! `tracing` subscriber keeping the events of the library and of handlers.
//!
//! It is global because handler calls run on blocking threads, where a
//! thread-local subscriber would not see them. Tests tell their lines apart
//! by a field only they produce (a component name, a handler hash).
//!
//! It keeps the library's spans too: name, parent and fields.

use std::cell::RefCell;
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

/// One span of the library: its id, name, parent's id and fields as
/// recorded so far.
#[derive(Debug, Clone)]
pub(crate) struct SpanRecord {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) parent: Option<u64>,
    pub(crate) fields: BTreeMap<String, String>,
}

static SPANS: Mutex<Vec<SpanRecord>> = Mutex::new(Vec::new());

thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The spans kept so far that `wanted` picks.
pub(crate) fn spans(wanted: impl Fn(&SpanRecord) -> bool) -> Vec<SpanRecord> {
    SPANS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|s| wanted(s))
        .cloned()
        .collect()
}
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
        (meta.is_event()
            && *meta.level() <= Level::DEBUG
            && (meta.target() == "handler" || meta.target().starts_with("hotreload")))
            || (meta.is_span() && meta.target().starts_with("hotreload"))
    }
}

impl Subscriber for Capture {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        Capture::wanted(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let parent = if attrs.is_contextual() {
            ENTERED.with(|e| e.borrow().last().copied())
        } else {
            attrs.parent().map(Id::into_u64)
        };
        let mut fields = Fields(BTreeMap::new());
        attrs.record(&mut fields);
        let mut spans = SPANS.lock().unwrap_or_else(|e| e.into_inner());
        let id = spans.len() as u64 + 1;
        spans.push(SpanRecord {
            id,
            name: attrs.metadata().name().to_owned(),
            parent,
            fields: fields.0,
        });
        Id::from_u64(id)
    }

    fn record(&self, id: &Id, values: &Record<'_>) {
        let mut fields = Fields(BTreeMap::new());
        values.record(&mut fields);
        let mut spans = SPANS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(span) = spans.get_mut(id.into_u64() as usize - 1) {
            span.fields.extend(fields.0);
        }
    }

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

    fn enter(&self, id: &Id) {
        ENTERED.with(|e| e.borrow_mut().push(id.into_u64()));
    }

    fn exit(&self, _: &Id) {
        ENTERED.with(|e| e.borrow_mut().pop());
    }
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
