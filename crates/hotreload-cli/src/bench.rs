//! Benchmark workloads, shared by the criterion benchmarks (`benches/`) and
//! `hotreload bench`, so both measure exactly the same thing.
//!
//! Every workload uses the bundled `logging` handler and a 1 KiB JSON
//! configuration (`benches/data/logging-1k.json`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use hotreload::{ComponentSpec, Limits, Outcome, Probe, Runtime, SandboxOptions, Settings};

#[path = "../../../handlers/logging/src/config.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod logging_config;

/// The 1 KiB logging configuration.
pub const CONFIG_1K: &str = include_str!("../../../benches/data/logging-1k.json");

/// The same configuration with another level, so alternating the two makes
/// every reload a real change.
pub fn config_1k_other() -> String {
    CONFIG_1K.replacen("\"level\":\"debug\"", "\"level\":\"info\"", 1)
}

/// The floor: the logging handler's own validation and normalisation code,
/// compiled natively, on the same text.
///
/// # Errors
/// The refusal's message, when the configuration is invalid.
pub fn native_validate_and_normalise(config: &str) -> Result<String, String> {
    logging_config::parse(config)
        .map(|c| c.to_json())
        .map_err(|r| r.message)
}

/// Contract 0.2's floor: the logging handler on the SDK
/// (`handlers/logging-v2`, the code the bundled `LOGGING_V2` component is
/// built from) compiled natively, doing what the host asks of it in a
/// reload — `prepare` then `apply` — on the same texts, alternating.
pub struct NativeV2 {
    runner: hotreload_handler::Runner<logging_v2::Logging>,
    configs: [String; 2],
    next: usize,
}

impl Default for NativeV2 {
    fn default() -> Self {
        NativeV2::new()
    }
}

impl NativeV2 {
    /// A runner with the 1 KiB configuration in force.
    ///
    /// # Panics
    /// If the handler refuses the benchmark configuration.
    pub fn new() -> NativeV2 {
        let mut runner = hotreload_handler::Runner::new();
        runner.prepare(None, CONFIG_1K).expect("valid");
        runner.apply(None, CONFIG_1K).expect("applies");
        NativeV2 {
            runner,
            configs: [CONFIG_1K.to_owned(), config_1k_other()],
            next: 0,
        }
    }

    /// One reload's worth of handler work: `prepare(old, new)`, `apply(old, new)`.
    ///
    /// # Panics
    /// If either refuses.
    pub fn step(&mut self) {
        let old = &self.configs[self.next];
        self.next ^= 1;
        let new = &self.configs[self.next];
        let p = self.runner.prepare(Some(old), new).expect("valid");
        std::hint::black_box(p);
        self.runner.apply(Some(old), new).expect("applies");
    }
}

/// A runtime holding the logging component, on contract 0.2 (the SDK
/// build), on the 1 KiB configuration.
///
/// # Panics
/// If the component cannot be added (a build problem).
pub fn runtime_with_logging_v2(settings: Settings, async_rt: &tokio::runtime::Runtime) -> Runtime {
    let runtime = Runtime::new(settings).expect("runtime");
    async_rt
        .block_on(runtime.add_component(ComponentSpec::new(
            "logging",
            hotreload_handlers::LOGGING_V2,
            CONFIG_1K,
        )))
        .expect("logging loads");
    runtime
}

/// A probe of the 0.2 logging handler with a warm instance.
///
/// # Panics
/// If the bundled handler does not load (a build problem).
pub fn warm_probe_v2(options: SandboxOptions) -> Probe {
    let mut probe = Probe::new(hotreload_handlers::LOGGING_V2, Limits::default(), options)
        .expect("the bundled logging-v2 handler loads");
    probe.instantiate().result.expect("instantiates");
    probe
}

/// A probe of the logging handler with a warm instance.
///
/// # Panics
/// If the bundled handler does not load (a build problem).
pub fn warm_probe(options: SandboxOptions) -> Probe {
    let mut probe = Probe::new(hotreload_handlers::LOGGING, Limits::default(), options)
        .expect("the bundled logging handler loads");
    probe.instantiate().result.expect("instantiates");
    probe
}

/// A runtime holding the logging component on the 1 KiB configuration.
///
/// # Panics
/// If the component cannot be added (a build problem).
pub fn runtime_with_logging(settings: Settings, async_rt: &tokio::runtime::Runtime) -> Runtime {
    let runtime = Runtime::new(settings).expect("runtime");
    async_rt
        .block_on(runtime.add_component(ComponentSpec::new(
            "logging",
            hotreload_handlers::LOGGING,
            CONFIG_1K,
        )))
        .expect("logging loads");
    runtime
}

/// Reloads alternately to the two 1 KiB configurations; every call applies.
pub struct Alternating {
    runtime: Runtime,
    configs: [Arc<str>; 2],
    next: usize,
}

impl Alternating {
    /// Alternates on `runtime`'s `logging` component.
    pub fn new(runtime: Runtime) -> Alternating {
        Alternating {
            runtime,
            configs: [Arc::from(config_1k_other()), Arc::from(CONFIG_1K)],
            next: 0,
        }
    }

    /// One whole transaction.
    ///
    /// # Panics
    /// If the reload does not apply.
    pub fn step(&mut self) {
        let config = self.configs[self.next].to_string();
        self.next ^= 1;
        let event = self
            .runtime
            .reload_blocking("logging", config)
            .expect("component exists");
        assert_eq!(event.outcome, Outcome::Applied, "{}", event.summary());
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

/// `Runtime::current()` timed on this thread while another thread commits
/// reloads in a loop to a state directory (each commit an fsync): a reader
/// never waits for the disk or for a reload in flight. Reads go on until
/// `commits` commits have happened meanwhile (at most `max_samples` are
/// kept); gives the readers' latencies and the commits counted.
///
/// # Panics
/// If a reload does not apply.
pub fn current_under_commits(
    async_rt: &tokio::runtime::Runtime,
    commits: u64,
    max_samples: usize,
) -> (Summary, u64) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let dir = temp_dir("current");
    let runtime = runtime_with_logging(
        Settings {
            state_dir: Some(dir.clone()),
            ..Settings::default()
        },
        async_rt,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, done) = (stop.clone(), done.clone());
        let mut alternating = Alternating::new(runtime.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                alternating.step();
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Let the writer get going before timing.
    while done.load(Ordering::Relaxed) < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let first = done.load(Ordering::Relaxed);
    let mut samples = Vec::with_capacity(max_samples);
    let mut n = 0usize;
    while done.load(Ordering::Relaxed) < first + commits {
        let t = Instant::now();
        std::hint::black_box(runtime.current("logging").expect("component"));
        let d = t.elapsed();
        // Past `max_samples`, the newest replace the oldest.
        n += 1;
        if samples.len() < max_samples {
            samples.push(d);
        } else {
            let i = n % max_samples;
            samples[i] = d;
        }
    }
    let counted = done.load(Ordering::Relaxed) - first;
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    let _ = std::fs::remove_dir_all(&dir);
    (Summary::of(&mut samples), counted)
}

/// A probe of the chaos handler whose `validate` spins, with `deadline`.
///
/// # Panics
/// If the bundled handler does not load.
pub fn spinning_probe(deadline: Duration) -> Probe {
    // A tight loop burns the default fuel (10⁹) in about 100 ms; give it
    // more so only the deadline cuts it off.
    let limits = Limits {
        validation_timeout: deadline,
        fuel: u64::MAX / 2,
        ..Limits::default()
    };
    Probe::new(hotreload_handlers::CHAOS, limits, SandboxOptions::default())
        .expect("the bundled chaos handler loads")
}

/// The configuration that makes the chaos handler's `validate` spin.
pub const SPIN: &str = r#"{"validate": "spin"}"#;

/// How long a spinning `validate` ran past its deadline.
///
/// # Panics
/// If the call was not cut off by its deadline.
pub fn spin_overshoot(probe: &mut Probe, deadline: Duration) -> Duration {
    let started = Instant::now();
    let call = probe.validate(SPIN);
    let took = started.elapsed();
    let cause = call.result.as_ref().err().map(|e| e.cause());
    assert_eq!(cause, Some(hotreload::Cause::Timeout), "{:?}", call.result);
    took.saturating_sub(deadline)
}

/// `n` distinct handlers: the logging handler with a custom section naming
/// its number, so each has its own hash and compiles on its own.
pub fn distinct_handlers(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut bytes = hotreload_handlers::LOGGING.to_vec();
            let name = b"hotreload-bench";
            let payload = format!("{i}");
            let size = 1 + name.len() + payload.len();
            bytes.push(0); // custom section id
            leb128(&mut bytes, size);
            leb128(&mut bytes, name.len());
            bytes.extend_from_slice(name);
            bytes.extend_from_slice(payload.as_bytes());
            bytes
        })
        .collect()
}

fn leb128(out: &mut Vec<u8>, mut v: usize) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Starts a runtime with 20 components, each with its own handler, on the
/// 1 KiB configuration; with `state_dir` set, compiled handlers are cached there.
///
/// # Panics
/// If a component does not load.
pub fn start_components(
    handlers: &[Vec<u8>],
    state_dir: Option<&Path>,
    async_rt: &tokio::runtime::Runtime,
) -> Runtime {
    let runtime = Runtime::new(Settings {
        state_dir: state_dir.map(Path::to_owned),
        ..Settings::default()
    })
    .expect("runtime");
    async_rt.block_on(async {
        let tasks: Vec<_> = handlers
            .iter()
            .enumerate()
            .map(|(i, wasm)| {
                let runtime = runtime.clone();
                let spec = ComponentSpec::new(format!("c{i}"), wasm.clone(), CONFIG_1K);
                tokio::spawn(async move { runtime.add_component(spec).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("component loads");
        }
    });
    runtime
}

/// Median, 99th percentile and count of a set of timings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Median, nanoseconds.
    pub median_ns: f64,
    /// 99th percentile, nanoseconds.
    pub p99_ns: f64,
    /// Samples.
    pub samples: usize,
}

impl Summary {
    /// Summarises samples (they are sorted in place).
    pub fn of(samples: &mut [Duration]) -> Summary {
        samples.sort_unstable();
        let at = |q: f64| {
            if samples.is_empty() {
                0.0
            } else {
                let i = ((samples.len() - 1) as f64 * q).round() as usize;
                samples[i].as_nanos() as f64
            }
        };
        Summary {
            median_ns: at(0.5),
            p99_ns: at(0.99),
            samples: samples.len(),
        }
    }
}

/// Times `f` `n` times after `warmup` untimed runs.
pub fn time(warmup: usize, n: usize, mut f: impl FnMut()) -> Summary {
    for _ in 0..warmup {
        f();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f();
        samples.push(started.elapsed());
    }
    Summary::of(&mut samples)
}

/// A new, empty directory under the system's temporary directory.
///
/// # Panics
/// When it cannot be created.
pub fn temp_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hotreload-bench-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The resident memory of this process, in KiB (Linux).
pub fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Checks the native floor accepts the benchmark configuration (and so
/// that the floor measures a real validation).
///
/// # Panics
/// If it does not.
pub fn check_native_floor() -> Value {
    let out = native_validate_and_normalise(CONFIG_1K).expect("the 1 KiB config is valid");
    serde_json::from_str(&out).expect("normalised JSON")
}

/// A logging configuration file watched by the daemon's file source.
pub struct WatchedFile {
    dir: std::path::PathBuf,
    file: std::path::PathBuf,
    debounce: Duration,
    events: tokio::sync::broadcast::Receiver<Arc<hotreload::Event>>,
    next: usize,
    _runtime: Runtime,
    _watcher: hotreload::sources::SourceHandle,
}

impl WatchedFile {
    /// Starts watching a fresh file with the given debounce.
    ///
    /// # Panics
    /// On I/O errors in the temporary directory.
    pub fn start(async_rt: &tokio::runtime::Runtime, debounce: Duration) -> WatchedFile {
        let dir = temp_dir("watch");
        let file = dir.join("logging.json");
        std::fs::write(&file, CONFIG_1K).expect("write");
        let runtime = runtime_with_logging(Settings::default(), async_rt);
        let events = runtime.event_stream();
        let watcher = {
            let _guard = async_rt.enter();
            let files = hotreload::sources::FileSource::watch(
                vec![hotreload::sources::WatchTarget {
                    component: "logging".into(),
                    path: file.clone(),
                    kind: hotreload::sources::WatchedKind::Config,
                }],
                debounce,
                hotreload::sources::FileRules::default(),
            )
            .expect("watch");
            runtime.attach(files).expect("attach the file source")
        };
        WatchedFile {
            dir,
            file,
            debounce,
            events,
            next: 0,
            _runtime: runtime,
            _watcher: watcher,
        }
    }

    /// Saves a changed file atomically and waits for it to apply; gives the
    /// time beyond the debounce.
    ///
    /// # Panics
    /// If the change is not applied within 5 s.
    pub fn change(&mut self, async_rt: &tokio::runtime::Runtime) -> Duration {
        let text = if self.next.is_multiple_of(2) {
            config_1k_other()
        } else {
            CONFIG_1K.to_owned()
        };
        self.next += 1;
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write");
        let started = Instant::now();
        std::fs::rename(&tmp, &self.file).expect("rename");
        let event = async_rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), self.events.recv())
                .await
                .expect("applied within 5 s")
                .expect("event")
        });
        let took = started.elapsed();
        assert_eq!(event.outcome, Outcome::Applied, "{}", event.summary());
        took.saturating_sub(self.debounce)
    }
}

impl Drop for WatchedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
