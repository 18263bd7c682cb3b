//! `hotreload run` and `hotreload validate`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use std::time::Duration;

use hotreload::daemon::{self, Daemon, Manifest};

use super::printer::Printer;
use tokio::signal::unix::{SignalKind, signal};

use hotreload_handlers::by_name as bundled;

use crate::admin::{self, metrics::Metrics, notify::Notifier};

/// How `run` prints events on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EventsFormat {
    /// One JSON object per line.
    Json,
    /// One summary line per event.
    Text,
}

/// Where a running daemon writes its admin API's address, in its state
/// directory (the CLI clients read it when the manifest says port 0).
pub(crate) const ADMIN_ADDR_FILE: &str = "admin.addr";

async fn start_admin(
    manifest: &Manifest,
    runtime: &hotreload::Runtime,
    metrics: Arc<Metrics>,
    source: Option<Arc<hotreload::fleet::SourceState>>,
) -> Result<Option<admin::Admin>, String> {
    let Some(addr) = manifest.admin.address()? else {
        return Ok(None);
    };
    let expected = manifest.components.iter().map(|c| c.name.clone()).collect();
    admin::start(
        &manifest.admin,
        addr,
        runtime.clone(),
        expected,
        metrics,
        source,
    )
    .await
    .map(Some)
}

pub(crate) async fn run(manifest: &Path, format: EventsFormat) -> ExitCode {
    let manifest = match Manifest::load(manifest) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut daemon = match Daemon::new(manifest.clone(), bundled) {
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
    // Metrics and the webhook read every event from the first load on.
    let metrics = Arc::new(Metrics::new());
    let observer = metrics.follow(daemon.runtime());
    let notifier = manifest
        .notify
        .clone()
        .map(|n| Notifier::start(daemon.runtime(), n, metrics.clone()));
    // The admin API answers before the components load: /healthz says the
    // process is alive, /readyz says 503 until every one has a configuration.
    let admin = match start_admin(
        &manifest,
        daemon.runtime(),
        metrics.clone(),
        daemon.source_state(),
    )
    .await
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            daemon.shutdown().await;
            printer.stop(Duration::from_secs(1));
            return ExitCode::FAILURE;
        }
    };
    let addr_file = admin.as_ref().and_then(|a| {
        let dir = manifest.settings.state_dir.as_ref()?;
        let path = dir.join(ADMIN_ADDR_FILE);
        match std::fs::write(&path, format!("{}\n", a.addr)) {
            Ok(()) => Some(path),
            Err(e) => {
                tracing::warn!("cannot write {}: {e}", path.display());
                None
            }
        }
    });
    if let Some(a) = &admin {
        tracing::info!("admin API on http://{}", a.addr);
    }
    let stop_admin = |admin: Option<admin::Admin>| async move {
        if let Some(a) = admin {
            a.stop().await;
        }
        if let Some(p) = addr_file {
            let _ = std::fs::remove_file(p);
        }
    };
    if let Err(e) = daemon.start().await {
        eprintln!("error: {e}");
        stop_admin(admin).await;
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
    stop_admin(admin).await;
    drop(notifier);
    daemon.shutdown().await;
    observer.abort();
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
