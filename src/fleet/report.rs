//! A node's acknowledgements: what it did with each component's revisions,
//! written to etcd under a lease it keeps alive, only when they change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{AckState, Held, Keys, NodeRecord, NodeStatus, backoff, now};
use crate::daemon::NodeSettings;
use crate::events::Event;
use crate::manager::Runtime;
use crate::outcome::{EventKind, Outcome};
use crate::sources::etcd_revision;

/// Why a registration did not happen.
enum Registration {
    /// etcd did not answer, or refused.
    Failed(String),
    /// Another live daemon has this node's id.
    Taken(String),
}

/// Writes a node's acknowledgements; [`Reporter::stop`] revokes its lease
/// (the node's keys go at once) and marks it stopped.
#[derive(Debug)]
pub struct Reporter {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

struct Writer {
    runtime: Runtime,
    client: Client,
    keys: Keys,
    node: NodeSettings,
    ttl: i64,
    started: String,
    statuses: BTreeMap<String, NodeStatus>,
    written: BTreeMap<String, NodeStatus>,
    /// Each component's held revision, as the source last said.
    held: BTreeMap<String, Option<Held>>,
    /// The components whose configuration lives in etcd, and their keys.
    keys_of: BTreeMap<String, String>,
    lease: Option<i64>,
    /// A lease this node held before it seemed lost, revoked at the next
    /// registration.
    previous_lease: Option<i64>,
}

impl Reporter {
    /// Starts reporting the events of `runtime` from now on (call it before
    /// the components load, so their first events are reported).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        runtime: Runtime,
        client: Client,
        keys: Keys,
        node: NodeSettings,
        watched: BTreeMap<String, String>,
        ttl: i64,
        held: mpsc::UnboundedReceiver<(String, Option<Held>)>,
    ) -> Reporter {
        let events = runtime.event_stream();
        let (stop, stopped) = oneshot::channel();
        let writer = Writer {
            runtime,
            client,
            keys,
            node,
            ttl,
            started: now(),
            statuses: BTreeMap::new(),
            written: BTreeMap::new(),
            held: BTreeMap::new(),
            keys_of: watched,
            lease: None,
            previous_lease: None,
        };
        let task = tokio::spawn(writer.run(events, held, stopped));
        Reporter {
            stop: Some(stop),
            task,
        }
    }

    /// Revokes the node's lease and records a clean stop, waiting at most
    /// two seconds for etcd.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

impl Writer {
    fn record(&self, stopped: Option<String>) -> Vec<u8> {
        serde_json::to_vec(&NodeRecord {
            node: self.node.id.clone(),
            canary: self.node.canary,
            components: self.keys_of.keys().cloned().collect(),
            keys: self.keys_of.clone(),
            started: self.started.clone(),
            hotreload: env!("CARGO_PKG_VERSION").into(),
            stopped,
        })
        .unwrap_or_default()
    }

    /// A new lease, and the node's registration under it, unless another
    /// live daemon holds this node's id (its `nodes/NODE` key, under its
    /// own lease): then nothing is written, so that two daemons given one
    /// `[node] id` never speak for each other (a canary's registration
    /// overwritten by a copy that is not one would open every rollout).
    async fn register(&mut self) -> Result<(), Registration> {
        let failed = |e: etcd_client::Error| Registration::Failed(e.to_string());
        let mut lease = self.client.lease_client();
        if let Some(old) = self.previous_lease.take() {
            // This node's own earlier lease (lost, or so it seemed): its
            // keys go with it.
            let _ = lease.revoke(old).await;
        }
        let id = lease.grant(self.ttl, None).await.map_err(failed)?.id();
        let with_lease = || Some(PutOptions::new().with_lease(id));
        let node_key = self.keys.node(&self.node.id);
        let mut puts = vec![
            TxnOp::put(self.keys.member(&self.node.id), self.record(None), None),
            TxnOp::put(node_key.clone(), self.record(None), with_lease()),
        ];
        if self.node.canary {
            puts.push(TxnOp::put(
                self.keys.canary(&self.node.id),
                self.record(None),
                with_lease(),
            ));
        }
        let txn = Txn::new()
            .when([Compare::create_revision(
                node_key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then(puts)
            .or_else([TxnOp::get(node_key, None)]);
        let answer = self.client.kv_client().txn(txn).await.map_err(failed)?;
        if !answer.succeeded() {
            let _ = lease.revoke(id).await;
            let holder = answer.op_responses().into_iter().find_map(|op| match op {
                TxnOpResponse::Get(g) => g
                    .kvs()
                    .first()
                    .and_then(|kv| serde_json::from_slice::<NodeRecord>(kv.value()).ok()),
                _ => None,
            });
            return Err(Registration::Taken(format!(
                "node id {:?} is live in the fleet already (a daemon started {}); this daemon \
                 writes no acknowledgements until that one's lease ends. Give each node its \
                 own [node] id (a daemon killed less than lease_ttl_s ago also holds it until \
                 then)",
                self.node.id,
                holder.map_or_else(|| "?".to_owned(), |h| h.started)
            )));
        }
        self.lease = Some(id);
        // Everything is written again under the new lease.
        self.written.clear();
        Ok(())
    }

    /// Writes every status that changed since it was last written.
    async fn flush(&mut self) -> Result<(), String> {
        let Some(id) = self.lease else {
            return Ok(());
        };
        let mut kv = self.client.kv_client();
        for (component, status) in &self.statuses {
            if self.written.get(component).is_some_and(|w| w.same(status)) {
                continue;
            }
            let value = serde_json::to_vec(status).unwrap_or_default();
            let options = || Some(PutOptions::new().with_lease(id));
            let mut puts = vec![TxnOp::put(
                self.keys.status(&self.node.id, component),
                value.clone(),
                options(),
            )];
            // A canary's copy goes in the same transaction: one write, and
            // the other nodes (watching only `canary/`) learn it as soon as
            // anyone can.
            if self.node.canary {
                puts.push(TxnOp::put(
                    self.keys.canary_status(&self.node.id, component),
                    value,
                    options(),
                ));
            }
            kv.txn(Txn::new().and_then(puts))
                .await
                .map_err(|e| e.to_string())?;
            self.written.insert(component.clone(), status.clone());
        }
        Ok(())
    }

    /// The status an event leaves its component in. Only a transaction
    /// of an etcd revision (its event labelled `etcd:KEY@REV`) says what
    /// the node did with that revision; a start on the last committed
    /// configuration says what it runs; an admin API change or rollback
    /// that applied means it runs something not from etcd; failures of
    /// those, and handler swaps, leave the acknowledgement as it was
    /// (unless the component is now degraded).
    async fn absorb(&mut self, event: &Arc<Event>) {
        if event.dry_run || !self.keys_of.contains_key(&event.component) {
            return;
        }
        let info = self.runtime.component(&event.component).await.ok();
        let degraded = info.as_ref().is_some_and(|i| i.degraded);
        let label = event.config_path.as_deref().and_then(etcd_revision);
        let kept = info
            .as_ref()
            .and_then(|i| i.source.as_ref())
            .and_then(|s| s.path.as_deref())
            .and_then(etcd_revision);
        let applied = event.outcome.is_success();
        let mut status = self
            .statuses
            .get(&event.component)
            .cloned()
            .unwrap_or_else(|| NodeStatus {
                node: self.node.id.clone(),
                component: event.component.clone(),
                key: self.keys_of.get(&event.component).cloned(),
                state: AckState::Applied,
                tried_revision: None,
                running_revision: kept,
                version: 0,
                error: None,
                field: None,
                held: None,
                time: String::new(),
            });
        let error = |s: &mut NodeStatus| {
            s.error = event.error.as_ref().map(|e| e.message.clone());
            s.field = event.error.as_ref().and_then(|e| e.field.clone());
        };
        match (event.kind, label) {
            (
                EventKind::EtcdChange | EventKind::EtcdResync | EventKind::Initial,
                Some(revision),
            ) => {
                status.state = match event.outcome {
                    Outcome::Applied | Outcome::Unchanged => AckState::Applied,
                    Outcome::RestartRequired => AckState::RestartRequired,
                    Outcome::RolledBack => AckState::RolledBack,
                    Outcome::Degraded => AckState::Degraded,
                    _ => AckState::Rejected,
                };
                status.tried_revision = Some(revision);
                if applied {
                    status.running_revision = Some(revision);
                } else if status.running_revision.is_none() {
                    status.running_revision = kept;
                }
                error(&mut status);
            }
            // A start on the last committed configuration (etcd
            // unreachable, the value refused or held for the canaries):
            // it runs what it ran; the event says why.
            (EventKind::Initial | EventKind::Restart, _) => {
                if info.as_ref().is_some_and(|i| i.version > 0) {
                    status.running_revision = kept;
                    if status.tried_revision.is_none() {
                        status.state = AckState::Applied;
                    }
                }
                if event.kind == EventKind::Initial {
                    error(&mut status);
                }
            }
            (EventKind::Api | EventKind::RollbackToVersion, _) if applied => {
                status.state = AckState::Applied;
                status.running_revision = None;
                status.error = None;
                status.field = None;
            }
            _ if !degraded => return,
            _ => {}
        }
        if degraded {
            status.state = AckState::Degraded;
        }
        status.version = event.version;
        status.held = self.held.get(&event.component).cloned().flatten();
        status.time = now();
        self.statuses.insert(event.component.clone(), status);
    }

    fn hold(&mut self, component: String, held: Option<Held>) {
        self.held.insert(component.clone(), held.clone());
        if let Some(s) = self.statuses.get_mut(&component) {
            s.held = held;
            s.time = now();
        }
    }

    async fn run(
        mut self,
        mut events: broadcast::Receiver<Arc<Event>>,
        mut held: mpsc::UnboundedReceiver<(String, Option<Held>)>,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let mut attempt: u32 = 0;
        let mut held_closed = false;
        let mut taken: Option<String> = None;
        let tick = Duration::from_millis((self.ttl as u64).saturating_mul(1000) / 3);
        let mut keeper: Option<(etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream)> =
            None;
        let mut next_try = tokio::time::Instant::now();
        let mut next_keep = tokio::time::Instant::now() + tick;
        loop {
            if self.lease.is_none() && tokio::time::Instant::now() >= next_try {
                keeper = None;
                match self.register().await {
                    Ok(()) => {
                        if taken.take().is_some() {
                            tracing::warn!(
                                "etcd: this node's id is free again; registered, writing acknowledgements"
                            );
                        }
                        attempt = 0;
                    }
                    Err(Registration::Failed(e)) => {
                        tracing::debug!("etcd: cannot register this node yet: {e}");
                        next_try = tokio::time::Instant::now() + backoff(attempt);
                        attempt = attempt.saturating_add(1);
                    }
                    Err(Registration::Taken(why)) => {
                        if taken.as_ref() != Some(&why) {
                            tracing::warn!("{why}");
                            taken = Some(why);
                        }
                        next_try = tokio::time::Instant::now() + Duration::from_secs(1);
                    }
                }
            }
            if let Some(id) = self.lease {
                if keeper.is_none() {
                    match self.client.lease_client().keep_alive(id).await {
                        Ok(k) => keeper = Some(k),
                        // An expired lease cannot be kept alive: take a new one.
                        Err(e) => {
                            tracing::debug!("etcd: cannot keep this node's lease alive: {e}");
                            self.lease = None;
                            next_try = tokio::time::Instant::now() + backoff(attempt);
                            attempt = attempt.saturating_add(1);
                            continue;
                        }
                    }
                    next_keep = tokio::time::Instant::now() + tick;
                }
                if let Err(e) = self.flush().await {
                    tracing::debug!("etcd: cannot write this node's status: {e}");
                    self.previous_lease = self.lease.take();
                    next_try = tokio::time::Instant::now() + backoff(attempt);
                    attempt = attempt.saturating_add(1);
                }
            }
            let wake = if self.lease.is_none() {
                next_try
            } else {
                next_keep
            };
            tokio::select! {
                _ = &mut stopped => break,
                event = events.recv() => match event {
                    Ok(e) => self.absorb(&e).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Read the record again: the newest event of each
                        // component says where it stands.
                        let mut newest: BTreeMap<String, Arc<Event>> = BTreeMap::new();
                        for e in self.runtime.events() {
                            newest.insert(e.component.clone(), e);
                        }
                        for e in newest.values() {
                            self.absorb(e).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                update = held.recv(), if !held_closed => match update {
                    Some((component, h)) => self.hold(component, h),
                    // The source is gone (a failed start): nothing more comes.
                    None => held_closed = true,
                },
                () = tokio::time::sleep_until(wake) => {
                    if let Some((k, stream)) = keeper.as_mut() {
                        next_keep = tokio::time::Instant::now() + tick;
                        let alive = match k.keep_alive().await {
                            Ok(()) => matches!(
                                tokio::time::timeout(tick, stream.message()).await,
                                Ok(Ok(Some(r))) if r.ttl() > 0
                            ),
                            Err(_) => false,
                        };
                        if !alive {
                            tracing::debug!("etcd: this node's lease was lost; registering again");
                            self.previous_lease = self.lease.take();
                            keeper = None;
                        }
                    }
                }
            }
        }
        // A clean stop: the node's keys go at once, and it is recorded as
        // stopped (only by the daemon that holds the node's id).
        if let Some(id) = self.lease {
            let _ = self.client.lease_client().revoke(id).await;
            let _ = self
                .client
                .kv_client()
                .put(
                    self.keys.member(&self.node.id),
                    self.record(Some(now())),
                    None,
                )
                .await;
        }
    }
}
