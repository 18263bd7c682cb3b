//! The crate documentation's failure table and plans, natively.

use super::Plugin;
use hotreload_handler::{Failure, Plan, Restart, Runner, SupportLevel};

#[test]
fn the_failure_table() {
    let mut runner = Runner::<Plugin>::new();
    assert_eq!(runner.support_level(), SupportLevel::Partial);
    for (text, field, message) in [
        (
            r#"[]"#,
            None,
            "invalid type: sequence, expected struct Config",
        ),
        (
            r#"{"enabled": null}"#,
            Some("/enabled"),
            "invalid type: null, expected a boolean",
        ),
        (
            r#"{"workers": "4"}"#,
            Some("/workers"),
            "invalid type: string \"4\", expected u32",
        ),
        (
            r#"{"workers": 4.0}"#,
            Some("/workers"),
            "invalid type: floating point `4.0`, expected u32",
        ),
        (
            r#"{"workers": -1}"#,
            Some("/workers"),
            "invalid value: integer `-1`, expected u32",
        ),
        (
            r#"{"workers": 0}"#,
            Some("/workers"),
            "workers must be an integer from 1 to 64",
        ),
        (
            r#"{"workers": 65}"#,
            Some("/workers"),
            "workers must be an integer from 1 to 64",
        ),
        (
            r#"{"settings": []}"#,
            Some("/settings"),
            "invalid type: sequence, expected a map",
        ),
        (
            r#"{"workers": 2, "workers": 3}"#,
            Some("/workers"),
            "duplicate field \"workers\"",
        ),
        (
            r#"{"threads": 2}"#,
            Some("/threads"),
            "unknown field \"threads\", expected one of `enabled`, `workers`, `settings`",
        ),
    ] {
        let failure = runner.prepare(None, text).unwrap_err();
        let expected = Failure {
            message: message.to_owned(),
            field: field.map(str::to_owned),
            transient: false,
        };
        assert_eq!(failure, expected, "{text}");
    }
    let failure = runner.prepare(None, r#"{"enabled"#).unwrap_err();
    assert_eq!(
        failure,
        Failure::new("invalid JSON: EOF while parsing a string at line 1 column 9")
    );
}

#[test]
fn effective_configuration_and_plans() {
    let mut runner = Runner::<Plugin>::new();
    let prepared = runner
        .prepare(None, r#"{"settings": {"b": [1, 2], "a": {}}}"#)
        .unwrap();
    assert_eq!(
        prepared.effective.as_deref(),
        Some(r#"{"enabled":true,"workers":4,"settings":{"a":{},"b":[1,2]}}"#)
    );
    runner.apply(None, "{}").unwrap();
    assert_eq!(
        runner
            .prepare(Some("{}"), r#"{"workers": 8}"#)
            .unwrap()
            .plan,
        Plan::InPlace
    );
    assert_eq!(
        runner
            .prepare(Some("{}"), r#"{"enabled": true}"#)
            .unwrap()
            .plan,
        Plan::InPlace
    );
    assert_eq!(
        runner
            .prepare(Some("{}"), r#"{"enabled": false, "workers": 8}"#)
            .unwrap()
            .plan,
        Plan::Restart(vec![Restart::new(
            "/enabled",
            "the plugin registers its routes at start"
        )])
    );
}
