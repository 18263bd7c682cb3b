//! Clients of a running daemon's admin API: `status`, `apply`, `rollback`,
//! `events`. They read the admin address and token from the manifest (and
//! the address a daemon listening on port 0 wrote to its state directory).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use hotreload::daemon::Manifest;
use hotreload::sources::Format;
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::daemon_cmd::ADMIN_ADDR_FILE;
use crate::admin::client::{Answer, Client};

/// Which daemon: the one a manifest describes.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// The daemon's manifest: its `[admin]` says where the API listens
    /// and which token it wants.
    #[arg(short, long, default_value = "hotreload.toml")]
    manifest: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// Print the API's JSON as it is.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    /// The component.
    component: String,
    /// The new configuration (JSON, TOML or YAML, by its extension).
    file: PathBuf,
    /// Only say what would happen (a shadow dry run): nothing is applied.
    #[arg(long)]
    dry_run: bool,
    /// Apply only if this version is still the one in force (If-Match).
    #[arg(long, value_name = "N")]
    if_version: Option<u64>,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RollbackArgs {
    /// The component.
    component: String,
    /// The version whose configuration (and handler) to bring back, as a
    /// new version.
    #[arg(long, value_name = "N")]
    to: u64,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub(crate) struct EventsArgs {
    /// Keep printing events as they are recorded, until interrupted.
    #[arg(short, long)]
    follow: bool,
    /// Start after this event id (default: every event still kept).
    #[arg(long, default_value_t = 0)]
    since: u64,
    #[command(flatten)]
    target: Target,
}

/// The API's address and token, from the manifest.
fn client_of(manifest: &Path) -> Result<Client, String> {
    let m = Manifest::load(manifest).map_err(|e| e.to_string())?;
    let Some(mut addr) = m.admin.address()? else {
        return Err(format!(
            "{}: the admin API is off ([admin] listen = \"off\")",
            manifest.display()
        ));
    };
    if addr.port() == 0 {
        let dir = m.settings.state_dir.clone().unwrap_or_default();
        let file = dir.join(ADMIN_ADDR_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            format!(
                "{}: the manifest says port 0 and {} cannot be read ({e}): is the daemon running?",
                manifest.display(),
                file.display()
            )
        })?;
        addr = text
            .trim()
            .parse()
            .map_err(|_| format!("{}: not an address: {:?}", file.display(), text.trim()))?;
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let token = match &m.admin.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("[admin] token_file {}: {e}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    Ok(Client::new(format!("http://{addr}"), token))
}

const TIMEOUT: Duration = Duration::from_secs(120);

/// The API's error, or the status line.
fn error_of(a: &Answer) -> String {
    match a.json() {
        Value::Object(o) if o.contains_key("error") => {
            let mut s = o["error"].as_str().unwrap_or_default().to_owned();
            if let Some(f) = o.get("field").and_then(Value::as_str) {
                s.push_str(&format!(" (field {f})"));
            }
            s
        }
        other => format!("{}: {other}", a.status),
    }
}

fn fail(e: String) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

pub(crate) async fn status(args: StatusArgs) -> ExitCode {
    let client = match client_of(&args.target.manifest) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let answer = match client
        .send(Method::GET, "/v1/components", None, &[], TIMEOUT)
        .await
    {
        Ok(a) if a.status == StatusCode::OK => a,
        Ok(a) => return fail(error_of(&a)),
        Err(e) => return fail(e),
    };
    let body = answer.json();
    if args.json {
        println!("{body:#}");
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<24} {:>7}  {:<8} {:<9} {:<40} LAST EVENT",
        "COMPONENT", "VERSION", "SUPPORT", "STATE", "SOURCE"
    );
    for c in body["components"].as_array().into_iter().flatten() {
        let source = c["source"]["kind"].as_str().unwrap_or("-").to_owned()
            + &c["source"]["path"]
                .as_str()
                .map(|p| format!(" {p}"))
                .unwrap_or_default()
            + &c["source"]["from_version"]
                .as_u64()
                .map(|v| format!(" of v{v}"))
                .unwrap_or_default();
        let state = if c["degraded"].as_bool() == Some(true) {
            "degraded"
        } else if !c["pending"].is_null() {
            "pending"
        } else {
            "ok"
        };
        let last = &c["last_event"];
        let last = match last["outcome"].as_str() {
            Some(outcome) => format!(
                "#{} {} {}{}",
                last["id"],
                last["kind"].as_str().unwrap_or(""),
                outcome,
                last["error"]["message"]
                    .as_str()
                    .map(|m| format!(": {}", m.lines().next().unwrap_or("")))
                    .unwrap_or_default()
            ),
            None => "-".into(),
        };
        println!(
            "{:<24} {:>7}  {:<8} {:<9} {:<40} {}",
            c["name"].as_str().unwrap_or(""),
            c["version"],
            c["support_level"].as_str().unwrap_or("-"),
            state,
            source,
            last
        );
    }
    for src in body["sources"].as_array().into_iter().flatten() {
        let endpoints: Vec<&str> = src["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "\nsource {} ({}): {}, revision {}",
            src["source"].as_str().unwrap_or("?"),
            endpoints.join(", "),
            if src["connected"] == true {
                "connected".to_owned()
            } else {
                format!(
                    "DISCONNECTED ({}); serving the configurations in force",
                    src["error"].as_str().unwrap_or("no answer")
                )
            },
            src["revision"]
        );
    }
    ExitCode::SUCCESS
}

/// Prints an event answer; 0 when it applied (or would), 1 otherwise.
fn report(a: &Answer) -> ExitCode {
    let body = a.json();
    if body.get("outcome").is_some() {
        println!("{}", serde_json::to_string(&body).unwrap_or_default());
    } else {
        eprintln!("error: {}", error_of(a));
    }
    match a.status {
        StatusCode::OK => ExitCode::SUCCESS,
        // The transaction ran and did not apply, or the version moved on.
        _ if body.get("outcome").is_some() || a.status == StatusCode::PRECONDITION_FAILED => {
            ExitCode::FAILURE
        }
        _ => ExitCode::from(2),
    }
}

pub(crate) async fn apply(args: ApplyArgs) -> ExitCode {
    let client = match client_of(&args.target.manifest) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let bytes = match hotreload::sources::read_regular(&args.file, 64 << 20) {
        Ok(b) => b,
        Err(e) => return fail(format!("{}: {e}", args.file.display())),
    };
    let content_type = match Format::of(&args.file) {
        Format::Json => "application/json",
        Format::Toml => "application/toml",
        Format::Yaml => "application/yaml",
    };
    let path = format!(
        "/v1/components/{}/config{}",
        args.component,
        if args.dry_run { "?dry_run=true" } else { "" }
    );
    let if_match = args.if_version.map(|v| format!("\"{v}\""));
    let headers: Vec<(&str, &str)> = if_match.iter().map(|v| ("if-match", v.as_str())).collect();
    match client
        .send(
            Method::PUT,
            &path,
            Some((content_type, bytes)),
            &headers,
            TIMEOUT,
        )
        .await
    {
        Ok(a) => report(&a),
        Err(e) => fail(e),
    }
}

pub(crate) async fn rollback(args: RollbackArgs) -> ExitCode {
    let client = match client_of(&args.target.manifest) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let body = serde_json::json!({ "to_version": args.to }).to_string();
    let path = format!("/v1/components/{}/rollback", args.component);
    match client
        .send(
            Method::POST,
            &path,
            Some(("application/json", body.into_bytes())),
            &[],
            TIMEOUT,
        )
        .await
    {
        Ok(a) => report(&a),
        Err(e) => fail(e),
    }
}

/// One JSON event per line; with `--follow`, long polls until interrupted.
/// A daemon that goes away ends it with status 2.
pub(crate) async fn events(args: EventsArgs) -> ExitCode {
    let client = match client_of(&args.target.manifest) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut since = args.since;
    loop {
        let wait = if args.follow { "&wait=30s" } else { "" };
        let path = format!("/v1/events?since={since}{wait}");
        let answer = match client.send(Method::GET, &path, None, &[], TIMEOUT).await {
            Ok(a) if a.status == StatusCode::OK => a,
            Ok(a) => return fail(error_of(&a)),
            Err(e) => return fail(e),
        };
        let body = answer.json();
        for gap in body["missed"].as_array().into_iter().flatten() {
            eprintln!(
                "warning: events {} to {} left the daemon's ring before they were read",
                gap[0], gap[1]
            );
        }
        for e in body["events"].as_array().into_iter().flatten() {
            if !super::emit(&serde_json::to_string(e).unwrap_or_default()) {
                return ExitCode::SUCCESS;
            }
        }
        since = body["last_id"].as_u64().unwrap_or(since);
        if !args.follow {
            return ExitCode::SUCCESS;
        }
    }
}
