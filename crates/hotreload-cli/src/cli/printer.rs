//! The daemon's event output on stdout: one line per event, in order,
//! never lost silently.
//!
//! Events are read from the runtime's ring, not from a channel that drops
//! what a slow reader could not take: a reader that falls behind gets every
//! event late, and only if the ring itself moved past events before they
//! were printed is one line printed in their place, saying how many and
//! which ids (`{"dropped": {"count": N, "first_id": A, "last_id": B}}`).
//! A closed stdout (the reader went away) is logged once on stderr; the
//! daemon goes on reloading and recording events. Nothing here can block
//! shutdown: the printer runs on a thread of its own, and shutdown waits
//! for it only briefly.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hotreload::{Event, Runtime};

use super::daemon_cmd::EventsFormat;

/// A running printer; [`Printer::stop`] prints what is left and ends it.
pub(crate) struct Printer {
    stop: Arc<AtomicBool>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Printer {
    pub(crate) fn start(runtime: Runtime, format: EventsFormat) -> Printer {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = std::sync::mpsc::channel();
        let handle = tokio::runtime::Handle::current();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("hotreload-events".into())
            .spawn(move || {
                run(&runtime, format, &flag, &handle);
                let _ = tx.send(());
            })
            .expect("spawn the event printer thread");
        Printer { stop, done }
    }

    /// Prints the events recorded so far and stops, waiting at most
    /// `grace` for a reader that does not read.
    pub(crate) fn stop(self, grace: Duration) {
        self.stop.store(true, Ordering::SeqCst);
        if self.done.recv_timeout(grace).is_err() {
            tracing::warn!("stdout did not take the last events within {grace:?}");
        }
    }
}

fn line(e: &Event, format: EventsFormat) -> String {
    match format {
        EventsFormat::Json => serde_json::to_string(e)
            .unwrap_or_else(|err| format!("{{\"print_error\":{:?}}}", err.to_string())),
        EventsFormat::Text => e.summary(),
    }
}

fn gap_line(first: u64, last: u64, format: EventsFormat) -> String {
    let count = last - first + 1;
    match format {
        EventsFormat::Json => serde_json::json!({
            "dropped": {"count": count, "first_id": first, "last_id": last}
        })
        .to_string(),
        EventsFormat::Text => {
            format!(
                "… {count} events (ids {first} to {last}) left the ring before they were printed"
            )
        }
    }
}

fn run(
    runtime: &Runtime,
    format: EventsFormat,
    stop: &AtomicBool,
    handle: &tokio::runtime::Handle,
) {
    // Timers need the runtime's context, even on a thread of its own.
    let _context = handle.enter();
    let mut wake = runtime.event_stream();
    let mut last = 0u64;
    let stdout = std::io::stdout();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        let since = runtime.events_after(last);
        let mut out = String::new();
        if let Some((first, end)) = since.missed {
            out.push_str(&gap_line(first, end, format));
            out.push('\n');
        }
        for e in &since.events {
            out.push_str(&line(e, format));
            out.push('\n');
            last = e.id;
        }
        if !out.is_empty() {
            let mut lock = stdout.lock();
            if let Err(e) = lock.write_all(out.as_bytes()).and_then(|()| lock.flush()) {
                tracing::warn!(
                    "stdout is closed ({e}): events are no longer printed; the daemon goes on \
                     and still records them"
                );
                return;
            }
        }
        if stopping {
            return;
        }
        // Woken by the next event, or every so often to see the stop flag.
        let _ = handle.block_on(tokio::time::timeout(
            Duration::from_millis(100),
            wake.recv(),
        ));
    }
}
