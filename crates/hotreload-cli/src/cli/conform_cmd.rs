//! `hotreload conform`: the conformance kit for handler authors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hotreload::ConfigInput;
use hotreload::sources::read_config_file;

#[derive(Debug, Args)]
pub(crate) struct ConformArgs {
    /// The handler component (`.wasm`).
    handler: PathBuf,
    /// A configuration the handler should accept (JSON, TOML or YAML);
    /// give two to check reloading from one to the other. Default: `{}`.
    #[arg(long = "config")]
    configs: Vec<PathBuf>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

/// Exit status: 0 when every check passes, 1 when one fails, 2 for a usage
/// error or a handler the host cannot load (the report still says why).
pub(crate) fn run(args: ConformArgs) -> ExitCode {
    let wasm = match std::fs::read(&args.handler) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {}: {e}", args.handler.display());
            return ExitCode::from(2);
        }
    };
    let mut configs = Vec::new();
    for path in &args.configs {
        match read_config_file(path) {
            Ok(ConfigInput::Json(text)) => configs.push(text),
            Ok(ConfigInput::Value(v)) => configs.push(v.to_string()),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let report = match hotreload::conform::conform_cached(&wasm, &configs, super::user_cache_dir())
    {
        Ok(r) => r,
        Err(e) => {
            if args.json {
                let out = serde_json::json!({"handler": args.handler, "passed": false, "error": e.to_string()});
                println!("{out}");
            } else {
                println!("FAIL  loads as a hotreload:handler/handler@0.1.0 component: {e}");
            }
            return ExitCode::from(2);
        }
    };
    if args.json {
        let out = serde_json::json!({
            "handler": args.handler,
            "passed": report.passed(),
            "report": report,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    } else {
        for c in &report.checks {
            println!(
                "{}  {}: {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        for note in &report.notes {
            println!("NOTE  {note}");
        }
        if report.loaded {
            if let Some(contract) = report.contract {
                println!(
                    "contract {}; compiled (or loaded from the cache) in {} µs; a fresh instance in {} µs",
                    contract.version(),
                    report.compile_micros,
                    report.instantiate_micros
                );
            }
            println!("phase        fuel (of limit)            time (of deadline)");
            for p in &report.phases {
                println!(
                    "{:<12} {:>10} ({:.4} %)   {:>8} µs ({:.2} %)",
                    p.phase,
                    p.fuel,
                    p.fuel as f64 * 100.0 / p.fuel_limit as f64,
                    p.micros,
                    p.micros as f64 * 100.0 / p.deadline_micros.max(1) as f64
                );
            }
            let failed = report.checks.iter().filter(|c| !c.passed).count();
            println!("{} passed, {failed} failed", report.checks.len() - failed);
        } else {
            println!("the host cannot load this handler; no other check ran");
        }
    }
    if !report.loaded {
        ExitCode::from(2)
    } else if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
