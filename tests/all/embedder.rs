//! An embedder's crate, outside this workspace, that depends on the library
//! by path with default features: it must build without the CLI (no clap,
//! no bundled handlers, no wasm target) and reload a handler from a file.

use std::path::Path;
use std::process::Command;

const MAIN: &str = r##"
use hotreload::{ComponentSpec, Outcome, Runtime, Settings};
use serde::Deserialize;

#[derive(Deserialize)]
struct Logging {
    level: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wasm = std::path::PathBuf::from(std::env::args().nth(1).ok_or("handler path")?);
    let runtime = Runtime::new(Settings::default())?;
    runtime
        .add_component(ComponentSpec::new("logging", wasm, r#"{"level": "info"}"#))
        .await?;
    let mut logging = runtime.subscribe::<Logging>("logging")?;
    println!("before={}", logging.borrow_and_update().level);
    let event = runtime.reload("logging", r#"{"level": "debug"}"#).await?;
    assert_eq!(event.outcome, Outcome::Applied);
    logging.changed().await?;
    println!("after={}", logging.borrow_and_update().level);
    runtime.shutdown().await;
    Ok(())
}
"##;

#[test]
fn an_embedder_outside_the_workspace_builds_and_reloads() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir()?;
    let krate = dir.path().join("embedder");
    std::fs::create_dir_all(krate.join("src"))?;
    // The same dependency versions and profile as this workspace, and its
    // target directory, so the dependencies are not compiled a second time.
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock"))?;
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            r#"[package]
name = "embedder"
version = "0.1.0"
edition = "2024"

[dependencies]
hotreload = {{ package = "hotreload-wasm", path = {root:?} }}
tokio = {{ version = "1", features = ["rt-multi-thread", "macros", "sync"] }}
serde = {{ version = "1", features = ["derive"] }}

[workspace]

[profile.dev.package."*"]
opt-level = 2
debug = false
"#,
            root = root.display().to_string()
        ),
    )?;
    std::fs::write(krate.join("src/main.rs"), MAIN)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("embedder");
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--offline", "--"])
        .arg(hotreload_handlers::LOGGING_PATH)
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the embedder failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["before=info", "after=debug"]
    );

    // What the embedder got: the library and its runtime dependencies, none
    // of the command line's.
    let lock = std::fs::read_to_string(krate.join("Cargo.lock"))?;
    for unwanted in [
        "clap",
        "hotreload-handlers",
        "hotreload-cli",
        "tracing-subscriber",
        "criterion",
    ] {
        assert!(
            !lock.contains(&format!("name = \"{unwanted}\"")),
            "the embedder's build pulled {unwanted}"
        );
    }
    assert!(lock.contains("name = \"hotreload-wasm\""));
    Ok(())
}
