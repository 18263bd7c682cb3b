//! The web page in a real browser: Debian's headless Chromium driven by
//! chromedriver over the WebDriver protocol (JSON over HTTP, spoken here
//! with the tests' own HTTP client).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::admin::{Api, start_admin};
use crate::cannot_run;
use crate::load::Conn;
use hotreload_cli::etcd_server::which;

/// A chromedriver and one browser session; both end when dropped.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    fn start(chromedriver: &Path, chromium: &Path, width: u32, height: u32) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
        };
        // A phone's viewport by Chromium's own device emulation (a
        // headless window is never narrower than 500 pixels).
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1200,900"],
                "mobileEmulation": {"deviceMetrics": {
                    "width": width, "height": height, "pixelRatio": 1.0,
                }},
            },
        }}});
        let deadline = Instant::now() + Duration::from_secs(30);
        let answer = loop {
            if std::net::TcpStream::connect(addr).is_ok() {
                break b.raw("POST", "/session", Some(&caps));
            }
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        };
        b.session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        b
    }

    /// One WebDriver command, on a connection of its own (the answer is
    /// read by its length: chromedriver keeps connections open).
    fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(Value::to_string);
        let mut conn = Conn::open(self.addr);
        let (_, reply) = conn
            .send(method, path, body.as_deref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        serde_json::from_slice(&reply).unwrap_or(Value::Null)
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(&json!({ "url": url })));
    }

    /// The elements a CSS selector finds now.
    fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.call(
            "POST",
            "/elements",
            Some(&json!({"using": "css selector", "value": css})),
        );
        v["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_object()?.values().next()?.as_str().map(str::to_owned))
            .collect()
    }

    fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None)["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn click(&self, element: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(&json!({})),
        );
    }

    /// Waits until `css` finds an element whose text satisfies `want`.
    fn wait_text(&self, css: &str, secs: u64, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            for e in self.find_all(css) {
                let t = self.text(&e);
                if want(&t) {
                    return e;
                }
            }
            assert!(
                Instant::now() < deadline,
                "nothing at {css} as wanted in {secs} s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a screenshot (PNG) as a test artifact.
    fn screenshot(&self, name: &str) -> PathBuf {
        let v = self.call("GET", "/screenshot", None);
        let png = base64(v["value"].as_str().expect("a screenshot"));
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

/// Standard base64 (the screenshot's encoding).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter_map(value) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn tools() -> Option<(PathBuf, PathBuf)> {
    let found = (which("chromedriver"), which("chromium"));
    if let (Some(d), Some(c)) = found {
        return Some((d, c));
    }
    cannot_run::<()>(
        "the web page tests",
        "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
    );
    None
}

#[test]
fn the_page_lists_components_follows_changes_and_rolls_back() {
    let Some((driver, chromium)) = tools() else {
        return;
    };
    let d = start_admin("", "", None);
    let api: &Api = &d.api;
    let b = Browser::start(&driver, &chromium, 1200, 900);
    b.go(&format!("http://{}/ui/", api.addr));
    b.wait_text("#components tbody tr", 30, |t| t.contains("logging"));
    b.wait_text("#components tbody tr", 30, |t| t.contains("plugin"));

    // A file saved now arrives live.
    std::fs::write(d.dir.path().join("logging.json"), r#"{"level": "warn"}"#).unwrap();
    b.wait_text("#events li", 30, |t| t.contains("file_change applied v2"));

    // A configuration with markup in it shows as text.
    let hostile = "\"><img src=x onerror=alert(1)><script>alert(2)</script>";
    let r = api.put_json(
        "/v1/components/logging/config",
        &json!({"level": "debug", "fields": {"x": hostile}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    b.wait_text("#events li", 30, |t| t.contains("api applied v3"));
    let row = b.wait_text("#components tbody tr", 30, |t| t.starts_with("logging"));
    b.click(&row);
    b.wait_text("#detail-config", 30, |t| {
        t.contains("<img src=x onerror=alert(1)>")
    });
    assert!(
        b.find_all("#detail img").is_empty(),
        "markup became an element"
    );
    assert!(
        b.find_all("#detail script").is_empty(),
        "markup became an element"
    );
    b.screenshot("desktop");

    // Roll back to version 1 through the button: the dry run first, then
    // the confirmation, then the new version.
    let button = b.wait_text("button.rollback", 30, |t| t == "Roll back to 1");
    b.click(&button);
    b.wait_text("#rollback-preview", 30, |t| t.contains("applied"));
    let confirm = b.find_all("#rollback-confirm");
    b.click(&confirm[0]);
    b.wait_text("#detail-version", 30, |t| t == "4");
    let c = api.get("/v1/components/logging").json();
    assert_eq!(c["version"], 4);
    assert_eq!(c["source"]["from_version"], 1);
    assert_eq!(c["config"], json!({"level": "info"}));
}

#[test]
fn the_page_fits_a_phone() {
    let Some((driver, chromium)) = tools() else {
        return;
    };
    let d = start_admin("", "", None);
    let b = Browser::start(&driver, &chromium, 390, 844);
    b.go(&format!("http://{}/ui/", d.api.addr));
    b.wait_text("#components tbody tr", 30, |t| t.contains("plugin"));
    // Nothing wider than the screen: no sideways scrolling.
    let widths = b.call(
        "POST",
        "/execute/sync",
        Some(&json!({
            "script": "return [document.documentElement.scrollWidth, window.innerWidth]",
            "args": [],
        })),
    );
    let (page, screen) = (widths["value"][0].as_u64(), widths["value"][1].as_u64());
    assert_eq!(screen, Some(390), "{widths}");
    assert!(page <= screen, "{widths}");
    b.screenshot("phone");
}
