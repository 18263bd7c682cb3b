//! `hotreload run` and `hotreload validate`.

use std::path::Path;
use std::process::ExitCode;

use hotreload::daemon::{self, Daemon, Manifest};
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
    let mut events = daemon.runtime().event_stream();
    let printer = tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(e) => match format {
                    EventsFormat::Json => match serde_json::to_string(&*e) {
                        Ok(line) => println!("{line}"),
                        Err(err) => tracing::error!("cannot print event {}: {err}", e.id),
                    },
                    EventsFormat::Text => println!("{}", e.summary()),
                },
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("{n} events were not printed (output too slow)")
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
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
        printer.abort();
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
    // Let the printer drain what was recorded before the shutdown.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    printer.abort();
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
