//! A node's etcd source: the first read at a revision, then a watch from
//! the next one, resumed after a lost connection and read again in full
//! when the revisions it missed were compacted away.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, EventType, GetOptions, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchStream,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::gate::{Gate, Offer};
use super::{Held, Keys, SourceState, backoff};
use crate::error::Error;
use crate::outcome::Cause;
use crate::sources::{Change, ChangeSink, Format, Origin, Payload, Source, SourceHandle};

/// One watched component.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pub(crate) component: String,
    pub(crate) key: String,
    pub(crate) format: Format,
}

/// What a read of every key found, at one revision.
#[derive(Debug, Clone, Default)]
pub(crate) struct Initial {
    /// The store's revision at the read.
    pub(crate) revision: i64,
    /// Relative key → (value, its mod revision).
    pub(crate) values: HashMap<String, (Vec<u8>, i64)>,
    /// `canary/...` keys (relative to `canary/`) → value.
    pub(crate) canaries: Vec<(String, Vec<u8>)>,
}

/// Reads `wanted` (keys relative to the prefix) and, for a node that waits
/// for canaries, the canaries' keys, all at one revision.
pub(crate) async fn initial_read(
    client: &Client,
    keys: &Keys,
    wanted: &[String],
    canaries: bool,
    timeout: Duration,
) -> Result<Initial, String> {
    let mut ops: Vec<TxnOp> = wanted
        .iter()
        .map(|k| TxnOp::get(keys.config(k), None))
        .collect();
    if canaries {
        ops.push(TxnOp::get(
            keys.canaries(),
            Some(GetOptions::new().with_prefix()),
        ));
    }
    let mut kv = client
        .kv_client()
        .max_decoding_message_size(super::READ_LIMIT);
    let response = tokio::time::timeout(timeout, kv.txn(Txn::new().and_then(ops)))
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
        .map_err(|e| e.to_string())?;
    let mut initial = Initial {
        revision: response.header().map_or(0, |h| h.revision()),
        ..Initial::default()
    };
    let canary_dir = keys.canaries();
    for op in response.op_responses() {
        let TxnOpResponse::Get(get) = op else {
            continue;
        };
        for kv in get.kvs() {
            let Ok(full) = kv.key_str() else { continue };
            if let Some(rest) = full.strip_prefix(&canary_dir) {
                initial
                    .canaries
                    .push((rest.to_owned(), kv.value().to_vec()));
            } else if let Some(rel) = keys.relative(full) {
                initial
                    .values
                    .insert(rel.to_owned(), (kv.value().to_vec(), kv.mod_revision()));
            }
        }
    }
    Ok(initial)
}

/// What a key's value becomes as a change's payload: too large or deleted
/// values are refused with a message naming the key.
pub(crate) fn payload(
    full_key: &str,
    value: Option<Vec<u8>>,
    revision: i64,
    format: Format,
    limit: u64,
) -> Payload {
    match value {
        None => Payload::Unreadable {
            cause: Cause::Unreadable,
            message: format!(
                "etcd key {full_key} was deleted (revision {revision}); the configuration in \
                 force stays"
            ),
        },
        Some(bytes) if bytes.len() as u64 > limit => Payload::Unreadable {
            cause: Cause::Invalid,
            message: format!(
                "etcd key {full_key} holds {} bytes at revision {revision}, over the limit of \
                 {limit} bytes ([runtime] output_limit_bytes)",
                bytes.len()
            ),
        },
        Some(bytes) => Payload::Config { bytes, format },
    }
}

/// The etcd source of a node: changes of its components' keys, debounced,
/// held back for the canaries when the node is not one.
pub struct EtcdSource {
    pub(crate) client: Client,
    pub(crate) keys: Keys,
    pub(crate) watched: Vec<Watched>,
    pub(crate) state: Arc<SourceState>,
    pub(crate) debounce: Duration,
    pub(crate) limit: u64,
    pub(crate) gate: Gate,
    /// The first read, if the start made one; `None`: read first.
    pub(crate) initial: Option<Initial>,
    /// Held revisions, for the node's acknowledgements.
    pub(crate) held: mpsc::UnboundedSender<(String, Option<Held>)>,
}

impl std::fmt::Debug for EtcdSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSource")
            .field("watched", &self.watched)
            .finish_non_exhaustive()
    }
}

struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Source for EtcdSource {
    fn start(self: Box<Self>, sink: ChangeSink) -> Result<SourceHandle, Error> {
        let task = tokio::spawn(self.run(sink));
        Ok(SourceHandle::new(Abort(task)))
    }
}

/// Why everything is read again.
#[derive(Debug, Clone, Copy)]
enum Reread {
    /// Nothing was read yet (the start could not reach etcd).
    Start,
    /// The watch's revisions were compacted (up to this one).
    Compacted(i64),
}

impl EtcdSource {
    fn watched_by_key(&self, key: &str) -> Option<&Watched> {
        self.watched.iter().find(|w| w.key == key)
    }

    /// Offers a key's new value to the gate, sending what it releases.
    fn offer(
        &mut self,
        sink: &ChangeSink,
        key: &str,
        value: Option<Vec<u8>>,
        rev: i64,
        resync: bool,
    ) {
        let Some(w) = self.watched_by_key(key).cloned() else {
            return;
        };
        let full = self.keys.config(key);
        let payload = payload(&full, value, rev, w.format, self.limit);
        let released = self.gate.offer(Offer {
            component: w.component,
            key: w.key,
            revision: rev,
            payload,
            resync,
        });
        self.send(sink, released);
    }

    fn send(&mut self, sink: &ChangeSink, released: Vec<Offer>) {
        for o in released {
            let _ = sink.send(Change {
                component: o.component,
                origin: Origin::Etcd {
                    key: o.key,
                    revision: o.revision,
                    resync: o.resync,
                },
                payload: o.payload,
            });
        }
        for update in self.gate.take_held() {
            let _ = self.held.send(update);
        }
    }

    /// Takes a full read: every key whose value differs from what was
    /// known is offered (a resync says so in its events).
    fn absorb(
        &mut self,
        sink: &ChangeSink,
        read: Initial,
        known: &mut HashMap<String, i64>,
        why: Reread,
    ) {
        self.gate.reset_canaries(&read.canaries);
        let keys: Vec<String> = self.watched.iter().map(|w| w.key.clone()).collect();
        for key in keys {
            let now = read.values.get(&key);
            let was = known.get(&key).copied().unwrap_or(0);
            match now {
                Some((value, rev)) if *rev != was => {
                    known.insert(key.clone(), *rev);
                    self.offer(
                        sink,
                        &key,
                        Some(value.clone()),
                        *rev,
                        matches!(why, Reread::Compacted(_)),
                    );
                }
                None if was != 0 => {
                    known.insert(key.clone(), 0);
                    self.offer(
                        sink,
                        &key,
                        None,
                        read.revision,
                        matches!(why, Reread::Compacted(_)),
                    );
                }
                _ => {}
            }
        }
        let released = self.gate.evaluate();
        self.send(sink, released);
    }

    /// One watch per key on one stream, each from the revision after the
    /// last one known for that key (etcd does not order the events of
    /// different watches, so one revision for all could skip some), and one
    /// on `canary/` for a node that waits for canaries. The order of the
    /// watches is the order of their `created` answers.
    async fn open_watch(&self, progress: &Progress) -> Result<(WatchStream, Vec<String>), String> {
        let mut order: Vec<String> = self.watched.iter().map(|w| w.key.clone()).collect();
        if self.gate.waits_for_canaries() {
            order.push(CANARIES.into());
        }
        let options = |key: &str| {
            let from = progress.get(key).copied().unwrap_or(0) + 1;
            let o = WatchOptions::new().with_start_revision(from);
            Some(if key == CANARIES { o.with_prefix() } else { o })
        };
        let full = |key: &str| {
            if key == CANARIES {
                self.keys.canaries()
            } else {
                self.keys.config(key)
            }
        };
        let mut client = self
            .client
            .watch_client()
            .max_decoding_message_size(super::READ_LIMIT);
        let first = order.first().cloned().unwrap_or_default();
        let mut stream = client
            .watch(full(&first), options(&first))
            .await
            .map_err(|e| e.to_string())?;
        for key in order.iter().skip(1) {
            stream
                .watch(full(key), options(key))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok((stream, order))
    }

    async fn run(mut self, sink: ChangeSink) {
        // Per watch (a key, or `canary/`): every event up to this revision
        // has been received.
        let mut progress: Progress = HashMap::new();
        let mut known: HashMap<String, i64> = HashMap::new();
        let mut reread = None;
        match self.initial.take() {
            Some(read) => {
                self.state.seen(read.revision);
                self.state.up();
                for (k, (_, rev)) in &read.values {
                    known.insert(k.clone(), *rev);
                }
                self.everything_at(&mut progress, read.revision);
                self.gate.reset_canaries(&read.canaries);
                let released = self.gate.evaluate();
                self.send(&sink, released);
            }
            None => reread = Some(Reread::Start),
        }
        // Key → (value or deleted, its revision, when to apply).
        let mut debounced: HashMap<String, (Option<Vec<u8>>, i64, Instant)> = HashMap::new();
        let mut attempt: u32 = 0;
        loop {
            if let Some(why) = reread {
                let wanted: Vec<String> = self.watched.iter().map(|w| w.key.clone()).collect();
                match initial_read(
                    &self.client,
                    &self.keys,
                    &wanted,
                    self.gate.waits_for_canaries(),
                    Duration::from_secs(5),
                )
                .await
                {
                    Ok(read) => {
                        if let Reread::Compacted(at) = why {
                            tracing::warn!(
                                "etcd: revisions up to {at} were compacted while this node was \
                                 away; read every key again at {}",
                                read.revision
                            );
                        }
                        self.state.seen(read.revision);
                        self.state.up();
                        self.everything_at(&mut progress, read.revision);
                        self.absorb(&sink, read, &mut known, why);
                        reread = None;
                    }
                    Err(e) => {
                        self.state.down(e);
                        tokio::time::sleep(backoff(attempt)).await;
                        attempt = attempt.saturating_add(1);
                        continue;
                    }
                }
            }
            let (mut stream, order) = match self.open_watch(&progress).await {
                Ok(s) => s,
                Err(e) => {
                    self.state.down(e);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt = attempt.saturating_add(1);
                    continue;
                }
            };
            let mut ids: HashMap<i64, String> = HashMap::new();
            let canary_dir = self.keys.canaries();
            // Ask etcd now and then how far every watch has been sent, so
            // that a key that does not change still moves on (and a resume
            // after a compaction of other keys' revisions needs no read).
            let mut ask = tokio::time::interval(PROGRESS_EVERY);
            ask.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let next = debounced.values().map(|d| d.2).min();
                tokio::select! {
                    message = stream.message() => {
                        let response = match message {
                            Ok(Some(r)) => r,
                            Ok(None) => {
                                self.state.down("the watch stream ended".into());
                                break;
                            }
                            Err(e) => {
                                self.state.down(e.to_string());
                                break;
                            }
                        };
                        if response.canceled() {
                            if response.compact_revision() > 0 {
                                reread = Some(Reread::Compacted(response.compact_revision()));
                            } else {
                                self.state.down(format!(
                                    "the watch was cancelled: {}",
                                    response.cancel_reason()
                                ));
                            }
                            break;
                        }
                        if response.created() {
                            if let Some(key) = order.get(ids.len()) {
                                ids.insert(response.watch_id(), key.clone());
                            }
                            if ids.len() == order.len() {
                                self.state.up();
                                attempt = 0;
                            }
                            continue;
                        }
                        let header = response.header().map_or(0, |h| h.revision());
                        if response.events().is_empty() {
                            // A progress answer: everything up to its
                            // revision was sent (to every watch, or to one).
                            match ids.get(&response.watch_id()) {
                                Some(key) => advance(&mut progress, key, header),
                                None if response.watch_id() == -1 => {
                                    for key in &order {
                                        advance(&mut progress, key, header);
                                    }
                                }
                                None => {}
                            }
                            self.state.seen(header);
                            continue;
                        }
                        let mut canaries_changed = false;
                        for event in response.events() {
                            let Some(kv) = event.kv() else { continue };
                            let Ok(full) = kv.key_str() else { continue };
                            let rev = kv.mod_revision();
                            let value = match event.event_type() {
                                EventType::Put => Some(kv.value().to_vec()),
                                EventType::Delete => None,
                            };
                            if let Some(rest) = full.strip_prefix(&canary_dir) {
                                advance(&mut progress, CANARIES, rev);
                                self.gate.canary_event(rest, value.as_deref());
                                canaries_changed = true;
                            } else if let Some(rel) = self.keys.relative(full)
                                && self.watched_by_key(rel).is_some()
                            {
                                advance(&mut progress, rel, rev);
                                let seen = if value.is_some() { rev } else { 0 };
                                known.insert(rel.to_owned(), seen);
                                let due = Instant::now() + self.debounce;
                                debounced.insert(rel.to_owned(), (value, rev, due));
                            }
                            self.state.seen(rev);
                        }
                        if canaries_changed {
                            let released = self.gate.evaluate();
                            self.send(&sink, released);
                        }
                    }
                    _ = ask.tick() => {
                        if stream.request_progress().await.is_err() {
                            self.state.down("the watch stream closed".into());
                            break;
                        }
                    }
                    () = sleep_until(next), if next.is_some() => {}
                }
                // Apply what has been quiet for a debounce window.
                let now = Instant::now();
                let due: Vec<String> = debounced
                    .iter()
                    .filter(|(_, d)| d.2 <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in due {
                    if let Some((value, rev, _)) = debounced.remove(&key) {
                        self.offer(&sink, &key, value, rev, false);
                    }
                }
            }
            // The connection is gone: what was seen is applied now (the
            // watch resumes after it and would not send it again).
            for (key, (value, rev, _)) in std::mem::take(&mut debounced) {
                self.offer(&sink, &key, value, rev, false);
            }
            if reread.is_none() {
                tokio::time::sleep(backoff(attempt)).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }

    /// Every watch has seen everything up to `revision` (a full read).
    fn everything_at(&self, progress: &mut Progress, revision: i64) {
        for w in &self.watched {
            advance(progress, &w.key, revision);
        }
        advance(progress, CANARIES, revision);
    }
}

/// What each watch has received: key (or [`CANARIES`]) → revision.
type Progress = HashMap<String, i64>;

/// The watch on the canaries' keys, in [`Progress`].
const CANARIES: &str = "\0canary";

/// How often a node asks etcd how far its watches have been sent.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

fn advance(progress: &mut Progress, key: &str, revision: i64) {
    let at = progress.entry(key.to_owned()).or_insert(0);
    *at = (*at).max(revision);
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
