//! A reader of a runtime's events that misses nothing silently: live events
//! from the broadcast, and after a lag (a slow reader) the rest from the
//! event ring; events that already left the ring are reported as a gap.

use std::collections::VecDeque;
use std::sync::Arc;

use hotreload::{Event, Runtime};
use tokio::sync::broadcast::{self, error::RecvError};

/// What a feed gives next.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// The next event, in id order.
    Event(Arc<Event>),
    /// Events `from..=to` left the ring before they could be read.
    Missed(u64, u64),
}

/// Events after a given id, in order.
pub(crate) struct Feed {
    runtime: Runtime,
    rx: broadcast::Receiver<Arc<Event>>,
    /// The last id given (or skipped).
    last: u64,
    queued: VecDeque<Item>,
}

impl Feed {
    /// Events recorded from now on.
    pub(crate) fn live(runtime: &Runtime) -> Feed {
        let rx = runtime.event_stream();
        let last = runtime.events().last().map_or(0, |e| e.id);
        Feed {
            runtime: runtime.clone(),
            rx,
            last,
            queued: VecDeque::new(),
        }
    }

    /// Events whose id is above `after`: first those still in the ring,
    /// then live ones.
    pub(crate) fn after(runtime: &Runtime, after: u64) -> Feed {
        // Subscribe first: an event recorded between reading the ring and
        // subscribing is then seen twice (and skipped), never missed.
        let rx = runtime.event_stream();
        // Ids restart with the process: an id from before a restart,
        // beyond the newest, means "from now on".
        let newest = runtime.events().last().map_or(0, |e| e.id);
        let mut feed = Feed {
            runtime: runtime.clone(),
            rx,
            last: after.min(newest),
            queued: VecDeque::new(),
        };
        feed.catch_up();
        feed
    }

    /// The last id given.
    pub(crate) fn last(&self) -> u64 {
        self.last
    }

    /// What is already known without waiting.
    pub(crate) fn ready(&mut self) -> Vec<Item> {
        self.queued.drain(..).collect()
    }

    fn catch_up(&mut self) {
        let after = self.runtime.events_after(self.last);
        if let Some((from, to)) = after.missed {
            self.queued.push_back(Item::Missed(from, to));
            self.last = self.last.max(to);
        }
        for e in after.events {
            if e.id > self.last {
                self.last = e.id;
                self.queued.push_back(Item::Event(e));
            }
        }
    }

    /// The next item; `None` once the runtime is gone.
    pub(crate) async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.queued.pop_front() {
                return Some(item);
            }
            match self.rx.recv().await {
                Ok(e) if e.id > self.last => {
                    if e.id > self.last + 1 {
                        // Something was recorded before this one that the
                        // broadcast did not give: read it from the ring.
                        self.catch_up();
                        continue;
                    }
                    self.last = e.id;
                    return Some(Item::Event(e));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => self.catch_up(),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
