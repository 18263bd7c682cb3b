//! The fleet: many nodes reloading from one etcd cluster.
//!
//! Each node watches its components' keys under `[source.etcd] prefix`
//! ([`EtcdSource`]) and acknowledges what it did with each revision at
//! `PREFIX/status/NODE/COMPONENT`, under a lease it keeps alive
//! ([`Reporter`]): the keys disappear when the node dies. A node marked
//! `canary` applies a new revision at once; the others hold it until every
//! live canary applied it, and drop it when a canary refused it. etcd does
//! the consensus and the replication; the nodes only read, watch and write
//! their own keys.
//!
//! Key layout under the prefix:
//! - `KEY`: a component's configuration (`config = "etcd:KEY"`);
//! - `nodes/NODE`: a live node (leased): canary or not, its components;
//! - `members/NODE`: every node ever seen (not leased), to tell a node that
//!   went silent from one that never was;
//! - `status/NODE/COMPONENT`: a node's acknowledgement (leased);
//! - `canary/NODE` and `canary/NODE/COMPONENT`: a canary's registration and
//!   acknowledgements again, so that the other nodes watch only canaries.

mod gate;
mod node;
mod report;
mod survey;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

pub use etcd_client::{
    Certificate, Client, ConnectOptions, DeleteOptions, GetOptions, Identity, TlsOptions,
    WatchOptions,
};
use serde::{Deserialize, Serialize};

pub(crate) use self::gate::{Gate, Offer, Verdict};
pub use self::node::EtcdSource;
pub(crate) use self::node::{Initial, Watched, initial_read, payload};
pub use self::report::Reporter;
pub use self::survey::{Latest, NodeView, Survey, forget, survey};
use crate::daemon::EtcdSettings;

/// What a node did with a component's revisions, as it writes it to
/// `PREFIX/status/NODE/COMPONENT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub node: String,
    /// The component.
    pub component: String,
    /// Its key, relative to the prefix.
    #[serde(default)]
    pub key: Option<String>,
    /// What the last attempt came to.
    pub state: AckState,
    /// The etcd revision of the value last tried.
    pub tried_revision: Option<i64>,
    /// The etcd revision of the value in force (`None` when what is in
    /// force came from elsewhere: the admin API, a rollback).
    pub running_revision: Option<i64>,
    /// The committed version in force on this node.
    pub version: u64,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The field the handler blamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A newer revision this node holds back (not a canary): waiting for
    /// the canaries, or stopped because one refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// When the state was last written (RFC 3339, UTC).
    pub time: String,
}

impl NodeStatus {
    /// True when this node acknowledged `revision` as accepted: it runs it
    /// (or a later one), or it waits for a restart to run it.
    pub fn accepted(&self, revision: i64) -> bool {
        self.running_revision.is_some_and(|r| r >= revision)
            || (self.state == AckState::RestartRequired
                && self.tried_revision.is_some_and(|t| t >= revision))
    }

    /// True when this node refused `revision`: rejected it, rolled it back
    /// or was left degraded by it.
    pub fn refused(&self, revision: i64) -> bool {
        self.tried_revision == Some(revision)
            && matches!(
                self.state,
                AckState::Rejected | AckState::RolledBack | AckState::Degraded
            )
    }

    /// The same acknowledgement, whatever its time.
    fn same(&self, other: &NodeStatus) -> bool {
        NodeStatus {
            time: String::new(),
            ..self.clone()
        } == NodeStatus {
            time: String::new(),
            ..other.clone()
        }
    }
}

/// A node's state for one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckState {
    /// The tried revision is in force (or equals what is).
    Applied,
    /// The handler refused the tried revision; the old configuration stays.
    Rejected,
    /// Applying failed and the old configuration was restored.
    RolledBack,
    /// Accepted, but it needs a restart to take effect.
    RestartRequired,
    /// The handler could not be brought back after a failure.
    Degraded,
}

/// A revision a node holds back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The revision.
    pub revision: i64,
    /// `true` once a canary refused it: it will never be applied here.
    pub stopped: bool,
    /// Why, in words.
    pub reason: String,
}

/// A live node's registration at `PREFIX/nodes/NODE` (and, for a canary,
/// `PREFIX/canary/NODE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node.
    pub node: String,
    /// A canary applies new revisions first.
    pub canary: bool,
    /// The components it runs from etcd.
    pub components: Vec<String>,
    /// Their keys, relative to the prefix.
    #[serde(default)]
    pub keys: std::collections::BTreeMap<String, String>,
    /// When this run of the node started (RFC 3339).
    pub started: String,
    /// The hotreload version.
    pub hotreload: String,
    /// Set at a clean shutdown (in `members/` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// Where the fleet's keys are.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }
    pub(crate) fn config(&self, key: &str) -> String {
        format!("{}/{key}", self.prefix)
    }
    /// The key relative to the prefix, if `full` is under it.
    pub(crate) fn relative<'a>(&self, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(&self.prefix)?.strip_prefix('/')
    }
    pub(crate) fn node(&self, node: &str) -> String {
        format!("{}/nodes/{node}", self.prefix)
    }
    pub(crate) fn nodes(&self) -> String {
        format!("{}/nodes/", self.prefix)
    }
    pub(crate) fn member(&self, node: &str) -> String {
        format!("{}/members/{node}", self.prefix)
    }
    pub(crate) fn members(&self) -> String {
        format!("{}/members/", self.prefix)
    }
    pub(crate) fn status(&self, node: &str, component: &str) -> String {
        format!("{}/status/{node}/{component}", self.prefix)
    }
    pub(crate) fn statuses(&self) -> String {
        format!("{}/status/", self.prefix)
    }
    pub(crate) fn canaries(&self) -> String {
        format!("{}/canary/", self.prefix)
    }
    pub(crate) fn canary(&self, node: &str) -> String {
        format!("{}/canary/{node}", self.prefix)
    }
    pub(crate) fn canary_status(&self, node: &str, component: &str) -> String {
        format!("{}/canary/{node}/{component}", self.prefix)
    }
}

/// Whether a node's connection to etcd works, shared by its source and
/// read by the admin API and metrics.
#[derive(Debug, Default)]
pub struct SourceState {
    connected: AtomicBool,
    revision: AtomicI64,
    error: Mutex<Option<String>>,
    endpoints: Vec<String>,
}

/// A snapshot of a [`SourceState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceReport {
    /// `etcd`.
    pub source: String,
    /// The endpoints.
    pub endpoints: Vec<String>,
    /// Watching now.
    pub connected: bool,
    /// The newest etcd revision seen (0 before the first read).
    pub revision: i64,
    /// Why it is not connected, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SourceState {
    pub(crate) fn new(endpoints: Vec<String>) -> SourceState {
        SourceState {
            endpoints,
            ..SourceState::default()
        }
    }

    /// Where the connection stands.
    pub fn report(&self) -> SourceReport {
        SourceReport {
            source: "etcd".into(),
            endpoints: self.endpoints.clone(),
            connected: self.connected.load(Ordering::SeqCst),
            revision: self.revision.load(Ordering::SeqCst),
            error: self.error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    pub(crate) fn up(&self) {
        if !self.connected.swap(true, Ordering::SeqCst) {
            tracing::info!(endpoints = ?self.endpoints, "etcd: connected");
        }
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub(crate) fn down(&self, why: String) {
        if self.connected.swap(false, Ordering::SeqCst) {
            tracing::warn!(
                endpoints = ?self.endpoints,
                "etcd: disconnected ({why}); serving the configurations in force"
            );
        }
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    pub(crate) fn seen(&self, revision: i64) {
        self.revision.fetch_max(revision, Ordering::SeqCst);
    }
}

/// A client for `settings`. It connects at its first request, so a node
/// starts while etcd is unreachable. With a user, it logs in now if etcd
/// answers (a refused login is an error), else keeps trying in the
/// background; an expired token is renewed by itself.
///
/// # Errors
/// The password file cannot be read, or etcd refused the login.
pub async fn connect(settings: &EtcdSettings) -> Result<Client, String> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        // A dead peer is noticed within seconds, not at TCP's timeout.
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        // A member cut off from its cluster's leader must not go on
        // serving a watch that no longer moves.
        .with_require_leader(true)
        .with_auto_token_refresh(true);
    let options = match &settings.ca_file {
        Some(ca) => options.with_tls(tls(settings, ca)?),
        None => options,
    };
    let mut client = Client::connect(&settings.endpoints, Some(options))
        .await
        .map_err(|e| format!("etcd at {}: {e}", settings.endpoints.join(", ")))?;
    let (Some(user), Some(file)) = (&settings.user, &settings.password_file) else {
        return Ok(client);
    };
    let password = crate::sources::read_regular(file, 4096)
        .map_err(|e| format!("[source.etcd] password_file: {e}"))?;
    let creds = (
        user.clone(),
        String::from_utf8_lossy(&password).trim().to_owned(),
    );
    let refused = |e: &etcd_client::Error| {
        let m = e.to_string();
        m.contains("authentication failed") || m.contains("user name")
    };
    let wait = Duration::from_millis(settings.connect_timeout_ms);
    match tokio::time::timeout(wait, client.update_user(Some(creds.clone()))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if refused(&e) => {
            return Err(format!("etcd refused the login of user {user:?}: {e}"));
        }
        _ => {
            // Unreachable now: log in once it answers.
            let mut c = client.clone();
            let user = user.clone();
            tokio::spawn(async move {
                let mut attempt = 0;
                loop {
                    tokio::time::sleep(backoff(attempt)).await;
                    match c.update_user(Some(creds.clone())).await {
                        Ok(()) => return,
                        Err(e) if refused(&e) => {
                            tracing::error!("etcd refused the login of user {user:?}: {e}");
                            return;
                        }
                        Err(_) => attempt = attempt.saturating_add(1),
                    }
                }
            });
        }
    }
    Ok(client)
}

/// TLS to etcd: its CA, and this node's certificate when etcd checks
/// clients'.
fn tls(settings: &EtcdSettings, ca: &std::path::Path) -> Result<TlsOptions, String> {
    let read = |what: &str, path: &std::path::Path| {
        crate::sources::read_regular(path, 1 << 20)
            .map_err(|e| format!("[source.etcd] {what}: {e}"))
    };
    let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read("ca_file", ca)?));
    if let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) {
        tls = tls.identity(Identity::from_pem(
            read("cert_file", cert)?,
            read("key_file", key)?,
        ));
    }
    Ok(tls)
}

/// Watches every key under `prefix` from revision `from` on (for views
/// that redraw when the fleet changes).
///
/// # Errors
/// etcd's error, as text.
pub async fn watch_prefix(
    client: &Client,
    prefix: &str,
    from: i64,
) -> Result<etcd_client::WatchStream, String> {
    client
        .watch_client()
        .watch(
            format!("{}/", prefix.trim_end_matches('/')),
            Some(
                etcd_client::WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(from),
            ),
        )
        .await
        .map_err(|e| e.to_string())
}

/// The largest gRPC message a node or the view reads: a watch's catch-up
/// or a read of every status (gRPC's default is 4 MiB; etcd's values go to
/// 1.5 MiB each).
pub(crate) const READ_LIMIT: usize = 256 << 20;

/// Backoff between retries: 100 ms doubling to 5 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)).min(5000))
}

/// Now, RFC 3339 UTC.
pub(crate) fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
