//! `hotreload history`: the revision store of a manifest's state directory,
//! read-only (it works while the daemon runs).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use hotreload::daemon::Manifest;
use hotreload::state::{Revision, Revisions};
use hotreload::{Change, ChangeOp, Redactor, diff};
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub(crate) struct HistoryArgs {
    /// The manifest (TOML); its `state_dir` holds the history.
    manifest: PathBuf,
    /// One component (default: every component).
    component: Option<String>,
    /// Print JSON: an array of revisions, each with its `changes` from the
    /// version before it.
    #[arg(long)]
    json: bool,
    /// The changes between two versions of COMPONENT, configuration and
    /// handler.
    #[arg(long, num_args = 2, value_names = ["N", "M"])]
    diff: Option<Vec<u64>>,
    /// At most this many revisions per component, newest first.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

pub(crate) fn run(args: HistoryArgs) -> ExitCode {
    let manifest = match Manifest::load(&args.manifest) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let Some(dir) = manifest.settings.state_dir.clone() else {
        return fail("the manifest has no state_dir");
    };
    // History keeps the exact text (rollback and replay need it); what is
    // shown hides secrets as events do.
    let redact = Redactor::new(&manifest.settings.redact_keys);
    let store = match Revisions::open_read_only(&dir) {
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!(
                "no revisions recorded yet in {} (the daemon has not committed anything)",
                dir.display()
            );
            if args.json {
                println!("[]");
            }
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(e),
    };
    if let Some(versions) = &args.diff {
        let Some(component) = &args.component else {
            return fail("--diff needs a COMPONENT");
        };
        return show_diff(
            &store,
            &redact,
            component,
            versions[0],
            versions[1],
            args.json,
        );
    }
    let components = match &args.component {
        Some(c) => vec![c.clone()],
        None => match store.components() {
            Ok(c) => c,
            Err(e) => return fail(e),
        },
    };
    let mut out = Vec::new();
    for component in &components {
        // One more than shown, for the oldest shown revision's changes.
        let revisions = match store.history(component, args.limit.saturating_add(1)) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        if revisions.is_empty() && args.component.is_some() {
            return fail(format!(
                "component {component:?} has no revisions in {}",
                store.path().display()
            ));
        }
        for (i, r) in revisions.iter().enumerate().take(args.limit) {
            let changes = revisions
                .get(i + 1)
                .map(|before| changes_between(&redact, before, r));
            let mut shown = r.clone();
            shown.config = redact.text(&r.config);
            shown.effective = (*redact.value(&std::sync::Arc::new(r.effective.clone()))).clone();
            out.push((shown, changes));
        }
    }
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        let list: Vec<Value> = out
            .into_iter()
            .map(|(r, changes)| {
                let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
                v["changes"] = json!(changes);
                v
            })
            .collect();
        writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        )
    } else {
        print_table(&mut stdout, &out)
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn config_value(r: &Revision) -> Value {
    serde_json::from_str(&r.config).unwrap_or(Value::String(r.config.clone()))
}

fn changes_between(redact: &Redactor, before: &Revision, after: &Revision) -> Vec<Change> {
    diff(&config_value(before), &config_value(after))
        .into_iter()
        .map(|c| redact.change(c))
        .collect()
}

/// One line: `~/level, +/format` (at most a few paths, then a count).
fn summary(changes: &Option<Vec<Change>>, handler_changed: bool) -> String {
    let Some(changes) = changes else {
        return "(first kept)".into();
    };
    let mut parts: Vec<String> = changes
        .iter()
        .take(4)
        .map(|c| {
            let sign = match c.op {
                ChangeOp::Added => '+',
                ChangeOp::Removed => '-',
                ChangeOp::Changed => '~',
            };
            let path = if c.path.is_empty() { "/" } else { &c.path };
            format!("{sign}{path}")
        })
        .collect();
    if changes.len() > 4 {
        parts.push(format!("{} more", changes.len() - 4));
    }
    if handler_changed {
        parts.insert(0, "handler".into());
    }
    if parts.is_empty() {
        "no change".into()
    } else {
        parts.join(", ")
    }
}

fn print_table(
    out: &mut impl Write,
    rows: &[(Revision, Option<Vec<Change>>)],
) -> std::io::Result<()> {
    let lines: Vec<[String; 6]> = rows
        .iter()
        .enumerate()
        .map(|(i, (r, changes))| {
            let handler_changed = rows.get(i + 1).is_some_and(|(b, _)| {
                b.component == r.component && b.handler_hash != r.handler_hash
            });
            [
                r.component.clone(),
                r.version.to_string(),
                r.timestamp.clone(),
                // An imported record's hash is whatever it said: cut by
                // characters, never inside one.
                r.handler_hash.chars().take(12).collect(),
                r.source.label(),
                summary(changes, handler_changed),
            ]
        })
        .collect();
    let header = [
        "COMPONENT",
        "VERSION",
        "WHEN",
        "HANDLER",
        "SOURCE",
        "CHANGES",
    ]
    .map(String::from);
    let mut width = header.clone().map(|h| h.chars().count());
    for line in &lines {
        for (w, cell) in width.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for line in std::iter::once(&header).chain(&lines) {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i + 1 == line.len() {
                text.push_str(cell);
            } else if i == 1 {
                text.push_str(&format!("{cell:>w$}  ", w = width[i]));
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = width[i]));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

fn show_diff(
    store: &Revisions,
    redact: &Redactor,
    component: &str,
    n: u64,
    m: u64,
    json: bool,
) -> ExitCode {
    let get = |v: u64| match store.get(component, v) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(fail(format!(
            "component {component:?} has no version {v} in {}",
            store.path().display()
        ))),
        Err(e) => Err(fail(e)),
    };
    let (a, b) = match (get(n), get(m)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let changes = changes_between(redact, &a, &b);
    let handler = (a.handler_hash != b.handler_hash).then_some((&a.handler_hash, &b.handler_hash));
    if json {
        println!(
            "{}",
            json!({
                "component": component,
                "from": n,
                "to": m,
                "handler": handler.map(|(x, y)| json!({"from": x, "to": y})),
                "changes": changes,
            })
        );
        return ExitCode::SUCCESS;
    }
    println!("{component}: version {n} → {m}");
    if let Some((x, y)) = handler {
        println!("handler  {x} → {y}");
    }
    if changes.is_empty() {
        println!("the configurations are the same");
    }
    let show = |v: &Option<Value>| v.as_ref().map_or(String::new(), |v| v.to_string());
    for c in &changes {
        let path = if c.path.is_empty() { "/" } else { &c.path };
        match c.op {
            ChangeOp::Added => println!("+ {path}: {}", show(&c.new)),
            ChangeOp::Removed => println!("- {path}: {}", show(&c.old)),
            ChangeOp::Changed => println!("~ {path}: {} → {}", show(&c.old), show(&c.new)),
        }
    }
    ExitCode::SUCCESS
}
