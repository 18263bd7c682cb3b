//! `hotreload wit`: the contract's WIT files, for handler authors outside
//! this repository.

use std::path::PathBuf;
use std::process::ExitCode;

/// The contract 0.1.0 (frozen), as the host and the bundled handlers use it.
const WIT_0_1: &str = include_str!("../../../../wit/handler.wit");
/// The contract 0.2.0.
const WIT_0_2: &str = include_str!("../../../../wit/v0.2/handler.wit");

/// `hotreload wit`.
#[derive(Debug, clap::Args)]
pub(crate) struct WitArgs {
    /// Which contract: 0.2 (the default, for new handlers) or 0.1 (frozen).
    #[arg(long, default_value = "0.2", value_parser = ["0.1", "0.2"])]
    version: String,
    /// Write `DIR/handler.wit` (the directory is made if missing; an
    /// existing different file is not overwritten). Without it, the WIT
    /// goes to stdout.
    dir: Option<PathBuf>,
}

/// Exit status: 0 written (or already there); 2 it cannot be written, or a
/// different `handler.wit` is there already.
pub(crate) fn run(args: WitArgs) -> ExitCode {
    let text = if args.version == "0.2" {
        WIT_0_2
    } else {
        WIT_0_1
    };
    let Some(dir) = args.dir else {
        return if super::emit(text.trim_end()) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    };
    if dir.exists() && !dir.is_dir() {
        eprintln!("error: {} exists and is not a directory", dir.display());
        return ExitCode::from(2);
    }
    let path = dir.join("handler.wit");
    // Never blocks on a FIFO or reads a device someone left there.
    match hotreload::sources::read_regular(&path, 1 << 20) {
        Ok(old) if old == text.as_bytes() => {
            println!("{}: already contract {}", path.display(), args.version);
            return ExitCode::SUCCESS;
        }
        Ok(_) => {
            eprintln!(
                "error: {} exists and differs: move it away first (it is not overwritten)",
                path.display()
            );
            return ExitCode::from(2);
        }
        Err(hotreload::sources::ReadError::Missing { .. }) => {}
        Err(e) => {
            eprintln!("error: {e} (it is not overwritten)");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return ExitCode::from(2);
    }
    println!("wrote {} (contract {})", path.display(), args.version);
    ExitCode::SUCCESS
}
