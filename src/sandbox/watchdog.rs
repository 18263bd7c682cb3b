//! Wall-time deadlines for handler calls.
//!
//! A ticker thread bumping the epoch every millisecond fires 10–13 % late,
//! so instead one thread per engine sleeps until the earliest registered
//! deadline and bumps the epoch exactly then. Each store's epoch callback
//! compares the clock with its own deadline, so a bump meant for another
//! store only costs that store a check.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::{Engine, EngineWeak};

pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    deadlines: BinaryHeap<Reverse<Instant>>,
    stop: bool,
}

impl Watchdog {
    pub(crate) fn start(engine: &Engine) -> std::io::Result<Watchdog> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                deadlines: BinaryHeap::new(),
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let weak = engine.weak();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("hotreload-epoch".into())
            .spawn(move || run(&thread_shared, &weak))?;
        Ok(Watchdog {
            shared,
            thread: Some(thread),
        })
    }

    /// Makes sure the epoch is bumped at `deadline`.
    pub(crate) fn arm(&self, deadline: Instant) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = state.deadlines.peek().map(|d| d.0);
        state.deadlines.push(Reverse(deadline));
        if earliest.is_none_or(|e| deadline < e) {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, engine: &EngineWeak) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if state.stop {
            return;
        }
        let now = Instant::now();
        let mut fired = false;
        while state.deadlines.peek().is_some_and(|d| d.0 <= now) {
            state.deadlines.pop();
            fired = true;
        }
        if fired {
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        }
        // Sleep until the next deadline; without one, wake now and then to
        // notice an engine that went away without dropping us.
        let wait = state
            .deadlines
            .peek()
            .map(|d| d.0.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(1));
        state = shared
            .wake
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
