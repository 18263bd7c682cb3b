//! `hotreload replay`: runs a recorded event again and says whether it
//! comes out the same.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The state directory (a manifest's `state_dir`, `.hotreload` by default).
    state_dir: PathBuf,
    /// The event's id, as the daemon printed it (of its latest run).
    #[arg(required_unless_present = "event")]
    event_id: Option<u64>,
    /// An event as the daemon printed it (one JSON line): its id and time
    /// pick the record, and its outcome and cause are compared too.
    #[arg(long, conflicts_with = "event_id")]
    event: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn cannot(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: cannot replay: {message}");
    ExitCode::from(2)
}

pub(crate) fn run(args: ReplayArgs) -> ExitCode {
    let (id, timestamp, given) = match (&args.event_id, &args.event) {
        (Some(id), _) => (*id, None, None),
        (None, Some(file)) => {
            let text = match hotreload::sources::read_regular(file, 16 << 20) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => return cannot(format!("{}: {e}", file.display())),
            };
            let event: Value = match serde_json::from_str(text.trim()) {
                Ok(v) => v,
                Err(e) => return cannot(format!("{}: not an event: {e}", file.display())),
            };
            let Some(id) = event["id"].as_u64() else {
                return cannot(format!("{}: the event has no id", file.display()));
            };
            let ts = event["timestamp"].as_str().map(str::to_owned);
            (id, ts, Some(event))
        }
        (None, None) => return cannot("give an EVENT_ID or --event FILE"),
    };
    let mut report = match hotreload::replay::replay(&args.state_dir, id, timestamp.as_deref()) {
        Ok(r) => r,
        Err(e) => return cannot(e),
    };
    // An event given as a file must also say what the record says.
    if let Some(event) = &given {
        let replayed = serde_json::to_value(&*report.replayed).unwrap_or_default();
        for key in ["outcome", "cause"] {
            if event[key] != replayed[key] {
                report.differences.push(format!(
                    "{key}: {} in the file, {} now",
                    event[key], replayed[key]
                ));
            }
        }
    }
    let same = report.same();
    if args.json {
        println!(
            "{}",
            json!({
                "event_id": id,
                "component": report.recorded.component,
                "same": same,
                "differences": report.differences,
                "recorded": {"outcome": report.recorded.outcome, "cause": report.recorded.cause},
                "replayed": {"outcome": report.replayed.outcome, "cause": report.replayed.cause,
                             "fuel_consumed": report.replayed.fuel_consumed},
            })
        );
    } else {
        println!(
            "event {id} ({} {:?}): recorded {:?}{}, replayed {:?}{}",
            report.recorded.component,
            report.recorded.kind,
            report.recorded.outcome,
            report
                .recorded
                .cause
                .map(|c| format!(" ({c:?})"))
                .unwrap_or_default(),
            report.replayed.outcome,
            report
                .replayed
                .cause
                .map(|c| format!(" ({c:?})"))
                .unwrap_or_default(),
        );
        if same {
            println!("the same: outcome, cause and effective configuration");
        }
        for d in &report.differences {
            println!("differs: {d}");
        }
    }
    if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
