//! The conformance kit for handler authors: is this handler sound?
//!
//! [`conform`] loads a handler and checks what the runtime relies on: that
//! it exports the world of contract 0.1.0 or 0.2.0 and imports only that
//! world's interfaces and WASI 0.2, that `support-level` is stable, that
//! checking (`validate`, or `prepare(none, c)`) is deterministic and answers
//! malformed input with a `failure` instead of trapping, that a
//! configuration it accepted loads, that its effective configuration is
//! accepted again, that a plan from a configuration to itself is in place,
//! that restart reasons name only fields that changed, that `rollback` to
//! the previous configuration succeeds; for 0.2.0 also that `prepare` has no
//! effect and that `apply` right after a successful `prepare` succeeds. It
//! reports how long compiling and instantiating took and how much fuel and
//! time each phase takes against the default limits.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::outcome::{Contract, Plan};
use crate::probe::{Probe, ProbeCall, load_error};
use crate::sandbox::{CallFailure, Sandbox, SandboxOptions};
use crate::settings::Limits;
use crate::text::cut_at_char_boundary;

/// Longest verdict kept for a malformed or odd input: the handler's answer
/// to a huge input may quote it.
const VERDICT_BYTES: usize = 300;

/// One check and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// Fuel and time one export took on a valid configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseCost {
    /// The export.
    pub phase: String,
    /// Fuel used.
    pub fuel: u64,
    /// The default fuel limit per call.
    pub fuel_limit: u64,
    /// Wall time, microseconds.
    pub micros: u64,
    /// The default deadline of this export, microseconds.
    pub deadline_micros: u64,
}

/// The kit's verdict on a handler.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConformReport {
    /// SHA-256 of the handler.
    pub handler_hash: String,
    /// Whether the host could load it: it exports the world and the host
    /// provides everything it imports. When false, only the first check ran.
    pub loaded: bool,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// What each phase cost.
    pub phases: Vec<PhaseCost>,
    /// The contract the handler implements, when the host could load it.
    pub contract: Option<Contract>,
    /// Compiling the component (or loading it from the compiled-code
    /// cache), microseconds.
    pub compile_micros: u64,
    /// A fresh instance and its `support-level` call, the median of three,
    /// microseconds.
    pub instantiate_micros: u64,
    /// What the kit could not try with the configurations given.
    pub notes: Vec<String>,
}

impl ConformReport {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// Inputs every handler must answer with a `failure`: malformed JSON,
/// empty and huge text, nesting deeper than any configuration needs.
fn malformed_inputs() -> Vec<(&'static str, String)> {
    vec![
        ("empty text", String::new()),
        ("truncated JSON", r#"{"level": "de"#.to_owned()),
        ("text that is not JSON", "level = debug".to_owned()),
        ("a huge text that is not JSON", "x".repeat(512 * 1024)),
        (
            "10,000 nested arrays",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        ),
        (
            "5,000 nested objects",
            format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000)),
        ),
        (
            "raw control characters",
            "{\"\u{0}\": \"\u{1}\"}".to_owned(),
        ),
    ]
}

/// Valid JSON a handler may accept or refuse, but must not trap on.
fn odd_inputs() -> Vec<(&'static str, String)> {
    vec![
        ("null", "null".to_owned()),
        ("a bare string", r#""config""#.to_owned()),
        ("an array", "[1, 2, 3]".to_owned()),
        (
            "a huge string value",
            format!("{{\"a\": \"{}\"}}", "x".repeat(512 * 1024)),
        ),
        ("a huge number", "1e999999".to_owned()),
        (
            "an unknown key",
            r#"{"no-such-setting-anywhere": true}"#.to_owned(),
        ),
    ]
}

fn describe<T: std::fmt::Debug>(call: &ProbeCall<T>) -> String {
    match &call.result {
        Ok(v) => format!("ok {v:?}"),
        Err(CallFailure::Refused(f)) => match &f.field {
            Some(field) => format!("failure at {field}: {}", f.message),
            None => format!("failure: {}", f.message),
        },
        Err(CallFailure::Fault { cause, message }) => format!("{cause:?}: {message}"),
    }
}

fn outcome_key<T: std::fmt::Debug>(call: &ProbeCall<T>) -> String {
    describe(call)
}

/// The name of the first check.
const IMPORTS_CHECK: &str =
    "exports hotreload:handler/handler (0.1.0 or 0.2.0) and imports nothing else";

/// The worlds' own interfaces, which a handler may import.
const WORLD_INTERFACES: [&str; 4] = [
    "hotreload:handler/types@0.1.0",
    "hotreload:handler/host@0.1.0",
    "hotreload:handler/types@0.2.0",
    "hotreload:handler/host@0.2.0",
];

/// `wasi:PACKAGE/INTERFACE@0.2.PATCH`: an interface of a WASI 0.2 release.
fn is_wasi_0_2(name: &str) -> bool {
    let Some((path, version)) = name.strip_prefix("wasi:").and_then(|n| n.split_once('@')) else {
        return false;
    };
    let Some((package, interface)) = path.split_once('/') else {
        return false;
    };
    let Some(patch) = version.strip_prefix("0.2.") else {
        return false;
    };
    !package.is_empty()
        && !interface.is_empty()
        && !patch.is_empty()
        && patch.bytes().all(|b| b.is_ascii_digit())
}

/// A handler's imports sorted into what the world allows and what it does
/// not.
struct ImportReview {
    /// The imports the world does not allow, in the component's order.
    foreign: Vec<String>,
    /// What was allowed, in words: the world's interfaces by name, WASI by
    /// count and package.
    allowed: Vec<String>,
}

impl ImportReview {
    /// The allowed imports in one phrase.
    fn allowed(&self) -> String {
        if self.allowed.is_empty() {
            "nothing".to_owned()
        } else {
            self.allowed.join(", ")
        }
    }
}

/// Sorts `imports`, the names the component's type lists (wasmtime leaves
/// out type imports such as the world's `use`d types, which need nothing
/// from the host).
fn review_imports(imports: &[String]) -> ImportReview {
    let mut foreign = Vec::new();
    let mut world = Vec::new();
    let mut wasi = 0;
    let mut wasi_packages: Vec<&str> = Vec::new();
    for name in imports {
        if WORLD_INTERFACES.contains(&name.as_str()) {
            world.push(name.as_str());
        } else if is_wasi_0_2(name) {
            wasi += 1;
            let package = name.split_once('/').map_or(name.as_str(), |(p, _)| p);
            if !wasi_packages.contains(&package) {
                wasi_packages.push(package);
            }
        } else {
            foreign.push(name.clone());
        }
    }
    wasi_packages.sort_unstable();
    let mut parts: Vec<String> = world.iter().map(|w| (*w).to_owned()).collect();
    if wasi > 0 {
        parts.push(format!(
            "{wasi} WASI 0.2 interface{} ({})",
            if wasi == 1 { "" } else { "s" },
            wasi_packages.join(", ")
        ));
    }
    ImportReview {
        foreign,
        allowed: parts,
    }
}

/// Runs every check on `wasm`. `configs` are configurations the handler
/// should accept (the first is loaded, the second reloaded to and rolled
/// back from); without any, `{}` is tried.
///
/// The first check reads the component's imports before the host links
/// it, so a handler the host cannot load (it imports something else, or
/// exports another world) still gets a report, with
/// [`loaded`](ConformReport::loaded) false and that one check failed.
///
/// # Errors
/// [`Error::HandlerLoad`](crate::Error::HandlerLoad) when `wasm` is not a
/// WebAssembly component at all; [`Error::Engine`](crate::Error::Engine)
/// when the sandbox cannot be built.
pub fn conform(wasm: &[u8], configs: &[String]) -> Result<ConformReport, crate::Error> {
    conform_cached(wasm, configs, None)
}

/// As [`conform`], keeping the compiled handler in `cache_dir` so the next
/// run on the same handler does not compile it again (a Python handler
/// takes seconds to compile, a cache hit about a millisecond).
///
/// # Errors
/// As [`conform`].
pub fn conform_cached(
    wasm: &[u8],
    configs: &[String],
    cache_dir: Option<std::path::PathBuf>,
) -> Result<ConformReport, crate::Error> {
    let limits = Limits::default();
    let sandbox = Sandbox::new(crate::probe::probe_sandbox(
        SandboxOptions::default(),
        cache_dir,
    ))?;
    let started = Instant::now();
    let loaded = sandbox.load(wasm).map_err(load_error)?;
    let compile_micros = started.elapsed().as_micros() as u64;
    let handler_hash = loaded.hash.clone();
    let review = review_imports(&sandbox.imports(&loaded));
    let linked = sandbox.link(loaded);
    let mut checks = Vec::new();
    let mut check = |name: &str, passed: bool, detail: String| {
        checks.push(Check {
            name: name.to_owned(),
            passed,
            detail,
        });
    };
    let (passed, detail) = match (&review.foreign[..], &linked) {
        ([], Ok(_)) => (true, format!("imports {}", review.allowed())),
        ([], Err(reason)) => (
            false,
            format!(
                "imports {}, but the host cannot load it: {reason}",
                review.allowed()
            ),
        ),
        (foreign, _) => {
            let mut detail = format!(
                "imports {}: a handler may import only hotreload:handler/host (and the world's \
                 hotreload:handler/types), 0.1.0 or 0.2.0, and WASI 0.2 interfaces (wasi:*@0.2.x)",
                foreign.join(", ")
            );
            if !review.allowed.is_empty() {
                detail.push_str(&format!("; besides, it imports {}", review.allowed()));
            }
            (false, detail)
        }
    };
    check(IMPORTS_CHECK, passed, detail);
    let handler = match linked {
        Ok(handler) => handler,
        Err(_) => {
            return Ok(ConformReport {
                handler_hash,
                loaded: false,
                checks,
                phases: Vec::new(),
                contract: None,
                compile_micros,
                instantiate_micros: 0,
                notes: Vec::new(),
            });
        }
    };
    let mut probe = Probe::linked(sandbox, handler, limits.clone());
    let contract = probe.contract();
    // The export that checks a configuration, as check names say it.
    let verb = match contract {
        Contract::V0_1 => "validate",
        Contract::V0_2 => "prepare",
    };

    // support-level: the same on every fresh instance.
    let levels: Vec<_> = (0..3).map(|_| probe.instantiate()).collect();
    let mut micros: Vec<u64> = levels
        .iter()
        .map(|l| l.elapsed.as_micros() as u64)
        .collect();
    micros.sort_unstable();
    let instantiate_micros = micros[1];
    let first = describe(&levels[0]);
    let stable = levels
        .iter()
        .all(|l| l.result.is_ok() && describe(l) == first);
    check(
        "support-level answers, the same on every instance",
        stable,
        first,
    );

    // validate: deterministic, on a warm and on a fresh instance.
    let configs: Vec<String> = if configs.is_empty() {
        vec!["{}".to_owned()]
    } else {
        configs.to_vec()
    };
    let mut samples: Vec<(String, String)> = configs
        .iter()
        .map(|c| ("a given configuration".to_owned(), c.clone()))
        .collect();
    samples.extend(
        malformed_inputs()
            .into_iter()
            .chain(odd_inputs())
            .map(|(n, c)| (n.to_owned(), c)),
    );
    let mut deterministic = true;
    let mut detail = String::from("same answer twice on one instance and once on a fresh one");
    for (name, config) in &samples {
        let a = outcome_key(&probe.check(config));
        let b = outcome_key(&probe.check(config));
        probe.instantiate();
        let c = outcome_key(&probe.check(config));
        if a != b || a != c {
            deterministic = false;
            detail = format!("{name}: {a} / {b} / {c}");
            break;
        }
    }
    check(&format!("{verb} is deterministic"), deterministic, detail);

    // Malformed input gets a failure, never a trap.
    for (name, config) in malformed_inputs() {
        let call = probe.check(&config);
        let passed = matches!(call.result, Err(CallFailure::Refused(_)));
        let verdict = if call.result.is_ok() {
            "accepted it".to_owned()
        } else {
            describe(&call)
        };
        check(
            &format!("{verb} answers {name} with a failure"),
            passed,
            cut_at_char_boundary(&verdict, VERDICT_BYTES).to_owned(),
        );
    }

    for (name, config) in odd_inputs() {
        let call = probe.check(&config);
        let passed = !matches!(call.result, Err(CallFailure::Fault { .. }));
        let verdict = describe(&call);
        check(
            &format!("{verb} answers {name} without trapping"),
            passed,
            cut_at_char_boundary(&verdict, VERDICT_BYTES).to_owned(),
        );
    }

    let mut notes = Vec::new();
    let phases = match contract {
        Contract::V0_1 => valid_v1(&mut probe, &limits, &configs, &mut check, &mut notes),
        Contract::V0_2 => valid_v2(&mut probe, &limits, &configs, &mut check, &mut notes),
    };
    let within = phases
        .iter()
        .all(|p| p.fuel < p.fuel_limit && p.micros < p.deadline_micros);
    check(
        "every phase stays within the default limits",
        within,
        phases
            .iter()
            .map(|p| format!("{} {} fuel, {} µs", p.phase, p.fuel, p.micros))
            .collect::<Vec<_>>()
            .join("; "),
    );
    Ok(ConformReport {
        handler_hash,
        loaded: true,
        checks,
        phases,
        contract: Some(contract),
        compile_micros,
        instantiate_micros,
        notes,
    })
}

/// Records what one export cost.
fn cost<T>(
    phases: &mut Vec<PhaseCost>,
    limits: &Limits,
    phase: &str,
    call: &ProbeCall<T>,
    deadline: Duration,
) {
    phases.push(PhaseCost {
        phase: phase.to_owned(),
        fuel: call.fuel,
        fuel_limit: limits.fuel,
        micros: call.elapsed.as_micros() as u64,
        deadline_micros: deadline.as_micros() as u64,
    });
}

/// Whether an effective configuration, if given, is JSON; and what to say.
fn effective_detail(effective: &Option<String>) -> (bool, String) {
    match effective {
        Some(out) => match serde_json::from_str::<serde_json::Value>(out) {
            Ok(_) => (true, "ok, effective configuration is JSON".into()),
            Err(e) => (
                false,
                format!("the effective configuration is not JSON: {e}"),
            ),
        },
        None => (true, "ok (effective = given)".into()),
    }
}

/// Ordered pairs of distinct given configurations (of the first four).
fn pairs(configs: &[String]) -> Vec<(&String, &String)> {
    let few = &configs[..configs.len().min(4)];
    let mut out = Vec::new();
    for a in few {
        for b in few {
            if a != b {
                out.push((a, b));
            }
        }
    }
    out
}

/// The checks on valid configurations of a 0.1.0 handler: validate,
/// reload(none, c), can-reload(c, c) and (c, c2), the effective
/// configuration validated again, reload(c, c2), rollback(c); costed.
fn valid_v1(
    probe: &mut Probe,
    limits: &Limits,
    configs: &[String],
    check: &mut impl FnMut(&str, bool, String),
    notes: &mut Vec<String>,
) -> Vec<PhaseCost> {
    let level = probe.instantiate().result.ok();
    let c1 = &configs[0];
    let c2 = configs.get(1).unwrap_or(c1);
    let mut phases = Vec::new();
    let v = probe.validate(c1);
    cost(
        &mut phases,
        limits,
        "validate",
        &v,
        limits.validation_timeout,
    );
    let valid = v.result.is_ok();
    check(
        "validate accepts the given configuration",
        valid,
        if valid {
            "ok".into()
        } else {
            format!("{}; pass a valid one with --config", describe(&v))
        },
    );
    let r = probe.reload(None, c1);
    cost(&mut phases, limits, "reload", &r, limits.reload_timeout);
    let (output_ok, detail) = match &r.result {
        Ok(out) => effective_detail(out),
        Err(_) => (false, describe(&r)),
    };
    check(
        "reload(none, c) succeeds for a configuration it validated",
        valid && r.result.is_ok() && output_ok,
        detail,
    );
    if let Ok(Some(effective)) = &r.result {
        let again = probe.validate(effective);
        check(
            "validate accepts its own effective configuration",
            again.result.is_ok(),
            describe(&again),
        );
    }
    // The host asks can-reload of partial handlers only.
    if level == Some(crate::SupportLevel::Partial) {
        let same = probe.can_reload(c1, c1);
        check(
            "can-reload(c, c) is true: no change needs no restart",
            matches!(same.result, Ok(true)),
            describe(&same),
        );
    }
    let can = probe.can_reload(c1, c2);
    cost(
        &mut phases,
        limits,
        "can-reload",
        &can,
        limits.validation_timeout,
    );
    check(
        "can-reload answers without trapping",
        can.result.is_ok(),
        describe(&can),
    );
    let restarts: Vec<String> = pairs(configs)
        .into_iter()
        .filter(|(a, b)| matches!(probe.can_reload(a, b).result, Ok(false)))
        .map(|(a, b)| format!("{a} → {b}"))
        .collect();
    restart_note(level, !restarts.is_empty(), notes);
    let r2 = probe.reload(Some(c1), c2);
    let back = probe.rollback(c1);
    cost(
        &mut phases,
        limits,
        "rollback",
        &back,
        limits.reload_timeout,
    );
    check(
        "rollback to the previous configuration succeeds",
        r2.result.is_ok() && back.result.is_ok(),
        format!(
            "reload(c1, c2): {}; rollback(c1): {}",
            describe(&r2),
            describe(&back)
        ),
    );
    phases
}

/// A handler that can need a restart whose restart path no given pair of
/// configurations reached: say so.
fn restart_note(level: Option<crate::SupportLevel>, exercised: bool, notes: &mut Vec<String>) {
    if !exercised && level != Some(crate::SupportLevel::Full) {
        notes.push(
            "no two given configurations need a restart, so the restart path was not exercised: \
             give --config pairs that differ in a field that needs one"
                .into(),
        );
    }
}

/// Whether `field` names a place where `old` and `new` differ ("" the whole).
fn changed_at(old: &serde_json::Value, new: &serde_json::Value, field: &str) -> bool {
    old.pointer(field) != new.pointer(field)
}

/// The checks on valid configurations of a 0.2.0 handler: prepare(none, c)
/// then apply, the effective configuration prepared again, a plan from c
/// to c in place, prepare without effect, restart reasons naming only
/// changed fields, prepare + apply (c, c2), rollback(c); costed.
fn valid_v2(
    probe: &mut Probe,
    limits: &Limits,
    configs: &[String],
    check: &mut impl FnMut(&str, bool, String),
    notes: &mut Vec<String>,
) -> Vec<PhaseCost> {
    let level = probe.instantiate().result.ok();
    let c1 = &configs[0];
    let c2 = configs.get(1).unwrap_or(c1);
    let mut phases = Vec::new();
    let p = probe.prepare(None, c1);
    cost(
        &mut phases,
        limits,
        "prepare",
        &p,
        limits.validation_timeout,
    );
    let valid = p.result.is_ok();
    check(
        "prepare accepts the given configuration",
        valid,
        if valid {
            "ok".into()
        } else {
            format!("{}; pass a valid one with --config", describe(&p))
        },
    );
    let effective = p.result.as_ref().ok().and_then(|p| p.effective.clone());
    let a = probe.apply(None, c1);
    cost(&mut phases, limits, "apply", &a, limits.reload_timeout);
    let (output_ok, detail) = match &a.result {
        Ok(()) => effective_detail(&effective),
        Err(_) => (false, describe(&a)),
    };
    check(
        "apply(none, c) right after a successful prepare succeeds",
        valid && a.result.is_ok() && output_ok,
        detail,
    );
    if let Some(effective) = &effective {
        let again = probe.prepare(None, effective);
        check(
            "prepare accepts its own effective configuration",
            again.result.is_ok(),
            describe(&again),
        );
    }
    let same = probe.prepare(Some(c1), c1);
    check(
        "a plan from a configuration to itself is in place",
        matches!(&same.result, Ok(p) if p.plan == Plan::InPlace),
        describe(&same),
    );

    // prepare has no effect: on one instance, prepare other candidates
    // (valid and not) first; on another, not. Then both prepare and apply
    // c2 and prepare c1 from there: the answers must be the same.
    let mut after = |others: &[&str]| {
        probe.instantiate();
        let _ = probe.load(c1);
        for other in others {
            let _ = probe.prepare(Some(c1), other);
        }
        let p = describe(&probe.prepare(Some(c1), c2));
        let a = describe(&probe.apply(Some(c1), c2));
        let back = describe(&probe.prepare(Some(c2), c1));
        format!("prepare(c1, c2): {p}; apply: {a}; then prepare(c2, c1): {back}")
    };
    let mut others: Vec<&str> = configs
        .iter()
        .map(String::as_str)
        .filter(|c| c != c2)
        .collect();
    others.extend(["{}", r#"{"level": "de"#, "null"]);
    let with = after(&others);
    let without = after(&[]);
    check(
        "prepare has no effect: preparing other configurations first changes nothing",
        with == without,
        if with == without {
            without
        } else {
            format!(
                "after preparing {} others: {with}; without: {without}",
                others.len()
            )
        },
    );

    // Restart reasons name only fields that changed.
    let mut planned = Vec::new();
    let mut wrong = Vec::new();
    for (a, b) in pairs(configs) {
        let call = probe.prepare(Some(a), b);
        let Ok(prepared) = call.result else { continue };
        let Plan::Restart(reasons) = prepared.plan else {
            continue;
        };
        if reasons.is_empty() {
            wrong.push(format!("{a} → {b}: a restart plan that names no field"));
        }
        let (Ok(va), Ok(vb)) = (
            serde_json::from_str::<serde_json::Value>(a),
            serde_json::from_str::<serde_json::Value>(b),
        ) else {
            continue;
        };
        for r in reasons {
            let line = format!("{a} → {b}: {r}");
            if changed_at(&va, &vb, &r.field) {
                planned.push(line);
            } else {
                wrong.push(line);
            }
        }
    }
    if planned.is_empty() && wrong.is_empty() {
        restart_note(level, false, notes);
    } else {
        check(
            "restart reasons name only fields that changed",
            wrong.is_empty(),
            if wrong.is_empty() {
                planned.join("; ")
            } else {
                format!("unchanged fields named: {}", wrong.join("; "))
            },
        );
    }

    probe.instantiate();
    let _ = probe.load(c1);
    let p2 = probe.prepare(Some(c1), c2);
    let a2 = probe.apply(Some(c1), c2);
    let back = probe.rollback(c1);
    cost(
        &mut phases,
        limits,
        "rollback",
        &back,
        limits.reload_timeout,
    );
    check(
        "rollback to the previous configuration succeeds",
        p2.result.is_ok() && a2.result.is_ok() && back.result.is_ok(),
        format!(
            "prepare(c1, c2): {}; apply(c1, c2): {}; rollback(c1): {}",
            describe(&p2),
            describe(&a2),
            describe(&back)
        ),
    );
    phases
}
