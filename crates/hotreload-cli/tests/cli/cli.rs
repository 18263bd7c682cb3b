//! The `hotreload` binary: `try`, `conform` and `test`.

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

/// The first check `conform` runs.
const IMPORTS_CHECK: &str =
    "exports hotreload:handler/handler (0.1.0 or 0.2.0) and imports nothing else";

/// `(component (import "evil:net/sockets" (instance)))`: imports an
/// interface that is neither the world's nor WASI, and exports nothing.
/// Written out because this crate has no WAT assembler; the tests below
/// fail if these bytes are not that component.
const FOREIGN_IMPORT: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, // component preamble
    0x07, 0x03, 0x01, 0x42, 0x00, // type section: one empty instance type
    0x0a, 0x15, 0x01, 0x00, 0x10, // import section: one import, a 16-byte name
    b'e', b'v', b'i', b'l', b':', b'n', b'e', b't', b'/', b's', b'o', b'c', b'k', b'e', b't', b's',
    0x05, 0x00, // an instance of type 0
];

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `conform --json`'s output: one JSON object whose `passed` agrees with
/// the exit status and whose report holds every check.
fn json_report(out: &Output) -> Value {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json printed something that is not JSON ({e}): {}",
            stdout_of(out)
        )
    });
    assert_eq!(v["passed"], out.status.code() == Some(0), "{v:#}");
    let checks = v["report"]["checks"].as_array().expect("report.checks");
    assert!(!checks.is_empty());
    for c in checks {
        assert!(
            c["name"].is_string() && c["passed"].is_boolean() && c["detail"].is_string(),
            "{c}"
        );
    }
    assert_eq!(checks[0]["name"], IMPORTS_CHECK);
    assert_eq!(
        v["passed"],
        checks.iter().all(|c| c["passed"] == true),
        "passed must be every check passing: {v:#}"
    );
    v
}

#[test]
fn conform_exits_0_when_every_check_passes() {
    let out = hotreload(&["conform", hotreload_handlers::LOGGING_PATH]);
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let checks: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("PASS") || l.starts_with("FAIL"))
        .collect();
    assert!(checks.len() >= 15, "{stdout}");
    assert!(checks.iter().all(|l| l.starts_with("PASS  ")), "{stdout}");
    assert!(
        checks[0].starts_with(&format!(
            "PASS  {IMPORTS_CHECK}: imports hotreload:handler/host@0.1.0"
        )),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(&format!("{} passed, 0 failed\n", checks.len())),
        "{stdout}"
    );

    let out = hotreload(&["conform", hotreload_handlers::LOGGING_PATH, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout_of(&out));
    let v = json_report(&out);
    assert_eq!(v["report"]["loaded"], true);
    assert_eq!(v["handler"], hotreload_handlers::LOGGING_PATH);
    let phases: Vec<&str> = v["report"]["phases"]
        .as_array()
        .expect("report.phases")
        .iter()
        .map(|p| p["phase"].as_str().expect("phase name"))
        .collect();
    assert_eq!(phases, ["validate", "reload", "can-reload", "rollback"]);
}

#[test]
fn conform_exits_1_when_a_check_fails() {
    // The logging handler refuses this level, so the checks of the given
    // configuration fail; the handler itself loads.
    let dir = tempfile::tempdir().unwrap();
    let loud = write(dir.path(), "loud.json", r#"{"level": "loud"}"#).unwrap();
    let out = hotreload(&[
        "conform",
        hotreload_handlers::LOGGING_PATH,
        "--config",
        &loud,
    ]);
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.lines().any(
            |l| l.starts_with("FAIL  validate accepts the given configuration: ")
                && l.contains("/level")
        ),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("PASS  ")), "{stdout}");

    let out = hotreload(&[
        "conform",
        hotreload_handlers::LOGGING_PATH,
        "--config",
        &loud,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout_of(&out));
    let v = json_report(&out);
    assert_eq!(v["report"]["loaded"], true);
    let failed: Vec<&str> = v["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&"validate accepts the given configuration"),
        "{failed:?}"
    );
}

#[test]
fn conform_exits_2_on_a_handler_the_host_cannot_load() {
    // A component importing a foreign interface: the report names it.
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.wasm");
    std::fs::write(&foreign, FOREIGN_IMPORT).unwrap();
    let foreign = foreign.display().to_string();
    let out = hotreload(&["conform", &foreign]);
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "FAIL  {IMPORTS_CHECK}: imports evil:net/sockets: a handler may import only"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("no other check ran"), "{stdout}");

    let out = hotreload(&["conform", &foreign, "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout_of(&out));
    let v = json_report(&out);
    assert_eq!(v["report"]["loaded"], false);
    let checks = v["report"]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "{v:#}");
    assert_eq!(checks[0]["passed"], false);
    assert!(
        checks[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("imports evil:net/sockets:"),
        "{v:#}"
    );

    // Bytes that are not a component at all: there is nothing to check.
    let junk = write(dir.path(), "junk.wasm", "random bytes, not wasm").unwrap();
    let out = hotreload(&["conform", &junk]);
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("not a WebAssembly binary"), "{stdout}");
    let out = hotreload(&["conform", &junk, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(v["passed"], false);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a WebAssembly binary")),
        "{v:#}"
    );
}

#[test]
fn conform_exits_2_on_usage_errors() {
    let out = hotreload(&["conform", "/nonexistent/handler.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/handler.wasm"));
    let out = hotreload(&[
        "conform",
        hotreload_handlers::LOGGING_PATH,
        "--config",
        "/nonexistent/c.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("c.json"));
    let out = hotreload(&["conform"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn replay_exits_0_when_the_same_1_when_not_2_when_it_cannot() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    let (applied, rejected) = tokio::runtime::Runtime::new()?.block_on(async {
        let rt = hotreload::Runtime::new(hotreload::Settings {
            state_dir: Some(state.clone()),
            ..crate::settings()
        })?;
        rt.add_component(hotreload::ComponentSpec::new(
            "logging",
            hotreload_handlers::LOGGING,
            r#"{"level": "info"}"#,
        ))
        .await?;
        let applied = rt
            .reload("logging", serde_json::json!({"level": "debug"}))
            .await?;
        let rejected = rt
            .reload("logging", serde_json::json!({"level": "loud"}))
            .await?;
        rt.shutdown().await;
        anyhow::Ok((applied, rejected))
    })?;
    let state_arg = state.display().to_string();
    let replay = |args: &[&str]| -> Result<Output> {
        let mut all = vec!["replay", state_arg.as_str()];
        all.extend_from_slice(args);
        Ok(hotreload(&all))
    };
    for id in [applied.id, rejected.id] {
        let out = replay(&[&id.to_string(), "--json"])?;
        let report: Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(out.status.code(), Some(0), "{report}");
        assert_eq!(report["same"], true, "{report}");
    }
    // An event file (as the daemon prints it) that says something else.
    let mut event = serde_json::to_value(&*rejected)?;
    event["outcome"] = "applied".into();
    let file = dir.path().join("event.json");
    std::fs::write(&file, event.to_string())?;
    let out = replay(&["--event", file.to_str().unwrap()])?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("differs: outcome"), "{text}");
    // No such event; not a state directory.
    let out = replay(&["4242"])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no replay record of event 4242"));
    let out = hotreload(&["replay", dir.path().join("nope").to_str().unwrap(), "1"]);
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}

#[test]
fn wit_gives_each_contract_as_the_repository_carries_it() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let v01 = std::fs::read_to_string(root.join("wit/handler.wit"))?;
    let v02 = std::fs::read_to_string(root.join("wit/v0.2/handler.wit"))?;
    assert!(v01.contains("package hotreload:handler@0.1.0;"));
    assert!(v02.contains("package hotreload:handler@0.2.0;"));
    // Contract 0.2 by default, on stdout without a directory.
    let out = hotreload(&["wit"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout)?.trim_end(), v02.trim_end());
    let out = hotreload(&["wit", "--version", "0.1"]);
    assert_eq!(String::from_utf8(out.stdout)?.trim_end(), v01.trim_end());

    let dir = tempfile::tempdir()?;
    let target = dir.path().join("my-handler/wit");
    let out = hotreload(&["wit", "--version", "0.2", target.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(target.join("handler.wit"))?, v02);
    // Again: nothing to do. Another version over it: refused, nothing lost.
    assert!(
        hotreload(&["wit", "--version", "0.2", target.to_str().unwrap()])
            .status
            .success()
    );
    let out = hotreload(&["wit", "--version", "0.1", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists and differs"));
    assert_eq!(std::fs::read_to_string(target.join("handler.wit"))?, v02);
    let out = hotreload(&["wit", "--version", "0.3"]);
    assert_eq!(out.status.code(), Some(2));
    // A FIFO where handler.wit would go is neither read (it would block)
    // nor overwritten; a file where the directory would go is refused.
    let odd = dir.path().join("odd");
    std::fs::create_dir(&odd)?;
    let fifo = odd.join("handler.wit");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()?
            .success()
    );
    let out = hotreload(&["wit", odd.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x")?;
    let out = hotreload(&["wit", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
    Ok(())
}

#[test]
fn bench_times_any_handler_on_its_own_configurations() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, r#"{"level": "info"}"#)?;
    std::fs::write(&b, "level: debug\nformat: json\n")?;
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());

    // A 0.2 handler: each of its exports, and the whole transaction.
    let out = hotreload(&[
        "bench",
        hotreload_handlers::LOGGING_V2_PATH,
        "--old",
        a,
        "--new",
        b,
        "--quick",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["contract"], "0.2.0");
    assert_eq!(report["support_level"], "full");
    let rows = report["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "fresh instance (+ support-level)",
            "prepare, warm",
            "apply, warm",
            "whole transaction, warm (applied)"
        ]
    );
    for row in rows {
        assert_eq!(row["samples"], 200, "{row}");
        assert!(row["median_ns"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["p99_ns"].as_f64() >= row["median_ns"].as_f64(), "{row}");
        assert!(row["fuel"].as_u64().unwrap() > 0, "{row}");
    }
    // A progress line on stderr while it runs.
    assert!(String::from_utf8_lossy(&out.stderr).contains("measuring prepare, apply"));

    // A 0.1 handler whose change needs a restart: measured, and said.
    let on = dir.path().join("on.json");
    let off = dir.path().join("off.json");
    std::fs::write(&on, r#"{"enabled": true}"#)?;
    std::fs::write(&off, r#"{"enabled": false}"#)?;
    let out = hotreload(&[
        "bench",
        hotreload_handlers::PLUGIN_PATH,
        "--old",
        on.to_str().unwrap(),
        "--new",
        off.to_str().unwrap(),
        "--quick",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    assert!(
        text.contains("contract 0.1.0, support level partial"),
        "{text}"
    );
    assert!(text.contains("note: can-reload says no"), "{text}");
    for row in [
        "validate, warm",
        "can-reload, warm",
        "reload, warm",
        "restart_required",
    ] {
        assert!(text.contains(row), "{row} missing: {text}");
    }

    // A configuration the handler refuses stops it, naming the field.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"level": 42}"#)?;
    let out = hotreload(&[
        "bench",
        hotreload_handlers::LOGGING_V2_PATH,
        "--old",
        a,
        "--new",
        bad.to_str().unwrap(),
        "--quick",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("prepare: the handler refused it") && err.contains("(at /level)"),
        "{err}"
    );
    // --new is needed with a handler.
    let out = hotreload(&["bench", hotreload_handlers::LOGGING_V2_PATH, "--old", a]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --old A and --new B"));
    Ok(())
}
