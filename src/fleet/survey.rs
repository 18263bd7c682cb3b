//! The fleet as etcd holds it, read at one revision: who runs which
//! revision of each component, who refused it and why, who went silent.

use std::collections::BTreeMap;

use etcd_client::{Client, GetOptions, Txn, TxnOp, TxnOpResponse};
use serde::Serialize;

use super::{Keys, NodeRecord, NodeStatus};

/// The newest value of a component's key.
#[derive(Debug, Clone, Serialize)]
pub struct Latest {
    /// The key, relative to the prefix.
    pub key: String,
    /// Its revision (`None`: the key does not exist).
    pub revision: Option<i64>,
}

/// One node as etcd holds it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    /// The node.
    pub node: String,
    /// Its lease is alive.
    pub live: bool,
    /// Its registration: the live one, or the last one recorded.
    pub record: Option<NodeRecord>,
    /// Its acknowledgements, by component (only while live).
    pub statuses: BTreeMap<String, NodeStatus>,
}

/// The fleet at one revision.
#[derive(Debug, Clone, Serialize)]
pub struct Survey {
    /// The store's revision at the read.
    pub revision: i64,
    /// Each component's newest value.
    pub latest: BTreeMap<String, Latest>,
    /// Every node seen, live or not.
    pub nodes: BTreeMap<String, NodeView>,
}

/// Reads the fleet under `prefix`; `components` are (name, key) pairs.
///
/// # Errors
/// etcd's error, as text.
pub async fn survey(
    client: &Client,
    prefix: &str,
    components: &[(String, String)],
) -> Result<Survey, String> {
    let keys = Keys::new(prefix);
    let all = || Some(GetOptions::new().with_prefix());
    let mut ops = vec![
        TxnOp::get(keys.nodes(), all()),
        TxnOp::get(keys.members(), all()),
        TxnOp::get(keys.statuses(), all()),
    ];
    for (_, key) in components {
        ops.push(TxnOp::get(keys.config(key), None));
    }
    let response = client
        .kv_client()
        .txn(Txn::new().and_then(ops))
        .await
        .map_err(|e| e.to_string())?;
    let mut survey = Survey {
        revision: response.header().map_or(0, |h| h.revision()),
        latest: BTreeMap::new(),
        nodes: BTreeMap::new(),
    };
    let mut gets = response
        .op_responses()
        .into_iter()
        .filter_map(|op| match op {
            TxnOpResponse::Get(g) => Some(g),
            _ => None,
        });
    let parse_record = |v: &[u8]| serde_json::from_slice::<NodeRecord>(v).ok();
    let (nodes, members, statuses) = (gets.next(), gets.next(), gets.next());
    for kv in members.iter().flat_map(|g| g.kvs()) {
        let Some(record) = parse_record(kv.value()) else {
            continue;
        };
        survey.nodes.insert(
            record.node.clone(),
            NodeView {
                node: record.node.clone(),
                live: false,
                record: Some(record),
                statuses: BTreeMap::new(),
            },
        );
    }
    for kv in nodes.iter().flat_map(|g| g.kvs()) {
        let Some(record) = parse_record(kv.value()) else {
            continue;
        };
        let view = survey
            .nodes
            .entry(record.node.clone())
            .or_insert_with(|| NodeView {
                node: record.node.clone(),
                live: true,
                record: None,
                statuses: BTreeMap::new(),
            });
        view.live = true;
        view.record = Some(record);
    }
    for kv in statuses.iter().flat_map(|g| g.kvs()) {
        let Ok(status) = serde_json::from_slice::<NodeStatus>(kv.value()) else {
            continue;
        };
        if let Some(view) = survey.nodes.get_mut(&status.node) {
            view.statuses.insert(status.component.clone(), status);
        }
    }
    for ((name, key), get) in components.iter().zip(gets) {
        survey.latest.insert(
            name.clone(),
            Latest {
                key: key.clone(),
                revision: get.kvs().first().map(|kv| kv.mod_revision()),
            },
        );
    }
    Ok(survey)
}
