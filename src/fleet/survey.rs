//! The fleet as etcd holds it, read at one revision: who runs which
//! revision of each component, who refused it and why, who went silent.

use std::collections::BTreeMap;

use etcd_client::{Client, GetOptions, Txn, TxnOp, TxnOpResponse};
use serde::Serialize;

use super::{Keys, NodeRecord, NodeStatus, READ_LIMIT};

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
        .max_decoding_message_size(READ_LIMIT)
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
    // A record's node is its key's last segment, a status's node and
    // component its key's: whatever a value says of itself, a node cannot
    // speak for another.
    let parse_record = |kv: &etcd_client::KeyValue, dir: &str| {
        let node = kv.key_str().ok()?.strip_prefix(dir)?.to_owned();
        let mut record = serde_json::from_slice::<NodeRecord>(kv.value()).ok()?;
        record.node = node;
        Some(record)
    };
    let (nodes_dir, members_dir, status_dir) = (keys.nodes(), keys.members(), keys.statuses());
    let (nodes, members, statuses) = (gets.next(), gets.next(), gets.next());
    for kv in members.iter().flat_map(|g| g.kvs()) {
        let Some(record) = parse_record(kv, &members_dir) else {
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
        let Some(record) = parse_record(kv, &nodes_dir) else {
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
        let Some((node, component)) = kv
            .key_str()
            .ok()
            .and_then(|k| k.strip_prefix(&status_dir))
            .and_then(|k| k.split_once('/'))
        else {
            continue;
        };
        let Ok(mut status) = serde_json::from_slice::<NodeStatus>(kv.value()) else {
            continue;
        };
        status.node = node.to_owned();
        status.component = component.to_owned();
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

/// Removes a node that is gone for good from the fleet's record (its
/// `members/` entry, and any status left behind). A live node is refused.
///
/// # Errors
/// The node is live, or etcd's error, as text.
pub async fn forget(client: &Client, prefix: &str, node: &str) -> Result<(), String> {
    let keys = Keys::new(prefix);
    let mut kv = client.kv_client();
    let live = kv
        .get(keys.node(node), None)
        .await
        .map_err(|e| e.to_string())?
        .count()
        > 0;
    if live {
        return Err(format!(
            "node {node} is live (its lease holds); stop it first"
        ));
    }
    let member = kv
        .delete(keys.member(node), None)
        .await
        .map_err(|e| e.to_string())?
        .deleted();
    if member == 0 {
        return Err(format!("no node {node} under {prefix}"));
    }
    kv.delete(
        format!("{}{node}/", keys.statuses()),
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}
