//! The staged rollout: a node that is not a canary holds a new revision
//! until every live canary running the component accepted it, and drops it
//! for good when one refused it.

use std::collections::BTreeMap;

use super::{Held, NodeRecord, NodeStatus};
use crate::sources::Payload;

/// A key's new value on its way to the runtime.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub(crate) component: String,
    pub(crate) key: String,
    pub(crate) revision: i64,
    pub(crate) payload: Payload,
    pub(crate) resync: bool,
}

/// What the canaries said, as read from `PREFIX/canary/`.
#[derive(Debug, Default, Clone)]
struct Canary {
    record: Option<NodeRecord>,
    statuses: BTreeMap<String, NodeStatus>,
}

impl Canary {
    /// A registered canary that reads `key` for `component`: the only kind
    /// a rollout of that key waits for.
    fn reads(&self, component: &str, key: &str) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.keys.get(component).map(String::as_str) == Some(key))
    }
}

/// A verdict on one offer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Release,
    Wait(String),
    Stop(String),
}

/// The gate of one node.
#[derive(Debug)]
pub(crate) struct Gate {
    /// A canary's gate is always open.
    canary: bool,
    canaries: BTreeMap<String, Canary>,
    pending: BTreeMap<String, Offer>,
    /// The held state of each component, as last told.
    told: BTreeMap<String, Option<Held>>,
    /// Held-state changes not yet taken.
    changed: Vec<(String, Option<Held>)>,
}

impl Gate {
    pub(crate) fn new(canary: bool) -> Gate {
        Gate {
            canary,
            canaries: BTreeMap::new(),
            pending: BTreeMap::new(),
            told: BTreeMap::new(),
            changed: Vec::new(),
        }
    }

    /// True when this node waits for canaries (it is not one).
    pub(crate) fn waits_for_canaries(&self) -> bool {
        !self.canary
    }

    /// Replaces what is known of the canaries by a full read of
    /// `canary/` (keys relative to it).
    pub(crate) fn reset_canaries(&mut self, keys: &[(String, Vec<u8>)]) {
        self.canaries.clear();
        for (key, value) in keys {
            self.canary_event(key, Some(value));
        }
    }

    /// One `canary/` key changed (`None`: deleted, as when its lease ended).
    pub(crate) fn canary_event(&mut self, key: &str, value: Option<&[u8]>) {
        match key.split_once('/') {
            None => match value.and_then(|v| serde_json::from_slice::<NodeRecord>(v).ok()) {
                Some(record) => {
                    self.canaries.entry(key.to_owned()).or_default().record = Some(record);
                }
                None => {
                    self.canaries.remove(key);
                }
            },
            Some((node, component)) => {
                let status = value.and_then(|v| serde_json::from_slice::<NodeStatus>(v).ok());
                let entry = self.canaries.entry(node.to_owned()).or_default();
                match status {
                    Some(s) => {
                        entry.statuses.insert(component.to_owned(), s);
                    }
                    None => {
                        entry.statuses.remove(component);
                    }
                }
            }
        }
    }

    /// What to do with `revision` of `component` (read from `key`) now.
    /// Only canaries that read the same key count.
    pub(crate) fn verdict(&self, component: &str, key: &str, revision: i64) -> Verdict {
        if self.canary {
            return Verdict::Release;
        }
        let mut waiting = Vec::new();
        for (node, c) in self
            .canaries
            .iter()
            .filter(|(_, c)| c.reads(component, key))
        {
            match c.statuses.get(component) {
                Some(s) if s.refused(revision) => {
                    let why = match (&s.error, &s.field) {
                        (Some(e), Some(f)) => format!(": {e} (at {f})"),
                        (Some(e), None) => format!(": {e}"),
                        _ => String::new(),
                    };
                    return Verdict::Stop(format!(
                        "rollout of revision {revision} stopped: canary {node} {}{why}",
                        match s.state {
                            super::AckState::RolledBack => "rolled it back",
                            super::AckState::Degraded => "was left degraded by it",
                            _ => "rejected it",
                        }
                    ));
                }
                Some(s) if s.accepted(revision) => {}
                _ => waiting.push(node.clone()),
            }
        }
        if waiting.is_empty() {
            Verdict::Release
        } else {
            Verdict::Wait(format!(
                "revision {revision} waits for canary {} to apply it",
                waiting.join(", ")
            ))
        }
    }

    /// The oldest revision that every live canary reading `key` for
    /// `component` runs, if any runs one.
    pub(crate) fn canaries_run(&self, component: &str, key: &str) -> Option<i64> {
        self.canaries
            .values()
            .filter(|c| c.reads(component, key))
            .filter_map(|c| c.statuses.get(component)?.running_revision)
            .min()
    }

    /// A new value: released at once, or held. Only configurations are
    /// held; a deletion or an oversized value is refused by the runtime
    /// anyway and changes nothing.
    pub(crate) fn offer(&mut self, offer: Offer) -> Vec<Offer> {
        if !matches!(offer.payload, Payload::Config { .. }) || self.canary {
            self.pending.remove(&offer.component);
            self.tell(&offer.component, None);
            return vec![offer];
        }
        self.pending.insert(offer.component.clone(), offer);
        self.evaluate()
    }

    /// Looks at every held offer again (the canaries said something).
    pub(crate) fn evaluate(&mut self) -> Vec<Offer> {
        let mut released = Vec::new();
        let names: Vec<String> = self.pending.keys().cloned().collect();
        for name in names {
            let (revision, key) = {
                let o = &self.pending[&name];
                (o.revision, o.key.clone())
            };
            match self.verdict(&name, &key, revision) {
                Verdict::Release => {
                    if let Some(o) = self.pending.remove(&name) {
                        released.push(o);
                    }
                    self.tell(&name, None);
                }
                Verdict::Wait(reason) => self.tell(
                    &name,
                    Some(Held {
                        revision,
                        stopped: false,
                        reason,
                    }),
                ),
                Verdict::Stop(reason) => {
                    if matches!(self.told.get(&name), Some(Some(h)) if h.stopped && h.revision == revision)
                    {
                        continue;
                    }
                    tracing::warn!(component = %name, "{reason}: this node keeps the configuration in force");
                    self.pending.remove(&name);
                    self.tell(
                        &name,
                        Some(Held {
                            revision,
                            stopped: true,
                            reason,
                        }),
                    );
                }
            }
        }
        released
    }

    fn tell(&mut self, component: &str, held: Option<Held>) {
        if self.told.get(component) != Some(&held) {
            self.told.insert(component.to_owned(), held.clone());
            self.changed.push((component.to_owned(), held));
        }
    }

    /// Held-state changes since the last call.
    pub(crate) fn take_held(&mut self) -> Vec<(String, Option<Held>)> {
        std::mem::take(&mut self.changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::AckState;
    use crate::sources::Format;

    fn offer(rev: i64) -> Offer {
        Offer {
            component: "c".into(),
            key: "k".into(),
            revision: rev,
            payload: Payload::Config {
                bytes: b"{}".to_vec(),
                format: Format::Json,
            },
            resync: false,
        }
    }

    fn record(node: &str) -> Vec<u8> {
        serde_json::to_vec(&NodeRecord {
            node: node.into(),
            canary: true,
            components: vec!["c".into()],
            keys: [("c".to_owned(), "k".to_owned())].into(),
            started: String::new(),
            hotreload: String::new(),
            stopped: None,
        })
        .unwrap()
    }

    fn status(state: AckState, tried: i64, running: i64) -> Vec<u8> {
        serde_json::to_vec(&NodeStatus {
            node: "k".into(),
            component: "c".into(),
            key: Some("k".into()),
            state,
            tried_revision: Some(tried),
            running_revision: Some(running),
            version: 1,
            error: Some("no".into()),
            field: Some("/level".into()),
            held: None,
            time: String::new(),
        })
        .unwrap()
    }

    #[test]
    fn no_canary_releases_at_once_and_a_canary_never_waits() {
        let mut g = Gate::new(false);
        assert_eq!(g.offer(offer(5)).len(), 1);
        let mut g = Gate::new(true);
        g.canary_event("x", Some(&record("x")));
        assert_eq!(g.offer(offer(5)).len(), 1);
    }

    #[test]
    fn holds_until_every_canary_accepted_and_stops_when_one_refused() {
        let mut g = Gate::new(false);
        g.canary_event("a", Some(&record("a")));
        g.canary_event("b", Some(&record("b")));
        assert!(g.offer(offer(7)).is_empty());
        let held = g.take_held();
        assert!(held[0].1.as_ref().unwrap().reason.contains("canary a, b"));
        g.canary_event("a/c", Some(&status(AckState::Applied, 7, 7)));
        assert!(g.evaluate().is_empty(), "b has not applied it yet");
        g.canary_event("b/c", Some(&status(AckState::Applied, 7, 7)));
        assert_eq!(g.evaluate().len(), 1);
        // A revision canary b rejects is dropped, never released.
        assert!(g.offer(offer(9)).is_empty());
        g.canary_event("b/c", Some(&status(AckState::Rejected, 9, 7)));
        assert!(g.evaluate().is_empty());
        let held = g.take_held();
        let last = held.last().unwrap().1.clone().unwrap();
        assert!(last.stopped && last.reason.contains("canary b rejected it: no (at /level)"));
        g.canary_event("a/c", Some(&status(AckState::Applied, 9, 9)));
        assert!(g.evaluate().is_empty(), "a stopped rollout stays stopped");
        // A canary that went away (its lease ended) is not waited for.
        assert!(g.offer(offer(11)).is_empty());
        g.canary_event("a", None);
        g.canary_event("b", None);
        assert_eq!(g.evaluate().len(), 1);
    }
}
