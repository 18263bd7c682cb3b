//! The `hotreload` command: a thin shell over the library.

use std::process::ExitCode;

use clap::Parser;
use hotreload_cli::cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(args.default_log_level(), args.log_format());
    let args = match cli::run_sync(args) {
        Ok(code) => return code,
        Err(args) => *args,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(cli::run(args))
}
