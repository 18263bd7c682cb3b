//! `hotreload run` and `hotreload validate` as processes: signals, crashes,
//! permissions, and bad manifests.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use crate::write_manifest;

pub(crate) fn hotreload() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hotreload"));
    c.env("RUST_LOG", "warn");
    c
}

/// A running daemon whose stdout and stderr lines arrive on channels.
pub(crate) struct Running {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

/// The lines of `from`, as they are written, on a channel.
fn lines_of(from: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

impl Running {
    pub(crate) fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let stderr: ChildStderr = child.stderr.take().unwrap();
        Running {
            child,
            stdout: lines_of(stdout),
            stderr: lines_of(stderr),
        }
    }

    /// The next stdout line, within `secs` seconds.
    fn next_line(&self, secs: u64) -> String {
        self.stdout
            .recv_timeout(Duration::from_secs(secs))
            .expect("an event in time")
    }

    /// The next event, within `secs` seconds: a stdout line, as JSON.
    pub(crate) fn next(&self, secs: u64) -> Value {
        let line = self.next_line(secs);
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("a stdout line that is not a JSON event ({e}): {line}"))
    }

    /// Waits for a log line (stderr) containing `text`, within `secs` seconds.
    pub(crate) fn wait_log(&self, text: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => continue,
                Err(e) => panic!("no log line with {text:?} within {secs} s ({e})"),
            }
        }
    }

    /// Asserts stdout ends (the daemon closed it) within `secs` seconds.
    fn stdout_ends(&self, secs: u64) {
        match self.stdout.recv_timeout(Duration::from_secs(secs)) {
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Ok(line) => panic!("an unexpected line: {line}"),
            Err(e) => panic!("stdout still open: {e}"),
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    pub(crate) fn wait_exit(&mut self, secs: u64) -> i32 {
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

pub(crate) fn atomic_write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A random number below `n` at each call, from a seed taken from the clock
/// and printed, so a failing round can be told apart.
fn seeded_random() -> impl FnMut(u64) -> u64 {
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    }
}

pub(crate) fn run(manifest: &Path) -> Running {
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
    let state = dir.path().join(".hotreload");
    let mut written = vec![json!({"level": "info"})];
    let mut random = seeded_random();
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
        // The latest revision is whole and holds a configuration we wrote.
        let record = crate::latest(&state, "logging")
            .unwrap_or_else(|e| panic!("round {round}: no readable revision: {e}"));
        let input = crate::config_of(&record);
        assert!(
            written.contains(&input),
            "round {round}: unknown input {input}"
        );
        assert_eq!(record.effective["level"], input["level"]);
        // Versions go on across restarts; the latest never goes back.
        assert!(
            committed_versions
                .last()
                .is_none_or(|&v| record.version > v),
            "round {round}: version {} after {committed_versions:?}",
            record.version
        );
        committed_versions.push(record.version);
        // History has no gap and no duplicate: the kept versions are
        // consecutive, ending at the latest.
        let store = hotreload::state::Revisions::open_read_only(&state)
            .expect("the store opens")
            .expect("a store");
        let kept: Vec<u64> = store
            .history("logging", usize::MAX)
            .expect("history reads")
            .iter()
            .map(|r| r.version)
            .collect();
        let expected: Vec<u64> = (0..kept.len() as u64).map(|i| record.version - i).collect();
        assert_eq!(kept, expected, "round {round}: a gap or a duplicate");
    }
    eprintln!("50 rounds; committed versions seen: {committed_versions:?}");
}

/// A daemon on one chaos component whose file only SIGHUP makes it read
/// (the debounce is a minute), logging at info; after its first event.
fn chaos_daemon(dir: &Path) -> Result<Running> {
    let manifest = write_manifest(
        dir,
        &[("chaos", "bundled:chaos", "chaos.json", r#"{"n": 0}"#)],
    );
    // A reload deadline that a slow reload on a loaded machine cannot miss.
    let text = std::fs::read_to_string(&manifest)?.replace(
        "debounce_ms = 50",
        "debounce_ms = 60000\nreload_timeout_ms = 20000",
    );
    std::fs::write(&manifest, text)?;
    let mut cmd = hotreload();
    cmd.env("RUST_LOG", "info").arg("run").arg(&manifest);
    let d = Running::start(cmd);
    let e = d.next(20);
    assert_eq!(e["outcome"], "applied", "{e}");
    Ok(d)
}

/// Starts a slow reload (SIGHUP), sends `sig` while it runs: the reload
/// finishes and is committed, then the daemon exits 0.
fn stop_during_a_reload(dir: &Path, d: &mut Running, sig: &str) -> Result<()> {
    std::fs::write(dir.join("chaos.json"), r#"{"n": 2, "reload": "slow:600"}"#)?;
    d.signal("HUP");
    // The daemon says when it starts re-reading; the reload runs from there.
    d.wait_log("SIGHUP: re-reading", 10);
    d.signal(sig);
    let e = d.next(10);
    assert_eq!(e["outcome"], "applied", "{e}");
    assert_eq!(e["new_config"]["n"], 2);
    d.wait_log("shutting down", 10);
    assert_eq!(d.wait_exit(10), 0, "exit status after SIG{sig}");
    d.stdout_ends(5);
    let record = crate::latest(&dir.join(".hotreload"), "chaos")?;
    assert_eq!(
        crate::config_of(&record)["n"],
        2,
        "the reload in flight was committed"
    );
    Ok(())
}

#[test]
fn sighup_rereads_and_sigterm_finishes_the_reload_in_flight() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut d = chaos_daemon(dir.path())?;
    std::fs::write(dir.path().join("chaos.json"), r#"{"n": 1}"#)?;
    d.signal("HUP");
    let e = d.next(5);
    assert_eq!(
        (e["outcome"].as_str(), e["new_config"]["n"].as_i64()),
        (Some("applied"), Some(1))
    );
    stop_during_a_reload(dir.path(), &mut d, "TERM")
}

#[test]
fn sigint_finishes_the_reload_in_flight_and_exits_0() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut d = chaos_daemon(dir.path())?;
    stop_during_a_reload(dir.path(), &mut d, "INT")
}

#[test]
fn events_format_text_prints_one_summary_line_per_event() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = write_manifest(
        dir.path(),
        &[
            (
                "logging",
                "bundled:logging",
                "logging.json",
                r#"{"level": "info"}"#,
            ),
            ("chaos", "bundled:chaos", "chaos.json", r#"{"n": 0}"#),
        ],
    );
    let mut cmd = hotreload();
    cmd.arg("run")
        .arg(&manifest)
        .args(["--events-format", "text"]);
    let mut d = Running::start(cmd);
    // Components start in manifest order.
    assert_eq!(d.next_line(20), "logging Applied v1");
    assert_eq!(d.next_line(20), "chaos Applied v1");
    atomic_write(&dir.path().join("logging.json"), r#"{"level": "loud"}"#);
    let line = d.next_line(5);
    assert!(
        line.starts_with("logging Rejected v1 (Invalid in Validate): ")
            && line.ends_with(" at /level"),
        "{line}"
    );
    // A trap's message carries the handler's stderr: still one line.
    atomic_write(
        &dir.path().join("chaos.json"),
        r#"{"n": 1, "reload": "panic"}"#,
    );
    let line = d.next_line(5);
    assert!(
        line.starts_with("chaos RolledBack v1 (Trap in Reload): ")
            && line.contains("chaos handler panicked on purpose in reload"),
        "{line}"
    );
    // So the next line is the next event.
    atomic_write(&dir.path().join("logging.json"), r#"{"level": "debug"}"#);
    assert_eq!(d.next_line(5), "logging Applied v2");
    d.signal("TERM");
    assert_eq!(d.wait_exit(10), 0);
    d.stdout_ends(5);
    Ok(())
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

/// Runs `hotreload ARGS` to its end: exit status, stdout then stderr. A
/// command that should end but does not (a daemon that started when it
/// should have refused) fails the test after two minutes instead of
/// hanging it.
pub(crate) fn output(args: &[&str]) -> (i32, String) {
    let mut child = hotreload()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read = |from: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut from) = from {
                let _ = from.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hotreload {args:?} did not exit within 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = format!("{}{}", stdout.join().unwrap(), stderr.join().unwrap());
    (status.code().unwrap_or(-1), text)
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
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[component]]\nname = \"a\"\nhandler = \"bundled:logging\"\nconfig = \"ok.json\"\n",
    );
    let (code, text) = output(&["validate", &good]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok    a"), "{text}");

    let typo = m(
        "typo.toml",
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndebounce_msec = 5\n[[component]]\nname = \"a\"\nhandler = \"bundled:logging\"\nconfig = \"ok.json\"\n",
    );
    // A bad manifest: `run` promises 2; `validate` only that it is not 0.
    for (cmd, want) in [("validate", None), ("run", Some(2))] {
        let (code, text) = output(&[cmd, &typo]);
        assert_ne!(code, 0, "{cmd}: {text}");
        if let Some(want) = want {
            assert_eq!(code, want, "{cmd}: {text}");
        }
        assert!(
            text.contains("unknown field `debounce_msec`"),
            "{cmd}: {text}"
        );
    }

    let missing = m(
        "missing.toml",
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[component]]\nname = \"a\"\nhandler = \"nowhere.wasm\"\nconfig = \"ok.json\"\n",
    );
    for (cmd, want) in [("validate", None), ("run", Some(2))] {
        let (code, text) = output(&[cmd, &missing]);
        assert_ne!(code, 0, "{cmd}: {text}");
        if let Some(want) = want {
            assert_eq!(code, want, "{cmd}: {text}");
        }
        assert!(
            text.contains("nowhere.wasm does not exist"),
            "{cmd}: {text}"
        );
    }

    let junk = m(
        "junk.toml",
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[component]]\nname = \"a\"\nhandler = \"junk.wasm\"\nconfig = \"ok.json\"\n",
    );
    // The manifest is sound, the component cannot start: 1 for both.
    for cmd in ["validate", "run"] {
        let (code, text) = output(&[cmd, &junk]);
        assert_eq!(code, 1, "{cmd}: {text}");
        assert!(text.contains("not a WebAssembly binary"), "{cmd}: {text}");
    }

    let invalid = m(
        "invalid.toml",
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[component]]\nname = \"a\"\nhandler = \"bundled:logging\"\nconfig = \"ok.json\"\n[[component]]\nname = \"b\"\nhandler = \"bundled:logging\"\nconfig = \"bad.json\"\n",
    );
    let (code, text) = output(&["validate", &invalid]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("FAIL  b") && text.contains("/colour"),
        "{text}"
    );
    assert!(text.contains("ok    a"), "{text}");
    let (code, text) = output(&["run", &invalid]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("component b: cannot start"), "{text}");

    let no_config = m(
        "noconfig.toml",
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[component]]\nname = \"a\"\nhandler = \"bundled:logging\"\nconfig = \"absent.json\"\n",
    );
    let (code, text) = output(&["validate", &no_config]);
    assert_eq!(code, 1);
    assert!(text.contains("absent.json"), "{text}");
}

/// A ConfigMap-like swap: every file of generation `generation` at once.
fn swap_generation(dir: &Path, generation: u64) {
    let data = dir.join(format!("..gen{generation}"));
    std::fs::create_dir(&data).unwrap();
    let level = ["trace", "debug", "info", "warn", "error"][(generation % 5) as usize];
    for name in ["a", "b", "c"] {
        let cfg = json!({"level": level, "fields": {"gen": generation.to_string()}});
        std::fs::write(data.join(format!("{name}.json")), cfg.to_string()).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..gen{generation}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    if generation > 1 {
        let _ = std::fs::remove_dir_all(dir.join(format!("..gen{}", generation - 2)));
    }
}

#[test]
fn sigkill_during_batches_never_tears_a_batch_50_of_50() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    swap_generation(d, 0);
    // A group is flushed one quiet debounce window after its last change:
    // every file of one swap arrives within it.
    let mut manifest = String::from(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndebounce_ms = 40\nretry_interval_ms = 1\n",
    );
    for name in ["a", "b", "c"] {
        std::os::unix::fs::symlink(
            format!("..data/{name}.json"),
            d.join(format!("{name}.json")),
        )
        .unwrap();
        manifest.push_str(&format!(
            "[[component]]\nname = \"{name}\"\nhandler = \"bundled:logging\"\n\
             config = \"{name}.json\"\ngroup = \"g\"\n"
        ));
    }
    let manifest_path = d.join("hotreload.toml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let state = d.join(".hotreload");
    let mut random = seeded_random();
    let mut generation = 0;
    let mut batches_seen = 0;
    let mut split_swaps = 0;
    for round in 0..50 {
        let mut daemon = run(&manifest_path);
        for _ in 0..3 {
            let e = daemon.next(20);
            assert!(
                e["kind"] == "initial" || e["kind"] == "restart",
                "round {round}: {e}"
            );
        }
        // Swaps far enough apart to be one batch each (a swap is one batch
        // when its files reach the daemon within a debounce window), the
        // last cut off by SIGKILL at a random moment: while it is debounced,
        // prepared, committed, or after.
        let swaps = 1 + random(4);
        for i in 0..swaps {
            generation += 1;
            swap_generation(d, generation);
            if i + 1 < swaps {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        std::thread::sleep(Duration::from_micros(random(200_000)));
        daemon.signal("KILL");
        daemon.wait_exit(10);
        drop(daemon);
        // The store opens after every kill; each member's history has no gap
        // and no duplicate; every batch's revisions (one SQLite transaction)
        // hold one generation.
        let store = hotreload::state::Revisions::open_read_only(&state)
            .expect("the store opens")
            .expect("a store");
        let mut by_batch: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        let mut heads = Vec::new();
        for name in ["a", "b", "c"] {
            let history = store.history(name, usize::MAX).expect("reads");
            let versions: Vec<u64> = history.iter().map(|r| r.version).collect();
            let expected: Vec<u64> = (0..versions.len() as u64)
                .map(|i| versions[0] - i)
                .collect();
            assert_eq!(
                versions, expected,
                "round {round}: {name}: a gap or a duplicate"
            );
            for r in &history {
                let cfg: Value = serde_json::from_str(&r.config).unwrap();
                if let Some(b) = &r.source.batch {
                    by_batch
                        .entry(b.clone())
                        .or_default()
                        .push(cfg["fields"]["gen"].clone());
                }
            }
            if history[0].source.batch.is_some() {
                batches_seen += 1;
            }
            let cfg: Value = serde_json::from_str(&history[0].config).unwrap();
            heads.push(cfg["fields"]["gen"].clone());
        }
        for (b, gens) in &by_batch {
            assert!(
                gens.iter().all(|g| *g == gens[0]),
                "round {round}: batch {b} mixes generations {gens:?}"
            );
        }
        if !heads.iter().all(|g| *g == heads[0]) {
            // One swap's files reached the daemon further apart than a
            // debounce window: two batches (docs/revisions.md says so).
            split_swaps += 1;
        }
    }
    eprintln!(
        "50 rounds, {generation} swaps; {batches_seen} member heads came from batches; \
         {split_swaps} kills left the members' heads on two generations"
    );
    assert!(batches_seen > 0, "no batch was ever committed");
}

#[test]
fn a_damaged_revision_database_stops_the_daemon_naming_it() {
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
    // A first run makes the database.
    let mut daemon = run(&manifest);
    assert_eq!(daemon.next(20)["outcome"], "applied");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(10), 0);
    drop(daemon);
    let db = dir
        .path()
        .join(".hotreload")
        .join(hotreload::state::DATABASE);
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[..16].copy_from_slice(b"not a database!!");
    std::fs::write(&db, bytes).unwrap();
    // The daemon refuses to start, says which file and what to do; the
    // damaged file is left as it is.
    let (code, text) = output(&["run", manifest.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("revisions.db"), "{text}");
    assert!(text.contains("Move it away"), "{text}");
    assert_eq!(&std::fs::read(&db).unwrap()[..16], b"not a database!!");
    // `history` says the same, with its own exit status.
    let (code, text) = output(&["history", manifest.to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("revisions.db"), "{text}");
}

/// The README's demo (a copy of examples/demo): a 0.1.0 and a 0.2.0
/// handler in one daemon; a change that needs a restart says which field
/// and why.
#[test]
fn the_demo_runs_both_contracts_in_one_daemon() -> Result<()> {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("config"))?;
    std::fs::copy(
        demo.join("hotreload.toml"),
        dir.path().join("hotreload.toml"),
    )?;
    for file in ["logging.json", "plugin.yaml"] {
        std::fs::copy(
            demo.join("config").join(file),
            dir.path().join("config").join(file),
        )?;
    }
    let mut cmd = hotreload();
    cmd.arg("run")
        .arg(dir.path().join("hotreload.toml"))
        .args(["--events-format", "text"]);
    let mut d = Running::start(cmd);
    assert_eq!(d.next_line(20), "logging Applied v1");
    assert_eq!(d.next_line(20), "plugin Applied v1");
    let plugin = dir.path().join("config/plugin.yaml");
    let text = std::fs::read_to_string(&plugin)?;
    atomic_write(&plugin, &text.replace("workers: 4", "workers: 8"));
    assert_eq!(d.next_line(5), "plugin Applied v2");
    atomic_write(&plugin, &text.replace("enabled: true", "enabled: false"));
    assert_eq!(
        d.next_line(5),
        "plugin RestartRequired v2: /enabled: the plugin registers its routes at start"
    );
    let logging = dir.path().join("config/logging.json");
    let text = std::fs::read_to_string(&logging)?;
    atomic_write(&logging, &text.replace("\"info\"", "\"debug\""));
    assert_eq!(d.next_line(5), "logging Applied v2");
    d.signal("TERM");
    assert_eq!(d.wait_exit(10), 0);
    Ok(())
}
