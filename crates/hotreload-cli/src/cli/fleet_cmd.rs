//! `hotreload fleet`: nodes × components, read from etcd.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use hotreload::daemon::Manifest;
use hotreload::fleet::{AckState, NodeView, Survey, survey};
use serde::Serialize;

/// `hotreload fleet`.
#[derive(Debug, clap::Args)]
pub(crate) struct FleetArgs {
    /// The manifest (its `[source.etcd]` and its components' keys).
    manifest: PathBuf,
    /// One JSON object (one per line with `--watch`).
    #[arg(long)]
    json: bool,
    /// Print the view again whenever the fleet changes (Ctrl-C stops).
    #[arg(long)]
    watch: bool,
    /// Remove a node that is gone for good (it no longer shows as silent).
    /// A live node is refused.
    #[arg(long, value_name = "NODE")]
    forget: Vec<String>,
}

/// One node's standing for one component.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cell {
    node: String,
    component: String,
    /// `current`, `behind`, `held`, `refused`, `restart_required`,
    /// `silent`, `stopped`, `unreported`.
    standing: &'static str,
    canary: bool,
    running_revision: Option<i64>,
    detail: String,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct View<'a> {
    revision: i64,
    /// Every live node runs every component's latest revision.
    converged: bool,
    /// Rollouts a canary stopped, in words.
    stopped: Vec<String>,
    cells: Vec<Cell>,
    survey: &'a Survey,
}

fn cell(view: &NodeView, component: &str, latest: Option<i64>) -> Cell {
    let canary = view.record.as_ref().is_some_and(|r| r.canary);
    let mut cell = Cell {
        node: view.node.clone(),
        component: component.to_owned(),
        standing: "unreported",
        canary,
        running_revision: None,
        detail: "no report yet".into(),
    };
    if !view.live {
        match view.record.as_ref().and_then(|r| r.stopped.clone()) {
            Some(at) => {
                cell.standing = "stopped";
                cell.detail = format!("stopped cleanly at {at}");
            }
            None => {
                cell.standing = "silent";
                cell.detail = format!(
                    "silent: its lease expired (it started {})",
                    view.record.as_ref().map_or("?", |r| r.started.as_str())
                );
            }
        }
        return cell;
    }
    let Some(s) = view.statuses.get(component) else {
        return cell;
    };
    cell.running_revision = s.running_revision;
    let runs = match s.running_revision {
        Some(r) => format!("runs r{r} (v{})", s.version),
        None => format!("runs v{} (not from etcd)", s.version),
    };
    let why = match (&s.error, &s.field) {
        (Some(e), Some(f)) => format!(": {e} (at {f})"),
        (Some(e), None) => format!(": {e}"),
        _ => String::new(),
    };
    if let Some(l) = latest {
        if s.refused(l) {
            cell.standing = "refused";
            let verb = match s.state {
                AckState::RolledBack => "rolled back",
                AckState::Degraded => "degraded by",
                _ => "rejected",
            };
            cell.detail = format!("{verb} r{l}{why}; {runs}");
            return cell;
        }
        if s.running_revision.is_some_and(|r| r >= l) {
            cell.standing = "current";
            cell.detail = runs;
            return cell;
        }
        if s.state == AckState::RestartRequired && s.tried_revision.is_some_and(|t| t >= l) {
            cell.standing = "restart_required";
            cell.detail = format!("r{l} waits for a restart; {runs}");
            return cell;
        }
    }
    match &s.held {
        Some(h) => {
            cell.standing = "held";
            cell.detail = format!("{}; {runs}", h.reason);
        }
        None => {
            cell.standing = "behind";
            cell.detail = match latest {
                Some(l) => format!("behind r{l}; {runs}"),
                None => format!("the key is gone; {runs}"),
            };
        }
    }
    cell
}

/// The cells of a survey, and the rollouts canaries stopped.
pub(crate) fn cells(survey: &Survey) -> (Vec<Cell>, Vec<String>) {
    let mut cells = Vec::new();
    let mut stopped = Vec::new();
    for (component, latest) in &survey.latest {
        for view in survey.nodes.values() {
            let runs = view
                .record
                .as_ref()
                .is_none_or(|r| r.components.iter().any(|c| c == component));
            if !runs {
                continue;
            }
            let c = cell(view, component, latest.revision);
            if c.canary && c.standing == "refused" {
                stopped.push(format!(
                    "rollout of {component} r{} stopped: canary {} {}",
                    latest.revision.unwrap_or(0),
                    c.node,
                    c.detail
                ));
            }
            cells.push(c);
        }
    }
    (cells, stopped)
}

/// The view as text, and whether the fleet converged.
fn render(survey: &Survey, cells: &[Cell], stopped: &[String], prefix: &str) -> (String, bool) {
    let live = survey.nodes.values().filter(|n| n.live).count();
    let canaries = survey
        .nodes
        .values()
        .filter(|n| n.live && n.record.as_ref().is_some_and(|r| r.canary))
        .count();
    let mut out = format!(
        "fleet {prefix} at etcd revision {}: {} node(s), {live} live, {canaries} canary\n",
        survey.revision,
        survey.nodes.len()
    );
    let width = cells
        .iter()
        .map(|c| c.node.len() + 1)
        .max()
        .unwrap_or(4)
        .max(4);
    for (component, latest) in &survey.latest {
        let l = latest
            .revision
            .map_or_else(|| "(no value)".to_owned(), |r| format!("r{r}"));
        out.push_str(&format!(
            "\n{component}  (etcd:{}, latest {l})\n",
            latest.key
        ));
        for c in cells.iter().filter(|c| &c.component == component) {
            let name = if c.canary {
                format!("{}*", c.node)
            } else {
                c.node.clone()
            };
            out.push_str(&format!(
                "  {name:<width$}  {:<16}  {}\n",
                c.standing.to_uppercase(),
                c.detail
            ));
        }
    }
    for s in stopped {
        out.push_str(&format!("\n{s}\n"));
    }
    let converged = live > 0
        && stopped.is_empty()
        && cells
            .iter()
            .all(|c| matches!(c.standing, "current" | "stopped"));
    out.push_str(if live == 0 {
        "\nno live node reports under this prefix (is the prefix right?)\n"
    } else if converged {
        "\nconverged: every live node runs the latest revision (* canary)\n"
    } else {
        "\nnot converged (* canary); `--forget NODE` removes a node gone for good\n"
    });
    (out, converged)
}

/// Exit status: 0 converged; 1 a node is behind, held, refused, silent or
/// unreported; 2 the manifest or etcd cannot be read.
pub(crate) async fn run(args: FleetArgs) -> ExitCode {
    let manifest = match Manifest::load(&args.manifest) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(settings) = manifest.etcd.clone() else {
        eprintln!(
            "error: {}: no [source.etcd]: this manifest's configurations are not in etcd",
            manifest.path.display()
        );
        return ExitCode::from(2);
    };
    let components: Vec<(String, String)> = manifest
        .etcd_components()
        .map(|(d, k, _)| (d.name.clone(), k.to_owned()))
        .collect();
    let client = match hotreload::fleet::connect(&settings).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if !args.forget.is_empty() {
        let mut failed = false;
        for node in &args.forget {
            match hotreload::fleet::forget(&client, &settings.prefix, node).await {
                Ok(()) => println!("forgot {node}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
        }
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let mut watch = None;
    loop {
        let read = tokio::time::timeout(
            Duration::from_millis(settings.connect_timeout_ms.max(500)),
            survey(&client, &settings.prefix, &components),
        )
        .await;
        let survey = match read {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                eprintln!("error: etcd at {}: {e}", settings.endpoints.join(", "));
                return ExitCode::from(2);
            }
            Err(_) => {
                eprintln!(
                    "error: etcd at {}: no answer within {} ms",
                    settings.endpoints.join(", "),
                    settings.connect_timeout_ms.max(500)
                );
                return ExitCode::from(2);
            }
        };
        let (cells, stopped) = cells(&survey);
        let (text, converged) = render(&survey, &cells, &stopped, &settings.prefix);
        let printed = if args.json {
            let view = View {
                revision: survey.revision,
                converged,
                stopped,
                cells,
                survey: &survey,
            };
            super::emit(&serde_json::to_string(&view).unwrap_or_default())
        } else if args.watch {
            super::emit(&format!("{text}{}", "-".repeat(60)))
        } else {
            super::emit(text.trim_end())
        };
        if !printed {
            // Whoever read it is gone (`| head`).
            return ExitCode::SUCCESS;
        }
        if !args.watch {
            return if converged {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        // Wait for the next change under the prefix (or a minute, so that a
        // lease that ran out shows).
        if watch.is_none() {
            watch = hotreload::fleet::watch_prefix(&client, &settings.prefix, survey.revision + 1)
                .await
                .ok();
        }
        let changed = async {
            match watch.as_mut() {
                Some(w) => w.message().await.ok().flatten().is_some(),
                None => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    true
                }
            }
        };
        tokio::select! {
            ok = changed => {
                if !ok {
                    watch = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
        // Let a burst of writes settle.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
