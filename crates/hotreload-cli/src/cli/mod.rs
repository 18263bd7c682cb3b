//! Command-line surfaces: argument parsing and one module per command.

mod bench_cmd;
mod client_cmd;
mod conform_cmd;
mod daemon_cmd;
mod fleet_bench;
mod fleet_cmd;
mod handler_bench;
mod history_cmd;
mod printer;
mod replay_cmd;
mod scenarios;
mod try_cmd;
mod wit_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Configuration hot reload with sandboxed WebAssembly handlers.
#[derive(Debug, Parser)]
#[command(name = "hotreload", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines on stderr are written: `text` for people, `json` (one
    /// object per line, with the transaction and phase spans) for machines.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per record, for people.
    Text,
    /// One JSON object per record, for machines.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one whole transaction in isolation: load OLD, then reload to NEW,
    /// and print the reload's event as JSON.
    ///
    /// Exit status: 0 applied or unchanged; 1 rejected, rolled back,
    /// restart-required or degraded; 2 usage error or a handler that cannot
    /// be loaded.
    Try(try_cmd::TryArgs),
    /// The daemon: load a manifest, watch every component's files, apply
    /// changes, print one event per line on stdout. SIGHUP re-reads every
    /// file; SIGINT/SIGTERM shut down cleanly.
    Run {
        /// The manifest (TOML).
        manifest: PathBuf,
        /// How events are printed on stdout.
        #[arg(long, value_enum, default_value = "json")]
        events_format: daemon_cmd::EventsFormat,
    },
    /// Validate every component's current configuration file with its
    /// handler, like `nginx -t`. Exit 0 only when all pass.
    Validate {
        /// The manifest (TOML).
        manifest: PathBuf,
    },
    /// The reload-latency benchmark: medians, p99s and ratios to a native
    /// floor, as a table (or `--json`).
    Bench(bench_cmd::BenchArgs),
    /// The conformance kit: is this handler sound? One line per check.
    ///
    /// Exit status: 0 when every check passes; 1 when one fails; 2 usage
    /// error or a handler the host cannot load (the report says why).
    Conform(conform_cmd::ConformArgs),
    /// The revision history of a manifest's components, from its state
    /// directory (read-only; works while the daemon runs): version, when,
    /// source, handler, and what changed from the version before.
    /// `--diff N M` shows one change in full.
    ///
    /// Exit status: 0; 2 when the manifest, the store or a version cannot
    /// be read.
    History(history_cmd::HistoryArgs),
    /// Run a recorded event again, in a fresh instance with deterministic
    /// clocks and random numbers, and say whether its outcome, cause and
    /// effective configuration come out the same.
    ///
    /// Exit status: 0 the same; 1 different; 2 it cannot be replayed (no
    /// record, the handler's code no longer kept).
    Replay(replay_cmd::ReplayArgs),
    /// A running daemon's components, through its admin API: version,
    /// support level, state, where the configuration in force came from,
    /// and the last event.
    ///
    /// Exit status: 0; 2 when the daemon cannot be reached.
    Status(client_cmd::StatusArgs),
    /// Send a configuration to a running daemon (through its admin API);
    /// print the event the transaction recorded.
    ///
    /// Exit status: 0 applied or unchanged (with `--dry-run`: would be);
    /// 1 rejected, rolled back, restart-required, degraded, or the version
    /// moved on (`--if-version`); 2 the daemon or the file cannot be
    /// reached, or the request is refused.
    Apply(client_cmd::ApplyArgs),
    /// Roll a running daemon's component back to an earlier version (a new
    /// version through the whole transaction); print its event.
    ///
    /// Exit status: as `apply`.
    Rollback(client_cmd::RollbackArgs),
    /// A running daemon's events, one JSON object per line; `--follow`
    /// keeps printing them as they are recorded.
    ///
    /// Exit status: 0; 2 when the daemon cannot be reached (or goes away).
    Events(client_cmd::EventsArgs),
    /// The fleet, read from etcd: for every component of the manifest,
    /// which node runs its latest revision, which is behind or holds it
    /// for the canaries, which refused it and why, which went silent; and
    /// whether a canary stopped a rollout.
    ///
    /// Exit status: 0 every live node runs every latest revision; 1 not
    /// so; 2 the manifest or etcd cannot be read.
    Fleet(fleet_cmd::FleetArgs),
    /// The fleet benchmark: N nodes (in this process, each with its own
    /// etcd client, watch and lease) on one etcd (started from PATH unless
    /// `--endpoint`): put → first and every node applied, p50/p99, beside
    /// etcd's own put → watch latency.
    FleetBench(fleet_bench::FleetBenchArgs),
    /// The contract's WIT (`handler.wit`) for a handler of your own:
    /// to stdout, or into DIR.
    ///
    /// Exit status: 0; 2 when DIR/handler.wit cannot be written or a
    /// different one is there.
    Wit(wit_cmd::WitArgs),
    /// Run the built-in scenario suite against the bundled handlers.
    Test {
        /// Print each scenario's events as well.
        #[arg(short, long)]
        verbose: bool,
    },
}

impl Cli {
    /// The log level when `RUST_LOG` says nothing: the daemon tells what
    /// it does; the suites and the benchmark print their own results, and
    /// their expected failures would only be noise.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Run { .. } => "info",
            // `replay` runs the event again in a throw-away runtime whose
            // own log lines (a replayed rejection is a warning there) would
            // only repeat its report.
            Command::Test { .. }
            | Command::Bench(_)
            | Command::FleetBench(_)
            | Command::Conform(_)
            | Command::Replay(_) => "error",
            _ => "warn",
        }
    }

    /// How log lines are written (`--log-format`).
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (else `default`).
pub fn init_tracing(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => {
            // Colours only for a terminal: a log file gets plain text.
            use std::io::IsTerminal;
            builder
                .with_ansi(std::io::stderr().is_terminal())
                .try_init()
        }
    };
}

/// Runs the commands that manage their own threads (the benchmark builds
/// its own async runtime); gives the others back.
pub fn run_sync(cli: Cli) -> Result<ExitCode, Box<Cli>> {
    match cli.command {
        Command::Bench(args) => Ok(bench_cmd::run(args)),
        Command::FleetBench(args) => Ok(fleet_bench::run(args)),
        Command::Wit(args) => Ok(wit_cmd::run(args)),
        Command::Conform(args) => Ok(conform_cmd::run(args)),
        Command::History(args) => Ok(history_cmd::run(args)),
        Command::Replay(args) => Ok(replay_cmd::run(args)),
        command => Err(Box::new(Cli { command, ..cli })),
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Try(args) => try_cmd::run(args).await,
        Command::Run {
            manifest,
            events_format,
        } => daemon_cmd::run(&manifest, events_format).await,
        Command::Validate { manifest } => daemon_cmd::validate(&manifest).await,
        Command::Test { verbose } => scenarios::run(verbose).await,
        Command::Status(args) => client_cmd::status(args).await,
        Command::Apply(args) => client_cmd::apply(args).await,
        Command::Rollback(args) => client_cmd::rollback(args).await,
        Command::Events(args) => client_cmd::events(args).await,
        Command::Fleet(args) => fleet_cmd::run(args).await,
        Command::Bench(_)
        | Command::FleetBench(_)
        | Command::Wit(_)
        | Command::Conform(_)
        | Command::History(_)
        | Command::Replay(_) => {
            unreachable!("run_sync runs these outside the async runtime")
        }
    }
}

/// Writes `line` and a newline to stdout; `false` when stdout is closed
/// (`| head`): a command that follows something then stops quietly
/// instead of panicking in `println!`.
pub(crate) fn emit(line: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

/// Where `try` and `conform` keep compiled handlers between runs (a
/// componentize-py handler takes seconds to compile, a cache hit about a
/// millisecond): `$HOTRELOAD_CACHE_DIR`, else `$XDG_CACHE_HOME/hotreload`,
/// else `~/.cache/hotreload`. `HOTRELOAD_CACHE_DIR=` (empty) turns it off.
pub(crate) fn user_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HOTRELOAD_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("hotreload"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache").join("hotreload"))
}
