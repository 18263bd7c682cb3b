//! `hotreload bench`: the reload-latency benchmark as a table.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::bench::{self, Alternating, CONFIG_1K, Summary};
use clap::Args;
use hotreload::{Limits, Probe, SandboxOptions, Settings};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Time this handler (contract 0.1.0 or 0.2.0) on your own
    /// configurations, `--old` and `--new`, instead of the bundled
    /// workloads: compiling, a fresh instance, each phase and the whole
    /// transaction, with median, p99 and fuel.
    handler: Option<PathBuf>,
    /// With HANDLER: the configuration reloaded from (JSON, TOML or YAML by
    /// its extension).
    #[arg(long, requires = "handler")]
    old: Option<PathBuf>,
    /// With HANDLER: the configuration reloaded to; the benchmark goes
    /// from --old to --new and back.
    #[arg(long, requires = "handler")]
    new: Option<PathBuf>,
    /// With HANDLER: fuel per call (default: the runtime's default).
    #[arg(long, requires = "handler")]
    fuel: Option<u64>,
    /// With HANDLER: the deadline of every call, in milliseconds.
    #[arg(long, requires = "handler")]
    timeout_ms: Option<u64>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Fewer iterations (a quick look, not a measurement).
    #[arg(long)]
    quick: bool,
    /// Reloads for the event-store budget check.
    #[arg(long)]
    reloads: Option<u64>,
    /// The Extism peer's results (`benches/extism/run.sh` output) to compare with.
    #[arg(long)]
    extism: Option<PathBuf>,
    /// A handler in another language to measure: NAME=PATH (repeatable).
    #[arg(long = "handler", value_parser = parse_handler)]
    handlers: Vec<(String, PathBuf)>,
}

fn parse_handler(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s.split_once('=').ok_or("expected NAME=PATH")?;
    Ok((name.to_owned(), PathBuf::from(path)))
}

#[derive(Serialize)]
struct Row {
    name: String,
    median_ns: f64,
    p99_ns: f64,
    samples: usize,
    /// Ratio of the median to the native floor's median.
    ratio_to_native: Option<f64>,
    note: String,
}

struct Report {
    rows: Vec<Row>,
    floor_ns: f64,
    quiet: bool,
}

impl Report {
    fn progress(&self, what: &str) {
        if !self.quiet {
            eprint!("\r\x1b[2K  measuring {what} …");
            let _ = std::io::stderr().flush();
        }
    }

    fn add(&mut self, name: &str, s: Summary, ratio: bool, note: impl Into<String>) {
        self.rows.push(Row {
            name: name.into(),
            median_ns: s.median_ns,
            p99_ns: s.p99_ns,
            samples: s.samples,
            ratio_to_native: (ratio && self.floor_ns > 0.0).then(|| s.median_ns / self.floor_ns),
            note: note.into(),
        });
    }

    /// A row whose ratio is to `floor_ns` (another contract's floor).
    fn add_vs(&mut self, name: &str, s: Summary, floor_ns: f64, note: impl Into<String>) {
        self.rows.push(Row {
            name: name.into(),
            median_ns: s.median_ns,
            p99_ns: s.p99_ns,
            samples: s.samples,
            ratio_to_native: (floor_ns > 0.0).then(|| s.median_ns / floor_ns),
            note: note.into(),
        });
    }

    fn median(&self, name: &str) -> f64 {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .map_or(0.0, |r| r.median_ns)
    }
}

pub(crate) fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

pub(crate) fn run(args: BenchArgs) -> std::process::ExitCode {
    if let Some(handler) = &args.handler {
        let (old, new) = match super::handler_bench::paths(&args.old, &args.new) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        return super::handler_bench::run(super::handler_bench::HandlerBench {
            handler,
            old: &old,
            new: &new,
            fuel: args.fuel,
            timeout_ms: args.timeout_ms,
            json: args.json,
            quick: args.quick,
        });
    }
    let (calls, instances, slow) = if args.quick {
        (500, 200, 5)
    } else {
        (20_000, 5_000, 20)
    };
    let reloads = args
        .reloads
        .unwrap_or(if args.quick { 100_000 } else { 1_000_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut r = Report {
        rows: Vec::new(),
        floor_ns: 0.0,
        quiet: args.json,
    };

    r.progress("the native floor");
    bench::check_native_floor();
    let floor = bench::time(calls / 10, calls, || {
        bench::native_validate_and_normalise(std::hint::black_box(CONFIG_1K)).expect("valid");
    });
    r.floor_ns = floor.median_ns;
    r.add(
        "5 native floor (validate + normalise, Rust)",
        floor,
        true,
        "",
    );

    r.progress("fresh instances");
    let mut probe = bench::warm_probe(SandboxOptions::default());
    let s = bench::time(instances / 10, instances, || {
        probe.instantiate().result.expect("instance");
    });
    r.add("1 fresh instance (pre-linked)", s, false, "target ≤ 10 µs");

    for (name, fuel, epoch) in [
        ("2 validate, warm (fuel + epoch)", true, true),
        ("6 validate, warm, fuel only", true, false),
        ("6 validate, warm, epoch only", false, true),
        ("6 validate, warm, neither", false, false),
    ] {
        r.progress(name);
        let mut probe = bench::warm_probe(SandboxOptions {
            consume_fuel: fuel,
            epoch_interruption: epoch,
        });
        let s = bench::time(calls / 10, calls, || {
            probe
                .validate(std::hint::black_box(CONFIG_1K))
                .result
                .expect("valid");
        });
        r.add(name, s, true, "");
    }

    // Contract 0.2: the same workloads with the logging handler on the SDK,
    // against its own floor (the same code natively, prepare + apply).
    r.progress("contract 0.2");
    let mut native = bench::NativeV2::new();
    let floor_v2 = bench::time(calls / 10, calls, || native.step());
    r.add_vs(
        "5 native floor, 0.2 (prepare + apply, Rust SDK)",
        floor_v2,
        floor_v2.median_ns,
        "",
    );
    let mut probe = bench::warm_probe_v2(SandboxOptions::default());
    let s = bench::time(instances / 10, instances, || {
        probe.instantiate().result.expect("instance");
    });
    r.add("1 fresh instance, 0.2 (pre-linked)", s, false, "");
    probe.load(CONFIG_1K).result.expect("loads");
    let other = bench::config_1k_other();
    let mut flip = false;
    let s = bench::time(calls / 10, calls, || {
        let (old, new) = if flip {
            (other.as_str(), CONFIG_1K)
        } else {
            (CONFIG_1K, other.as_str())
        };
        flip = !flip;
        probe.prepare(Some(old), new).result.expect("valid");
        probe.apply(Some(old), new).result.expect("applies");
    });
    r.add_vs(
        "2 prepare + apply, warm, 0.2 (fuel + epoch)",
        s,
        floor_v2.median_ns,
        "",
    );
    // The same calls without the sandbox's instrumentation: what the wasm
    // code itself costs, beside what fuel and epoch checks add.
    let mut bare = bench::warm_probe_v2(SandboxOptions {
        consume_fuel: false,
        epoch_interruption: false,
    });
    bare.load(CONFIG_1K).result.expect("loads");
    let mut flip = false;
    let s = bench::time(calls / 10, calls, || {
        let (old, new) = if flip {
            (other.as_str(), CONFIG_1K)
        } else {
            (CONFIG_1K, other.as_str())
        };
        flip = !flip;
        bare.prepare(Some(old), new).result.expect("valid");
        bare.apply(Some(old), new).result.expect("applies");
    });
    r.add_vs(
        "6 prepare + apply, warm, 0.2, neither fuel nor epoch",
        s,
        floor_v2.median_ns,
        "",
    );
    let mut warm_v2 = Alternating::new(bench::runtime_with_logging_v2(Settings::default(), &rt));
    let s = bench::time(calls / 10, calls, || warm_v2.step());
    r.add_vs(
        "3 whole transaction, warm instance, 0.2",
        s,
        floor_v2.median_ns,
        "target ≤ 1.5× its native floor",
    );
    drop(warm_v2);

    r.progress("whole transactions");
    let mut warm = Alternating::new(bench::runtime_with_logging(Settings::default(), &rt));
    let s = bench::time(calls / 10, calls, || warm.step());
    r.add(
        "3 whole transaction, warm instance",
        s,
        true,
        "target ≤ 1.5× native",
    );
    let mut fresh = Alternating::new(bench::runtime_with_logging(
        Settings {
            fresh_instance_per_reload: true,
            ..Settings::default()
        },
        &rt,
    ));
    let s = bench::time(instances / 10, instances, || fresh.step());
    r.add("4 whole transaction, fresh instance", s, true, "");

    r.progress("current() while reloads commit");
    let (s, commits) =
        bench::current_under_commits(&rt, if args.quick { 50 } else { 500 }, 1_000_000);
    r.add(
        "3 current() while another thread commits (fsync) in a loop",
        s,
        false,
        format!("{commits} fsynced commits meanwhile; never waits for the disk"),
    );

    for ms in [10u64, 100] {
        r.progress(&format!("a spinning handler with a {ms} ms deadline"));
        let deadline = Duration::from_millis(ms);
        let mut probe = bench::spinning_probe(deadline);
        let mut samples: Vec<Duration> = (0..slow)
            .map(|_| bench::spin_overshoot(&mut probe, deadline))
            .collect();
        let s = Summary::of(&mut samples);
        r.add(
            &format!("7 spin cut off, {ms} ms deadline: time past it"),
            s,
            false,
            "target ≤ 1 ms",
        );
    }

    r.progress("file change → applied");
    let mut watched = bench::WatchedFile::start(&rt, Duration::from_millis(10));
    let mut samples: Vec<Duration> = (0..slow * 5).map(|_| watched.change(&rt)).collect();
    drop(watched);
    let s = Summary::of(&mut samples);
    r.add(
        "8 file change → applied, beyond a 10 ms debounce",
        s,
        false,
        "target ≤ 1 ms",
    );

    r.progress("start-up of 20 components");
    let handlers = bench::distinct_handlers(20);
    let mut cold = Vec::new();
    let mut cached = Vec::new();
    let runs = if args.quick { 2 } else { 5 };
    for _ in 0..runs {
        let dir = bench::temp_dir("start");
        let t = std::time::Instant::now();
        drop(bench::start_components(&handlers, Some(&dir), &rt));
        cold.push(t.elapsed());
        for _ in 0..2 {
            let t = std::time::Instant::now();
            drop(bench::start_components(&handlers, Some(&dir), &rt));
            cached.push(t.elapsed());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    r.add(
        "9 start 20 components, cold",
        Summary::of(&mut cold),
        false,
        "",
    );
    r.add(
        "9 start 20 components, compiled-code cache",
        Summary::of(&mut cached),
        false,
        "target ≤ 50 ms",
    );

    let mut languages = BTreeMap::new();
    for (name, path) in &args.handlers {
        r.progress(&format!("the {name} handler"));
        match language(path, calls / 10, instances / 10) {
            Ok((inst, val, which)) => {
                r.add(&format!("L {name}: fresh instance"), inst, false, "");
                r.add(&format!("L {name}: validate, warm"), val, true, which);
                languages.insert(
                    name.clone(),
                    json!({"fresh_instance": inst, "validate_warm": val}),
                );
            }
            Err(e) => {
                eprintln!("\n{name}: {e}");
            }
        }
    }

    r.progress(&format!("the event store over {reloads} reloads"));
    let store = event_store(reloads, &rt);

    let extism = args.extism.as_ref().map(|p| extism_comparison(p, &r));
    if !args.json {
        eprint!("\r\x1b[2K");
    }

    if args.json {
        let out = json!({
            "machine": machine(),
            "rows": r.rows,
            "event_store": store,
            "extism": extism,
            "languages": languages,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    } else {
        println!("machine: {}", machine());
        println!(
            "{:<52} {:>11} {:>11} {:>9}  note",
            "measurement", "median", "p99", "× native"
        );
        for row in &r.rows {
            println!(
                "{:<52} {:>11} {:>11} {:>9}  {}",
                row.name,
                fmt_ns(row.median_ns),
                fmt_ns(row.p99_ns),
                row.ratio_to_native
                    .map_or(String::new(), |x| format!("{x:.2}")),
                row.note
            );
        }
        println!("\nevent store after {reloads} reloads: {store}");
        if let Some(e) = extism {
            println!("extism comparison: {e}");
        }
        let fuel_cost =
            r.median("2 validate, warm (fuel + epoch)") / r.median("6 validate, warm, epoch only");
        println!(
            "fuel adds {:.0} % to a warm validate",
            (fuel_cost - 1.0) * 100.0
        );
    }
    std::process::ExitCode::SUCCESS
}

/// Instance start and a warm validate of one language's handler; the 1 KiB
/// configuration, or `{"level":"debug"}` for a handler that refuses it (the
/// WAT subset).
fn language(
    path: &PathBuf,
    calls: usize,
    instances: usize,
) -> Result<(Summary, Summary, &'static str), String> {
    let wasm = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut probe = Probe::new(&wasm, Limits::default(), SandboxOptions::default())
        .map_err(|e| e.to_string())?;
    let inst = bench::time(instances / 10 + 1, instances.max(10), || {
        probe.instantiate().result.expect("instance");
    });
    let (config, which) = if probe.check(CONFIG_1K).result.is_ok() {
        (CONFIG_1K, "1 KiB config")
    } else {
        (
            r#"{"level":"debug"}"#,
            "{\"level\":\"debug\"} (refuses the 1 KiB config)",
        )
    };
    let val = bench::time(calls / 10 + 1, calls.max(10), || {
        probe.check(config).result.expect("valid");
    });
    Ok((inst, val, which))
}

fn event_store(reloads: u64, rt: &tokio::runtime::Runtime) -> Value {
    let mut alt = Alternating::new(bench::runtime_with_logging(Settings::default(), rt));
    let rss_before = bench::resident_kib();
    let started = std::time::Instant::now();
    let mut rss_mid = None;
    for i in 0..reloads {
        alt.step();
        if i == reloads / 10 {
            rss_mid = bench::resident_kib();
        }
    }
    let stats = alt.runtime().stats();
    json!({
        "reloads": reloads,
        "seconds": started.elapsed().as_secs_f64(),
        "events_recorded": stats.total,
        "events_kept": stats.events_kept,
        "events_bytes": stats.events_bytes,
        "budget_bytes": Settings::default().event_store_bytes,
        "within_budget": stats.events_bytes <= Settings::default().event_store_bytes,
        "rss_kib_before": rss_before,
        "rss_kib_after_10_percent": rss_mid,
        "rss_kib_after": bench::resident_kib(),
        "p50_us": stats.p50_us,
        "p99_us": stats.p99_us,
    })
}

fn extism_comparison(path: &PathBuf, r: &Report) -> Value {
    let read = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()));
    match read {
        Ok(v) => {
            let median = |k: &str| v["results"][k]["median_ns"].as_f64().unwrap_or(f64::NAN);
            // Extism instantiates lazily: creation plus the first call is
            // what our fresh instance (instantiate + support-level) does.
            let extism_instance = if v["results"]["new_instance_ready"].is_object() {
                median("new_instance_ready")
            } else {
                median("new_instance")
            };
            let ours_instance = r.median("1 fresh instance (pre-linked)");
            let ours_call = r.median("2 validate, warm (fuel + epoch)");
            json!({
                "extism_version": v["extism_version"],
                "extism_new_instance_ns": extism_instance,
                "extism_new_from_compiled_ns": median("new_instance"),
                "extism_validate_warm_ns": median("validate_warm"),
                "ours_new_instance_ns": ours_instance,
                "ours_validate_warm_ns": ours_call,
                "new_instance_ratio": extism_instance / ours_instance,
                "warm_call_ratio": median("validate_warm") / ours_call,
                "targets": "new instance ratio ≥ 5, warm call ratio ≥ 2",
            })
        }
        Err(e) => json!({"error": format!("{}: {e}", path.display())}),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cpu}, {cores} cores, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
