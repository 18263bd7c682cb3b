//! What an operator watches: a real Prometheus scraping the daemon,
//! `promtool` on its metrics, the webhook against live, failing and hanging
//! receivers, and the Kubernetes example's manifest.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::admin::{Api, start_admin};
use crate::cannot_run;
use hotreload_cli::etcd_server::which;

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Percent-encodes a query value.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A metric's value in the daemon's classic text, summed over its series
/// that carry every label given.
fn metric(api: &Api, name: &str, labels: &[&str]) -> f64 {
    let text = api.get("/metrics").text();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name)
                && matches!(l.as_bytes().get(name.len()), Some(b'{' | b' '))
                && labels.iter().all(|want| l.contains(want))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Prometheus {
    child: Child,
    _dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(binary: &Path, target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: hotreload\n    \
                 static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Prometheus {
            child,
            _dir: dir,
            addr,
        }
    }

    /// An instant query's result vector (empty while Prometheus starts).
    fn query(&self, q: &str) -> Vec<Value> {
        let Ok(mut s) = TcpStream::connect(self.addr) else {
            return Vec::new();
        };
        let req = format!(
            "GET /api/v1/query?query={} HTTP/1.0\r\nHost: {}\r\n\r\n",
            encode(q),
            self.addr
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = String::new();
        let _ = s.read_to_string(&mut raw);
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Waits (up to a minute) for a query to give `n` series.
    fn wait_for(&self, q: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.query(q);
            if r.len() >= n {
                return r;
            }
            assert!(Instant::now() < deadline, "{q}: {r:?} after a minute");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The value of a series in a query result, by component.
fn value_of(result: &[Value], component: &str) -> f64 {
    result
        .iter()
        .find(|s| s["metric"]["component"] == component)
        .and_then(|s| s["value"][1].as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("no series of {component} in {result:?}"))
}

#[test]
fn a_real_prometheus_scrapes_the_daemon_and_promtool_accepts_the_metrics() {
    let (Some(prometheus), Some(promtool)) = (which("prometheus"), which("promtool")) else {
        cannot_run::<()>(
            "a_real_prometheus_scrapes_the_daemon",
            "prometheus and promtool are not installed (apt-get install prometheus)",
        );
        return;
    };
    let d = start_admin("", "", None);
    let api = &d.api;
    // logging: applied, then rejected (its last reload failed); plugin: applied.
    let path = "/v1/components/logging/config";
    assert_eq!(api.put_json(path, &json!({"level": "debug"})).status, 200);
    assert_eq!(api.put_json(path, &json!({"level": "noisy"})).status, 422);

    // promtool's linter on what a non-OpenMetrics client gets.
    let text = api.get("/metrics").text();
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // OpenMetrics for a client that asks for it.
    let om = api.call(
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
        b"",
    );
    assert!(
        om.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.text().ends_with("# EOF\n"));

    // Prometheus itself scrapes it (OpenMetrics) and answers queries.
    let p = Prometheus::start(&prometheus, api.addr);
    let up = p.wait_for("up{job=\"hotreload\"} == 1", 1);
    assert_eq!(up.len(), 1, "{up:?}");
    let last = p.wait_for("hotreload_config_last_reload_successful", 2);
    assert_eq!(value_of(&last, "logging"), 0.0);
    assert_eq!(value_of(&last, "plugin"), 1.0);
    let rejected = p.wait_for(
        "hotreload_reloads_total{component=\"logging\",outcome=\"rejected\"}",
        1,
    );
    assert_eq!(value_of(&rejected, "logging"), 1.0);
    let failures = p.wait_for("hotreload_handler_failures_total{cause=\"invalid\"}", 1);
    assert_eq!(value_of(&failures, "logging"), 1.0);
    let version = p.wait_for("hotreload_config_version", 2);
    assert_eq!(value_of(&version, "logging"), 2.0);
    let count = p.wait_for("hotreload_reload_duration_seconds_count", 1);
    assert!(
        count[0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            >= 4.0
    );
    let build = p.wait_for("hotreload_build_info", 1);
    assert_eq!(build[0]["metric"]["version"], env!("CARGO_PKG_VERSION"));
    let stamp = p.wait_for("hotreload_config_last_reload_success_timestamp_seconds", 2);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - value_of(&stamp, "logging")).abs() < 600.0);
    let requests = p.wait_for("hotreload_admin_requests_total{route=\"/metrics\"}", 1);
    assert!(!requests.is_empty());
}

/// What a webhook receiver does with each request.
#[derive(Clone, Copy)]
enum Receiver {
    Accepts,
    Fails,
    Hangs,
}

/// A webhook receiver on loopback: every request's body, as it came.
fn receiver(mode: Receiver) -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let seen = seen.clone();
            std::thread::spawn(move || serve(stream, mode, &seen));
        }
    });
    (addr, got)
}

fn serve(stream: TcpStream, mode: Receiver, seen: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        seen.lock()
            .unwrap()
            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
        let answer = match mode {
            Receiver::Accepts => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            Receiver::Fails => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
            Receiver::Hangs => {
                std::thread::sleep(Duration::from_secs(3600));
                return;
            }
        };
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const LOGGING: &str = "/v1/components/logging/config";

#[test]
fn the_webhook_gets_failed_reloads_only() {
    let (addr, got) = receiver(Receiver::Accepts);
    let d = start_admin(
        "",
        &format!("[notify]\nurl = \"http://{addr}/hook\"\n"),
        None,
    );
    let api = &d.api;
    assert_eq!(
        api.put_json(LOGGING, &json!({"level": "debug"})).status,
        200
    );
    let bad = api.put_json(LOGGING, &json!({"level": "blaring"})).json();
    assert_eq!(api.put_json(LOGGING, &json!({"level": "warn"})).status, 200);
    wait_until("the webhook delivery", 20, || {
        metric(api, "hotreload_notify_delivered_total", &[]) == 1.0
    });
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["id"], bad["id"]);
    assert_eq!(got[0]["outcome"], "rejected");
    assert_eq!(got[0]["error"]["field"], "/level");
    assert_eq!(metric(api, "hotreload_notify_failed_total", &[]), 0.0);
}

#[test]
fn a_failing_webhook_is_retried_then_counted() {
    let (addr, got) = receiver(Receiver::Fails);
    let notify =
        format!("[notify]\nurl = \"http://{addr}/\"\nretries = 1\ninclude_success = true\n");
    let d = start_admin("", &notify, None);
    let api = &d.api;
    // The two initial loads were sent too (include_success): each tried twice.
    wait_until("two failed deliveries", 30, || {
        metric(api, "hotreload_notify_failed_total", &[]) == 2.0
    });
    assert_eq!(got.lock().unwrap().len(), 4);
    assert_eq!(metric(api, "hotreload_notify_delivered_total", &[]), 0.0);
}

#[test]
fn a_hanging_webhook_never_slows_a_reload_and_nothing_goes_uncounted() {
    let (addr, _got) = receiver(Receiver::Hangs);
    let notify =
        format!("[notify]\nurl = \"http://{addr}/\"\nretries = 0\ntimeout_ms = 2000\nqueue = 2\n");
    let d = start_admin("", &notify, None);
    let api = &d.api;
    for i in 0..6 {
        let started = Instant::now();
        let r = api.put_json(LOGGING, &json!({"level": format!("bad{i}")}));
        assert_eq!(r.status, 422);
        // Well below the webhook's 2 s timeout: the reload did not wait for it.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    // Every one of the six is delivered, failed or dropped — and counted.
    wait_until("every event accounted for", 30, || {
        let failed = metric(api, "hotreload_notify_failed_total", &[]);
        let dropped = metric(api, "hotreload_notify_dropped_total", &[]);
        failed + dropped == 6.0
    });
    assert!(metric(api, "hotreload_notify_dropped_total", &[]) >= 1.0);
    assert_eq!(metric(api, "hotreload_notify_delivered_total", &[]), 0.0);
    assert_eq!(metric(api, "hotreload_notify_queue_length", &[]), 0.0);
}

#[test]
fn events_unsent_at_shutdown_are_counted_and_said() {
    let (addr, _got) = receiver(Receiver::Hangs);
    let notify = format!("[notify]\nurl = \"http://{addr}/\"\ntimeout_ms = 60000\n");
    let mut d = start_admin("", &notify, None);
    for i in 0..3 {
        let r = d
            .api
            .put_json(LOGGING, &json!({"level": format!("bad{i}")}));
        assert_eq!(r.status, 422);
    }
    wait_until("three events taken by the sender", 20, || {
        metric(&d.api, "hotreload_notify_queue_length", &[]) == 2.0
    });
    d._daemon.signal("TERM");
    d._daemon.wait_log("3 event(s) not sent at shutdown", 20);
    assert_eq!(d._daemon.wait_exit(20), 0);
}

#[test]
fn the_kubernetes_example_manifest_is_one_the_daemon_takes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kubernetes");
    let yaml = std::fs::read(root.join("configmap.yaml")).unwrap();
    let input = hotreload::sources::Format::Yaml.decode(yaml).unwrap();
    let map: Value = match input {
        hotreload::ConfigInput::Json(text) => serde_json::from_str(&text).unwrap(),
        hotreload::ConfigInput::Value(v) => v,
    };
    let toml = map["data"]["hotreload.toml"]
        .as_str()
        .expect("the manifest in the ConfigMap");
    let m = hotreload::daemon::Manifest::parse(Path::new("/etc/hotreload/hotreload.toml"), toml)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.admin.listen, "0.0.0.0:7070");
    assert!(m.admin.token_file.is_some());
    let names: Vec<&str> = m.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["logging", "plugin"]);
    // Its component configurations pass their handlers.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let runtime = hotreload::Runtime::new(hotreload::Settings::default()).unwrap();
        for (name, file) in [("logging", "logging.json"), ("plugin", "plugin.yaml")] {
            let text = map["data"][file]
                .as_str()
                .unwrap_or_else(|| panic!("{file} in the ConfigMap"));
            let input = hotreload::sources::Format::of(Path::new(file))
                .decode(text.as_bytes().to_vec())
                .unwrap();
            let wasm = hotreload_handlers::by_name(name).unwrap();
            let spec = hotreload::ComponentSpec::new(name, wasm, input);
            let event = runtime
                .add_component(spec)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(event.outcome, hotreload::Outcome::Applied, "{file}");
        }
        runtime.shutdown().await;
    });
}
