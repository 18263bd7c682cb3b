//! The daemon as a process against what an attacker or a careless
//! operator does: FIFOs, a closed or slow stdout, a second daemon, an idle
//! daemon that must read nothing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde_json::Value;

fn hotreload() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hotreload"));
    c.env("RUST_LOG", "warn");
    c
}

fn manifest(dir: &Path, n: usize) -> Result<std::path::PathBuf> {
    let mut text = String::from(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndebounce_ms = 20\nretry_interval_ms = 1\n",
    );
    for i in 0..n {
        let config = dir.join(format!("c{i}.json"));
        if !config.exists() {
            std::fs::write(&config, r#"{"level": "info"}"#)?;
        }
        text.push_str(&format!(
            "[[component]]\nname = \"c{i}\"\nhandler = \"bundled:logging\"\nconfig = \"c{i}.json\"\n"
        ));
    }
    let path = dir.join("hotreload.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn mkfifo(path: &Path) -> Result<()> {
    ensure!(
        Command::new("mkfifo").arg(path).status()?.success(),
        "mkfifo"
    );
    Ok(())
}

fn signal(child: &Child, sig: &str) -> Result<()> {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()?
        .success();
    ensure!(ok, "kill -{sig}");
    Ok(())
}

/// The exit code within `limit`, or an error (the child is killed).
fn exit_within(child: &mut Child, limit: Duration) -> Result<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.code().unwrap_or(-1));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads stdout lines until one satisfies `want`, within 10 s.
fn until(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    want: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    for line in lines {
        let v: Value = serde_json::from_str(&line?)?;
        if want(&v) {
            return Ok(v);
        }
        ensure!(Instant::now() < deadline, "no such event in time");
    }
    anyhow::bail!("stdout ended")
}

#[test]
fn a_fifo_never_blocks_the_daemon_validate_or_try() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = manifest(dir.path(), 1)?;
    let config = dir.path().join("c0.json");
    // At start, with no last-known-good: refused by name, at once.
    std::fs::remove_file(&config)?;
    mkfifo(&config)?;
    let out = hotreload().arg("validate").arg(&path).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FIFO"), "{text}");
    let mut child = hotreload()
        .arg("run")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    assert_eq!(exit_within(&mut child, Duration::from_secs(10))?, 1);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err)?;
    assert!(err.contains("FIFO"), "{err}");
    let out = hotreload()
        .args(["try", hotreload_handlers::LOGGING_PATH, "--old"])
        .arg(&config)
        .arg("--new")
        .arg(&config)
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FIFO"));

    // A manifest that is a FIFO: a bad manifest, at once.
    let fifo_manifest = dir.path().join("fifo.toml");
    mkfifo(&fifo_manifest)?;
    for command in ["validate", "run"] {
        let mut child = hotreload()
            .arg(command)
            .arg(&fifo_manifest)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        assert_eq!(
            exit_within(&mut child, Duration::from_secs(10))?,
            2,
            "{command}"
        );
    }

    // A FIFO swapped in while running: an event names it, and SIGTERM still
    // ends the daemon at once.
    std::fs::remove_file(&config)?;
    std::fs::write(&config, r#"{"level": "debug"}"#)?;
    let mut child = hotreload()
        .arg("run")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    until(&mut lines, |v| v["kind"] == "initial")?;
    std::fs::remove_file(&config)?;
    mkfifo(&config)?;
    let e = until(&mut lines, |v| {
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("FIFO"))
    })?;
    assert_eq!(e["cause"], "unreadable");
    signal(&child, "TERM")?;
    assert_eq!(exit_within(&mut child, Duration::from_secs(2))?, 0);
    Ok(())
}

#[test]
fn a_closed_stdout_is_logged_once_and_the_daemon_goes_on() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = manifest(dir.path(), 1)?;
    let mut child = hotreload()
        .arg("run")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    until(&mut lines, |v| v["kind"] == "initial")?;
    drop(lines);
    let state = dir.path().join(".hotreload");
    for (i, level) in ["debug", "warn", "error"].iter().enumerate() {
        let tmp = dir.path().join("c0.tmp");
        std::fs::write(&tmp, format!(r#"{{"level": "{level}"}}"#))?;
        std::fs::rename(&tmp, dir.path().join("c0.json"))?;
        // Still reloading and committing with nobody reading its events.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if crate::latest(&state, "c0")?.version == i as u64 + 2 {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "version {} never committed",
                i + 2
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    signal(&child, "TERM")?;
    assert_eq!(exit_within(&mut child, Duration::from_secs(2))?, 0);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err)?;
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.matches("stdout is closed").count(), 1, "{err}");
    Ok(())
}

#[test]
fn a_slow_reader_loses_no_event_silently() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = manifest(dir.path(), 50)?;
    let mut child = hotreload()
        .arg("run")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().unwrap();
    // Nobody reads while 100 SIGHUPs make 5,000 events (50 re-read each).
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..100 {
        signal(&child, "HUP")?;
        std::thread::sleep(Duration::from_millis(15));
    }
    std::thread::sleep(Duration::from_millis(2000));
    // Now read it all, slowly at first, until the daemon has nothing more.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, line) in BufReader::new(stdout).lines().enumerate() {
            if n < 100 {
                std::thread::sleep(Duration::from_millis(1));
            }
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen: Vec<(u64, u64)> = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(3)) {
        let v: Value = serde_json::from_str(&line?)?;
        if let Some(d) = v.get("dropped") {
            let (a, b) = (
                d["first_id"].as_u64().unwrap(),
                d["last_id"].as_u64().unwrap(),
            );
            assert_eq!(d["count"].as_u64(), Some(b - a + 1));
            seen.push((a, b));
        } else {
            let id = v["id"].as_u64().expect("an event has an id");
            seen.push((id, id));
        }
    }
    signal(&child, "TERM")?;
    assert_eq!(exit_within(&mut child, Duration::from_secs(5))?, 0);
    // Every id from 1 to the last, each once: printed late or reported.
    let mut next = 1;
    for (a, b) in &seen {
        assert_eq!(*a, next, "a gap or a repeat before id {a}");
        next = b + 1;
    }
    // Signals sent close together may merge; most of the 100 arrive.
    assert!(next > 1000, "only {} events", next - 1);
    Ok(())
}

#[test]
fn an_idle_daemon_reads_nothing() -> Result<()> {
    // The daemon watches a config directory's parent (to see it deleted and
    // created again); a tempdir's parent is the shared temp directory, where
    // other tests' files would wake it. One level down, the parent is ours.
    let root = tempfile::tempdir()?;
    let dir = root.path().join("service");
    std::fs::create_dir(&dir)?;
    let path = manifest(&dir, 3)?;
    let mut child = hotreload()
        .arg("run")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        until(&mut lines, |v| v["kind"] == "initial")?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let io = format!("/proc/{}/io", child.id());
    let rchar = || -> Result<u64> {
        let text = std::fs::read_to_string(&io)?;
        let line = text
            .lines()
            .find(|l| l.starts_with("rchar:"))
            .expect("rchar");
        Ok(line["rchar:".len()..].trim().parse()?)
    };
    let before = rchar()?;
    std::thread::sleep(Duration::from_secs(5));
    let after = rchar()?;
    assert_eq!(
        after,
        before,
        "an idle daemon read {} bytes in 5 s",
        after - before
    );
    signal(&child, "TERM")?;
    assert_eq!(exit_within(&mut child, Duration::from_secs(2))?, 0);
    Ok(())
}

#[test]
fn a_second_daemon_on_one_state_directory_refuses_to_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = manifest(dir.path(), 1)?;
    let mut first = hotreload()
        .arg("run")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    until(&mut lines, |v| v["kind"] == "initial")?;
    let out = hotreload().arg("run").arg(&path).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("state_dir"), "{err}");
    assert!(err.contains(&format!("PID {}", first.id())), "{err}");
    // The kernel releases the lock of a killed daemon.
    first.kill()?;
    first.wait()?;
    let mut second = hotreload()
        .arg("run")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(second.stdout.take().unwrap()).lines();
    until(&mut lines, |v| v["kind"] == "initial")?;
    signal(&second, "TERM")?;
    assert_eq!(exit_within(&mut second, Duration::from_secs(2))?, 0);
    Ok(())
}

#[test]
fn an_invalid_component_name_is_a_bad_manifest() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("hotreload.toml");
    std::fs::write(
        &path,
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[component]]\nname = \"a b\"\nhandler = \"bundled:logging\"\nconfig = \"c.json\"\n",
    )?;
    let out = hotreload().arg("run").arg(&path).output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ASCII"));
    Ok(())
}

/// A small deterministic generator (xorshift), so a failing run can be
/// replayed from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn chaos_on_the_watched_tree_for_60_seconds() -> Result<()> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let secs: u64 = std::env::var("CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf)?;
    let config = conf.join("c.json");
    std::fs::write(&config, r#"{"level": "info"}"#)?;
    std::fs::write(
        dir.path().join("hotreload.toml"),
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndebounce_ms = 20\nretry_interval_ms = 1\n[[component]]\nname = \"c\"\nhandler = \"bundled:logging\"\nconfig = \"conf/c.json\"\n",
    )?;
    let mut child = hotreload()
        .arg("run")
        .arg(dir.path().join("hotreload.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let bad_line = Arc::new(AtomicBool::new(false));
    let lines_seen = Arc::new(AtomicU64::new(0));
    let (flag, count) = (bad_line.clone(), lines_seen.clone());
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if serde_json::from_str::<Value>(&line).is_err() {
                eprintln!("not JSON: {line}");
                flag.store(true, Ordering::SeqCst);
            }
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    let stderr = child.stderr.take().unwrap();
    let panicked = Arc::new(AtomicBool::new(false));
    let p = panicked.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if line.contains("panicked") {
                eprintln!("daemon: {line}");
                p.store(true, Ordering::SeqCst);
            }
        }
    });
    let state = dir.path().join(".hotreload");
    let in_force = || -> Value {
        crate::latest(&state, "c")
            .map(|r| crate::config_of(&r))
            .unwrap_or_default()
    };
    // Chaos starts once the component is up.
    let up = Instant::now() + Duration::from_secs(10);
    while lines_seen.load(Ordering::SeqCst) == 0 {
        ensure!(Instant::now() < up, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut ops = 0u64;
    let write_atomic = |text: &str| -> std::io::Result<()> {
        let tmp = conf.join(".c.json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &config)
    };
    let clear = |path: &Path| {
        let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir_all(path));
    };
    // The test's own writes must not block on a FIFO it made (the daemon
    // never opens one; a writer would wait for a reader).
    let is_fifo = |path: &Path| {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
    };
    while Instant::now() < deadline {
        let level = LEVELS[rng.below(4) as usize];
        // Each operation may fail (the directory may be gone): that is chaos
        // too; only the daemon's behaviour is checked.
        let _ = match rng.below(11) {
            0 => write_atomic(&format!(r#"{{"level": "{level}"}}"#)),
            1 => write_atomic(r#"{"level": "loud"}"#),
            2 if !is_fifo(&config) => std::fs::write(&config, format!(r#"{{"level": "{level}"}}"#)),
            3 if !is_fifo(&config) => std::fs::write(&config, ""),
            2 | 3 => Ok(()),
            4 => std::fs::remove_file(&config),
            5 => {
                // Swap the whole directory.
                let old = dir.path().join("conf.old");
                clear(&old);
                let _ = std::fs::rename(&conf, &old);
                std::fs::create_dir_all(&conf)
                    .and_then(|()| std::fs::write(&config, format!(r#"{{"level": "{level}"}}"#)))
            }
            6 => {
                // A symlink flip inside the directory, as Kubernetes does.
                let data = conf.join(format!("data{}", rng.below(2)));
                let _ = std::fs::create_dir_all(&data);
                let _ = std::fs::write(data.join("c.json"), format!(r#"{{"level": "{level}"}}"#));
                let tmp = conf.join(".link.tmp");
                clear(&tmp);
                symlink(data.join("c.json"), &tmp).and_then(|()| std::fs::rename(&tmp, &config))
            }
            7 => {
                clear(&config);
                Command::new("mkfifo").arg(&config).status().map(|_| ())
            }
            8 => std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o000))
                .and_then(|()| {
                    std::thread::sleep(Duration::from_millis(5));
                    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))
                }),
            9 => signal(&child, "HUP").map_err(std::io::Error::other),
            _ => {
                // A symlink to a device.
                let tmp = conf.join(".dev.tmp");
                clear(&tmp);
                symlink("/dev/zero", &tmp).and_then(|()| std::fs::rename(&tmp, &config))
            }
        };
        ops += 1;
        std::thread::sleep(Duration::from_millis(rng.below(30)));
        // The invariants, after every step.
        assert!(
            child.try_wait()?.is_none(),
            "the daemon died after {ops} operations"
        );
        assert!(
            !panicked.load(Ordering::SeqCst),
            "a host panic after {ops} operations"
        );
        assert!(
            !bad_line.load(Ordering::SeqCst),
            "a stdout line that is not JSON"
        );
        let saved = in_force();
        if !saved.is_null() {
            let level = saved["level"].as_str().unwrap_or("?");
            assert!(LEVELS.contains(&level), "in force: {saved}");
        }
    }
    // Still alive and answering: a good file is applied, and SIGTERM ends it.
    clear(&config);
    std::fs::create_dir_all(&conf)?;
    write_atomic(r#"{"level": "error"}"#)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let saved = in_force();
        if saved["level"] == "error" {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the daemon stopped applying changes: {saved}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "TERM")?;
    assert_eq!(exit_within(&mut child, Duration::from_secs(2))?, 0);
    assert!(!panicked.load(Ordering::SeqCst));
    eprintln!(
        "chaos: {ops} operations in {secs} s (seed {seed:#x}), {} events printed",
        lines_seen.load(Ordering::SeqCst)
    );
    Ok(())
}
