//! The fleet with real processes: Debian's etcd on free loopback ports,
//! `hotreload run` daemons as nodes, `hotreload fleet` reading them, a TCP
//! proxy that cuts one node off, SIGKILL, compaction, a canary.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotreload::fleet::{Client, DeleteOptions, GetOptions};
use hotreload_cli::etcd_server::{EtcdServer, etcd_program};
use serde_json::Value;

use crate::admin::{Api, wait_ready};
use crate::cannot_run;
use crate::daemon_cli::{Running, hotreload, run};

const GOOD: &str = r#"{"level": "info", "format": "text"}"#;

/// etcd for one test, or `None` (a skip; a failure under CI) without it.
fn etcd(test: &str) -> Option<EtcdServer> {
    if etcd_program().is_none() {
        return cannot_run(test, "no `etcd` on PATH (Debian's etcd-server)");
    }
    Some(EtcdServer::start_temporary().unwrap())
}

/// A synchronous etcd client for the test's own puts and reads.
struct Store {
    rt: tokio::runtime::Runtime,
    client: Client,
    prefix: String,
}

impl Store {
    fn new(endpoint: &str, prefix: &str) -> Store {
        Store::with_options(endpoint, prefix, None)
    }

    fn with_options(
        endpoint: &str,
        prefix: &str,
        options: Option<hotreload::fleet::ConnectOptions>,
    ) -> Store {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(Client::connect([endpoint], options)).unwrap();
        Store {
            rt,
            client,
            prefix: prefix.into(),
        }
    }

    /// Puts `value` at `PREFIX/key`; its revision.
    fn put(&self, key: &str, value: &str) -> i64 {
        let mut c = self.client.clone();
        let r = self
            .rt
            .block_on(c.put(format!("{}/{key}", self.prefix), value, None))
            .unwrap();
        r.header().unwrap().revision()
    }

    fn try_put(&self, key: &str, value: Vec<u8>) -> Result<i64, String> {
        let mut c = self.client.clone();
        self.rt
            .block_on(c.put(format!("{}/{key}", self.prefix), value, None))
            .map(|r| r.header().unwrap().revision())
            .map_err(|e| e.to_string())
    }

    /// The keys under `PREFIX/under`.
    fn keys(&self, under: &str) -> Vec<String> {
        let mut c = self.client.clone();
        let r = self
            .rt
            .block_on(c.get(
                format!("{}/{under}", self.prefix),
                Some(GetOptions::new().with_prefix()),
            ))
            .unwrap();
        r.kvs()
            .iter()
            .map(|kv| kv.key_str().unwrap().to_owned())
            .collect()
    }

    fn compact(&self, revision: i64) {
        let mut c = self.client.clone();
        self.rt.block_on(c.compact(revision, None)).unwrap();
    }

    fn clear(&self) {
        let mut c = self.client.clone();
        let _ = self.rt.block_on(c.delete(
            format!("{}/", self.prefix),
            Some(DeleteOptions::new().with_prefix()),
        ));
    }
}

/// One node: its directory, manifest, daemon and admin API.
struct Node {
    dir: tempfile::TempDir,
    daemon: Option<Running>,
    api: Option<Api>,
}

impl Node {
    fn manifest(&self) -> PathBuf {
        self.dir.path().join("hotreload.toml")
    }

    /// A node `id` on `endpoint`; `extra` goes into `[runtime]`.
    fn new(endpoint: &str, prefix: &str, id: &str, canary: bool, extra: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let debounce = if extra.contains("debounce_ms") {
            ""
        } else {
            "debounce_ms = 50"
        };
        let manifest = format!(
            r#"[admin]
listen = "127.0.0.1:0"
[runtime]
{debounce}
retry_interval_ms = 1
{extra}
[source.etcd]
endpoints = ["{endpoint}"]
prefix = "{prefix}"
lease_ttl_s = 4
connect_timeout_ms = 1000
[node]
id = "{id}"
canary = {canary}
[[component]]
name = "logging"
handler = "bundled:logging"
config = "etcd:logging"
"#
        );
        std::fs::write(dir.path().join("hotreload.toml"), manifest).unwrap();
        let mut node = Node {
            dir,
            daemon: None,
            api: None,
        };
        node.start();
        node
    }

    fn start(&mut self) {
        let _ = std::fs::remove_file(self.dir.path().join(".hotreload/admin.addr"));
        self.daemon = Some(run(&self.manifest()));
        self.api = Some(wait_ready(self.dir.path(), None));
    }

    fn daemon(&self) -> &Running {
        self.daemon.as_ref().unwrap()
    }

    fn api(&self) -> &Api {
        self.api.as_ref().unwrap()
    }

    /// The next event matching `want`, within `secs`; the events before it
    /// are returned too, for checks of what did not happen.
    fn until(&self, secs: u64, want: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            let e = self.daemon().next(left.max(1));
            if want(&e) {
                return (e, before);
            }
            assert!(Instant::now() < deadline, "no such event; saw {before:#?}");
            before.push(e);
        }
    }

    /// The event of revision `rev` of the logging key.
    fn event_of(&self, rev: i64) -> Value {
        let label = format!("etcd:logging@{rev}");
        self.until(20, |e| e["config_path"] == label.as_str()).0
    }

    fn config(&self) -> Value {
        self.api().get("/v1/components/logging").json()["config"].clone()
    }

    fn connected(&self) -> bool {
        self.api().get("/v1/components").json()["sources"][0]["connected"] == true
    }
}

/// `hotreload fleet MANIFEST --json` until `done` says so (10 s at most).
fn fleet_until(manifest: &Path, done: impl Fn(&Value) -> bool) -> (Value, i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = hotreload()
            .arg("fleet")
            .arg(manifest)
            .arg("--json")
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let view: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "fleet --json printed no JSON ({e}): {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        if done(&view) {
            return (view, code);
        }
        assert!(
            Instant::now() < deadline,
            "the fleet view never came to it: {view:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn standings(view: &Value) -> Vec<(String, String)> {
    let mut s: Vec<(String, String)> = view["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["node"].as_str().unwrap().to_owned(),
                c["standing"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    s.sort();
    s
}

fn prefix(test: &str) -> String {
    format!("/hotreload-test/{test}")
}

/// etcd for `test` (or a skip), a store under `/hotreload-test/NAME`, and
/// the revision of a first, good `logging` value.
fn setup(test: &str, name: &str) -> Option<(EtcdServer, String, Store, i64)> {
    let server = etcd(test)?;
    let p = prefix(name);
    let store = Store::new(&server.endpoint(), &p);
    let r1 = store.put("logging", GOOD);
    Some((server, p, store, r1))
}

#[test]
fn a_put_reaches_every_node_and_a_bad_one_is_refused_everywhere() {
    let Some((server, p, store, r1)) = setup("a_put_reaches_every_node", "reach") else {
        return;
    };
    let nodes: Vec<Node> = (0..3)
        .map(|i| Node::new(&server.endpoint(), &p, &format!("node-{i}"), false, ""))
        .collect();
    for n in &nodes {
        let e = n.event_of(r1);
        assert_eq!(e["kind"], "initial");
        assert_eq!(e["outcome"], "applied");
    }
    let r2 = store.put("logging", r#"{"level": "debug", "format": "json"}"#);
    for n in &nodes {
        let e = n.event_of(r2);
        assert_eq!(
            (e["kind"].as_str(), e["outcome"].as_str()),
            (Some("etcd_change"), Some("applied"))
        );
        assert_eq!(n.config()["level"], "debug");
    }
    let (view, code) = fleet_until(&nodes[0].manifest(), |v| v["converged"] == true);
    assert_eq!(code, 0);
    assert_eq!(
        standings(&view),
        (0..3)
            .map(|i| (format!("node-{i}"), "current".to_owned()))
            .collect::<Vec<_>>()
    );
    // The text view says the same.
    let text = hotreload()
        .arg("fleet")
        .arg(nodes[0].manifest())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("latest r{r2}")) && text.contains("converged"),
        "{text}"
    );

    // `fleet --watch` into a reader that goes away: it stops quietly at its
    // next line, it does not panic.
    let mut watch = hotreload()
        .arg("fleet")
        .arg(nodes[0].manifest())
        .args(["--watch", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(watch.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.contains("\"converged\":true"), "{first}");
    drop(watch.stdout.take());
    store.put("unwatched", "{}");
    // The same value again: a new revision, which every node runs (its
    // transaction says "unchanged").
    let r2 = store.put("logging", r#"{"level": "debug", "format": "json"}"#);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = watch.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "fleet --watch went on writing to a closed pipe"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    watch
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A bad value: every node refuses it, naming the field; the old stays.
    let r3 = store.put("logging", r#"{"level": 42}"#);
    for n in &nodes {
        let e = n.event_of(r3);
        assert_eq!(e["outcome"], "rejected", "{e:#}");
        assert_eq!(e["error"]["field"], "/level", "{e:#}");
        assert_eq!(n.config()["level"], "debug");
    }
    let (view, code) = fleet_until(&nodes[0].manifest(), |v| {
        standings(v).iter().all(|(_, s)| s == "refused")
    });
    assert_eq!(code, 1, "not converged");
    let cell = &view["cells"][0];
    assert!(
        cell["detail"].as_str().unwrap().contains("(at /level)") && cell["running_revision"] == r2,
        "{cell:#}"
    );
    store.clear();
}

#[test]
fn a_burst_of_puts_applies_the_last_and_bad_values_are_named() {
    let Some((server, p, store, r0)) = setup("a_burst_of_puts", "burst") else {
        return;
    };
    // A debounce window far longer than ten puts take, even on a loaded
    // machine.
    let node = Node::new(
        &server.endpoint(),
        &p,
        "solo",
        false,
        "output_limit_bytes = 4096\ndebounce_ms = 400",
    );
    node.event_of(r0);
    // Ten puts well within one debounce window: the last one is applied,
    // not every one.
    let mut last = 0;
    for i in 0..10 {
        last = store.put(
            "logging",
            &format!(r#"{{"level": "debug", "fields": {{"i": "{i}"}}}}"#),
        );
    }
    let label = format!("etcd:logging@{last}");
    let (e, before) = node.until(20, |e| e["config_path"] == label.as_str());
    assert_eq!(e["outcome"], "applied");
    assert!(before.len() < 9, "every put was applied: {before:#?}");
    assert_eq!(node.config()["fields"]["i"], "9");

    // Over the node's limit: refused, naming the key and the limit.
    let big = format!(
        r#"{{"level": "info", "fields": {{"x": "{}"}}}}"#,
        "y".repeat(8000)
    );
    let r = store.try_put("logging", big.into_bytes()).unwrap();
    let e = node.event_of(r);
    assert_eq!(
        (e["outcome"].as_str(), e["cause"].as_str()),
        (Some("rejected"), Some("invalid"))
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("over the limit of 4096 bytes") && message.contains("/logging"),
        "{message}"
    );
    // Not JSON: refused, the event naming the key and revision.
    let r = store.put("logging", "level: [");
    let e = node.event_of(r);
    assert_eq!(e["cause"], "invalid", "{e:#}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{e:#}"
    );
    // Over etcd's own limit (1.5 MiB by default): etcd refuses the put, the
    // node sees nothing.
    let huge = store.try_put("logging", vec![b' '; 2 << 20]);
    assert!(huge.is_err(), "etcd took a 2 MiB value");
    // Deleted: refused; the configuration in force stays.
    let mut c = store.client.clone();
    let d = store
        .rt
        .block_on(c.delete(format!("{p}/logging"), None))
        .unwrap();
    let e = node.event_of(d.header().unwrap().revision());
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("was deleted"),
        "{e:#}"
    );
    assert_eq!(node.config()["fields"]["i"], "9");
    store.clear();
}

#[test]
fn nodes_keep_serving_while_etcd_is_down_and_catch_up_after() {
    let Some((mut server, p, _, r1)) = setup("nodes_keep_serving_while_etcd_is_down", "down")
    else {
        return;
    };
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| Node::new(&server.endpoint(), &p, &format!("node-{i}"), false, ""))
        .collect();
    for n in &nodes {
        n.event_of(r1);
        assert!(n.connected());
    }
    server.kill();
    let deadline = Instant::now() + Duration::from_secs(15);
    for n in &nodes {
        while n.connected() {
            assert!(Instant::now() < deadline, "still connected after etcd died");
            std::thread::sleep(Duration::from_millis(100));
        }
        let metrics = n.api().get("/metrics").text();
        assert!(
            metrics.contains("hotreload_source_connected{source=\"etcd\"} 0"),
            "{metrics}"
        );
        assert_eq!(n.config()["level"], "info", "serves its configuration");
    }
    let status = hotreload()
        .args(["status", "-m"])
        .arg(nodes[0].manifest())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("source etcd") && text.contains("DISCONNECTED"),
        "{text}"
    );
    // A node restarted while etcd is down starts on its last committed
    // configuration, and says so.
    nodes[2].daemon = None;
    nodes[2].start();
    assert!(!nodes[2].connected());
    assert_eq!(nodes[2].config()["level"], "info");
    nodes[2]
        .daemon()
        .wait_log("starting on the last committed configuration", 10);

    // A node that never ran cannot start without etcd: it says why.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(
        fresh.path().join("hotreload.toml"),
        std::fs::read_to_string(nodes[0].manifest())
            .unwrap()
            .replace("node-0", "fresh"),
    )
    .unwrap();
    let out = hotreload()
        .arg("run")
        .arg(fresh.path().join("hotreload.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("etcd at http://127.0.0.1:"), "{err}");

    server.restart().unwrap();
    let store = Store::new(&server.endpoint(), &p);
    let r2 = store.put("logging", r#"{"level": "warn"}"#);
    for n in &nodes {
        let e = n.event_of(r2);
        assert_eq!(e["outcome"], "applied", "{e:#}");
        assert_eq!(n.config()["level"], "warn");
        assert!(n.connected());
    }
    store.clear();
}

/// A TCP proxy that can cut every connection through it and refuse new
/// ones (a network partition for one node).
struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn new(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(down) = conn else { continue };
                if c.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                let Ok(up) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut list = o.lock().unwrap();
                list.push(down.try_clone().unwrap());
                list.push(up.try_clone().unwrap());
                drop(list);
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                };
                pipe(down.try_clone().unwrap(), up.try_clone().unwrap());
                pipe(up, down);
            }
        });
        Proxy { addr, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[test]
fn a_node_cut_off_past_a_compaction_reads_everything_again() {
    let Some((server, p, store, r1)) = setup("a_node_cut_off_past_a_compaction", "compact") else {
        return;
    };
    let upstream: SocketAddr = server
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = Proxy::new(upstream);
    let node = Node::new(&format!("http://{}", proxy.addr), &p, "far", false, "");
    node.event_of(r1);
    let cut_off = |node: &Node| {
        proxy.cut();
        let deadline = Instant::now() + Duration::from_secs(15);
        while node.connected() {
            assert!(
                Instant::now() < deadline,
                "still connected through a cut proxy"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Cut off, then back: the watch resumes after what it saw, so the
    // puts made meanwhile arrive, as changes (nothing was compacted).
    cut_off(&node);
    store.put("logging", r#"{"level": "warn"}"#);
    let r = store.put("logging", r#"{"level": "debug", "format": "json"}"#);
    proxy.heal();
    let e = node.event_of(r);
    assert_eq!(
        (e["kind"].as_str(), e["outcome"].as_str()),
        (Some("etcd_change"), Some("applied")),
        "{e:#}"
    );
    assert_eq!(node.config()["format"], "json");
    // Cut off past a compaction: everything is read again.
    proxy.cut();
    let deadline = Instant::now() + Duration::from_secs(15);
    while node.connected() {
        assert!(
            Instant::now() < deadline,
            "still connected through a cut proxy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    store.put("logging", r#"{"level": "debug"}"#);
    let r3 = store.put("logging", r#"{"level": "error"}"#);
    store.compact(r3);
    proxy.heal();
    let e = node.event_of(r3);
    assert_eq!(
        (e["kind"].as_str(), e["outcome"].as_str()),
        (Some("etcd_resync"), Some("applied")),
        "{e:#}"
    );
    assert_eq!(node.config()["level"], "error");
    node.daemon()
        .wait_log("were compacted while this node was away", 5);
    // And it watches again from there.
    let r4 = store.put("logging", r#"{"level": "info"}"#);
    assert_eq!(node.event_of(r4)["kind"], "etcd_change");
    store.clear();
}

#[test]
fn a_killed_node_s_acknowledgements_expire_and_it_comes_back_on_the_latest() {
    let Some((server, p, store, r1)) = setup("a_killed_node_s_acknowledgements_expire", "kill")
    else {
        return;
    };
    let mut nodes: Vec<Node> = (0..2)
        .map(|i| Node::new(&server.endpoint(), &p, &format!("node-{i}"), false, ""))
        .collect();
    for n in &nodes {
        n.event_of(r1);
    }
    fleet_until(&nodes[0].manifest(), |v| v["converged"] == true);
    assert!(
        store
            .keys("status/node-1/")
            .contains(&format!("{p}/status/node-1/logging"))
    );
    nodes[1].daemon().signal("KILL");
    // Its lease (2 s) runs out: its keys go, and the view calls it silent.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !store.keys("status/node-1/").is_empty() || !store.keys("nodes/node-1").is_empty() {
        assert!(
            Instant::now() < deadline,
            "node-1's keys outlived its lease"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (view, code) = fleet_until(&nodes[0].manifest(), |v| {
        standings(v).contains(&("node-1".into(), "silent".into()))
    });
    assert_eq!(code, 1, "{view:#}");
    let r2 = store.put("logging", r#"{"level": "debug"}"#);
    nodes[0].event_of(r2);
    // Back: it starts on the latest revision.
    nodes[1].daemon = None;
    nodes[1].start();
    let e = nodes[1].event_of(r2);
    assert_eq!(
        (e["kind"].as_str(), e["outcome"].as_str()),
        (Some("initial"), Some("applied"))
    );
    fleet_until(&nodes[0].manifest(), |v| v["converged"] == true);
    // A clean stop removes its keys at once and is told apart from silence.
    nodes[1].daemon().signal("TERM");
    let (view, _) = fleet_until(&nodes[0].manifest(), |v| {
        standings(v).contains(&("node-1".into(), "stopped".into()))
    });
    assert_eq!(
        view["converged"], true,
        "a stopped node is not missing: {view:#}"
    );
    store.clear();
}

#[test]
fn a_canary_stops_a_bad_rollout_and_lets_a_good_one_through() {
    let Some((server, p, store, r1)) = setup("a_canary_stops_a_bad_rollout", "canary") else {
        return;
    };
    let canary = Node::new(&server.endpoint(), &p, "canary", true, "");
    canary.event_of(r1);
    let others: Vec<Node> = (0..2)
        .map(|i| Node::new(&server.endpoint(), &p, &format!("node-{i}"), false, ""))
        .collect();
    for n in &others {
        n.event_of(r1);
    }
    fleet_until(&canary.manifest(), |v| v["converged"] == true);

    // The canary rejects it: the others never try it.
    let bad = store.put("logging", r#"{"level": "loud"}"#);
    let e = canary.event_of(bad);
    assert_eq!(e["outcome"], "rejected");
    let (view, code) = fleet_until(&canary.manifest(), |v| {
        !v["stopped"].as_array().unwrap().is_empty()
            && v["cells"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["standing"] == "held")
                .count()
                == 2
    });
    assert_eq!(code, 1);
    let stopped = view["stopped"][0].as_str().unwrap();
    assert!(
        stopped.contains(&format!("r{bad} stopped: canary canary rejected"))
            && stopped.contains("(at /level)"),
        "{stopped}"
    );
    // The canary restarts: it refuses the value again at its start and runs
    // its last committed configuration; the rollout stays stopped, and a
    // new node starts on what the canary runs, not on what it refused.
    let mut canary = canary;
    canary.daemon().signal("TERM");
    canary.daemon.as_mut().unwrap().wait_exit(20);
    canary.start();
    assert_eq!(canary.config()["level"], "info");
    let newcomer = Node::new(&server.endpoint(), &p, "node-new", false, "");
    let e = newcomer.event_of(r1);
    assert_eq!(
        (e["kind"].as_str(), e["outcome"].as_str()),
        (Some("initial"), Some("applied")),
        "{e:#}"
    );
    assert_eq!(newcomer.config()["level"], "info");
    let (view, _) = fleet_until(&canary.manifest(), |v| {
        !v["stopped"].as_array().unwrap().is_empty()
            && v["cells"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["standing"] == "held")
                .count()
                == 3
    });
    assert!(
        view["stopped"][0]
            .as_str()
            .unwrap()
            .contains("canary canary rejected"),
        "{view:#}"
    );
    let mut others = others;
    others.push(newcomer);
    // A good one after it: the canary applies it, then every other node.
    let good = store.put("logging", r#"{"level": "warn"}"#);
    let applied = canary.event_of(good);
    assert_eq!(applied["outcome"], "applied");
    for n in &others {
        let label = format!("etcd:logging@{good}");
        let (e, before) = n.until(20, |e| e["config_path"] == label.as_str());
        assert_eq!(e["outcome"], "applied");
        let bad_label = format!("etcd:logging@{bad}");
        assert!(
            before
                .iter()
                .all(|b| b["config_path"] != bad_label.as_str()),
            "a node tried what the canary refused: {before:#?}"
        );
        assert_eq!(n.config()["level"], "warn");
    }
    fleet_until(&canary.manifest(), |v| v["converged"] == true);
    store.clear();
}

#[test]
fn a_hundred_nodes_on_one_etcd_all_apply_each_put() {
    if etcd_program().is_none() {
        let _: Option<()> = cannot_run("a_hundred_nodes", "no `etcd` on PATH");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hotreload"))
        .args(["fleet-bench", "--nodes", "100", "--puts", "5", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(figures["nodes"], 100);
    assert_eq!(figures["puts"], 5);
    let all = figures["all_nodes_applied_ms"]["p50"].as_f64().unwrap();
    let floor = figures["etcd_put_to_watch_ms"]["p50"].as_f64().unwrap();
    assert!(all > 0.0 && floor > 0.0, "{figures:#}");
}

#[test]
fn the_quick_start_nodes_are_manifests_the_daemon_takes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fleet");
    let a = hotreload::daemon::Manifest::load(&root.join("node-a.toml")).unwrap();
    let b = hotreload::daemon::Manifest::load(&root.join("node-b.toml")).unwrap();
    assert!(a.node.canary && !b.node.canary);
    assert_eq!(a.etcd, b.etcd);
    assert_eq!(a.etcd.as_ref().unwrap().prefix, "/hotreload/demo");
    let keys = |m: &hotreload::daemon::Manifest| {
        m.etcd_components()
            .map(|(d, k, _)| (d.name.clone(), k.to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&a), [("logging".to_owned(), "logging".to_owned())]);
    assert_eq!(keys(&a), keys(&b));
    // Their state directories differ: two nodes on one machine.
    assert_ne!(a.settings.state_dir, b.settings.state_dir);
}

#[test]
fn a_node_logs_in_when_etcd_authentication_is_on() {
    let Some((server, p, store, r1)) =
        setup("a_node_logs_in_when_etcd_authentication_is_on", "auth")
    else {
        return;
    };
    let mut c = store.client.clone();
    store.rt.block_on(async {
        c.user_add("root", "root-secret-1", None).await.unwrap();
        c.role_add("root").await.unwrap();
        c.user_grant_role("root", "root").await.unwrap();
        c.auth_enable().await.unwrap();
    });
    let with_user = |password: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("etcd.password"), password).unwrap();
        std::fs::write(
            dir.path().join("hotreload.toml"),
            format!(
                "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndebounce_ms = 50\n\
                 [source.etcd]\nendpoints = [\"{}\"]\nprefix = \"{p}\"\nlease_ttl_s = 2\n\
                 user = \"root\"\npassword_file = \"etcd.password\"\n\
                 [node]\nid = \"secure\"\n\
                 [[component]]\nname = \"logging\"\nhandler = \"bundled:logging\"\n\
                 config = \"etcd:logging\"\n",
                server.endpoint()
            ),
        )
        .unwrap();
        dir
    };
    // A wrong password stops the start, saying so.
    let wrong = with_user("not-the-password");
    let out = hotreload()
        .arg("run")
        .arg(wrong.path().join("hotreload.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("etcd refused the login of user \"root\""),
        "{err}"
    );
    // The right one: the node reads, watches and acknowledges.
    let right = with_user("root-secret-1\n");
    let node = Node {
        daemon: Some(run(&right.path().join("hotreload.toml"))),
        api: Some(wait_ready(right.path(), None)),
        dir: right,
    };
    node.event_of(r1);
    let authed = Store::with_options(
        &server.endpoint(),
        &p,
        Some(hotreload::fleet::ConnectOptions::new().with_user("root", "root-secret-1")),
    );
    let r2 = authed.put("logging", r#"{"level": "debug"}"#);
    assert_eq!(node.event_of(r2)["outcome"], "applied");
    let deadline = Instant::now() + Duration::from_secs(10);
    while authed.keys("status/secure/").is_empty() {
        assert!(Instant::now() < deadline, "no acknowledgement written");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_daemons_given_one_node_id_never_speak_for_each_other() {
    let Some((server, p, store, r1)) = setup("two_daemons_given_one_node_id", "twins") else {
        return;
    };
    let first = Node::new(&server.endpoint(), &p, "twin", true, "");
    first.event_of(r1);
    let record = |store: &Store| -> Value {
        let mut c = store.client.clone();
        let got = store
            .rt
            .block_on(c.get(format!("{p}/nodes/twin"), None))
            .unwrap();
        got.kvs().first().map_or(Value::Null, |kv| {
            serde_json::from_slice(kv.value()).unwrap()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while record(&store).is_null() {
        assert!(Instant::now() < deadline, "the first twin never registered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = record(&store)["started"].clone();
    // A copy of the manifest with the same id, not a canary: it runs, but
    // it does not take the id (the canary stays a canary).
    let second = Node::new(&server.endpoint(), &p, "twin", false, "");
    second.event_of(r1);
    second
        .daemon()
        .wait_log("node id \"twin\" is live in the fleet already", 15);
    let now = record(&store);
    assert_eq!(
        (now["canary"].as_bool(), &now["started"]),
        (Some(true), &started)
    );
    // The first stops cleanly: the second takes the id.
    first.daemon().signal("TERM");
    second.daemon().wait_log("this node's id is free again", 15);
    let deadline = Instant::now() + Duration::from_secs(10);
    while record(&store)["canary"] != false {
        assert!(
            Instant::now() < deadline,
            "the second twin never registered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    store.clear();
}

#[test]
fn a_node_reaches_etcd_over_tls_with_its_client_certificate() {
    if etcd_program().is_none() {
        let _: Option<()> = cannot_run("a_node_reaches_etcd_over_tls", "no `etcd` on PATH");
        return;
    }
    let server = EtcdServer::start_tls_temporary().unwrap();
    assert!(server.endpoint().starts_with("https://"));
    let p = prefix("tls");
    let tls = hotreload::fleet::TlsOptions::new()
        .ca_certificate(hotreload::fleet::Certificate::from_pem(
            std::fs::read(server.ca()).unwrap(),
        ))
        .identity(hotreload::fleet::Identity::from_pem(
            std::fs::read(server.client_cert()).unwrap(),
            std::fs::read(server.client_key()).unwrap(),
        ));
    let store = Store::with_options(
        &server.endpoint(),
        &p,
        Some(hotreload::fleet::ConnectOptions::new().with_tls(tls)),
    );
    let r1 = store.put("logging", GOOD);
    let manifest = |dir: &Path, with_cert: bool| {
        let cert = if with_cert {
            format!(
                "cert_file = \"{}\"\nkey_file = \"{}\"\n",
                server.client_cert().display(),
                server.client_key().display()
            )
        } else {
            String::new()
        };
        std::fs::write(
            dir.join("hotreload.toml"),
            format!(
                "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndebounce_ms = 50\n\
                 [source.etcd]\nendpoints = [\"{}\"]\nprefix = \"{p}\"\n\
                 connect_timeout_ms = 2000\nca_file = \"{}\"\n{cert}\
                 [node]\nid = \"tls\"\n\
                 [[component]]\nname = \"logging\"\nhandler = \"bundled:logging\"\n\
                 config = \"etcd:logging\"\n",
                server.endpoint(),
                server.ca().display()
            ),
        )
        .unwrap();
    };
    // Without a client certificate etcd refuses the node: with nothing
    // committed it cannot start, and says etcd is why.
    let bare = tempfile::tempdir().unwrap();
    manifest(bare.path(), false);
    let out = hotreload()
        .arg("run")
        .arg(bare.path().join("hotreload.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("etcd at https://127.0.0.1:"), "{err}");
    // With it: the node reads, watches and acknowledges over TLS.
    let dir = tempfile::tempdir().unwrap();
    manifest(dir.path(), true);
    let node = Node {
        daemon: Some(run(&dir.path().join("hotreload.toml"))),
        api: Some(wait_ready(dir.path(), None)),
        dir,
    };
    node.event_of(r1);
    let r2 = store.put("logging", r#"{"level": "debug"}"#);
    assert_eq!(node.event_of(r2)["outcome"], "applied");
    assert!(node.connected());
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.keys("status/tls/").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no acknowledgement written over TLS"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (view, code) = fleet_until(&node.manifest(), |v| v["converged"] == true);
    assert_eq!(code, 0, "{view:#}");
}
