//! Command-line surfaces: argument parsing and one module per command.

mod scenarios;
mod try_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Configuration hot reload with sandboxed WebAssembly handlers.
#[derive(Debug, Parser)]
#[command(name = "hotreload", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Run the built-in scenario suite against the bundled handlers.
    Test {
        /// Print each scenario's events as well.
        #[arg(short, long)]
        verbose: bool,
    },
}

impl Cli {
    pub(crate) fn verbose_logs(&self) -> bool {
        false
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings).
pub(crate) fn init_tracing(verbose: bool) {
    let default = if verbose { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub(crate) async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Try(args) => try_cmd::run(args).await,
        Command::Test { verbose } => scenarios::run(verbose).await,
    }
}

/// Reads a configuration file as JSON text.
pub(crate) fn read_config(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}
