//! Replays the fuzz corpus and the regressions the fuzzers found.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            run(&std::fs::read(&path).unwrap());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no corpus for {target}");
}

#[test]
fn config_file() {
    replay("config_file", hotreload::fuzzing::config_file);
}

#[test]
fn diff_pair() {
    replay("diff_pair", hotreload::fuzzing::diff_pair);
}

#[test]
fn manifest() {
    replay("manifest", hotreload::fuzzing::manifest);
}

#[test]
fn handler_output() {
    replay("handler_output", hotreload::fuzzing::handler_output);
}
