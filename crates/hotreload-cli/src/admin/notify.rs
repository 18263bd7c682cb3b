//! `[notify]`: failed reloads (and, if asked, successful ones) sent to a
//! webhook as JSON, one event per POST. The sender reads the event record
//! on its own task, so a dead or slow receiver never slows a reload; what
//! it cannot deliver is counted (`hotreload_notify_failed_total`,
//! `hotreload_notify_dropped_total`) and logged, never lost silently.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotreload::daemon::NotifySettings;
use hotreload::{Event, Runtime};
use hyper::Method;
use tokio::sync::Notify;

use super::client::Client;
use super::feed::{Feed, Item};
use super::metrics::Metrics;

/// The webhook sender: its two tasks stop when dropped, and what they had
/// not sent by then is counted as dropped (and logged).
pub(crate) struct Notifier {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let waiting = self
            .queue
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let sending = usize::from(self.queue.sending.load(Ordering::SeqCst));
        let unsent = waiting + sending;
        if unsent > 0 {
            self.metrics.notify_dropped.inc_by(unsent as u64);
            tracing::warn!("webhook: {unsent} event(s) not sent at shutdown");
        }
    }
}

struct Queue {
    events: Mutex<VecDeque<Arc<Event>>>,
    wake: Notify,
    capacity: usize,
    /// An event is being sent (or waits between its tries).
    sending: AtomicBool,
}

impl Notifier {
    /// Starts reading `runtime`'s events from now on.
    pub(crate) fn start(
        runtime: &Runtime,
        settings: NotifySettings,
        metrics: Arc<Metrics>,
    ) -> Notifier {
        let queue = Arc::new(Queue {
            events: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            capacity: settings.queue.max(1),
            sending: AtomicBool::new(false),
        });
        let mut feed = Feed::after(runtime, 0);
        let reader = {
            let queue = queue.clone();
            let metrics = metrics.clone();
            let include_success = settings.include_success;
            tokio::spawn(async move {
                while let Some(item) = feed.next().await {
                    let e = match item {
                        Item::Event(e) => e,
                        Item::Missed(from, to) => {
                            tracing::warn!(
                                "webhook: events {from} to {to} left the event ring unread"
                            );
                            metrics.notify_dropped.inc_by(to - from + 1);
                            continue;
                        }
                    };
                    let wanted = include_success || !e.outcome.is_success() && !is_pending(&e);
                    if !wanted {
                        continue;
                    }
                    let mut q = queue.events.lock().unwrap_or_else(|e| e.into_inner());
                    q.push_back(e);
                    while q.len() > queue.capacity {
                        q.pop_front();
                        metrics.notify_dropped.inc();
                    }
                    metrics.notify_queued.set(q.len() as i64);
                    drop(q);
                    queue.wake.notify_one();
                }
            })
        };
        let sending = queue.clone();
        let sender_metrics = metrics.clone();
        let sender = tokio::spawn(async move {
            let queue = sending;
            let metrics = sender_metrics;
            let (base, path) = split_url(&settings.url);
            let client = Client::new(base, None);
            loop {
                let next = {
                    let mut q = queue.events.lock().unwrap_or_else(|e| e.into_inner());
                    let e = q.pop_front();
                    queue.sending.store(e.is_some(), Ordering::SeqCst);
                    metrics.notify_queued.set(q.len() as i64);
                    e
                };
                let Some(event) = next else {
                    queue.wake.notified().await;
                    continue;
                };
                let delivered = deliver(&client, &path, &event, &settings).await;
                // Counted and no longer in flight in one step, as the
                // shutdown sees it.
                let _q = queue.events.lock().unwrap_or_else(|e| e.into_inner());
                if delivered {
                    metrics.notify_delivered.inc();
                } else {
                    metrics.notify_failed.inc();
                }
                queue.sending.store(false, Ordering::SeqCst);
            }
        });
        Notifier {
            tasks: vec![reader, sender],
            queue,
            metrics,
        }
    }
}

/// A restart-required change is not a failure: the configuration was
/// accepted and waits for the next start.
fn is_pending(e: &Event) -> bool {
    e.outcome == hotreload::Outcome::RestartRequired
}

/// `http://host:port/path` → (`http://host:port`, `/path`).
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    match rest.find('/') {
        Some(i) => (format!("http://{}", &rest[..i]), rest[i..].to_owned()),
        None => (format!("http://{rest}"), "/".to_owned()),
    }
}

/// One event, with retries: 1 s, 2 s, 4 s... apart (at most 30 s). A 2xx
/// answer delivers it; a 4xx other than 408 and 429 will not change, so it
/// is not retried.
async fn deliver(client: &Client, path: &str, event: &Event, settings: &NotifySettings) -> bool {
    let body = serde_json::to_vec(event).unwrap_or_default();
    let timeout = Duration::from_millis(settings.timeout_ms.max(1));
    let mut wait = Duration::from_secs(1);
    for attempt in 0..=settings.retries {
        let answer = client
            .send(
                Method::POST,
                path,
                Some(("application/json", body.clone())),
                &[],
                timeout,
            )
            .await;
        let why = match answer {
            Ok(a) if a.status.is_success() => return true,
            Ok(a) => {
                let code = a.status.as_u16();
                let why = format!("answered {}", a.status);
                if (400..500).contains(&code) && code != 408 && code != 429 {
                    tracing::warn!(
                        event = event.id,
                        "webhook {}: {why}; not retried",
                        settings.url
                    );
                    return false;
                }
                why
            }
            Err(e) => e,
        };
        if attempt == settings.retries {
            tracing::warn!(
                event = event.id,
                "webhook {}: {why}; gave up after {} tries",
                settings.url,
                attempt + 1
            );
            return false;
        }
        tracing::debug!(
            event = event.id,
            "webhook {}: {why}; retrying",
            settings.url
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_base_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:9/hook?x=1"),
            ("http://127.0.0.1:9".to_owned(), "/hook?x=1".to_owned())
        );
        assert_eq!(
            split_url("http://h:1"),
            ("http://h:1".to_owned(), "/".to_owned())
        );
    }
}
