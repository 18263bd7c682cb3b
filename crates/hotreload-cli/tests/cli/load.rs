//! The admin API under load, bounded: 20,000 `GET /v1/components` on
//! keep-alive connections while reloads run through `PUT`, and `/metrics`
//! with 1,000 components. Errors must be none; the figures are printed
//! (run with `--release --nocapture` for the ones BENCHMARKS.md quotes).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::admin::{start_admin, wait_ready};
use crate::daemon_cli::run;

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Conn {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub(crate) fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        Conn {
            addr,
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    /// A request; the answer's status and body (read by its length).
    pub(crate) fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        self.writer
            .write_all(req.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("status line {line:?}"))?;
        let mut length = 0;
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().map_err(|_| format!("length {v:?}"))?;
            }
        }
        let mut body = vec![0; length];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Reloads through `PUT` until `stop`: each reload's own duration (the
/// event's) and what the API added to it (the round trip less that).
fn reloads(
    addr: SocketAddr,
    stop: &AtomicBool,
    at_least: usize,
) -> (Vec<Duration>, Vec<Duration>, usize) {
    let mut conn = Conn::open(addr);
    let mut reload = Vec::new();
    let mut overhead = Vec::new();
    let mut errors = 0;
    let levels = ["debug", "info"];
    let mut i = 0;
    while i < at_least || !stop.load(Ordering::Relaxed) {
        let body = json!({"level": levels[i % 2]}).to_string();
        let started = Instant::now();
        match conn.send("PUT", "/v1/components/logging/config", Some(&body)) {
            Ok((200, b)) => {
                let trip = started.elapsed();
                let e: Value = serde_json::from_slice(&b).unwrap();
                assert_eq!(e["outcome"], "applied", "{e}");
                let own = Duration::from_micros(e["duration_us"].as_u64().unwrap());
                reload.push(own);
                overhead.push(trip.saturating_sub(own));
            }
            _ => errors += 1,
        }
        i += 1;
    }
    reload.sort_unstable();
    overhead.sort_unstable();
    (reload, overhead, errors)
}

#[test]
fn twenty_thousand_gets_while_reloads_run_fail_none() {
    let total: usize = std::env::var("HOTRELOAD_LOAD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let d = start_admin("", "", None);
    let addr = d.api.addr;

    // Reloads alone.
    let stop = AtomicBool::new(true);
    let (quiet, quiet_overhead, errors) = reloads(addr, &stop, 300);
    assert_eq!(errors, 0);

    // Reloads while four clients GET the components.
    let stop = Arc::new(AtomicBool::new(false));
    let reloader = {
        let stop = stop.clone();
        std::thread::spawn(move || reloads(addr, &stop, 300))
    };
    let clients: usize = std::env::var("HOTRELOAD_LOAD_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let started = Instant::now();
    let getters: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut conn = Conn::open(addr);
                let mut times = Vec::with_capacity(total / clients);
                let mut errors = 0;
                for _ in 0..total / clients {
                    let t = Instant::now();
                    match conn.send("GET", "/v1/components", None) {
                        Ok((200, body)) if body.starts_with(b"{\"components\":[") => {
                            times.push(t.elapsed());
                        }
                        other => {
                            errors += 1;
                            eprintln!("GET failed: {other:?}");
                            conn = Conn::open(addr);
                        }
                    }
                }
                (times, errors)
            })
        })
        .collect();
    let mut gets = Vec::new();
    let mut get_errors = 0;
    for g in getters {
        let (t, e) = g.join().unwrap();
        gets.extend(t);
        get_errors += e;
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (busy, busy_overhead, reload_errors) = reloader.join().unwrap();
    gets.sort_unstable();

    eprintln!(
        "\n{total} GET /v1/components on {clients} keep-alive connections in {:.2} s \
         ({:.0}/s), while {} reloads ran: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, errors {get_errors}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        busy.len(),
        ms(percentile(&gets, 0.5)),
        ms(percentile(&gets, 0.99)),
        ms(*gets.last().unwrap()),
    );
    eprintln!(
        "reload (the event's duration): alone p50 {:.3} ms p99 {:.3} ms ({} reloads); \
         under the GET load p50 {:.3} ms p99 {:.3} ms ({} reloads); ratio of medians {:.2}",
        ms(percentile(&quiet, 0.5)),
        ms(percentile(&quiet, 0.99)),
        quiet.len(),
        ms(percentile(&busy, 0.5)),
        ms(percentile(&busy, 0.99)),
        busy.len(),
        percentile(&busy, 0.5).as_secs_f64() / percentile(&quiet, 0.5).as_secs_f64(),
    );
    eprintln!(
        "PUT round trip beyond the transaction: alone p50 {:.3} ms p99 {:.3} ms; \
         under load p50 {:.3} ms p99 {:.3} ms\n",
        ms(percentile(&quiet_overhead, 0.5)),
        ms(percentile(&quiet_overhead, 0.99)),
        ms(percentile(&busy_overhead, 0.5)),
        ms(percentile(&busy_overhead, 0.99)),
    );
    assert_eq!(get_errors, 0);
    assert_eq!(reload_errors, 0);
    assert_eq!(gets.len(), total / clients * clients);
}

#[test]
fn metrics_with_a_thousand_components_are_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest =
        String::from("[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndebounce_ms = 50\n");
    for i in 0..1000 {
        std::fs::write(
            dir.path().join(format!("c{i}.json")),
            json!({"level": "info"}).to_string(),
        )
        .unwrap();
        manifest.push_str(&format!(
            "[[component]]\nname = \"c{i}\"\nhandler = \"bundled:logging\"\nconfig = \"c{i}.json\"\n"
        ));
    }
    let path = dir.path().join("hotreload.toml");
    std::fs::write(&path, manifest).unwrap();
    let _daemon = run(&path);
    let api = wait_ready(dir.path(), None);
    let mut conn = Conn::open(api.addr);
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..30 {
        let t = Instant::now();
        let (status, body) = conn.send("GET", "/metrics", None).unwrap();
        times.push(t.elapsed());
        assert_eq!(status, 200);
        size = body.len();
        let text = String::from_utf8(body).unwrap();
        let versions = text
            .lines()
            .filter(|l| l.starts_with("hotreload_config_version{"))
            .count();
        assert_eq!(versions, 1000);
    }
    times.sort_unstable();
    eprintln!(
        "\nGET /metrics with 1,000 components ({size} bytes): p50 {:.3} ms, max {:.3} ms over {} scrapes\n",
        ms(percentile(&times, 0.5)),
        ms(*times.last().unwrap()),
        times.len()
    );
}
