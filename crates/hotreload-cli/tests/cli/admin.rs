//! The admin API of a running daemon, over real TCP: every endpoint, the
//! token and Host checks, bad input, slow and vanishing clients, two
//! writers at once, many event streams, restarts, and the CLI clients.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::daemon_cli::{Running, hotreload, output, run};

/// One HTTP/1.1 exchange's answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The body of a chunked answer.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&raw[..eol]).unwrap().trim();
        let size = usize::from_str_radix(size.split(';').next().unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}

/// Parses a whole answer (the connection closed after it).
fn parse(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let body = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A client of one daemon's admin API.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) addr: SocketAddr,
    pub(crate) token: Option<String>,
}

impl Api {
    /// A request with the daemon's address as `Host` and the token, if any.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let host = self.addr.to_string();
        let mut all: Vec<(&str, String)> = vec![("Host", host)];
        if let Some(t) = &self.token {
            all.push(("Authorization", format!("Bearer {t}")));
        }
        for (k, v) in headers {
            all.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            all.push((k, (*v).to_owned()));
        }
        raw_request(self.addr, method, path, &all, body)
    }

    pub(crate) fn get(&self, path: &str) -> Reply {
        self.call("GET", path, &[], b"")
    }

    pub(crate) fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.call(
            "PUT",
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    pub(crate) fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.call(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }
}

pub(crate) fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    // A server may answer (413) before the whole body is sent.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse(&raw)
}

/// A daemon with its admin API on a free loopback port.
pub(crate) struct AdminDaemon {
    pub(crate) dir: tempfile::TempDir,
    /// Kept for its lifetime: dropping it stops the daemon.
    pub(crate) _daemon: Running,
    pub(crate) api: Api,
}

impl AdminDaemon {
    pub(crate) fn manifest(&self) -> PathBuf {
        self.dir.path().join("hotreload.toml")
    }
}

/// Writes a manifest with `admin` as its `[admin]` body (listen on port 0
/// unless it says otherwise) and the `logging` and `plugin` components.
pub(crate) fn write_admin_manifest(dir: &Path, admin: &str, extra: &str) -> PathBuf {
    std::fs::write(dir.join("logging.json"), r#"{"level": "info"}"#).unwrap();
    std::fs::write(dir.join("plugin.yaml"), "enabled: true\nworkers: 4\n").unwrap();
    let listen = if admin.contains("listen") {
        ""
    } else {
        "listen = \"127.0.0.1:0\"\n"
    };
    let manifest = format!(
        "[runtime]\ndebounce_ms = 50\nretry_interval_ms = 1\n\
         [admin]\n{listen}{admin}\n{extra}\n\
         [[component]]\nname = \"logging\"\nhandler = \"bundled:logging\"\nconfig = \"logging.json\"\n\
         [[component]]\nname = \"plugin\"\nhandler = \"bundled:plugin\"\nconfig = \"plugin.yaml\"\n"
    );
    let path = dir.join("hotreload.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

/// Waits for a daemon's admin address file, then for `/readyz`.
pub(crate) fn wait_ready(dir: &Path, token: Option<String>) -> Api {
    let file = dir.join(".hotreload").join("admin.addr");
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr: SocketAddr = loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(a) = text.trim().parse()
        {
            break a;
        }
        assert!(Instant::now() < deadline, "no {} in time", file.display());
        std::thread::sleep(Duration::from_millis(20));
    };
    let api = Api { addr, token };
    loop {
        if api.get("/readyz").status == 200 {
            return api;
        }
        assert!(Instant::now() < deadline, "not ready in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn start_admin(admin: &str, extra: &str, token: Option<&str>) -> AdminDaemon {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_admin_manifest(dir.path(), admin, extra);
    let daemon = run(&manifest);
    let api = wait_ready(dir.path(), token.map(str::to_owned));
    AdminDaemon {
        dir,
        _daemon: daemon,
        api,
    }
}

const LOGGING: &str = "/v1/components/logging";
const LOGGING_CONFIG: &str = "/v1/components/logging/config";

#[test]
fn components_config_history_and_rollback_through_the_api() {
    let d = start_admin("", "", None);
    let api = &d.api;
    assert_eq!(api.get("/healthz").json()["status"], "ok");
    assert_eq!(api.get("/readyz").json()["ready"], true);

    let all = api.get("/v1/components").json();
    let names: Vec<&str> = all["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["logging", "plugin"]);
    let one = api.get(LOGGING);
    assert_eq!(one.status, 200);
    assert_eq!(one.header("etag"), Some("\"1\""));
    let c = one.json();
    assert_eq!(c["config"], json!({"level": "info"}));
    assert_eq!(c["source"]["kind"], "initial");
    assert_eq!(c["support_level"], "full");
    assert_eq!(c["last_event"]["outcome"], "applied");
    assert_eq!(c["degraded"], false);

    // JSON, TOML and YAML by Content-Type; the answer is the event.
    let r = api.put_json(&format!("{LOGGING}/config"), &json!({"level": "debug"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["outcome"], "applied");
    assert_eq!(r.json()["version"], 2);
    assert_eq!(r.header("etag"), Some("\"2\""));
    let r = api.call(
        "PUT",
        &format!("{LOGGING}/config"),
        &[("Content-Type", "application/toml")],
        b"level = \"warn\"\n",
    );
    assert_eq!((r.status, r.json()["version"].clone()), (200, json!(3)));
    let r = api.call(
        "PUT",
        &format!("{LOGGING}/config"),
        &[("Content-Type", "application/yaml; charset=utf-8")],
        b"level: error\n",
    );
    assert_eq!((r.status, r.json()["version"].clone()), (200, json!(4)));
    let c = api.get(LOGGING).json();
    assert_eq!(c["source"]["kind"], "api");
    assert_eq!(c["config"], json!({"level": "error"}));
    // The same configuration again: unchanged, 200, no version.
    let r = api.call(
        "PUT",
        &format!("{LOGGING}/config"),
        &[("Content-Type", "application/yaml")],
        b"level: error\n",
    );
    assert_eq!(
        (r.status, r.json()["outcome"].clone()),
        (200, json!("unchanged"))
    );

    // Refused by the handler: 422 with the event; the old one stays.
    let r = api.put_json(&format!("{LOGGING}/config"), &json!({"level": "loud"}));
    assert_eq!(r.status, 422, "{}", r.text());
    let e = r.json();
    assert_eq!(e["outcome"], "rejected");
    assert_eq!(e["cause"], "invalid");
    assert_eq!(e["error"]["field"], "/level");
    assert_eq!(api.get(LOGGING).json()["config"], json!({"level": "error"}));
    // Malformed text in each format: 422, parse phase, named.
    for (ct, body) in [
        ("application/json", &b"{\"level\": "[..]),
        ("application/toml", b"level = \n"),
        ("application/yaml", b"level: [unclosed\n"),
    ] {
        let r = api.call(
            "PUT",
            &format!("{LOGGING}/config"),
            &[("Content-Type", ct)],
            body,
        );
        assert_eq!(r.status, 422, "{ct}: {}", r.text());
        assert_eq!(r.json()["failed_phase"], "parse", "{ct}");
    }
    // A Content-Type it cannot read: 415, nothing recorded.
    let r = api.call(
        "PUT",
        &format!("{LOGGING}/config"),
        &[("Content-Type", "text/plain")],
        b"level: debug",
    );
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["field"], "Content-Type");

    // Restart required (the plugin's `enabled`): 409; pending in GET.
    let r = api.put_json(
        "/v1/components/plugin/config",
        &json!({"enabled": false, "workers": 4}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["outcome"], "restart_required");
    assert_eq!(
        api.get("/v1/components/plugin").json()["pending"],
        json!({"enabled": false, "workers": 4})
    );

    // A dry run says what would happen; nothing changes.
    let r = api.put_json(
        &format!("{LOGGING}/config?dry_run=true"),
        &json!({"level": "trace"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["dry_run"], true);
    let r = api.put_json(
        &format!("{LOGGING}/config?dry_run=true"),
        &json!({"level": "x"}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(api.get(LOGGING).json()["version"], 4);

    // History, one version, a diff, and a rollback (a new version).
    let v = api.get(&format!("{LOGGING}/versions")).json();
    let versions: Vec<u64> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [4, 3, 2, 1]);
    let r = api.get(&format!("{LOGGING}/versions/2"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["config"], json!({"level": "debug"}));
    assert_eq!(r.json()["source"]["kind"], "api");
    let diff = api
        .get(&format!("{LOGGING}/versions/4/diff?against=2"))
        .json();
    assert_eq!(
        diff["changes"],
        json!([{"op": "changed", "path": "/level", "old": "debug", "new": "error"}])
    );
    assert_eq!(api.get(&format!("{LOGGING}/versions/99")).status, 404);
    let r = api.post_json(&format!("{LOGGING}/rollback"), &json!({"to_version": 2}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["kind"], "rollback_to_version");
    assert_eq!(r.json()["from_version"], 2);
    assert_eq!(r.json()["version"], 5);
    let c = api.get(LOGGING).json();
    assert_eq!(c["config"], json!({"level": "debug"}));
    assert_eq!(c["source"]["from_version"], 2);
    let r = api.post_json(&format!("{LOGGING}/rollback"), &json!({"to_version": 77}));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = api.post_json(&format!("{LOGGING}/rollback"), &json!({"to": 1}));
    assert_eq!(r.status, 400, "{}", r.text());

    // Stats count what happened.
    let s = api.get("/v1/stats").json();
    assert!(s["total"].as_u64().unwrap() >= 10, "{s}");
    assert!(
        s["components"]["logging"]["by_outcome"]["rejected"]
            .as_u64()
            .unwrap()
            >= 4
    );

    // Unknown component, endpoint and method.
    let r = api.put_json("/v1/components/nope/config", &json!({}));
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("nope"));
    assert_eq!(api.get("/v1/components/nope").status, 404);
    assert_eq!(api.get("/v1/nothing").status, 404);
    let r = api.call("DELETE", LOGGING, &[], b"");
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].is_string());
    let r = api.call("GET", &format!("{LOGGING}/rollback"), &[], b"");
    assert_eq!(r.status, 405);
}

#[test]
fn a_batch_applies_all_or_nothing() {
    let d = start_admin("", "", None);
    let api = &d.api;
    let r = api.post_json(
        "/v1/batch",
        &json!({"components": {
            "logging": {"level": "debug"},
            "plugin": {"enabled": true, "workers": 8},
        }}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["outcome"], "applied");
    let batch = b["batch"].as_str().unwrap();
    for e in b["events"].as_array().unwrap() {
        assert_eq!(e["batch"], batch);
        assert_eq!(e["outcome"], "applied");
    }
    // One member refused: neither applies.
    let r = api.post_json(
        "/v1/batch",
        &json!({"components": {
            "logging": {"level": "trace"},
            "plugin": {"enabled": true, "workers": -1},
        }}),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(api.get(LOGGING).json()["config"], json!({"level": "debug"}));
    assert_eq!(
        api.get("/v1/components/plugin").json()["config"],
        json!({"enabled": true, "workers": 8})
    );
    // Unknown members and bad bodies are refused before anything runs.
    let r = api.post_json(
        "/v1/batch",
        &json!({"components": {"logging": {}, "ghost": {}}}),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["field"], "/components/ghost");
    let r = api.call(
        "POST",
        "/v1/batch",
        &[("Content-Type", "application/json")],
        b"{nope",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "body");
    let r = api.post_json("/v1/batch", &json!({"components": {}}));
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn a_token_guards_everything_but_the_probes_and_foreign_hosts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let token = "s3cret-token-of-some-length";
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    let manifest = write_admin_manifest(dir.path(), "token_file = \"token\"", "");
    let _daemon = run(&manifest);
    let api = wait_ready(dir.path(), Some(token.into()));
    let anonymous = Api {
        addr: api.addr,
        token: None,
    };
    let wrong = Api {
        addr: api.addr,
        token: Some("s3cret-token-of-some-lengtH".into()),
    };
    // Probes need no token (a kubelet holds none); /readyz names nothing.
    assert_eq!(anonymous.get("/healthz").status, 200);
    let r = anonymous.get("/readyz");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"ready": true, "loaded": 2, "expected": 2}));
    for path in ["/v1/components", "/metrics", "/v1/events", "/v1/stats"] {
        let r = anonymous.get(path);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(wrong.get(path).status, 401, "{path}");
        assert_eq!(api.get(path).status, 200, "{path}");
    }
    let r = wrong.put_json(&format!("{LOGGING}/config"), &json!({"level": "debug"}));
    assert_eq!(r.status, 401);
    assert_eq!(api.get(LOGGING).json()["version"], 1);
    // DNS rebinding: a page of evil.example resolving to 127.0.0.1 sends
    // `Host: evil.example:PORT`.
    let port = api.addr.port();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".into(),
        format!("localhost:{}", port + 1),
    ] {
        let r = api.call("GET", "/v1/components", &[("Host", &host)], b"");
        assert_eq!(r.status, 403, "{host}");
        assert_eq!(r.json()["field"], "Host");
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let r = api.call("GET", "/v1/components", &[("Host", &host)], b"");
        assert_eq!(r.status, 200, "{host}");
    }
    // Rejected requests are counted.
    let m = api.get("/metrics").text();
    assert!(
        m.lines().any(|l| l.starts_with("hotreload_admin_requests_total{")
            && l.contains("code=\"401\"")),
        "{m}"
    );
}

#[test]
fn non_loopback_without_a_token_and_a_busy_port_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_admin_manifest(dir.path(), "listen = \"0.0.0.0:0\"", "");
    let (code, text) = output(&["run", manifest.to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not a loopback address"), "{text}");
    assert!(text.contains("token_file"), "{text}");
    // The port of a running daemon, taken.
    let d = start_admin("", "", None);
    let busy = format!("listen = \"{}\"", d.api.addr);
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_admin_manifest(dir.path(), &busy, "");
    let (code, text) = output(&["run", manifest.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("cannot listen on"), "{text}");
    // A token file too short to be a secret.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "short").unwrap();
    let manifest = write_admin_manifest(dir.path(), "token_file = \"token\"", "");
    let (code, text) = output(&["run", manifest.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("at least 16 characters"), "{text}");
}

#[test]
fn oversized_slow_and_vanishing_clients_change_nothing() {
    let d = start_admin("max_body_bytes = 1024\nrequest_timeout_ms = 500", "", None);
    let api = &d.api;
    // Over the limit: 413, nothing applied.
    let big = json!({"level": "debug", "pad": "x".repeat(4096)});
    let r = api.put_json(&format!("{LOGGING}/config"), &big);
    assert_eq!(r.status, 413, "{}", r.text());
    // A client that sends half its headers and stalls is cut off.
    let started = Instant::now();
    let mut slow = TcpStream::connect(api.addr).unwrap();
    slow.write_all(b"GET /v1/components HTTP/1.1\r\nHost: x")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A client that sends half its body and stalls gets 408.
    let mut slow = TcpStream::connect(api.addr).unwrap();
    let head = format!(
        "PUT {LOGGING}/config HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"level\":",
        api.addr
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // A client that disconnects mid-body: nothing applied, the server goes on.
    for _ in 0..20 {
        let mut gone = TcpStream::connect(api.addr).unwrap();
        gone.write_all(head.as_bytes()).unwrap();
        drop(gone);
    }
    assert_eq!(api.get(LOGGING).json()["version"], 1);
    assert_eq!(api.get(LOGGING).json()["config"], json!({"level": "info"}));
    let r = api.put_json(&format!("{LOGGING}/config"), &json!({"level": "debug"}));
    assert_eq!(r.status, 200);
}

#[test]
fn of_two_writers_on_one_version_exactly_one_wins() {
    let d = start_admin("", "", None);
    let levels = ["trace", "debug", "info", "warn", "error"];
    for round in 0..5 {
        let now = d.api.get(LOGGING);
        let etag = now.header("etag").unwrap().to_owned();
        let current = now.json()["config"]["level"].clone();
        // Two levels, neither the one in force (which would be unchanged).
        let two: Vec<&str> = levels
            .iter()
            .copied()
            .filter(|l| *l != current)
            .take(2)
            .collect();
        let writers: Vec<_> = two
            .into_iter()
            .map(|level| {
                let api = d.api.clone();
                let etag = etag.clone();
                std::thread::spawn(move || {
                    api.call(
                        "PUT",
                        &format!("{LOGGING}/config"),
                        &[("Content-Type", "application/json"), ("If-Match", &etag)],
                        json!({ "level": level }).to_string().as_bytes(),
                    )
                })
            })
            .collect();
        let mut codes: Vec<u16> = writers
            .into_iter()
            .map(|w| w.join().unwrap().status)
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, [200, 412], "round {round}");
    }
    // A stale version is refused with 412 and says why; a malformed one is 400.
    let r = d.api.call(
        "PUT",
        &format!("{LOGGING}/config"),
        &[("Content-Type", "application/json"), ("If-Match", "\"1\"")],
        b"{\"level\": \"error\"}",
    );
    assert_eq!(r.status, 412, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("not 1"),
        "{}",
        r.text()
    );
    let r = d.api.call(
        "PUT",
        &format!("{LOGGING}/config"),
        &[
            ("Content-Type", "application/json"),
            ("If-Match", "yesterday"),
        ],
        b"{\"level\": \"error\"}",
    );
    assert_eq!(r.status, 400);
}

/// Reads server-sent events off a raw stream until `want` `id:` lines came.
fn sse_ids(stream: &mut TcpStream, want: usize, secs: u64) -> Vec<u64> {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut text = String::new();
    let mut buf = [0u8; 8192];
    loop {
        let ids: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: ").or_else(|| l.strip_prefix("id:")))
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        if ids.len() >= want || Instant::now() > deadline {
            return ids;
        }
        match stream.read(&mut buf) {
            Ok(0) => return ids,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
}

fn open_stream(api: &Api, last_event_id: Option<u64>) -> TcpStream {
    let mut s = TcpStream::connect(api.addr).unwrap();
    let mut req = format!(
        "GET /v1/events/stream HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
        api.addr
    );
    if let Some(id) = last_event_id {
        req.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s
}

#[test]
fn a_hundred_event_streams_see_each_event_and_resume_where_they_left() {
    let mut d = start_admin("", "", None);
    let api = &d.api;
    let mut streams: Vec<TcpStream> = (0..100).map(|_| open_stream(api, None)).collect();
    // Let every stream subscribe before the change.
    std::thread::sleep(Duration::from_millis(500));
    let r = api.put_json(&format!("{LOGGING}/config"), &json!({"level": "debug"}));
    let id = r.json()["id"].as_u64().unwrap();
    for (i, s) in streams.iter_mut().enumerate() {
        assert_eq!(sse_ids(s, 1, 20), [id], "stream {i}");
    }
    drop(streams);
    // Two more events while no one listens; a client that comes back with
    // Last-Event-ID gets both, in order, then live ones.
    let a = api
        .put_json(&format!("{LOGGING}/config"), &json!({"level": "warn"}))
        .json()["id"]
        .as_u64()
        .unwrap();
    let b = api
        .put_json(&format!("{LOGGING}/config"), &json!({"level": "bad"}))
        .json()["id"]
        .as_u64()
        .unwrap();
    let mut back = open_stream(api, Some(id));
    assert_eq!(sse_ids(&mut back, 2, 20), [a, b]);
    // Long poll: waits for the next event.
    let api2 = api.clone();
    let poll = std::thread::spawn(move || api2.get(&format!("/v1/events?since={b}&wait=20s")));
    std::thread::sleep(Duration::from_millis(300));
    let c = api
        .put_json(&format!("{LOGGING}/config"), &json!({"level": "error"}))
        .json()["id"]
        .as_u64()
        .unwrap();
    let polled = poll.join().unwrap().json();
    assert_eq!(polled["events"][0]["id"], c, "{polled}");
    assert_eq!(polled["last_id"], c);
    let now = api.get(&format!("/v1/events?since={c}")).json();
    assert_eq!(now["events"], json!([]));
    let r = api.get("/v1/events?wait=forever");
    assert_eq!(r.status, 400);
    // A stream still open does not hold the daemon up at shutdown.
    d._daemon.signal("TERM");
    assert_eq!(d._daemon.wait_exit(15), 0);
    drop(back);
}

#[test]
fn json_logs_carry_the_transaction_span() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_admin_manifest(dir.path(), "", "");
    let mut cmd = hotreload();
    cmd.env("RUST_LOG", "info")
        .args(["--log-format", "json", "run"])
        .arg(&manifest);
    let daemon = Running::start(cmd);
    let api = wait_ready(dir.path(), None);
    api.put_json(LOGGING_CONFIG, &json!({"level": "shrill"}));
    let line = daemon.wait_log("shrill", 20);
    let log: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(log["level"], "WARN", "{log}");
    assert_eq!(log["span"]["name"], "transaction", "{log}");
    assert_eq!(log["span"]["component"], "logging", "{log}");
    assert_eq!(log["span"]["kind"], "api", "{log}");
    assert_eq!(log["span"]["outcome"], "rejected", "{log}");
}

#[test]
fn an_api_change_survives_a_restart_unless_the_file_changed_since() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_admin_manifest(dir.path(), "", "");
    let mut daemon = run(&manifest);
    let api = wait_ready(dir.path(), None);
    let r = api.put_json(&format!("{LOGGING}/config"), &json!({"level": "debug"}));
    assert_eq!(r.status, 200);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(20), 0);
    drop(daemon);

    // The file did not change: the API's change stays in force.
    let mut daemon = run(&manifest);
    let api = wait_ready(dir.path(), None);
    let c = api.get(LOGGING).json();
    assert_eq!(c["config"], json!({"level": "debug"}), "{c}");
    assert_eq!(c["source"]["kind"], "initial");
    assert_eq!(c["source"]["from_version"], 2);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(20), 0);
    drop(daemon);

    // The file changed while the daemon was down: the file is newer, it wins.
    std::fs::write(dir.path().join("logging.json"), r#"{"level": "warn"}"#).unwrap();
    let _daemon = run(&manifest);
    let api = wait_ready(dir.path(), None);
    let c = api.get(LOGGING).json();
    assert_eq!(c["config"], json!({"level": "warn"}), "{c}");
    assert_eq!(c["source"]["kind"], "initial");
    assert!(
        c["source"]["path"]
            .as_str()
            .unwrap()
            .ends_with("logging.json")
    );
    // And while it runs, the latest change wins: a file save after an API call.
    api.put_json(&format!("{LOGGING}/config"), &json!({"level": "error"}));
    std::fs::write(dir.path().join("logging.json"), r#"{"level": "trace"}"#).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.get(LOGGING).json()["config"] != json!({"level": "trace"}) {
        assert!(Instant::now() < deadline, "the file's change did not apply");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_handler_is_swapped_only_when_it_accepts_what_is_in_force() {
    let d = start_admin("", "", None);
    let api = &d.api;
    // The plugin's handler refuses the logging configuration in force.
    let plugin = hotreload_handlers::by_name("plugin").unwrap();
    let r = api.call("PUT", &format!("{LOGGING}/handler"), &[], plugin);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("configuration in force")
    );
    let before = api.get(LOGGING).json()["handler_hash"].clone();
    // Not a component at all.
    let r = api.call("PUT", &format!("{LOGGING}/handler"), &[], b"\0asm junk");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(api.get(LOGGING).json()["handler_hash"], before);
    // The same handler again: accepted (a swap to itself).
    let logging = hotreload_handlers::by_name("logging").unwrap();
    let r = api.call("PUT", &format!("{LOGGING}/handler"), &[], logging);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn the_cli_clients_talk_to_a_running_daemon() {
    let d = start_admin("", "", None);
    let m = d.manifest();
    let m = m.to_str().unwrap();
    let (code, text) = output(&["status", "-m", m]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("logging") && text.contains("plugin"),
        "{text}"
    );
    let new = d.dir.path().join("new.yaml");
    std::fs::write(&new, "level: debug\n").unwrap();
    let (code, text) = output(&[
        "apply",
        "logging",
        new.to_str().unwrap(),
        "-m",
        m,
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"dry_run\":true"), "{text}");
    let (code, text) = output(&["apply", "logging", new.to_str().unwrap(), "-m", m]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"outcome\":\"applied\""), "{text}");
    std::fs::write(&new, "level: deafening\n").unwrap();
    let (code, text) = output(&["apply", "logging", new.to_str().unwrap(), "-m", m]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("\"outcome\":\"rejected\""), "{text}");
    let (code, text) = output(&[
        "apply",
        "logging",
        new.to_str().unwrap(),
        "-m",
        m,
        "--if-version",
        "1",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("changed since you read it"), "{text}");
    let (code, text) = output(&["apply", "ghost", new.to_str().unwrap(), "-m", m]);
    assert_eq!(code, 2, "{text}");
    let (code, text) = output(&["rollback", "logging", "--to", "1", "-m", m]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"from_version\":1"), "{text}");
    let (code, text) = output(&["events", "-m", m]);
    assert_eq!(code, 0, "{text}");
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        kinds.contains(&"rollback_to_version".to_owned()),
        "{kinds:?}"
    );

    // `events --follow` prints what happens next, until stopped.
    let mut cmd = hotreload();
    cmd.args(["events", "--follow", "-m", m]);
    let follow = Running::start(cmd);
    std::thread::sleep(Duration::from_millis(500));
    let id = d
        .api
        .put_json(&format!("{LOGGING}/config"), &json!({"level": "warn"}))
        .json()["id"]
        .clone();
    // What the ring held comes first, then the new event.
    while follow.next(20)["id"] != id {}
    drop(follow);

    // No daemon: a clear error, status 2.
    let dir = tempfile::tempdir().unwrap();
    let other = write_admin_manifest(dir.path(), "", "");
    let (code, text) = output(&["status", "-m", other.to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("is the daemon running?"), "{text}");
}

#[test]
fn a_page_of_another_site_cannot_act_and_odd_requests_answer_json() {
    let d = start_admin("", "", None);
    let api = &d.api;
    let port = api.addr.port();
    let body = json!({"components": {"logging": {"level": "debug"}}}).to_string();
    // What a browser sends without asking first: a form or text body.
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = api.call(
            "POST",
            "/v1/batch",
            &[("Content-Type", ct)],
            body.as_bytes(),
        );
        assert_eq!(r.status, 415, "{ct}: {}", r.text());
        let r = api.call(
            "POST",
            &format!("{LOGGING}/rollback"),
            &[("Content-Type", ct)],
            b"{\"to_version\": 1}",
        );
        assert_eq!(r.status, 415, "{ct}");
    }
    // A page of another origin, or a fetch the browser marks cross-site.
    let json_ct = ("Content-Type", "application/json");
    let r = api.call(
        "POST",
        "/v1/batch",
        &[json_ct, ("Origin", "http://evil.example")],
        body.as_bytes(),
    );
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (403, json!("Origin"))
    );
    let r = api.call(
        "POST",
        "/v1/batch",
        &[json_ct, ("Origin", "null")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 403);
    let r = api.call(
        "POST",
        "/v1/batch",
        &[json_ct, ("Sec-Fetch-Site", "cross-site")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 403);
    assert_eq!(api.get(LOGGING).json()["version"], 1);
    // This server's own page (the web UI) may.
    let own = format!("http://127.0.0.1:{port}");
    let r = api.call(
        "POST",
        "/v1/batch",
        &[json_ct, ("Origin", &own)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Malformed paths and queries answer JSON; an unknown component's
    // versions are 404.
    let r = api.get(&format!("{LOGGING}/versions/abc"));
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.json()["error"].is_string());
    let r = api.get("/v1/events?since=yesterday");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"].is_string());
    let r = api.get(&format!("{LOGGING}/versions?limit=-1"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(api.get("/v1/components/ghost/versions").status, 404);

    // Invented methods are counted as `other`, never by their own name.
    for i in 0..5 {
        let r = api.call(&format!("BREW{i}"), "/v1/components", &[], b"");
        assert_eq!(r.status, 405);
    }
    let m = api.get("/metrics").text();
    assert!(!m.contains("BREW"), "{m}");
    assert!(m.contains("method=\"other\""), "{m}");
}

#[test]
fn a_restart_required_change_through_the_api_is_loaded_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_admin_manifest(dir.path(), "", "");
    let mut daemon = run(&manifest);
    let api = wait_ready(dir.path(), None);
    let r = api.put_json(
        "/v1/components/plugin/config",
        &json!({"enabled": false, "workers": 4}),
    );
    assert_eq!(r.status, 409);
    // Accepted, waiting for the restart: not a failed reload.
    let m = api.get("/metrics").text();
    assert!(
        m.contains("hotreload_config_last_reload_successful{component=\"plugin\"} 1"),
        "{m}"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(20), 0);
    drop(daemon);
    let _daemon = run(&manifest);
    let api = wait_ready(dir.path(), None);
    let c = api.get("/v1/components/plugin").json();
    assert_eq!(c["config"], json!({"enabled": false, "workers": 4}), "{c}");
    assert_eq!(c["pending"], Value::Null);
    assert_eq!(c["source"]["kind"], "initial");
}

#[test]
fn a_kept_configuration_its_new_handler_refuses_gives_way_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_admin_manifest(dir.path(), "", "");
    // `{}` passes both the logging and the plugin handler.
    std::fs::write(dir.path().join("logging.json"), "{}").unwrap();
    let mut daemon = run(&manifest);
    let api = wait_ready(dir.path(), None);
    let r = api.put_json(LOGGING_CONFIG, &json!({"level": "debug"}));
    assert_eq!(r.status, 200);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(20), 0);
    drop(daemon);
    // The operator gives `logging` another handler, which refuses the
    // configuration the API set (the plugin knows no `level`).
    let text = std::fs::read_to_string(&manifest).unwrap().replacen(
        "handler = \"bundled:logging\"",
        "handler = \"bundled:plugin\"",
        1,
    );
    std::fs::write(&manifest, text).unwrap();
    let daemon = run(&manifest);
    daemon.wait_log("the kept configuration cannot be loaded", 60);
    let api = wait_ready(dir.path(), None);
    let c = api.get(LOGGING).json();
    assert_eq!(c["config"], json!({}), "{c}");
    assert!(
        c["source"]["path"]
            .as_str()
            .unwrap()
            .ends_with("logging.json"),
        "{c}"
    );
}
