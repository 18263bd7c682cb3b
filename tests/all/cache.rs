//! The compiled-code cache under the state directory.
//!
//! Whether a handler was compiled or loaded from the cache is read from the
//! runtime's log: a compile logs the handler's hash (at debug). Each test
//! compiles the logging handler under a hash of its own (the same code with
//! a custom section naming the test), so the compiles it counts are its own.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use hotreload::{ComponentSpec, Outcome, Runtime, Settings};
use sha2::{Digest, Sha256};
use tracing::Level;

use crate::logs;

/// The logging handler with a custom section holding `tag`, and its hash.
fn tagged_logging(tag: &str) -> (Vec<u8>, String) {
    let name = b"hotreload-test";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut wasm = hotreload_handlers::LOGGING.to_vec();
    wasm.push(0); // a custom section
    let mut len = payload.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            wasm.push(byte);
            break;
        }
        wasm.push(byte | 0x80);
    }
    wasm.extend_from_slice(&payload);
    let hash = format!("{:x}", Sha256::digest(&wasm));
    (wasm, hash)
}

/// How many times the handler of this hash was compiled so far.
fn compiles(hash: &str) -> usize {
    logs::lines(|l| l.field("handler") == Some(hash)).len()
}

/// The warnings naming this cache file so far.
fn warnings_about(file: &Path) -> Vec<String> {
    let file = file.display().to_string();
    logs::lines(|l| l.level == Level::WARN && l.field("cache") == Some(&file))
        .into_iter()
        .map(|l| l.field("message").unwrap_or_default().to_owned())
        .collect()
}

fn cache_files(state: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if let Ok(dir) = std::fs::read_dir(state.join("compiled")) {
        for entry in dir {
            files.push(entry?.path());
        }
    }
    files.sort();
    Ok(files)
}

/// A runtime on `state` loads the handler and reloads it once.
async fn load(state: &Path, wasm: &[u8], hash: &str) -> Result<()> {
    logs::capture();
    let rt = Runtime::new(Settings {
        state_dir: Some(state.to_owned()),
        ..crate::settings()
    })?;
    let e = rt
        .add_component(ComponentSpec::new("logging", wasm.to_vec(), "{}"))
        .await?;
    ensure!(e.outcome == Outcome::Applied, "{}", e.summary());
    let e = rt.reload("logging", r#"{"level":"warn"}"#).await?;
    ensure!(e.outcome == Outcome::Applied, "{}", e.summary());
    ensure!(rt.current("logging")?["level"] == "warn");
    let info = rt.components().await.remove(0);
    ensure!(info.handler_hash == hash, "{} != {hash}", info.handler_hash);
    rt.shutdown().await;
    Ok(())
}

/// The one cache entry of a state directory after a first load.
async fn first_load(state: &Path, wasm: &[u8], hash: &str) -> Result<PathBuf> {
    load(state, wasm, hash).await?;
    ensure!(compiles(hash) == 1, "compiled {} times", compiles(hash));
    let mut files = cache_files(state)?;
    ensure!(files.len() == 1, "{files:?}");
    let file = files.remove(0);
    let name = file.file_name().context("a file name")?.to_string_lossy();
    ensure!(name.starts_with(hash), "{name} is not named by {hash}");
    Ok(file)
}

#[tokio::test]
async fn a_restart_loads_the_compiled_handler_from_the_cache() -> Result<()> {
    let (wasm, hash) = tagged_logging("a_restart_loads_the_compiled_handler_from_the_cache");
    let state = tempfile::tempdir()?;
    let file = first_load(state.path(), &wasm, &hash).await?;
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::metadata(&file)?;
    let bytes = std::fs::read(&file)?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    // A second runtime on the same state directory: no compile, so the
    // handler it ran came from the cache, which was read, not rewritten.
    load(state.path(), &wasm, &hash).await?;
    assert_eq!(compiles(&hash), 1, "the second start compiled again");
    // (A rewrite would be a new inode; a hit marks the entry as recently
    // used for the size bound's eviction.)
    let after = std::fs::metadata(&file)?;
    assert_eq!(after.ino(), before.ino());
    assert!(after.modified()? > before.modified()?);
    assert_eq!(std::fs::read(&file)?, bytes);
    assert_eq!(warnings_about(&file), Vec::<String>::new());
    // The log does show compiles: one on a state directory without the entry.
    let elsewhere = tempfile::tempdir()?;
    load(elsewhere.path(), &wasm, &hash).await?;
    assert_eq!(compiles(&hash), 2);
    Ok(())
}

#[tokio::test]
async fn a_corrupt_entry_is_detected_and_rebuilt() -> Result<()> {
    let (wasm, hash) = tagged_logging("a_corrupt_entry_is_detected_and_rebuilt");
    let state = tempfile::tempdir()?;
    let file = first_load(state.path(), &wasm, &hash).await?;
    let good = std::fs::read(&file)?;
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    // One flipped byte; truncated (a crash mid-write that somehow got
    // renamed); empty. The checksum catches the first two, and says so.
    let damaged = [
        ("a flipped byte", flipped, true),
        ("truncated", good[..good.len() / 3].to_vec(), true),
        ("empty", Vec::new(), false),
    ];
    let mut warned = 0;
    for (i, (what, bad, says_so)) in damaged.into_iter().enumerate() {
        std::fs::write(&file, bad)?;
        load(state.path(), &wasm, &hash).await?;
        assert_eq!(compiles(&hash), 2 + i, "{what}: not recompiled");
        assert_eq!(std::fs::read(&file)?, good, "{what}: not rebuilt");
        if says_so {
            warned += 1;
            let warnings = warnings_about(&file);
            assert_eq!(warnings.len(), warned, "{what}: {warnings:?}");
            assert!(
                warnings[warned - 1].contains("corrupt"),
                "{what}: {warnings:?}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_entry_with_a_valid_checksum_but_foreign_content_is_rebuilt() -> Result<()> {
    let (wasm, hash) =
        tagged_logging("an_entry_with_a_valid_checksum_but_foreign_content_is_rebuilt");
    let state = tempfile::tempdir()?;
    let file = first_load(state.path(), &wasm, &hash).await?;
    let good = std::fs::read(&file)?;
    // Not this engine's artifact (say, another wasmtime's): wasmtime's own
    // header check refuses it and the cache rebuilds.
    let foreign = b"\x7fELF not a wasmtime artifact".to_vec();
    let mut entry = Sha256::digest(&foreign).to_vec();
    entry.extend_from_slice(&foreign);
    std::fs::write(&file, entry)?;
    load(state.path(), &wasm, &hash).await?;
    assert_eq!(compiles(&hash), 2);
    let warnings = warnings_about(&file);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("unusable"), "{warnings:?}");
    assert_eq!(std::fs::read(&file)?, good);
    Ok(())
}

#[tokio::test]
async fn an_unwritable_cache_only_costs_a_compile() -> Result<()> {
    let (wasm, hash) = tagged_logging("an_unwritable_cache_only_costs_a_compile");
    let state = tempfile::tempdir()?;
    // `compiled` is a file, so the cache directory cannot be created.
    std::fs::write(state.path().join("compiled"), "in the way")?;
    load(state.path(), &wasm, &hash).await?;
    load(state.path(), &wasm, &hash).await?;
    assert_eq!(compiles(&hash), 2, "each start compiles");
    assert_eq!(
        std::fs::read_to_string(state.path().join("compiled"))?,
        "in the way"
    );
    Ok(())
}
