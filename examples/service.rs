//! A small tokio service that embeds the hotreload runtime and reads its
//! typed logging configuration live.
//!
//! The service's worker logs at whatever level is in force; meanwhile
//! "operators" push new configurations (here: a scripted list). Only the
//! ones the sandboxed handler accepts ever reach the worker.
//!
//! Run it with `cargo run --example service`.

use std::time::Duration;

use hotreload::{ComponentSpec, Runtime, Settings};
use serde::Deserialize;
use tokio::sync::watch;

/// The logging configuration as this service reads it (the handler's
/// effective configuration, with defaults filled in).
#[derive(Debug, Clone, Deserialize)]
struct Logging {
    level: String,
    format: String,
    outputs: Vec<Output>,
}

#[derive(Debug, Clone, Deserialize)]
struct Output {
    #[serde(rename = "type")]
    kind: String,
}

async fn worker(mut config: watch::Receiver<Logging>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if config.has_changed().unwrap_or(false) {
            let c = config.borrow_and_update().clone();
            let outputs: Vec<&str> = c.outputs.iter().map(|o| o.kind.as_str()).collect();
            println!(
                "[worker] now logging at {} as {} to {}",
                c.level,
                c.format,
                outputs.join(", ")
            );
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = Runtime::new(Settings::default())?;
    runtime
        .add_component(ComponentSpec::new(
            "logging",
            hotreload_handlers::LOGGING,
            r#"{"level": "info"}"#,
        ))
        .await?;
    let config = runtime.subscribe::<Logging>("logging")?;
    println!("[service] started with level {}", config.borrow().level);

    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(worker(config, stop_rx));

    let changes = [
        r#"{"level": "debug", "format": "json"}"#,
        r#"{"level": "verbose"}"#,
        r#"{"level": "warn", "outputs": [{"type": "stderr"}, {"type": "file", "path": "/var/log/app.log"}]}"#,
        r#"{"level": "warn", "outputs": [{"type": "file"}]}"#,
    ];
    for change in changes {
        tokio::time::sleep(Duration::from_millis(120)).await;
        let event = runtime.reload("logging", change).await?;
        println!("[operator] {change}\n           -> {}", event.summary());
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    let _ = stop_tx.send(true);
    worker.await?;

    let stats = runtime.stats();
    println!(
        "[service] {} events, success rate {:.0}%, p50 {} us",
        stats.total,
        stats.success_rate * 100.0,
        stats.p50_us
    );
    runtime.shutdown().await;
    Ok(())
}
