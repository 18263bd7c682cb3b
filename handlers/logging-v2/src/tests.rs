//! The shared behaviour table, `handlers/cases/logging.json`, run natively
//! through the SDK's `Runner`, as the host's calls would run it.

use super::{Logging, reconfigured};
use hotreload_handler::{Plan, Runner, SupportLevel};
use serde_json::Value;

#[test]
fn every_case_of_the_behaviour_table() {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("../../cases/logging.json")).expect("the table is JSON");
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    for case in &cases {
        let name = case["name"].as_str().expect("a case has a name");
        let config = case["config"].as_str().expect("a case has a config");
        let mut runner = Runner::<Logging>::new();
        assert_eq!(runner.support_level(), SupportLevel::Full);
        let prepared = runner.prepare(None, config);
        if case["accept"] == Value::Bool(true) {
            let prepared = prepared.unwrap_or_else(|f| panic!("{name}: refused: {f}"));
            assert_eq!(prepared.plan, Plan::InPlace, "{name}");
            let effective = prepared.effective.expect("an effective configuration");
            assert_eq!(
                effective,
                case["effective_text"].as_str().unwrap(),
                "{name}"
            );
            runner
                .apply(None, config)
                .unwrap_or_else(|f| panic!("{name}: {f}"));
            assert_eq!(
                reconfigured(runner.config().unwrap()),
                case["log"],
                "{name}"
            );
            // A plan from the configuration to itself is in place.
            let again = runner.prepare(Some(config), config).unwrap();
            assert_eq!(again.plan, Plan::InPlace, "{name}");
            runner
                .rollback(config)
                .unwrap_or_else(|f| panic!("{name}: {f}"));
        } else {
            let failure = match prepared {
                Ok(_) => panic!("{name}: accepted"),
                Err(failure) => failure,
            };
            assert_eq!(failure.field.as_deref(), case["field"].as_str(), "{name}");
            assert!(!failure.transient, "{name}");
            let message = case["message"].as_str().unwrap();
            if message.starts_with("invalid JSON: ") {
                assert!(failure.message.starts_with("invalid JSON: "), "{name}");
            } else {
                assert_eq!(failure.message, message, "{name}");
            }
            assert!(runner.apply(None, config).is_err(), "{name}");
            assert_eq!(runner.rollback(config).unwrap_err(), failure, "{name}");
            assert!(runner.config().is_none(), "{name}");
        }
    }
}
