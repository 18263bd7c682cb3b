//! `hotreload run` and `hotreload validate` as processes: signals, crashes,
//! permissions, and bad manifests.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hotreload::state::Persisted;
use serde_json::{Value, json};

use crate::write_manifest;

fn hotreload() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hotreload"));
    c.env("RUST_LOG", "warn");
    c
}

/// A running daemon whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v: Value =
                    serde_json::from_str(&line).expect("every stdout line is a JSON event");
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    fn next(&self, secs: u64) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(secs))
            .expect("an event in time")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn wait_exit(&mut self, secs: u64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the daemon did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn atomic_write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn run(manifest: &Path) -> Running {
    let mut cmd = hotreload();
    cmd.arg("run").arg(manifest);
    Running::start(cmd)
}

#[test]
fn survives_sigkill_at_random_points_50_of_50() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        &[(
            "logging",
            "bundled:logging",
            "logging.json",
            r#"{"level": "info"}"#,
        )],
    );
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("debounce_ms = 50", "debounce_ms = 2"),
    )
    .unwrap();
    let config = dir.path().join("logging.json");
    let record_path = dir.path().join(".hotreload/logging.json");
    let mut written = vec![json!({"level": "info"})];
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut random = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut committed_versions = Vec::new();
    for round in 0..50 {
        let daemon = run(&manifest);
        let first = daemon.next(20);
        assert_eq!(first["component"], "logging");
        assert_eq!(first["outcome"], "applied", "round {round}: {first}");
        assert!(
            written.contains(&first["new_config"]),
            "round {round}: came back on {first}"
        );
        // A stream of reloads, cut off by SIGKILL at a random moment.
        let writes = 5 + random(40);
        let kill_after = random(writes);
        let mut child = daemon;
        for i in 0..writes {
            let level = ["trace", "debug", "info", "warn", "error"][(i % 5) as usize];
            let cfg =
                json!({"level": level, "fields": {"round": round.to_string(), "i": i.to_string()}});
            atomic_write(&config, &cfg.to_string());
            written.push(cfg);
            std::thread::sleep(Duration::from_micros(500 + random(3000)));
            if i == kill_after {
                child.signal("KILL");
                break;
            }
        }
        child.wait_exit(10);
        drop(child);
        // The record is whole, parses, and holds a configuration we wrote.
        let bytes = std::fs::read(&record_path).expect("a record exists");
        let record: Persisted = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("round {round}: a torn record: {e}"));
        assert!(
            written.contains(&record.input),
            "round {round}: unknown input {}",
            record.input
        );
        assert_eq!(record.effective["level"], record.input["level"]);
        // Versions go on across restarts; a record never goes back.
        assert!(
            committed_versions
                .last()
                .is_none_or(|&v| record.version > v),
            "round {round}: version {} after {committed_versions:?}",
            record.version
        );
        committed_versions.push(record.version);
    }
    eprintln!("50 rounds; committed versions seen: {committed_versions:?}");
}

#[test]
fn sighup_rereads_and_sigterm_finishes_the_reload_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        &[("chaos", "bundled:chaos", "chaos.json", r#"{"n": 0}"#)],
    );
    // A debounce so long that only SIGHUP can make the daemon read the file.
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("debounce_ms = 50", "debounce_ms = 60000");
    std::fs::write(&manifest, text).unwrap();
    let mut d = run(&manifest);
    assert_eq!(d.next(20)["outcome"], "applied");
    std::fs::write(dir.path().join("chaos.json"), r#"{"n": 1}"#).unwrap();
    d.signal("HUP");
    let e = d.next(5);
    assert_eq!(
        (e["outcome"].as_str(), e["new_config"]["n"].as_i64()),
        (Some("applied"), Some(1))
    );
    // A slow reload, then SIGTERM while it runs: it finishes, then the daemon exits.
    std::fs::write(
        dir.path().join("chaos.json"),
        r#"{"n": 2, "reload": "slow:600"}"#,
    )
    .unwrap();
    d.signal("HUP");
    std::thread::sleep(Duration::from_millis(200));
    d.signal("TERM");
    let e = d.next(5);
    assert_eq!(e["outcome"], "applied", "{e}");
    assert_eq!(e["new_config"]["n"], 2);
    assert_eq!(d.wait_exit(10), 0);
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().metadata().unwrap().uid() == 0
}

#[test]
fn permission_denied_keeps_the_last_good() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let manifest = write_manifest(
        dir.path(),
        &[(
            "logging",
            "bundled:logging",
            "logging.json",
            r#"{"level": "info"}"#,
        )],
    );
    let config = dir.path().join("logging.json");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut cmd = hotreload();
    cmd.arg("run").arg(&manifest);
    if is_root() {
        // root reads anything; run the daemon as `nobody` so permissions bite.
        cmd.uid(65534).gid(65534);
    }
    let d = Running::start(cmd);
    assert_eq!(d.next(20)["outcome"], "applied");
    std::fs::write(&config, r#"{"level": "debug"}"#).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o000)).unwrap();
    let e = d.next(5);
    assert_eq!(e["outcome"], "rejected", "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("permission denied"), "{message}");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = d.next(5);
    assert_eq!(e["outcome"], "applied", "{e}");
    assert_eq!(e["effective_config"]["level"], "debug");
}

fn output(args: &[&str]) -> (i32, String) {
    let out = hotreload().args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn validate_and_run_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ok.json"), r#"{"level": "info"}"#).unwrap();
    std::fs::write(d.join("bad.json"), r#"{"level": "info", "colour": true}"#).unwrap();
    std::fs::write(d.join("junk.wasm"), "not a component").unwrap();
    let m = |name: &str, body: &str| {
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let good = m(
        "good.toml",
        "[[component]]\nname = \"a\"\nhandler = \"bundled:logging\"\nconfig = \"ok.json\"\n",
    );
    let (code, text) = output(&["validate", &good]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok    a"), "{text}");

    let typo = m(
        "typo.toml",
        "[runtime]\ndebounce_msec = 5\n[[component]]\nname = \"a\"\nhandler = \"bundled:logging\"\nconfig = \"ok.json\"\n",
    );
    for cmd in ["validate", "run"] {
        let (code, text) = output(&[cmd, &typo]);
        assert_ne!(code, 0);
        assert!(
            text.contains("unknown field `debounce_msec`"),
            "{cmd}: {text}"
        );
    }

    let missing = m(
        "missing.toml",
        "[[component]]\nname = \"a\"\nhandler = \"nowhere.wasm\"\nconfig = \"ok.json\"\n",
    );
    for cmd in ["validate", "run"] {
        let (code, text) = output(&[cmd, &missing]);
        assert_ne!(code, 0);
        assert!(
            text.contains("nowhere.wasm does not exist"),
            "{cmd}: {text}"
        );
    }

    let junk = m(
        "junk.toml",
        "[[component]]\nname = \"a\"\nhandler = \"junk.wasm\"\nconfig = \"ok.json\"\n",
    );
    for cmd in ["validate", "run"] {
        let (code, text) = output(&[cmd, &junk]);
        assert_ne!(code, 0);
        assert!(text.contains("not a WebAssembly binary"), "{cmd}: {text}");
    }

    let invalid = m(
        "invalid.toml",
        "[[component]]\nname = \"a\"\nhandler = \"bundled:logging\"\nconfig = \"ok.json\"\n[[component]]\nname = \"b\"\nhandler = \"bundled:logging\"\nconfig = \"bad.json\"\n",
    );
    let (code, text) = output(&["validate", &invalid]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("FAIL  b") && text.contains("/colour"),
        "{text}"
    );
    assert!(text.contains("ok    a"), "{text}");
    let (code, text) = output(&["run", &invalid]);
    assert_eq!(code, 1);
    assert!(text.contains("component b: cannot start"), "{text}");

    let no_config = m(
        "noconfig.toml",
        "[[component]]\nname = \"a\"\nhandler = \"bundled:logging\"\nconfig = \"absent.json\"\n",
    );
    let (code, text) = output(&["validate", &no_config]);
    assert_eq!(code, 1);
    assert!(text.contains("absent.json"), "{text}");
}
