//! Wall-time deadlines for handler calls.
//!
//! A ticker thread bumping the epoch every millisecond fires 10–13 % late,
//! so instead one thread per engine sleeps until the earliest deadline of a
//! call still running and bumps the epoch exactly then. Each store's epoch
//! callback compares the clock with its own deadline, so a bump meant for
//! another store only costs that store a check. A call that returns in time
//! takes its deadline back, so in normal operation the thread sleeps and the
//! epoch never moves.

use std::collections::BTreeSet;
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
    deadlines: BTreeSet<Armed>,
    next: u64,
    /// When the thread will wake by itself, if it is asleep: a deadline
    /// after that needs no wake-up call (and so no context switch).
    sleeping_until: Option<Instant>,
    stop: bool,
}

/// A registered deadline; give it back with [`Watchdog::disarm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Armed(Instant, u64);

impl Watchdog {
    pub(crate) fn start(engine: &Engine) -> std::io::Result<Watchdog> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                deadlines: BTreeSet::new(),
                next: 0,
                sleeping_until: None,
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

    /// Makes sure the epoch is bumped at `deadline`, unless disarmed first.
    pub(crate) fn arm(&self, deadline: Instant) -> Armed {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let armed = Armed(deadline, state.next);
        state.next += 1;
        state.deadlines.insert(armed);
        if state.sleeping_until.is_some_and(|wakes| deadline < wakes) {
            state.sleeping_until = Some(deadline);
            self.shared.wake.notify_one();
        }
        armed
    }

    /// Takes a deadline back: its call returned in time.
    pub(crate) fn disarm(&self, armed: Armed) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.deadlines.remove(&armed);
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
        state.sleeping_until = None;
        if state.stop {
            return;
        }
        let now = Instant::now();
        let mut fired = false;
        while state.deadlines.first().is_some_and(|a| a.0 <= now) {
            state.deadlines.pop_first();
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
            .first()
            .map(|a| a.0.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(1));
        state.sleeping_until = Some(now + wait);
        state = shared
            .wake
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
