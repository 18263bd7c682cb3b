//! The logging handler in every language, through the real host: the shared
//! behaviour table (`handlers/cases/logging.json`) and the conformance kit.
//!
//! The other languages' handlers are built by `handlers/build-all.sh` (after
//! `handlers/install-toolchains.sh`); this test needs their folder in
//! `HOTRELOAD_LANGUAGE_HANDLERS` and fails when one is missing. Run it with
//! `cargo test --features languages --test languages` (as `.ci/run` does).

use std::path::PathBuf;
use std::time::Instant;

use hotreload::{CallFailure, Limits, Probe, SandboxOptions};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    core: bool,
    config: String,
    accept: bool,
    field: Option<String>,
    effective: Option<Value>,
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/handlers/cases/logging.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the case table")).expect("cases")
}

fn handler(language: &str) -> Vec<u8> {
    if language == "rust" {
        return hotreload_handlers::LOGGING.to_vec();
    }
    if language == "rust_v2" {
        return hotreload_handlers::LOGGING_V2.to_vec();
    }
    let dir = std::env::var_os("HOTRELOAD_LANGUAGE_HANDLERS")
        .map(PathBuf::from)
        .expect(
            "HOTRELOAD_LANGUAGE_HANDLERS must name the folder handlers/build-all.sh built into",
        );
    let path = dir.join(format!("logging-{}.wasm", language.replace('_', "-")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the table through one language's handler; gives the cases passed.
fn table(language: &str) -> usize {
    let wasm = handler(language);
    let started = Instant::now();
    let mut probe = Probe::new(&wasm, Limits::default(), SandboxOptions::default())
        .unwrap_or_else(|e| panic!("{language}: {e}"));
    eprintln!("{language}: compiled in {:?}", started.elapsed());
    let subset_only = language == "wat";
    let mut run = 0;
    let mut failures = Vec::new();
    let mut known = Vec::new();
    for case in cases() {
        if subset_only && !case.core {
            continue;
        }
        run += 1;
        // Either contract: 0.1.0's validate and reload(none, c), 0.2.0's
        // prepare(none, c) and prepare + apply.
        let v = probe.check(&case.config);
        match (&v.result, case.accept) {
            (Ok(()), true) => {
                let r = probe.load(&case.config);
                match r.result {
                    Ok(Some(out)) => {
                        let got: Value = serde_json::from_str(&out).expect("effective JSON");
                        if Some(&got) != case.effective.as_ref() {
                            failures.push(format!("{}: effective {got}", case.name));
                        }
                    }
                    other => failures.push(format!("{}: reload gave {other:?}", case.name)),
                }
            }
            (Err(CallFailure::Refused(f)), false) => {
                if f.field != case.field {
                    failures.push(format!(
                        "{}: field {:?}, want {:?}",
                        case.name, f.field, case.field
                    ));
                }
            }
            (other, _) => failures.push(format!("{}: validate gave {other:?}", case.name)),
        }
    }
    // ComponentizeJS drops a leading U+FEFF before the handler runs
    // (handlers/PORTS.md): that one case must fail, and only that one, so
    // a fix upstream is noticed.
    if language == "javascript" {
        failures.retain(|f| {
            let bom = f.starts_with("byte order mark");
            if bom {
                known.push(f.clone());
            }
            !bom
        });
        assert_eq!(known.len(), 1, "the known BOM failure changed: {known:?}");
    }
    assert!(
        failures.is_empty(),
        "{language}: {} of {run} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    run - known.len()
}

/// The table's size, so a change to it is a change to the counts below.
#[test]
fn the_table_has_105_cases_52_of_them_core() {
    let cases = cases();
    assert_eq!(cases.len(), 105);
    assert_eq!(cases.iter().filter(|c| c.core).count(), 52);
}

fn conforms(language: &str) {
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/data/logging-1k.json"
    ))
    .unwrap();
    let configs = if language == "wat" {
        // The WAT handler is a subset: `level` only (handlers/wat/README.md).
        vec![
            r#"{"level":"debug"}"#.to_owned(),
            r#"{"level":"warn"}"#.to_owned(),
        ]
    } else {
        vec![config, r#"{"level":"warn"}"#.to_owned()]
    };
    let report = hotreload::conform::conform(&handler(language), &configs).unwrap();
    let mut failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    if language == "wat" {
        // The WAT subset implements `level` only, yet returns the whole
        // effective configuration (outputs, fields), which it then refuses
        // (handlers/wat/README.md): that one check must fail, and only it,
        // so a change is noticed.
        let known = "validate accepts its own effective configuration";
        assert!(
            failed.iter().any(|c| c.name == known),
            "the known WAT failure changed: {failed:#?}"
        );
        failed.retain(|c| c.name != known);
    }
    assert!(failed.is_empty(), "{language}: {failed:#?}");
    for p in &report.phases {
        eprintln!("{language}: {} {} fuel, {} µs", p.phase, p.fuel, p.micros);
    }
}

macro_rules! language {
    ($($lang:ident: $passes:literal),*) => {$(
        mod $lang {
            #[test]
            fn passes_the_shared_table() {
                let passed = super::table(stringify!($lang));
                assert_eq!(passed, $passes, "cases passed");
            }

            #[test]
            fn passes_the_conformance_kit() {
                super::conforms(stringify!($lang));
            }
        }
    )*};
}

// Cases each language must pass (handlers/PORTS.md): the whole table; the
// whole table but the known BOM case in JavaScript; the core cases in WAT.
// The same table for the contract 0.2.0 builds (Rust on the SDK, Python).
language!(rust: 105, python: 105, javascript: 104, c: 105, wat: 52, rust_v2: 105, python_v2: 105);

/// The Python quick start for contract 0.2.0 (docs/handlers.md), built by
/// handlers/python-v2/build.sh, conforms.
#[test]
fn the_python_0_2_quick_start_conforms() {
    let dir = std::env::var_os("HOTRELOAD_LANGUAGE_HANDLERS")
        .map(PathBuf::from)
        .expect(
            "HOTRELOAD_LANGUAGE_HANDLERS must name the folder handlers/build-all.sh built into",
        );
    let wasm =
        std::fs::read(dir.join("quickstart-python-v2.wasm")).expect("quickstart-python-v2.wasm");
    let report =
        hotreload::conform::conform(&wasm, &["{}".into(), r#"{"port": 9090}"#.into()]).unwrap();
    assert_eq!(report.contract, Some(hotreload::Contract::V0_2));
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // The pair needs a restart, for /port alone: the kit checked the reason.
    let reasons = report
        .checks
        .iter()
        .find(|c| c.name == "restart reasons name only fields that changed")
        .expect("the restart path was exercised");
    assert!(reasons.detail.contains("/port"), "{}", reasons.detail);
}
