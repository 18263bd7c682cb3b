//! `extism-bench`: the logging handler's validation as an Extism plugin,
//! timed the way the project times its component handler.
//!
//! ```text
//! extism-bench [PLUGIN.wasm] [--config PATH] [--json]
//!              [--iterations N] [--instances N] [--warmup N] [--rounds N]
//! ```
//!
//! The plugin is compiled once (`CompiledPlugin`); then, each sample timed
//! on its own and every sample kept (median and p99 from the sorted list),
//! the workloads taking turns in `--rounds` rounds (default 5):
//!
//! - `new_instance`: `Plugin::new_from_compiled`. Extism instantiates lazily,
//!   so this creates the store and links the imports but runs no wasm.
//! - `new_instance_ready`: `new_from_compiled` plus the first call (the
//!   plugin's `support_level`), which instantiates the module: the same work
//!   as the project's fresh component instance (store, instantiate,
//!   `support-level`).
//! - `validate_warm`: `validate` of the 1 KiB configuration on a warm plugin.
//! - `reload_warm`: `reload` of it on a warm plugin (returns the effective
//!   configuration).
//! - `native_floor`: the same `config.rs` compiled natively,
//!   `parse(..).to_json()`, for scale.
//!
//! Before timing, the plugin's answers are checked against the native code:
//! the 1 KiB configuration is accepted, `reload` returns the same effective
//! JSON, and a set of invalid configurations is refused with the same
//! message and field.
//!
//! Extism runs with its defaults: an empty manifest (no `timeout_ms`, no
//! memory limit, no config, no allowed hosts or paths), no WASI, no fuel
//! limit. Extism always turns on wasmtime's epoch interruption and reports
//! every call's start and stop to its timer thread, timeout or not.

#[path = "../../../../handlers/logging/src/config.rs"]
#[allow(dead_code)]
mod config;

use anyhow::{Context as _, Result, bail};
use extism::{CompiledPlugin, Plugin, PluginBuilder};
use serde_json::{Value, json};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

const USAGE: &str = "usage: extism-bench [PLUGIN.wasm] [--config PATH] [--json] \
[--iterations N] [--instances N] [--warmup N] [--rounds N]";

/// The workloads, in the order they run within a round and are reported.
const WORKLOADS: [&str; 5] = [
    "new_instance",
    "new_instance_ready",
    "validate_warm",
    "reload_warm",
    "native_floor",
];

struct Args {
    plugin: PathBuf,
    config: PathBuf,
    json: bool,
    /// Samples for each call workload.
    iterations: usize,
    /// Samples for each instance workload.
    instances: usize,
    /// Untimed runs before each workload's first round (a tenth of it
    /// before later rounds).
    warmup: usize,
    /// Rounds in which the workloads take turns.
    rounds: usize,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        plugin: crate_dir()
            .join("../target/wasm32-unknown-unknown/wasm/extism_logging_plugin.wasm"),
        config: crate_dir().join("../../data/logging-1k.json"),
        json: false,
        iterations: 5_000,
        instances: 2_000,
        warmup: 200,
        rounds: 5,
    };
    let mut it = std::env::args().skip(1);
    let number = |flag: &str, v: Option<String>| -> Result<usize> {
        v.with_context(|| format!("{flag} needs a value"))?
            .parse()
            .with_context(|| format!("{flag} needs a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => args.json = true,
            "--config" => args.config = it.next().context("--config needs a path")?.into(),
            "--iterations" => args.iterations = number("--iterations", it.next())?,
            "--instances" => args.instances = number("--instances", it.next())?,
            "--warmup" => args.warmup = number("--warmup", it.next())?,
            "--rounds" => args.rounds = number("--rounds", it.next())?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            s if s.starts_with('-') => bail!("unknown option {s}\n{USAGE}"),
            s => args.plugin = s.into(),
        }
    }
    if args.rounds == 0 || args.iterations < args.rounds || args.instances < args.rounds {
        bail!("--rounds must be at least 1, --iterations and --instances at least --rounds");
    }
    Ok(args)
}

/// Median and p99 of a workload, from every sample.
struct Stats {
    median_ns: u64,
    p99_ns: u64,
    min_ns: u64,
    iterations: usize,
}

fn stats(mut samples: Vec<u64>) -> Stats {
    samples.sort_unstable();
    let n = samples.len();
    let median_ns = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    };
    // Nearest rank: the smallest sample with at least 99% at or below it.
    let p99_ns = samples[(n * 99).div_ceil(100).max(1) - 1];
    Stats {
        median_ns,
        p99_ns,
        min_ns: samples[0],
        iterations: n,
    }
}

/// Runs `f` `warmup` times untimed, then `n` times timed one by one,
/// adding the samples to `into`.
fn measure(into: &mut Vec<u64>, warmup: usize, n: usize, mut f: impl FnMut()) {
    for _ in 0..warmup {
        f();
    }
    for _ in 0..n {
        let start = Instant::now();
        f();
        into.push(start.elapsed().as_nanos() as u64);
    }
}

/// The plugin's refusal, parsed from its error text (the handler's
/// `failure` record as JSON).
fn refusal(err: &anyhow::Error) -> Result<(String, Option<String>)> {
    let text = err.to_string();
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("error is not a failure: {text}"))?;
    let message = v["message"].as_str().context("failure without message")?;
    let field = v["field"].as_str().map(str::to_owned);
    Ok((message.to_owned(), field))
}

/// Checks the plugin against the native code; returns the refusal message
/// for `{"level":"loud"}`.
fn check(plugin: &mut Plugin, config_1k: &str) -> Result<String> {
    let level: &str = plugin.call("support_level", "")?;
    if level != "full" {
        bail!("support_level returned {level:?}");
    }
    let native = config::parse(config_1k)
        .map_err(|r| anyhow::anyhow!("the native code refuses the 1 KiB config: {}", r.message))?
        .to_json();
    let out: &[u8] = plugin
        .call("validate", config_1k)
        .context("the plugin refuses the 1 KiB config")?;
    if !out.is_empty() {
        bail!(
            "validate produced output: {:?}",
            String::from_utf8_lossy(out)
        );
    }
    let effective: &str = plugin.call("reload", config_1k)?;
    if effective != native {
        bail!("reload returned {effective}\nnative code: {native}");
    }

    let invalid = [
        r#"{"level":"loud"}"#,
        r#"{"level":3}"#,
        "not json",
        "[1,2]",
        r#"{"format":"xml"}"#,
        r#"{"outputs":[]}"#,
        r#"{"outputs":{}}"#,
        r#"{"outputs":[{"type":"file"}]}"#,
        r#"{"outputs":[{"type":"file","path":""}]}"#,
        r#"{"outputs":[{"type":"stdout","path":"/x"}]}"#,
        r#"{"outputs":[{"type":"stdout","color":true}]}"#,
        r#"{"outputs":[7]}"#,
        r#"{"fields":{"a/b~c":1}}"#,
        r#"{"fields":[]}"#,
        r#"{"zeta":1,"alpha":2}"#,
    ];
    let mut loud = String::new();
    for text in invalid {
        let expected = match config::parse(text) {
            Ok(_) => bail!("the native code accepts {text}"),
            Err(r) => (r.message, r.field),
        };
        for export in ["validate", "reload"] {
            let err = match plugin.call::<&str, &[u8]>(export, text) {
                Ok(_) => bail!("plugin {export} accepts {text}"),
                Err(e) => e,
            };
            let got = refusal(&err)?;
            if got != expected {
                bail!("plugin {export} on {text}: {got:?}, native code: {expected:?}");
            }
        }
        if text == r#"{"level":"loud"}"# {
            loud = expected.0;
        }
    }
    // A refusal leaves the plugin usable.
    let out: &[u8] = plugin.call("validate", config_1k)?;
    if !out.is_empty() {
        bail!("validate produced output after a refusal");
    }
    Ok(loud)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let wasm = std::fs::read(&args.plugin).with_context(|| {
        format!(
            "reading the plugin {} (build it: see benches/extism/README.md)",
            args.plugin.display()
        )
    })?;
    let config_1k = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading the config {}", args.config.display()))?;
    let extism_version = extism::extism_version().trim_end_matches('\0');
    let wasmtime_version = env!("EXTISM_WASMTIME_VERSION");
    let load_before = load_average();

    // Compiled once; every plugin below comes from it. Defaults throughout
    // but wasmtime's on-disk compilation cache, which is off so the run
    // writes nothing outside the repository (it only affects this step).
    let started = Instant::now();
    let compiled = CompiledPlugin::new(PluginBuilder::new(wasm.as_slice()).with_cache_disabled())?;
    let compile_ms = started.elapsed().as_secs_f64() * 1e3;

    let mut warm = Plugin::new_from_compiled(&compiled)?;
    let loud = check(&mut warm, &config_1k)?;
    eprintln!("checks passed; {{\"level\":\"loud\"}} is refused with: {loud}");

    let config_1k = config_1k.as_str();
    let w = args.warmup;
    // The workloads take turns, in `rounds` rounds of 1/rounds of their
    // samples each, so that a slow spell of this shared machine falls on
    // all of them alike rather than on whichever ran then.
    let mut samples: [Vec<u64>; WORKLOADS.len()] = Default::default();
    for round in 0..args.rounds {
        let share = |total: usize| total / args.rounds + usize::from(round < total % args.rounds);
        // The full warm-up before the first round, a short one before others.
        let warmup = if round == 0 { w } else { w.div_ceil(10) };
        eprintln!("round {}/{} ...", round + 1, args.rounds);
        for (i, name) in WORKLOADS.iter().enumerate() {
            let into = &mut samples[i];
            match *name {
                "new_instance" => {
                    measure_with_drop_outside(into, warmup, share(args.instances), || {
                        Plugin::new_from_compiled(&compiled).expect("new plugin")
                    })
                }
                "new_instance_ready" => {
                    measure_with_drop_outside(into, warmup, share(args.instances), || {
                        let mut p = Plugin::new_from_compiled(&compiled).expect("new plugin");
                        let level: &str = p.call("support_level", "").expect("support_level");
                        assert_eq!(level, "full");
                        p
                    })
                }
                "validate_warm" => measure(into, warmup, share(args.iterations), || {
                    let out: &[u8] = warm
                        .call("validate", black_box(config_1k))
                        .expect("validate");
                    assert!(out.is_empty());
                }),
                "reload_warm" => measure(into, warmup, share(args.iterations), || {
                    let out: &str = warm.call("reload", black_box(config_1k)).expect("reload");
                    black_box(out);
                }),
                "native_floor" => measure(into, warmup, share(args.iterations), || {
                    let c = config::parse(black_box(config_1k)).map_err(|r| r.message);
                    black_box(c.expect("valid").to_json());
                }),
                other => unreachable!("workload {other}"),
            }
        }
    }
    if let Some(dir) = std::env::var_os("EXTISM_BENCH_SAMPLES") {
        // Raw samples in run order (ns, one a line), one file per workload.
        for (name, s) in WORKLOADS.iter().zip(&samples) {
            let text: String = s.iter().map(|x| format!("{x}\n")).collect();
            let path = PathBuf::from(&dir).join(format!("{name}.txt"));
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let results: Vec<(&str, Stats)> = WORKLOADS
        .iter()
        .zip(samples)
        .map(|(name, s)| (*name, stats(s)))
        .collect();
    let load_after = load_average();

    let settings = json!({
        "manifest": "default (empty): no timeout_ms, no memory max_pages, no config, no allowed_hosts/paths",
        "wasi": false,
        "fuel_limit": null,
        "timeout": null,
        "epoch_interruption": "always on in extism (timer thread told of every call's start and stop)",
        "wasmtime_cache": "disabled (compile step only)",
        "instantiation": "lazy: new_from_compiled runs no wasm; the first call instantiates",
        "log_level": "extism default (no log callback): the plugin's info! in reload is skipped",
    });
    if args.json {
        // Built by hand to keep the keys in this order (serde_json's map is
        // sorted, and `preserve_order` would change the sorted-map behaviour
        // that config.rs relies on for its "smallest unknown key" rule).
        let results: Vec<String> = results
            .iter()
            .map(|(name, s)| {
                format!(
                    "    {}: {{\"median_ns\": {}, \"p99_ns\": {}, \"iterations\": {}, \"min_ns\": {}}}",
                    json!(name),
                    s.median_ns,
                    s.p99_ns,
                    s.iterations,
                    s.min_ns
                )
            })
            .collect();
        let fields = [
            ("extism_version", json!(extism_version)),
            ("wasmtime_version_used_by_extism", json!(wasmtime_version)),
            ("results", Value::Null),
            ("plugin", json!(display(&args.plugin))),
            ("plugin_bytes", json!(wasm.len())),
            ("config", json!(display(&args.config))),
            ("config_bytes", json!(config_1k.len())),
            ("compile_ms", json!((compile_ms * 10.0).round() / 10.0)),
            ("warmup", json!(w)),
            ("rounds", json!(args.rounds)),
            ("settings", settings),
            (
                "checks",
                json!({"passed": true, "level_loud_message": loud}),
            ),
            (
                "load_average",
                json!({"before": load_before, "after": load_after}),
            ),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| match *k {
                "results" => format!("  \"results\": {{\n{}\n  }}", results.join(",\n")),
                _ => format!("  {}: {}", json!(k), v),
            })
            .collect();
        println!("{{\n{}\n}}", body.join(",\n"));
    } else {
        println!(
            "extism {extism_version} (wasmtime {wasmtime_version}); plugin {} bytes, config {} bytes, compiled in {compile_ms:.1} ms",
            wasm.len(),
            config_1k.len()
        );
        println!("load average before {load_before}, after {load_after}");
        println!(
            "{:<20} {:>12} {:>12} {:>12} {:>8}",
            "workload", "median", "p99", "min", "n"
        );
        for (name, s) in &results {
            println!(
                "{:<20} {:>12} {:>12} {:>12} {:>8}",
                name,
                human(s.median_ns),
                human(s.p99_ns),
                human(s.min_ns),
                s.iterations
            );
        }
    }
    Ok(())
}

/// Like `measure`, but `f` returns what it made, which is dropped after the
/// sample is taken.
fn measure_with_drop_outside<T>(
    into: &mut Vec<u64>,
    warmup: usize,
    n: usize,
    mut f: impl FnMut() -> T,
) {
    for _ in 0..warmup {
        drop(f());
    }
    for _ in 0..n {
        let start = Instant::now();
        let made = f();
        into.push(start.elapsed().as_nanos() as u64);
        drop(black_box(made));
    }
}

/// A path as given, or canonical when it exists.
fn display(path: &std::path::Path) -> String {
    path.canonicalize()
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

fn human(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}
