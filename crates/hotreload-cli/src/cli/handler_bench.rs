//! `hotreload bench HANDLER.wasm --old A --new B`: any handler (contract
//! 0.1.0 or 0.2.0) timed on the user's own configurations — compiling, a
//! fresh instance, each phase on a warm instance, and the whole transaction
//! — with the median, the 99th percentile and the fuel of each.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hotreload::sources::{config_of, read_regular};
use hotreload::{
    CallFailure, ComponentSpec, ConfigInput, Contract, LimitOverrides, Limits, Outcome, Plan,
    Probe, ProbeCall, Runtime, SandboxOptions, Settings,
};
use serde::Serialize;
use serde_json::json;

use crate::bench::Summary;

/// What to time, and how hard.
pub(crate) struct HandlerBench<'a> {
    pub(crate) handler: &'a Path,
    pub(crate) old: &'a Path,
    pub(crate) new: &'a Path,
    pub(crate) fuel: Option<u64>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) json: bool,
    pub(crate) quick: bool,
}

#[derive(Serialize)]
struct Row {
    name: String,
    median_ns: f64,
    p99_ns: f64,
    samples: usize,
    /// Median fuel of one sample.
    fuel: u64,
}

/// Samples of one measurement: times and fuel.
#[derive(Default)]
struct Samples {
    times: Vec<Duration>,
    fuel: Vec<u64>,
}

impl Samples {
    fn add<T>(&mut self, call: &ProbeCall<T>) {
        self.times.push(call.elapsed);
        self.fuel.push(call.fuel);
    }

    fn row(mut self, name: &str) -> Row {
        let s = Summary::of(&mut self.times);
        self.fuel.sort_unstable();
        Row {
            name: name.to_owned(),
            median_ns: s.median_ns,
            p99_ns: s.p99_ns,
            samples: s.samples,
            fuel: self.fuel.get(self.fuel.len() / 2).copied().unwrap_or(0),
        }
    }
}

fn progress(what: &str, done: usize, of: usize) {
    eprint!("\r\x1b[2K  measuring {what} … {done}/{of}");
    let _ = std::io::stderr().flush();
}

/// A configuration file as the JSON text a handler is given.
fn config_text(path: &Path, limit: u64) -> Result<String, String> {
    let bytes = read_regular(path, limit).map_err(|e| e.to_string())?;
    match config_of(path, bytes).map_err(|e| format!("{}: {e}", path.display()))? {
        ConfigInput::Json(text) => Ok(text),
        ConfigInput::Value(v) => Ok(v.to_string()),
    }
}

fn refused<T>(what: &str, call: &ProbeCall<T>) -> Option<String> {
    match &call.result {
        Ok(_) => None,
        Err(CallFailure::Refused(f)) => Some(format!(
            "{what}: the handler refused it: {}{}",
            f.message,
            f.field
                .as_deref()
                .map(|p| format!(" (at {p})"))
                .unwrap_or_default()
        )),
        Err(CallFailure::Fault { cause, message }) => {
            Some(format!("{what}: {} ({message})", cause.name()))
        }
    }
}

pub(crate) fn run(b: HandlerBench<'_>) -> ExitCode {
    match measure(&b) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\r\x1b[2Kerror: {e}");
            ExitCode::from(2)
        }
    }
}

fn measure(b: &HandlerBench<'_>) -> Result<(), String> {
    let (calls, instances, transactions) = if b.quick {
        (200usize, 200usize, 200usize)
    } else {
        (5_000, 5_000, 2_000)
    };
    let overrides = LimitOverrides {
        fuel: b.fuel,
        validation_timeout_ms: b.timeout_ms,
        reload_timeout_ms: b.timeout_ms,
        ..LimitOverrides::default()
    };
    let limits = overrides.apply(Limits::default());
    let limit = Settings::default().output_limit_bytes;
    let wasm = read_regular(b.handler, 256 << 20).map_err(|e| e.to_string())?;
    let old = config_text(b.old, limit)?;
    let new = config_text(b.new, limit)?;

    progress("compiling", 0, 1);
    let started = Instant::now();
    let mut probe = Probe::new(&wasm, limits.clone(), SandboxOptions::default())
        .map_err(|e| format!("{}: {e}", b.handler.display()))?;
    let compile = started.elapsed();
    let contract = probe.contract();
    let mut rows = Vec::new();

    let mut fresh = Samples::default();
    let mut support = None;
    for i in 0..instances {
        if i.is_multiple_of(500) {
            progress("fresh instances", i, instances);
        }
        let call = probe.instantiate();
        if let Some(e) = refused("a fresh instance", &call) {
            return Err(e);
        }
        support = call.result.as_ref().ok().copied();
        fresh.add(&call);
    }
    rows.push(fresh.row("fresh instance (+ support-level)"));

    // Each phase on a warm instance, from old to new and back, so every
    // call is a real change.
    let first = probe.load(&old);
    if let Some(e) = refused(&format!("--old {}", b.old.display()), &first) {
        return Err(e);
    }
    let mut restart = None;
    let pair = |i: usize| {
        if i.is_multiple_of(2) {
            (&old, &new)
        } else {
            (&new, &old)
        }
    };
    match contract {
        Contract::V0_1 => {
            let mut validate = Samples::default();
            let mut can = Samples::default();
            let mut reload = Samples::default();
            for i in 0..calls {
                if i.is_multiple_of(500) {
                    progress("validate, can-reload, reload", i, calls);
                }
                let (from, to) = pair(i);
                let v = probe.validate(to);
                if let Some(e) = refused("validate", &v) {
                    return Err(e);
                }
                validate.add(&v);
                let c = probe.can_reload(from, to);
                if let Some(e) = refused("can-reload", &c) {
                    return Err(e);
                }
                if c.result == Ok(false) {
                    restart = Some("can-reload says no: the change needs a restart".to_owned());
                }
                can.add(&c);
                let r = probe.reload(Some(from), to);
                if let Some(e) = refused("reload", &r) {
                    return Err(e);
                }
                reload.add(&r);
            }
            rows.push(validate.row("validate, warm"));
            rows.push(can.row("can-reload, warm"));
            rows.push(reload.row("reload, warm"));
        }
        Contract::V0_2 => {
            let (mut prepare, mut apply) = (Samples::default(), Samples::default());
            for i in 0..calls {
                if i.is_multiple_of(500) {
                    progress("prepare, apply", i, calls);
                }
                let (from, to) = pair(i);
                let p = probe.prepare(Some(from), to);
                if let Some(e) = refused("prepare", &p) {
                    return Err(e);
                }
                if let Ok(prepared) = &p.result
                    && let Plan::Restart(reasons) = &prepared.plan
                {
                    let why: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                    restart = Some(format!("the plan is a restart: {}", why.join("; ")));
                }
                prepare.add(&p);
                let a = probe.apply(Some(from), to);
                if let Some(e) = refused("apply", &a) {
                    return Err(e);
                }
                apply.add(&a);
            }
            rows.push(prepare.row("prepare, warm"));
            rows.push(apply.row("apply, warm"));
        }
    }

    // The whole transaction, through a runtime: parse, unchanged check,
    // the handler's calls, subscribers, event, statistics.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let runtime = Runtime::new(Settings::default()).map_err(|e| e.to_string())?;
    rt.block_on(runtime.add_component(
        ComponentSpec::new("bench", wasm.clone(), old.clone()).limits(overrides.clone()),
    ))
    .map_err(|e| format!("--old {}: {e}", b.old.display()))?;
    let mut whole = Samples::default();
    let mut outcomes = std::collections::BTreeSet::new();
    for i in 0..transactions {
        if i.is_multiple_of(200) {
            progress("whole transactions", i, transactions);
        }
        let (_, to) = pair(i);
        let started = Instant::now();
        let event = runtime
            .reload_blocking("bench", to.clone())
            .map_err(|e| e.to_string())?;
        whole.times.push(started.elapsed());
        whole.fuel.push(event.fuel_consumed);
        // A change that needs a restart stays pending: going back to --old
        // is then no change at all.
        if !matches!(
            event.outcome,
            Outcome::Applied | Outcome::RestartRequired | Outcome::Unchanged
        ) {
            return Err(format!("a whole transaction: {}", event.summary()));
        }
        outcomes.insert(event.outcome.name());
    }
    rt.block_on(runtime.shutdown());
    let whole_name = format!(
        "whole transaction, warm ({})",
        outcomes.into_iter().collect::<Vec<_>>().join(", ")
    );
    rows.push(whole.row(&whole_name));
    eprint!("\r\x1b[2K");

    if b.json {
        let out = json!({
            "handler": b.handler.display().to_string(),
            "contract": contract.version(),
            "support_level": support,
            "old": b.old.display().to_string(),
            "new": b.new.display().to_string(),
            "fuel_limit": limits.fuel,
            "compile_ms": compile.as_secs_f64() * 1e3,
            "restart": restart,
            "rows": rows,
        });
        crate::cli::emit(&serde_json::to_string_pretty(&out).expect("json"));
    } else {
        let mut text = format!(
            "{}: contract {}, support level {}, compiled in {:.1} ms\n",
            b.handler.display(),
            contract.version(),
            support.map_or("?".into(), |s| format!("{s:?}").to_lowercase()),
            compile.as_secs_f64() * 1e3
        );
        if let Some(r) = &restart {
            text.push_str(&format!("note: {r}\n"));
        }
        text.push_str(&format!(
            "{:<56} {:>11} {:>11} {:>12}\n",
            "measurement", "median", "p99", "fuel"
        ));
        for row in &rows {
            text.push_str(&format!(
                "{:<56} {:>11} {:>11} {:>12}\n",
                row.name,
                super::bench_cmd::fmt_ns(row.median_ns),
                super::bench_cmd::fmt_ns(row.p99_ns),
                row.fuel
            ));
        }
        crate::cli::emit(text.trim_end());
    }
    Ok(())
}

/// `--old` and `--new` as paths, when a handler is given.
pub(crate) fn paths(
    old: &Option<PathBuf>,
    new: &Option<PathBuf>,
) -> Result<(PathBuf, PathBuf), String> {
    match (old, new) {
        (Some(o), Some(n)) => Ok((o.clone(), n.clone())),
        _ => Err(
            "bench HANDLER.wasm needs --old A and --new B: two configurations it accepts".into(),
        ),
    }
}
