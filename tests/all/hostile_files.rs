//! The daemon against a hostile filesystem: FIFOs, devices, links out of
//! the config directory, empty files, one directory reached two ways or
//! recreated, a directory missing at start, secrets, a second daemon.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use hotreload::daemon::{Daemon, Manifest};
use hotreload::{Cause, Error, Event, Outcome, Phase};
use tokio::sync::broadcast;

/// A daemon on a manifest whose components are (name, config path as the
/// manifest writes it).
struct Running {
    daemon: Daemon,
    events: broadcast::Receiver<Arc<Event>>,
}

fn manifest(dir: &Path, extra: &str, components: &[(&str, &str)]) -> Result<PathBuf> {
    let mut text = format!("[runtime]\ndebounce_ms = 50\nretry_interval_ms = 1\n{extra}\n");
    for (name, config) in components {
        text.push_str(&format!(
            "[[component]]\nname = \"{name}\"\nhandler = \"bundled:logging\"\nconfig = \"{config}\"\n"
        ));
    }
    let path = dir.join("hotreload.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

async fn start(path: &Path) -> Result<Running> {
    let mut daemon = Daemon::new(Manifest::load(path)?, hotreload_handlers::by_name)?;
    let mut events = daemon.runtime().event_stream();
    daemon.start().await?;
    // The start's own events are not what the tests wait for.
    while events.try_recv().is_ok() {}
    Ok(Running { daemon, events })
}

impl Running {
    async fn next(&mut self, component: &str) -> Arc<Event> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Ok(e)) if e.component == component => return e,
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => panic!("event stream: {e}"),
                Err(_) => panic!("no event for {component} within 10 s"),
            }
        }
    }

    fn level(&self, component: &str) -> String {
        self.daemon.runtime().current(component).unwrap()["level"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn mkfifo(path: &Path) -> Result<()> {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()?
        .success();
    anyhow::ensure!(ok, "mkfifo {}", path.display());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_config_is_refused_by_name_and_never_opened_for_reading() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("logging.json");
    std::fs::write(&config, r#"{"level": "debug"}"#)?;
    let mut d = start(&manifest(dir.path(), "", &[("logging", "logging.json")])?).await?;
    std::fs::remove_file(&config)?;
    mkfifo(&config)?;
    // Not a JSON file that "vanished": a FIFO, said so, with its own cause.
    let e = d.next("logging").await;
    if e.cause == Some(Cause::Unreadable) && e.error.as_ref().unwrap().message.contains("removed") {
        // The removal and the FIFO can land in two debounce windows.
        let e = d.next("logging").await;
        assert_fifo(&e);
    } else {
        assert_fifo(&e);
    }
    assert_eq!(d.level("logging"), "debug");
    // The daemon still answers: a real file again is applied.
    std::fs::remove_file(&config)?;
    write(&config, r#"{"level": "warn"}"#)?;
    loop {
        let e = d.next("logging").await;
        if e.outcome == Outcome::Applied {
            break;
        }
    }
    assert_eq!(d.level("logging"), "warn");
    // A FIFO at start, with no last-known-good: the start is refused by name.
    let other = tempfile::tempdir()?;
    mkfifo(&other.path().join("logging.json"))?;
    let path = manifest(other.path(), "", &[("logging", "logging.json")])?;
    let err = start(&path)
        .await
        .err()
        .expect("a FIFO cannot start a component");
    assert!(err.to_string().contains("FIFO"), "{err}");
    d.daemon.shutdown().await;
    Ok(())
}

fn assert_fifo(e: &Event) {
    assert_eq!(e.outcome, Outcome::Rejected, "{}", e.summary());
    assert_eq!(e.cause, Some(Cause::Unreadable), "{}", e.summary());
    assert_eq!(e.failed_phase, Some(Phase::Parse));
    assert!(
        e.error.as_ref().unwrap().message.contains("FIFO"),
        "{}",
        e.summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_a_device_or_out_of_the_directory_is_not_read() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf)?;
    let config = conf.join("logging.json");
    std::fs::write(&config, r#"{"level": "debug"}"#)?;
    let secret_dir = tempfile::tempdir()?;
    let secret = secret_dir.path().join("shadow.json");
    std::fs::write(
        &secret,
        r#"{"level": "info", "fields": {"password": "hunter2"}}"#,
    )?;
    let mut d = start(&manifest(
        dir.path(),
        "",
        &[("logging", "conf/logging.json")],
    )?)
    .await?;

    // A link to /dev/zero: refused without being opened (it would never end).
    let tmp = conf.join("link.tmp");
    symlink("/dev/zero", &tmp)?;
    std::fs::rename(&tmp, &config)?;
    let e = d.next("logging").await;
    assert_eq!(e.cause, Some(Cause::Unreadable), "{}", e.summary());
    assert!(
        e.error.as_ref().unwrap().message.contains("outside"),
        "{}",
        e.summary()
    );
    // A device named as the configuration itself: refused, saying what it is.
    let other = tempfile::tempdir()?;
    let path = manifest(other.path(), "", &[("zero", "/dev/zero")])?;
    let err = start(&path)
        .await
        .err()
        .expect("a device is no configuration");
    assert!(err.to_string().contains("character device"), "{err}");

    write(&config, r#"{"level": "debug"}"#)?;
    let e = d.next("logging").await;
    assert_eq!(e.outcome, Outcome::Unchanged, "{}", e.summary());

    // A link out of the config directory: refused, and nothing of the
    // target reaches the event.
    symlink(&secret, &tmp)?;
    std::fs::rename(&tmp, &config)?;
    let e = d.next("logging").await;
    assert_eq!(e.cause, Some(Cause::Unreadable), "{}", e.summary());
    assert!(
        e.error.as_ref().unwrap().message.contains("outside"),
        "{}",
        e.summary()
    );
    let shown = serde_json::to_string(&*e)?;
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(d.level("logging"), "debug");
    d.daemon.shutdown().await;

    // The same link is read when the manifest names the target's directory
    // as a root, and its secret is redacted in the event.
    let state = dir.path().join(".hotreload");
    std::fs::remove_dir_all(&state)?;
    std::fs::remove_file(&config)?;
    std::fs::write(&config, r#"{"level": "debug"}"#)?;
    let roots = format!(
        "config_roots = [{:?}]",
        secret_dir.path().display().to_string()
    );
    let mut d = start(&manifest(
        dir.path(),
        &roots,
        &[("logging", "conf/logging.json")],
    )?)
    .await?;
    symlink(&secret, &tmp)?;
    std::fs::rename(&tmp, &config)?;
    let e = d.next("logging").await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    let shown = serde_json::to_string(&*e)?;
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    // The handler and the service saw the real value.
    assert_eq!(
        d.daemon.runtime().current("logging")?["fields"]["password"],
        "hunter2"
    );
    d.daemon.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_is_never_a_configuration() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("logging.toml");
    std::fs::write(&config, "level = \"debug\"\nformat = \"json\"\n")?;
    let mut d = start(&manifest(dir.path(), "", &[("logging", "logging.toml")])?).await?;
    // An editor's truncate, left longer than the debounce.
    std::fs::write(&config, "  \n")?;
    let e = d.next("logging").await;
    assert_eq!(e.outcome, Outcome::Rejected, "{}", e.summary());
    assert_eq!(e.cause, Some(Cause::Empty), "{}", e.summary());
    assert!(
        e.error.as_ref().unwrap().message.contains("# empty"),
        "{}",
        e.summary()
    );
    let current = d.daemon.runtime().current("logging")?;
    assert_eq!(current["level"], "debug");
    assert_eq!(current["format"], "json");
    // ...then the write lands.
    std::fs::write(&config, "level = \"warn\"\nformat = \"json\"\n")?;
    let e = d.next("logging").await;
    assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
    d.daemon.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_directory_reached_two_ways_reloads_both_components() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let real = dir.path().join("real");
    std::fs::create_dir(&real)?;
    symlink(&real, dir.path().join("a"))?;
    symlink(&real, dir.path().join("b"))?;
    std::fs::create_dir(dir.path().join("sub"))?;
    std::fs::write(real.join("one.json"), r#"{"level": "info"}"#)?;
    std::fs::write(real.join("two.json"), r#"{"level": "info"}"#)?;
    std::fs::write(real.join("three.json"), r#"{"level": "info"}"#)?;
    let mut d = start(&manifest(
        dir.path(),
        "",
        &[
            ("one", "a/one.json"),
            ("two", "b/two.json"),
            ("three", "sub/../real/three.json"),
        ],
    )?)
    .await?;
    for round in ["debug", "warn"] {
        for name in ["one", "two", "three"] {
            write(
                &real.join(format!("{name}.json")),
                &format!(r#"{{"level": "{round}"}}"#),
            )?;
            let e = d.next(name).await;
            assert_eq!(e.outcome, Outcome::Applied, "{}", e.summary());
            assert_eq!(d.level(name), round);
        }
    }
    d.daemon.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_deleted_and_recreated_is_watched_again() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf)?;
    std::fs::write(conf.join("logging.json"), r#"{"level": "info"}"#)?;
    let mut d = start(&manifest(
        dir.path(),
        "",
        &[("logging", "conf/logging.json")],
    )?)
    .await?;
    for (round, level) in ["debug", "warn", "error"].into_iter().enumerate() {
        std::fs::remove_dir_all(&conf)?;
        let e = d.next("logging").await;
        assert_eq!(
            e.cause,
            Some(Cause::Unreadable),
            "round {round}: {}",
            e.summary()
        );
        std::fs::create_dir(&conf)?;
        write(
            &conf.join("logging.json"),
            &format!(r#"{{"level": "{level}"}}"#),
        )?;
        let e = d.next("logging").await;
        assert_eq!(
            e.outcome,
            Outcome::Applied,
            "round {round}: {}",
            e.summary()
        );
        assert_eq!(d.level("logging"), level);
    }
    d.daemon.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_missing_at_start_starts_on_last_known_good_and_is_picked_up() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf)?;
    std::fs::write(conf.join("logging.json"), r#"{"level": "debug"}"#)?;
    let path = manifest(dir.path(), "", &[("logging", "conf/logging.json")])?;
    let mut d = start(&path).await?;
    d.daemon.shutdown().await;
    drop(d);
    std::fs::remove_dir_all(&conf)?;
    let mut d = start(&path).await?;
    assert_eq!(d.level("logging"), "debug");
    std::fs::create_dir(&conf)?;
    write(&conf.join("logging.json"), r#"{"level": "warn"}"#)?;
    loop {
        let e = d.next("logging").await;
        if e.outcome == Outcome::Applied && e.kind == hotreload::EventKind::FileChange {
            break;
        }
    }
    assert_eq!(d.level("logging"), "warn");
    d.daemon.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_runtime_on_one_state_directory_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("logging.json"), r#"{"level": "debug"}"#)?;
    let path = manifest(dir.path(), "", &[("logging", "logging.json")])?;
    let mut first = start(&path).await?;
    let err = Daemon::new(Manifest::load(&path)?, hotreload_handlers::by_name)
        .err()
        .expect("the state directory is taken");
    let Error::StateDirInUse { dir: held, pid } = &err else {
        panic!("expected StateDirInUse, got {err}");
    };
    assert_eq!(*pid, Some(std::process::id()));
    assert!(held.ends_with(".hotreload"), "{err}");
    assert!(err.to_string().contains("state_dir"), "{err}");
    // Released at shutdown: the next one starts.
    first.daemon.shutdown().await;
    let mut second = start(&path).await?;
    second.daemon.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_the_same_handler_bytes_is_unchanged() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let handler = dir.path().join("logging.wasm");
    std::fs::write(&handler, hotreload_handlers::LOGGING)?;
    std::fs::write(dir.path().join("logging.json"), r#"{"level": "debug"}"#)?;
    std::fs::write(
        dir.path().join("hotreload.toml"),
        "[runtime]\ndebounce_ms = 50\n[[component]]\nname = \"logging\"\nhandler = \"logging.wasm\"\nconfig = \"logging.json\"\n",
    )?;
    let mut d = start(&dir.path().join("hotreload.toml")).await?;
    // Removed, then the same bytes put back.
    std::fs::remove_file(&handler)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&handler, hotreload_handlers::LOGGING)?;
    loop {
        let e = d.next("logging").await;
        if e.kind == hotreload::EventKind::HandlerSwap {
            assert_eq!(e.outcome, Outcome::Unchanged, "{}", e.summary());
            assert_eq!(e.version, 1);
            break;
        }
    }
    d.daemon.shutdown().await;
    Ok(())
}

#[test]
fn bad_paths_in_a_manifest_say_what_they_are() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("handler.wasm"))?;
    let text = "[[component]]\nname = \"a\"\nhandler = \"handler.wasm\"\nconfig = \"c.json\"\n";
    let err = Manifest::parse(&dir.path().join("m.toml"), text)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a directory"), "{err}");
    // A state_dir that is a file says state_dir.
    std::fs::write(dir.path().join("state"), "")?;
    let settings = hotreload::Settings {
        state_dir: Some(dir.path().join("state")),
        ..hotreload::Settings::default()
    };
    let err = hotreload::Runtime::new(settings)
        .err()
        .expect("a file is no state_dir");
    assert!(err.to_string().starts_with("state_dir "), "{err}");
    // Names: Unicode letters are refused, saying ASCII; control characters
    // are shown escaped.
    let err = Manifest::parse(
        &dir.path().join("m.toml"),
        "[[component]]\nname = \"лог\\n\"\nhandler = \"bundled:logging\"\nconfig = \"c.json\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("ASCII"), "{err}");
    assert!(err.contains("\\n"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    Ok(())
}
