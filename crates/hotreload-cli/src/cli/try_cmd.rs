//! `hotreload try`: what the host would do with a handler and two configurations.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hotreload::sources::{Change, Format, Origin, Payload, config_of, read_regular};
use hotreload::{ComponentSpec, Error, Outcome, Runtime, Settings};

#[derive(Debug, Args)]
pub(crate) struct TryArgs {
    /// The handler component (`.wasm`).
    handler: PathBuf,
    /// The configuration in force before (a JSON, TOML or YAML file, by
    /// its extension).
    #[arg(long)]
    old: PathBuf,
    /// The configuration to reload to (JSON, TOML or YAML).
    #[arg(long)]
    new: PathBuf,
    /// Fuel per handler call.
    #[arg(long)]
    fuel: Option<u64>,
    /// Deadline of every handler call, in milliseconds (sets both the
    /// validation and the reload timeout).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Memory per instance, in MiB.
    #[arg(long)]
    memory_mib: Option<u64>,
}

pub(crate) async fn run(args: TryArgs) -> ExitCode {
    let mut settings = Settings {
        cache_dir: super::user_cache_dir(),
        ..Settings::default()
    };
    if let Some(fuel) = args.fuel {
        settings.fuel = fuel;
    }
    if let Some(ms) = args.timeout_ms {
        settings.validation_timeout_ms = ms;
        settings.reload_timeout_ms = ms;
    }
    if let Some(mib) = args.memory_mib {
        settings.memory_mib = mib;
    }
    // Both files in the format their extension names, as the daemon reads them.
    // Regular files only, never past the configuration size limit: a FIFO
    // or /dev/zero is refused, not waited on or read forever.
    let limit = settings.output_limit_bytes;
    let (old, new) = match (
        read_regular(&args.old, limit),
        read_regular(&args.new, limit),
    ) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let old = match config_of(&args.old, old) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match Runtime::new(settings) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let spec = ComponentSpec::new("try", args.handler.clone(), old)
        .config_path(args.old.display().to_string());
    let event = match runtime.add_component(spec).await {
        Ok(_) => {
            let change = Change {
                component: "try".into(),
                origin: Origin::File(args.new.clone()),
                payload: Payload::Config {
                    bytes: new,
                    format: Format::of(&args.new),
                },
            };
            match runtime.apply(change).await {
                Ok(event) => event,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        Err(Error::InitialLoad { event, .. }) => {
            eprintln!("the old configuration was not accepted, so there is nothing to reload from");
            event
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.shutdown().await;
    match serde_json::to_string_pretty(&*event) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("error: cannot print the event: {e}");
            return ExitCode::from(2);
        }
    }
    eprintln!("{}", event.summary());
    match event.outcome {
        Outcome::Applied | Outcome::Unchanged => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}
