//! Property tests of the transaction: for any sequence of configurations
//! and handler behaviours, the configuration in force is the last one that
//! committed, every attempt is an event, and the statistics add up.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};

use hotreload::{ComponentSpec, LimitOverrides, Outcome, Runtime};
use proptest::prelude::*;
use proptest::test_runner::{FailurePersistence, FileFailurePersistence, PersistedSeed};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Accept,
    Reject,
    Trap,
    TimeOut,
    TransientOnce,
    RejectRollbackTraps,
    Unchanged,
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        4 => Just(Behaviour::Accept),
        2 => Just(Behaviour::Reject),
        1 => Just(Behaviour::Trap),
        1 => Just(Behaviour::TimeOut),
        1 => Just(Behaviour::TransientOnce),
        1 => Just(Behaviour::RejectRollbackTraps),
        1 => Just(Behaviour::Unchanged),
    ]
}

/// The chaos handler's configuration for a behaviour; `n` makes each distinct.
fn config(b: Behaviour, n: usize) -> Value {
    match b {
        Behaviour::Accept => json!({"n": n}),
        Behaviour::Reject => json!({"n": n, "validate": "fail"}),
        Behaviour::Trap => json!({"n": n, "reload": "panic"}),
        Behaviour::TimeOut => json!({"n": n, "reload": "spin"}),
        Behaviour::TransientOnce => json!({"n": n, "reload": "transient:1"}),
        Behaviour::RejectRollbackTraps => json!({"n": n, "reload": "fail", "rollback": "trap"}),
        Behaviour::Unchanged => Value::Null,
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The deadline of `reload` and `rollback`: what `TimeOut` runs into, and
/// far beyond any call that should pass, even on a loaded machine.
const RELOAD_TIMEOUT_MS: u64 = 500;

/// Under CI a failure is reported, not written to the tracked regression
/// file (`tests/proptest-regressions/properties.txt`); the seeds already
/// there are replayed everywhere.
fn proptest_config() -> ProptestConfig {
    let persistence: Box<dyn FailurePersistence> = if crate::in_ci() {
        Box::new(ReadOnly(FileFailurePersistence::default()))
    } else {
        Box::new(FileFailurePersistence::default())
    };
    ProptestConfig {
        cases: 24,
        failure_persistence: Some(persistence),
        ..ProptestConfig::default()
    }
}

/// Reads the persisted seeds, never writes one.
#[derive(Debug, Clone, PartialEq)]
struct ReadOnly(FileFailurePersistence);

impl FailurePersistence for ReadOnly {
    fn load_persisted_failures2(&self, source_file: Option<&'static str>) -> Vec<PersistedSeed> {
        self.0.load_persisted_failures2(source_file)
    }

    fn save_persisted_failure2(
        &mut self,
        _source_file: Option<&'static str>,
        seed: PersistedSeed,
        shrunken_value: &dyn std::fmt::Debug,
    ) {
        eprintln!("proptest: not saved under CI: {seed} # shrinks to {shrunken_value:?}");
    }

    fn box_clone(&self) -> Box<dyn FailurePersistence> {
        Box::new(self.clone())
    }

    fn eq(&self, other: &dyn FailurePersistence) -> bool {
        other.as_any().downcast_ref::<Self>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn the_config_in_force_is_the_last_committed(steps in prop::collection::vec(behaviour(), 1..8)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let runtime = Runtime::new(crate::settings()).unwrap();
        let name = format!("p{}", NEXT.fetch_add(1, Ordering::Relaxed));
        rt.block_on(runtime.add_component(
            ComponentSpec::new(&name, hotreload_handlers::CHAOS, json!({"n": 0}).to_string())
                .limits(LimitOverrides {
                    reload_timeout_ms: Some(RELOAD_TIMEOUT_MS),
                    fuel: Some(u64::MAX / 2),
                    ..LimitOverrides::default()
                }),
        )).unwrap();
        let mut in_force = json!({"n": 0});
        let mut version = 1;
        for (i, b) in steps.iter().enumerate() {
            let cfg = match config(*b, i + 1) {
                Value::Null => in_force.clone(),
                c => c,
            };
            let e = rt.block_on(runtime.reload(&name, cfg.clone())).unwrap();
            let expected = match b {
                Behaviour::Accept | Behaviour::TransientOnce => Outcome::Applied,
                Behaviour::Reject => Outcome::Rejected,
                Behaviour::Trap | Behaviour::TimeOut | Behaviour::RejectRollbackTraps => Outcome::RolledBack,
                Behaviour::Unchanged => Outcome::Unchanged,
            };
            prop_assert_eq!(e.outcome, expected, "step {} {:?}: {}", i, b, e.summary());
            if e.outcome == Outcome::Applied {
                in_force = cfg;
                version += 1;
            }
            prop_assert_eq!(&*runtime.current(&name).unwrap(), &in_force);
            prop_assert_eq!(e.version, version);
        }
        let stats = runtime.stats();
        prop_assert_eq!(stats.total as usize, steps.len() + 1);
        prop_assert_eq!(runtime.events().len(), steps.len() + 1);
        prop_assert_eq!(stats.by_outcome.values().sum::<u64>(), stats.total);
        let failures = stats.by_outcome.iter()
            .filter(|(o, _)| !o.is_success())
            .map(|(_, n)| n)
            .sum::<u64>();
        prop_assert_eq!(stats.by_cause.values().sum::<u64>(), failures);
        let successes = stats.total - failures;
        prop_assert!((stats.success_rate - successes as f64 / stats.total as f64).abs() < 1e-9);
    }
}
