//! `hotreload run` and `hotreload validate`.

use std::path::Path;
use std::process::ExitCode;

use std::time::Duration;

use hotreload::daemon::{self, Daemon, Manifest};

use super::printer::Printer;
use tokio::signal::unix::{SignalKind, signal};

use hotreload_handlers::by_name as bundled;

/// How `run` prints events on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EventsFormat {
    /// One JSON object per line.
    Json,
    /// One summary line per event.
    Text,
}

pub(crate) async fn run(manifest: &Path, format: EventsFormat) -> ExitCode {
    let manifest = match Manifest::load(manifest) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut daemon = match Daemon::new(manifest, bundled) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let printer = Printer::start(daemon.runtime().clone(), format);
    let (Ok(mut hup), Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("error: cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    if let Err(e) = daemon.start().await {
        eprintln!("error: {e}");
        daemon.shutdown().await;
        printer.stop(Duration::from_secs(1));
        return ExitCode::FAILURE;
    }
    tracing::info!("watching; SIGHUP re-reads every file, SIGINT/SIGTERM stop");
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: re-reading every configuration file");
                daemon.reread_all().await;
            }
            _ = int.recv() => break,
            _ = term.recv() => break,
        }
    }
    tracing::info!("shutting down");
    daemon.shutdown().await;
    // Print what was recorded before the shutdown, but never wait long for
    // a reader that does not read.
    tokio::task::spawn_blocking(move || printer.stop(Duration::from_secs(1)))
        .await
        .ok();
    ExitCode::SUCCESS
}

pub(crate) async fn validate(manifest: &Path) -> ExitCode {
    let manifest = match Manifest::load(manifest) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let verdicts = match daemon::validate(&manifest, bundled).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    for v in &verdicts {
        match &v.result {
            Ok(file) => println!("ok    {}: {file}", v.component),
            Err(why) => {
                failed += 1;
                println!("FAIL  {}: {why}", v.component);
            }
        }
    }
    if failed == 0 {
        println!(
            "{}: all {} components valid",
            manifest.path.display(),
            verdicts.len()
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "{}: {failed} of {} components invalid",
            manifest.path.display(),
            verdicts.len()
        );
        ExitCode::FAILURE
    }
}
