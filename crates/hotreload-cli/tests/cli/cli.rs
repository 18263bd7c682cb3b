//! The `hotreload` binary: `try` and `test`.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::Result;
use serde_json::Value;

fn hotreload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotreload"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run hotreload")
}

fn write(dir: &Path, name: &str, text: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path.display().to_string())
}

#[test]
fn try_applies_and_prints_the_event() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let old = write(dir.path(), "old.json", r#"{"level": "info"}"#)?;
    let new = write(dir.path(), "new.json", r#"{"level": "debug"}"#)?;
    let out = hotreload(&[
        "try",
        hotreload_handlers::LOGGING_PATH,
        "--old",
        &old,
        "--new",
        &new,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let event: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(event["outcome"], "applied");
    assert_eq!(event["effective_config"]["level"], "debug");
    assert_eq!(event["config_path"], new.as_str());
    Ok(())
}

#[test]
fn try_exits_1_when_rejected() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let old = write(dir.path(), "old.json", r#"{"level": "info"}"#)?;
    let new = write(dir.path(), "new.json", r#"{"level": "loud"}"#)?;
    let out = hotreload(&[
        "try",
        hotreload_handlers::LOGGING_PATH,
        "--old",
        &old,
        "--new",
        &new,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let event: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(event["outcome"], "rejected");
    assert_eq!(event["error"]["field"], "/level");
    Ok(())
}

#[test]
fn try_honours_limits_from_the_command_line() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let old = write(dir.path(), "old.json", "{}")?;
    let new = write(dir.path(), "new.json", r#"{"validate": "spin"}"#)?;
    let out = hotreload(&[
        "try",
        hotreload_handlers::CHAOS_PATH,
        "--old",
        &old,
        "--new",
        &new,
        "--timeout-ms",
        "20",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let event: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(event["cause"], "timeout");
    let out = hotreload(&[
        "try",
        hotreload_handlers::CHAOS_PATH,
        "--old",
        &old,
        "--new",
        &new,
        "--fuel",
        "100000",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let event: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(event["cause"], "out_of_fuel");
    Ok(())
}

#[test]
fn try_exits_2_on_a_handler_that_is_not_a_component() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = write(dir.path(), "c.json", "{}")?;
    let junk = write(dir.path(), "junk.wasm", "random bytes, not wasm")?;
    let out = hotreload(&["try", &junk, "--old", &cfg, "--new", &cfg]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a WebAssembly binary"), "{stderr}");
    assert!(out.stdout.is_empty());
    Ok(())
}

#[test]
fn try_exits_2_on_usage_errors() {
    let out = hotreload(&["try", "x.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    let out = hotreload(&[
        "try",
        hotreload_handlers::LOGGING_PATH,
        "--old",
        "/nonexistent/a.json",
        "--new",
        "/nonexistent/b.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a.json"));
}

#[test]
fn test_command_passes_every_scenario() {
    let out = hotreload(&["test", "-v"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // Every scenario of the suite, each passed.
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS ")).count(),
        13,
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == "13 passed, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("success rate"), "{stdout}");
}
