//! The daemon's etcd part: the first read at a start, the source that
//! watches afterwards, and the node's acknowledgements.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::Client;
use tokio::sync::mpsc;

use super::{Daemon, EtcdSettings, Manifest};
use crate::error::Error;
use crate::fleet::{self, EtcdSource, Held, Initial, Reporter, SourceState};
use crate::fleet::{Gate, Keys, Offer, Verdict, Watched};
use crate::manager::{ComponentSpec, HandlerSource};
use crate::outcome::Cause;
use crate::settings::Settings;
use crate::sources::{Format, InputError, Payload, SourceHandle, etcd_label};
use crate::transaction::ConfigInput;

/// What the daemon keeps of its etcd part.
pub(super) struct Parts {
    pub(super) state: Arc<SourceState>,
    source: Option<SourceHandle>,
    reporter: Option<Reporter>,
}

impl Parts {
    pub(super) fn new(settings: &EtcdSettings) -> Parts {
        Parts {
            state: Arc::new(SourceState::new(settings.endpoints.clone())),
            source: None,
            reporter: None,
        }
    }

    /// Stops watching, then revokes the node's lease.
    pub(super) async fn stop(&mut self) {
        self.source = None;
        if let Some(r) = self.reporter.take() {
            r.stop().await;
        }
    }
}

/// What a start carries from its first read to the source it attaches.
pub(super) struct Start {
    client: Client,
    keys: Keys,
    initial: Result<Initial, String>,
    gate: Gate,
    held: mpsc::UnboundedSender<(String, Option<Held>)>,
}

fn manifest_error(manifest: &Manifest, reason: String) -> Error {
    Error::Manifest {
        path: manifest.path.clone(),
        reason,
    }
}

impl Daemon {
    /// Connects, starts the node's acknowledgements, and reads every key
    /// at one revision (or finds etcd unreachable: the components then
    /// start on their last committed configurations).
    pub(super) async fn start_fleet(&mut self) -> Result<Option<Start>, Error> {
        let Some(settings) = self.manifest.etcd.clone() else {
            return Ok(None);
        };
        let client = fleet::connect(&settings)
            .await
            .map_err(|e| manifest_error(&self.manifest, e))?;
        let keys = Keys::new(&settings.prefix);
        let node = self.manifest.node.clone();
        let watched: BTreeMap<String, String> = self
            .manifest
            .etcd_components()
            .map(|(d, k, _)| (d.name.clone(), k.to_owned()))
            .collect();
        let (held, held_rx) = mpsc::unbounded_channel();
        let reporter = Reporter::start(
            self.runtime.clone(),
            client.clone(),
            keys.clone(),
            node.clone(),
            watched,
            settings.lease_ttl_s,
            held_rx,
        );
        let wanted: Vec<String> = self
            .manifest
            .etcd_components()
            .map(|(_, k, _)| k.to_owned())
            .collect();
        let initial = fleet::initial_read(
            &client,
            &keys,
            &wanted,
            !node.canary,
            Duration::from_millis(settings.connect_timeout_ms),
        )
        .await
        .map_err(|e| format!("etcd at {}: {e}", settings.endpoints.join(", ")));
        let mut gate = Gate::new(node.canary);
        if let Some(parts) = self.etcd.as_mut() {
            match &initial {
                Ok(i) => {
                    parts.state.seen(i.revision);
                    parts.state.up();
                    gate.reset_canaries(&i.canaries);
                }
                Err(e) => parts.state.down(e.clone()),
            }
            parts.reporter = Some(reporter);
        }
        Ok(Some(Start {
            client,
            keys,
            initial,
            gate,
            held,
        }))
    }

    /// The first configuration of a component whose key is in etcd: its
    /// value at the start's read; its last committed one when etcd is
    /// unreachable, the key is missing or unreadable, or (on a node that is
    /// not a canary) the value has not been accepted by the canaries yet.
    pub(super) async fn etcd_spec(
        &self,
        name: &str,
        handler: HandlerSource,
        key: &str,
        format: Format,
        start: &mut Start,
    ) -> ComponentSpec {
        let full = start.keys.config(key);
        let unavailable = |cause: Cause, message: String| {
            ComponentSpec::unavailable(
                name.to_owned(),
                handler.clone(),
                InputError { cause, message },
            )
        };
        let initial = match &start.initial {
            Ok(i) => i,
            Err(e) => {
                return unavailable(
                    Cause::Unreadable,
                    format!("{e}; starting on the last committed configuration"),
                );
            }
        };
        let Some((bytes, rev)) = initial.values.get(key) else {
            return unavailable(Cause::Unreadable, format!("etcd key {full} does not exist"));
        };
        let label = etcd_label(key, *rev);
        let limit = self.manifest.settings.output_limit_bytes;
        let payload = fleet::payload(&full, Some(bytes.clone()), *rev, format, limit);
        let verdict = start.gate.verdict(name, key, *rev);
        if verdict != Verdict::Release {
            let hold = Offer {
                component: name.to_owned(),
                key: key.to_owned(),
                revision: *rev,
                payload: payload.clone(),
                resync: false,
            };
            let why = match &verdict {
                Verdict::Wait(why) | Verdict::Stop(why) => why.clone(),
                Verdict::Release => String::new(),
            };
            if self.has_committed(name).await {
                start.gate.offer(hold);
                return unavailable(
                    Cause::Unreadable,
                    format!("{label}: {why}; starting on the last committed configuration"),
                );
            }
            if let Verdict::Stop(_) = verdict {
                // A new node never starts on what a canary refused: it
                // starts on what the canaries run, or not at all.
                start.gate.offer(hold);
                let accepted = match start.gate.canaries_run(name, key) {
                    Some(r) => read_at(&start.client, &full, r).await,
                    None => None,
                };
                let Some((bytes, at)) = accepted else {
                    return unavailable(
                        Cause::Unreadable,
                        format!(
                            "{label}: {why}; this node has no committed configuration, and the \
                             canaries' own revision cannot be read"
                        ),
                    );
                };
                let label = etcd_label(key, at);
                tracing::warn!(
                    component = name,
                    "{why}: starting on {label}, which the canaries run"
                );
                let payload = fleet::payload(&full, Some(bytes), at, format, limit);
                return first_spec(name, handler, payload, label);
            }
            // Waiting, and nothing to start on: the canaries have not
            // refused it, so it is started on.
            tracing::info!(
                component = name,
                "{why}; this node has no committed configuration, so it starts on it"
            );
        }
        first_spec(name, handler, payload, label)
    }

    async fn has_committed(&self, name: &str) -> bool {
        let Some(store) = self.runtime.revisions().cloned() else {
            return false;
        };
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || store.latest(&name).ok().flatten().is_some())
            .await
            .unwrap_or(false)
    }

    /// Watches the keys from the revision after the start's read.
    pub(super) fn attach_fleet(&mut self, start: Start) -> Result<(), Error> {
        let Some(parts) = self.etcd.as_mut() else {
            return Ok(());
        };
        let watched = self
            .manifest
            .etcd_components()
            .map(|(d, key, format)| Watched {
                component: d.name.clone(),
                key: key.to_owned(),
                format,
            })
            .collect();
        let source = EtcdSource {
            client: start.client,
            keys: start.keys,
            watched,
            state: parts.state.clone(),
            debounce: Duration::from_millis(self.manifest.settings.debounce_ms),
            limit: self.manifest.settings.output_limit_bytes,
            gate: start.gate,
            initial: start.initial.ok(),
            held: start.held,
        };
        parts.source = Some(self.runtime.attach(source)?);
        Ok(())
    }
}

/// A component's first configuration from its key's value at `label`
/// (`etcd:KEY@REV`): a value that does not decode is refused naming that
/// revision; an unreadable one (too large) says why.
fn first_spec(
    name: &str,
    handler: HandlerSource,
    payload: Payload,
    label: String,
) -> ComponentSpec {
    match payload {
        Payload::Config { bytes, format } => match format.decode(bytes) {
            Ok(input) => ComponentSpec::new(name.to_owned(), handler, input).config_path(label),
            Err(e) => ComponentSpec::unavailable(name.to_owned(), handler, e.at(&label))
                .config_path(label),
        },
        Payload::Unreadable { cause, message } => {
            ComponentSpec::unavailable(name.to_owned(), handler, InputError { cause, message })
        }
        Payload::Handler(_) => unreachable!("a key's value is a configuration"),
    }
}

/// A key's value as of `revision`: (value, its own revision).
async fn read_at(client: &Client, full: &str, revision: i64) -> Option<(Vec<u8>, i64)> {
    let mut kv = client.kv_client();
    let got = kv
        .get(
            full,
            Some(etcd_client::GetOptions::new().with_revision(revision)),
        )
        .await
        .ok()?;
    let kv = got.kvs().first()?;
    Some((kv.value().to_vec(), kv.mod_revision()))
}

/// Every etcd key of a manifest, read once (for `validate`).
pub(super) async fn read_all(
    manifest: &Manifest,
    settings: &EtcdSettings,
) -> Result<Initial, String> {
    let client = fleet::connect(settings).await?;
    let keys = Keys::new(&settings.prefix);
    let wanted: Vec<String> = manifest
        .etcd_components()
        .map(|(_, k, _)| k.to_owned())
        .collect();
    fleet::initial_read(
        &client,
        &keys,
        &wanted,
        false,
        Duration::from_millis(settings.connect_timeout_ms),
    )
    .await
    .map_err(|e| format!("etcd at {}: {e}", settings.endpoints.join(", ")))
}

/// A key's value from [`read_all`], as a configuration.
pub(super) fn input_of(
    read: &Result<Initial, String>,
    key: &str,
    format: Format,
    settings: &Settings,
) -> Result<ConfigInput, String> {
    let read = read.as_ref().map_err(Clone::clone)?;
    let Some((bytes, rev)) = read.values.get(key) else {
        return Err(format!("etcd key {key} does not exist"));
    };
    let label = etcd_label(key, *rev);
    match fleet::payload(
        &label,
        Some(bytes.clone()),
        *rev,
        format,
        settings.output_limit_bytes,
    ) {
        Payload::Config { bytes, format } => {
            format.decode(bytes).map_err(|e| e.at(&label).to_string())
        }
        Payload::Unreadable { message, .. } => Err(message),
        Payload::Handler(_) => unreachable!("a key's value is a configuration"),
    }
}
