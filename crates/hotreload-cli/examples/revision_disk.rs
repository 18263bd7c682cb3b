//! Disk use of the revision store over many reloads: N reloads (default
//! 100,000) of one component alternating between two 1 KiB configurations,
//! with the default retention (100 revisions), printing the database's size
//! (with its write-ahead log) every tenth of the way.
//!
//! `cargo run --release -p hotreload-cli --example revision_disk -- 100000`

use std::time::Instant;

use hotreload::Settings;
use hotreload_cli::bench::{self, Alternating};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a number of reloads"))
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings {
        state_dir: Some(dir.path().to_owned()),
        ..Settings::default()
    };
    let mut reloads = Alternating::new(bench::runtime_with_logging(settings, &rt));
    let runtime = reloads.runtime().clone();
    let store = runtime.revisions().expect("a store");
    println!("reloads  revisions_kept  database_bytes  seconds");
    let started = Instant::now();
    for i in 1..=n {
        reloads.step();
        if i % (n / 10).max(1) == 0 {
            let kept = rt
                .block_on(runtime.history("logging", usize::MAX))
                .expect("history")
                .len();
            println!(
                "{i:>7}  {kept:>14}  {:>14}  {:>7.1}",
                store.disk_bytes(),
                started.elapsed().as_secs_f64()
            );
        }
    }
}
