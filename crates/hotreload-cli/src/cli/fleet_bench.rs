//! `hotreload fleet-bench`: N nodes (daemons in this process, each with its
//! own etcd client, watch and lease) on one etcd; the time from a put to
//! every node having applied it, beside etcd's own put → watch latency.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotreload::daemon::{Daemon, Manifest};
use hotreload::sources::etcd_label;
use hotreload::{Event, Outcome};
use hotreload_handlers::by_name as bundled;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::etcd_server::EtcdServer;

/// `hotreload fleet-bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct FleetBenchArgs {
    /// etcd to use (default: start one from PATH on free loopback ports).
    #[arg(long)]
    endpoint: Option<String>,
    /// Nodes (runtimes in this process).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Puts to time.
    #[arg(long, default_value_t = 20)]
    puts: usize,
    /// Make node 0 a canary: the others wait for its acknowledgement.
    #[arg(long)]
    canary: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Figures {
    nodes: usize,
    puts: usize,
    canary: bool,
    /// etcd alone: put → a plain watcher's event.
    etcd_put_to_watch_ms: Quantiles,
    /// Put → the first node applied it.
    first_node_applied_ms: Quantiles,
    /// Put → every node applied it.
    all_nodes_applied_ms: Quantiles,
    /// Starting the nodes (each reads every key, registers, watches).
    start_ms: f64,
}

#[derive(Debug, Serialize)]
struct Quantiles {
    p50: f64,
    p99: f64,
    max: f64,
}

fn quantiles(mut v: Vec<f64>) -> Quantiles {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[i.min(v.len() - 1)]
    };
    Quantiles {
        p50: at(0.5),
        p99: at(0.99),
        max: v.last().copied().unwrap_or(0.0),
    }
}

fn config(seq: usize) -> String {
    format!(
        r#"{{"level":"{}","format":"text","outputs":[{{"type":"stdout"}}],"fields":{{"seq":"{seq}"}}}}"#,
        if seq.is_multiple_of(2) {
            "info"
        } else {
            "debug"
        }
    )
}

fn manifest(dir: &Path, endpoint: &str, prefix: &str, node: usize, canary: bool) -> PathBuf {
    let path = dir.join(format!("node-{node}.toml"));
    let text = format!(
        r#"[runtime]
debounce_ms = 0
state_dir = "state-{node}"
# Many runtimes in one process: a small instance pool each (the mappings
# of every pool count against the kernel's per-process limit).
pool_instances = 4
[admin]
listen = "off"
[source.etcd]
endpoints = ["{endpoint}"]
prefix = "{prefix}"
[node]
id = "node-{node}"
canary = {canary}
[[component]]
name = "logging"
handler = "bundled:logging"
config = "etcd:logging"
"#
    );
    let _ = std::fs::write(&path, text);
    path
}

/// Exit status: 0 measured; 2 etcd or a node could not start, or a put did
/// not reach every node within 30 s.
pub(crate) fn run(args: FleetBenchArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(measure(&args)) {
        Ok(f) => {
            if args.json {
                println!("{}", serde_json::to_string(&f).unwrap_or_default());
            } else {
                let row = |name: &str, q: &Quantiles| {
                    println!(
                        "{name:<34} p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
                        q.p50, q.p99, q.max
                    );
                };
                println!(
                    "fleet: {} node(s){}, {} puts, debounce 0 ms (start {:.0} ms)",
                    f.nodes,
                    if f.canary { ", node-0 a canary" } else { "" },
                    f.puts,
                    f.start_ms
                );
                row("etcd alone: put -> watch event", &f.etcd_put_to_watch_ms);
                row("put -> first node applied", &f.first_node_applied_ms);
                row("put -> every node applied", &f.all_nodes_applied_ms);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nerror: {e}");
            ExitCode::from(2)
        }
    }
}

async fn measure(args: &FleetBenchArgs) -> Result<Figures, String> {
    let server;
    let endpoint = match &args.endpoint {
        Some(e) => e.clone(),
        None => {
            server = tokio::task::spawn_blocking(EtcdServer::start_temporary)
                .await
                .map_err(|e| e.to_string())??;
            server.endpoint()
        }
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("/hotreload-bench/{}-{nanos}", std::process::id());
    let dir = std::env::temp_dir().join(format!(
        "hotreload-fleet-bench-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let _cleanup = RemoveDir(dir.clone());
    let mut client = hotreload::fleet::Client::connect([endpoint.as_str()], None)
        .await
        .map_err(|e| e.to_string())?;
    let key = format!("{prefix}/logging");
    client
        .put(key.clone(), config(0), None)
        .await
        .map_err(|e| format!("etcd at {endpoint}: {e}"))?;

    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Arc<Event>, Instant)>();
    let mut daemons = Vec::new();
    let started = Instant::now();
    for n in 0..args.nodes {
        let path = manifest(&dir, &endpoint, &prefix, n, args.canary && n == 0);
        let m = Manifest::load(&path).map_err(|e| e.to_string())?;
        let mut d = Daemon::new(m, bundled).map_err(|e| e.to_string())?;
        let mut events = d.runtime().event_stream();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                if tx.send((n, e, Instant::now())).is_err() {
                    return;
                }
            }
        });
        d.start().await.map_err(|e| format!("node {n}: {e}"))?;
        daemons.push(d);
        if !args.json {
            eprint!("\r\x1b[2K  starting node {}/{} …", n + 1, args.nodes);
        }
    }
    let start_ms = started.elapsed().as_secs_f64() * 1000.0;
    // A plain watcher: etcd's own put → watch latency, the floor.
    let rev0 = client
        .get(key.clone(), None)
        .await
        .map_err(|e| e.to_string())?
        .header()
        .map_or(0, |h| h.revision());
    let mut floor = client
        .watch(
            key.clone(),
            Some(hotreload::fleet::WatchOptions::new().with_start_revision(rev0 + 1)),
        )
        .await
        .map_err(|e| e.to_string())?;
    let (mut floors, mut firsts, mut alls) = (Vec::new(), Vec::new(), Vec::new());
    for i in 1..=args.puts {
        if !args.json {
            eprint!("\r\x1b[2K  put {i}/{} …", args.puts);
        }
        // Let the last put's acknowledgements settle.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while rx.try_recv().is_ok() {}
        let t0 = Instant::now();
        let put = client
            .put(key.clone(), config(i), None)
            .await
            .map_err(|e| e.to_string())?;
        let rev = put.header().map_or(0, |h| h.revision());
        let label = etcd_label("logging", rev);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut floor_at = None;
        while floor_at.is_none() {
            let msg = tokio::time::timeout_at(deadline, floor.message())
                .await
                .map_err(|_| format!("etcd's watcher did not see revision {rev} within 30 s"))?
                .map_err(|e| e.to_string())?;
            if msg.is_some_and(|m| {
                m.events()
                    .iter()
                    .any(|e| e.kv().is_some_and(|kv| kv.mod_revision() == rev))
            }) {
                floor_at = Some(Instant::now());
            }
        }
        let mut applied: HashMap<usize, Instant> = HashMap::new();
        while applied.len() < args.nodes {
            let (n, e, at) = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .map_err(|_| {
                    format!(
                        "revision {rev} reached {} of {} nodes within 30 s",
                        applied.len(),
                        args.nodes
                    )
                })?
                .ok_or("the nodes stopped")?;
            if e.config_path.as_deref() == Some(label.as_str()) {
                if e.outcome != Outcome::Applied {
                    return Err(format!("node {n}: revision {rev}: {}", e.summary()));
                }
                applied.entry(n).or_insert(at);
            }
        }
        let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1000.0;
        floors.push(floor_at.map_or(0.0, ms));
        firsts.push(applied.values().map(|t| ms(*t)).fold(f64::MAX, f64::min));
        alls.push(applied.values().map(|t| ms(*t)).fold(0.0, f64::max));
    }
    if !args.json {
        eprint!("\r\x1b[2K");
    }
    for mut d in daemons {
        d.shutdown().await;
    }
    let _ = client
        .delete(
            prefix.clone(),
            Some(hotreload::fleet::DeleteOptions::new().with_prefix()),
        )
        .await;
    Ok(Figures {
        nodes: args.nodes,
        puts: args.puts,
        canary: args.canary,
        etcd_put_to_watch_ms: quantiles(floors),
        first_node_applied_ms: quantiles(firsts),
        all_nodes_applied_ms: quantiles(alls),
        start_ms,
    })
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
