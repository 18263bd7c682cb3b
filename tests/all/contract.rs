//! The project's WIT file is the frozen contract in `shared/`.

use std::path::Path;

#[test]
fn wit_matches_the_shared_contract() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/wit/handler.wit");
    let ours = std::fs::read(root.join("wit/handler.wit")).expect("wit/handler.wit");
    assert!(!ours.is_empty());
    match std::fs::read(&shared) {
        Ok(theirs) => assert!(
            ours == theirs,
            "wit/handler.wit differs from the shared contract"
        ),
        // Outside the development tree there is nothing to compare with.
        Err(_) => eprintln!("no shared/ beside the project; comparison skipped"),
    }
}
