//! The compiled-code cache under the state directory.

use std::path::{Path, PathBuf};

use hotreload::{ComponentSpec, Runtime, Settings};

fn runtime(state: &Path) -> Runtime {
    Runtime::new(Settings {
        state_dir: Some(state.to_owned()),
        ..crate::settings()
    })
    .unwrap()
}

fn cache_files(state: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(state.join("compiled"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

async fn load(state: &Path) {
    let rt = runtime(state);
    let e = rt
        .add_component(ComponentSpec::new(
            "logging",
            hotreload_handlers::LOGGING,
            "{}",
        ))
        .await
        .unwrap();
    assert_eq!(e.outcome, hotreload::Outcome::Applied);
    assert_eq!(
        rt.reload("logging", r#"{"level":"warn"}"#)
            .await
            .unwrap()
            .outcome,
        hotreload::Outcome::Applied
    );
}

#[tokio::test]
async fn a_restart_loads_the_compiled_handler_from_the_cache() {
    let state = tempfile::tempdir().unwrap();
    load(state.path()).await;
    let files = cache_files(state.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with(
            &hotreload::Probe::new(
                hotreload_handlers::LOGGING,
                Default::default(),
                Default::default()
            )
            .unwrap()
            .handler_hash()
            .to_owned()
        )
    );
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::metadata(&files[0]).unwrap();
    let bytes = std::fs::read(&files[0]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    load(state.path()).await;
    // A hit is read, not rewritten (a rewrite is a rename of a new inode),
    // and marked as recently used for the size bound's eviction.
    let after = std::fs::metadata(&files[0]).unwrap();
    assert_eq!(after.ino(), before.ino());
    assert!(after.modified().unwrap() > before.modified().unwrap());
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);
    assert_eq!(cache_files(state.path()), files);
}

#[tokio::test]
async fn a_corrupt_entry_is_detected_and_rebuilt() {
    let state = tempfile::tempdir().unwrap();
    load(state.path()).await;
    let file = cache_files(state.path()).remove(0);
    let good = std::fs::read(&file).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0xff;
    std::fs::write(&file, &bad).unwrap();
    load(state.path()).await;
    assert_eq!(
        std::fs::read(&file).unwrap(),
        good,
        "rebuilt to the same artifact"
    );
    // Truncated (a crash mid-write that somehow got renamed) and empty files too.
    std::fs::write(&file, &good[..good.len() / 3]).unwrap();
    load(state.path()).await;
    assert_eq!(std::fs::read(&file).unwrap(), good);
    std::fs::write(&file, b"").unwrap();
    load(state.path()).await;
    assert_eq!(std::fs::read(&file).unwrap(), good);
}

#[tokio::test]
async fn an_entry_with_a_valid_checksum_but_foreign_content_is_rebuilt() {
    use sha2::Digest;
    let state = tempfile::tempdir().unwrap();
    load(state.path()).await;
    let file = cache_files(state.path()).remove(0);
    let good = std::fs::read(&file).unwrap();
    // Not this engine's artifact (say, another wasmtime's): wasmtime's own
    // header check refuses it and the cache rebuilds.
    let foreign = b"\x7fELF not a wasmtime artifact".to_vec();
    let mut entry = sha2::Sha256::digest(&foreign).to_vec();
    entry.extend_from_slice(&foreign);
    std::fs::write(&file, entry).unwrap();
    load(state.path()).await;
    assert_eq!(std::fs::read(&file).unwrap(), good);
}

#[tokio::test]
async fn an_unwritable_cache_only_costs_a_compile() {
    let state = tempfile::tempdir().unwrap();
    // `compiled` is a file, so the cache directory cannot be created.
    std::fs::write(state.path().join("compiled"), "in the way").unwrap();
    load(state.path()).await;
    load(state.path()).await;
}
