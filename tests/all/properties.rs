//! Property tests of the transaction: for any sequence of configurations
//! and handler behaviours, the configuration in force is the last one that
//! committed, every attempt is an event, and the statistics add up.

use std::sync::atomic::{AtomicUsize, Ordering};

use hotreload::{ComponentSpec, LimitOverrides, Outcome, Runtime};
use proptest::prelude::*;
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_config_in_force_is_the_last_committed(steps in prop::collection::vec(behaviour(), 1..8)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let runtime = Runtime::new(crate::settings()).unwrap();
        let name = format!("p{}", NEXT.fetch_add(1, Ordering::Relaxed));
        rt.block_on(runtime.add_component(
            ComponentSpec::new(&name, hotreload_handlers::CHAOS, json!({"n": 0}).to_string())
                .limits(LimitOverrides {
                    // Long enough that a busy machine never cuts off a call that should pass.
                    reload_timeout_ms: Some(50),
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
