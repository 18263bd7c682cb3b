//! Reload latency (criterion). The same workloads as `hotreload bench`,
//! from `hotreload::bench`; see BENCHMARKS.md for what each one measures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hotreload::{SandboxOptions, Settings};
use hotreload_cli::bench::{self, Alternating, CONFIG_1K};

fn async_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

fn instance_and_calls(c: &mut Criterion) {
    let mut g = c.benchmark_group("handler");
    let mut probe = bench::warm_probe(SandboxOptions::default());
    g.bench_function("1_fresh_instance", |b| {
        b.iter(|| probe.instantiate().result.expect("instance"))
    });
    let mut probe = bench::warm_probe(SandboxOptions::default());
    g.bench_function("2_validate_warm", |b| {
        b.iter(|| probe.validate(black_box(CONFIG_1K)).result.expect("valid"))
    });
    g.bench_function("5_native_floor", |b| {
        b.iter(|| bench::native_validate_and_normalise(black_box(CONFIG_1K)).expect("valid"))
    });
    for (name, consume_fuel, epoch_interruption) in [
        ("6_validate_warm_fuel_only", true, false),
        ("6_validate_warm_epoch_only", false, true),
        ("6_validate_warm_neither", false, false),
    ] {
        let mut probe = bench::warm_probe(SandboxOptions {
            consume_fuel,
            epoch_interruption,
        });
        g.bench_function(name, |b| {
            b.iter(|| probe.validate(black_box(CONFIG_1K)).result.expect("valid"))
        });
    }
    g.finish();
}

fn transactions(c: &mut Criterion) {
    let rt = async_rt();
    let mut g = c.benchmark_group("transaction");
    let mut warm = Alternating::new(bench::runtime_with_logging(Settings::default(), &rt));
    g.bench_function("3_whole_warm", |b| b.iter(|| warm.step()));
    let mut fresh = Alternating::new(bench::runtime_with_logging(
        Settings {
            fresh_instance_per_reload: true,
            ..Settings::default()
        },
        &rt,
    ));
    g.bench_function("4_whole_fresh_instance", |b| b.iter(|| fresh.step()));
    let mut warm_v2 = Alternating::new(bench::runtime_with_logging_v2(Settings::default(), &rt));
    g.bench_function("3_whole_warm_contract_0_2", |b| b.iter(|| warm_v2.step()));
    let mut native = bench::NativeV2::new();
    g.bench_function("5_native_floor_contract_0_2", |b| b.iter(|| native.step()));
    g.finish();
}

fn limits(c: &mut Criterion) {
    let mut g = c.benchmark_group("spin_cut_off");
    g.sample_size(10);
    for ms in [10u64, 100] {
        let deadline = Duration::from_millis(ms);
        let mut probe = bench::spinning_probe(deadline);
        g.bench_function(format!("7_deadline_{ms}ms"), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    bench::spin_overshoot(&mut probe, deadline);
                }
                started.elapsed()
            })
        });
    }
    g.finish();
}

fn file_change(c: &mut Criterion) {
    let rt = async_rt();
    let mut g = c.benchmark_group("daemon");
    g.sample_size(20);
    let mut watched = bench::WatchedFile::start(&rt, Duration::from_millis(10));
    g.bench_function("8_file_change_to_applied_beyond_10ms_debounce", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| watched.change(&rt)).sum())
    });
    g.finish();
}

fn startup(c: &mut Criterion) {
    let rt = async_rt();
    let handlers = bench::distinct_handlers(20);
    let mut g = c.benchmark_group("startup_20_components");
    g.sample_size(10);
    g.bench_function("9_cold", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            bench::start_components(&handlers, Some(dir.path()), &rt)
        })
    });
    let dir = tempfile::tempdir().expect("tempdir");
    drop(bench::start_components(&handlers, Some(dir.path()), &rt));
    g.bench_function("9_with_cache", |b| {
        b.iter(|| bench::start_components(&handlers, Some(dir.path()), &rt))
    });
    g.finish();
}

/// What the revision store adds, batches, rollback and dry runs.
fn revisions(c: &mut Criterion) {
    let rt = async_rt();
    let mut g = c.benchmark_group("revisions");
    g.sample_size(30);
    // 10: a warm transaction with every commit written (synchronous=FULL),
    // against the same without a state directory (3_whole_warm).
    let mut plain = Alternating::new(bench::runtime_with_logging(Settings::default(), &rt));
    g.bench_function("10_warm_no_store", |b| b.iter(|| plain.step()));
    let dir = tempfile::tempdir().expect("tempdir");
    let stored = Settings {
        state_dir: Some(dir.path().to_owned()),
        ..Settings::default()
    };
    let mut kept = Alternating::new(bench::runtime_with_logging(stored.clone(), &rt));
    g.bench_function("10_warm_with_revision", |b| b.iter(|| kept.step()));
    // 12: rollback_to end to end, alternating between two versions.
    let runtime = kept.runtime().clone();
    let head = rt.block_on(runtime.history("logging", 1)).expect("history")[0].version;
    let mut back = [head - 1, head];
    g.bench_function("12_rollback_to", |b| {
        b.iter(|| {
            let e = rt
                .block_on(runtime.rollback_to("logging", back[0]))
                .expect("rollback");
            assert_eq!(e.outcome, hotreload::Outcome::Applied, "{}", e.summary());
            back.swap(0, 1);
            back[1] = e.version;
        })
    });
    // 13: a dry run against a real reload of the same change.
    let configs = [bench::config_1k_other(), CONFIG_1K.to_owned()];
    let mut i = 0;
    g.bench_function("13_dry_run", |b| {
        b.iter(|| {
            i ^= 1;
            let e = rt
                .block_on(plain.runtime().dry_run("logging", configs[i].clone()))
                .expect("dry run");
            assert!(
                matches!(
                    e.outcome,
                    hotreload::Outcome::Applied | hotreload::Outcome::Unchanged
                ),
                "{}",
                e.summary()
            );
        })
    });
    // 11: a batch of 10 components against 10 single reloads, stored.
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = hotreload::Runtime::new(Settings {
        state_dir: Some(dir.path().to_owned()),
        ..Settings::default()
    })
    .expect("runtime");
    let names: Vec<String> = (0..10).map(|n| format!("c{n}")).collect();
    for name in &names {
        rt.block_on(runtime.add_component(hotreload::ComponentSpec::new(
            name.as_str(),
            hotreload_handlers::LOGGING,
            CONFIG_1K,
        )))
        .expect("loads");
    }
    let mut i = 0;
    g.bench_function("11_batch_of_10", |b| {
        b.iter(|| {
            i ^= 1;
            let members = names.iter().map(|n| (n.clone(), configs[i].clone()));
            let report = rt.block_on(runtime.reload_batch(members)).expect("batch");
            assert_eq!(report.outcome, hotreload::Outcome::Applied);
        })
    });
    g.bench_function("11_ten_single_reloads", |b| {
        b.iter(|| {
            i ^= 1;
            for n in &names {
                let e = runtime
                    .reload_blocking(n, configs[i].clone())
                    .expect("reload");
                assert_eq!(e.outcome, hotreload::Outcome::Applied);
            }
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    instance_and_calls,
    transactions,
    limits,
    file_change,
    startup,
    revisions
);
criterion_main!(benches);
