//! Load: 50 components reloading in parallel, each from its own file.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::daemon::start_in;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_components_each_end_on_their_last_content() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..50).map(|i| format!("c{i:02}")).collect();
    let files: Vec<String> = names.iter().map(|n| format!("{n}.json")).collect();
    let specs: Vec<(&str, &str, &str, &str)> = names
        .iter()
        .zip(&files)
        .map(|(n, f)| {
            (
                n.as_str(),
                "bundled:logging",
                f.as_str(),
                r#"{"level":"info"}"#,
            )
        })
        .collect();
    let mut s = start_in(dir, &specs).await.unwrap();
    let root = s.dir.path().to_owned();
    // Each file gets 20 atomic writes from its own thread, for at most ~2 s.
    let started = Instant::now();
    let writers: Vec<_> = files
        .iter()
        .cloned()
        .map(|f| {
            let path = root.join(f);
            std::thread::spawn(move || {
                for i in 0..20 {
                    let level = ["trace", "debug", "warn", "error"][i % 4];
                    let text = json!({"level": level, "fields": {"i": i.to_string()}}).to_string();
                    let tmp = path.with_extension(format!("{i}.tmp"));
                    std::fs::write(&tmp, text).unwrap();
                    std::fs::rename(&tmp, &path).unwrap();
                    std::thread::sleep(Duration::from_millis(5 + (i as u64 * 7) % 11));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = names.iter().all(|n| s.current(n)["fields"]["i"] == "19");
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all components reached their last content"
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), s.events.recv()).await;
    }
    for n in &names {
        assert_eq!(s.current(n)["level"], "error", "{n}");
    }
    let stats = s.daemon.runtime().stats();
    eprintln!(
        "50 components × 20 writes in {:?}: {} events, {} applied, p50 {} µs, p99 {} µs",
        started.elapsed(),
        stats.total,
        stats
            .by_outcome
            .get(&hotreload::Outcome::Applied)
            .copied()
            .unwrap_or(0),
        stats.p50_us,
        stats.p99_us
    );
    assert!(stats.success_rate > 0.99, "{stats:?}");
}
