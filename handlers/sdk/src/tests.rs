//! Native unit tests of the SDK.

use crate::{Failure, Handler, Plan, Restart, Runner, SupportLevel, from_json, pointer};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "info")]
    level: Level,
    #[serde(default)]
    json: bool,
    #[serde(default)]
    outputs: Vec<Output>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    /// Makes `apply` fail.
    #[serde(default)]
    fail: bool,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Output {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    level: Option<Level>,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Debug,
    Info,
    Warn,
}

fn info() -> Level {
    Level::Info
}

thread_local! {
    /// `Test::parse` calls on this thread (each test runs on its own).
    static PARSES: Cell<usize> = const { Cell::new(0) };
}

fn parses() -> usize {
    PARSES.with(Cell::get)
}

/// A partial handler that counts parses and applies; `json` needs a restart.
#[derive(Default)]
struct Test {
    applied: Vec<Option<bool>>,
    rolled_back: usize,
}

impl Handler for Test {
    type Config = Config;
    const SUPPORT: SupportLevel = SupportLevel::Partial;

    fn parse(text: &str) -> Result<Config, Failure> {
        PARSES.with(|p| p.set(p.get() + 1));
        from_json(text)
    }

    fn check(config: &Config) -> Result<(), Failure> {
        for (index, output) in config.outputs.iter().enumerate() {
            if output.kind.is_empty() {
                let field = pointer(["outputs", &index.to_string(), "type"]);
                return Err(Failure::at(field, "an output type must not be empty"));
            }
        }
        Ok(())
    }

    fn restart(old: &Config, new: &Config) -> Vec<Restart> {
        if old.json == new.json {
            return Vec::new();
        }
        vec![Restart::new("/json", "the format is chosen at start")]
    }

    fn apply(&mut self, old: Option<&Config>, new: &Config) -> Result<(), Failure> {
        if new.fail {
            return Err(Failure::new("asked to fail").transient());
        }
        self.applied.push(old.map(|old| old.json));
        Ok(())
    }

    fn rollback(&mut self, _config: &Config) -> Result<(), Failure> {
        self.rolled_back += 1;
        Ok(())
    }
}

/// The same configuration, support level none, nothing else overridden.
#[derive(Default)]
struct Frozen;

impl Handler for Frozen {
    type Config = Config;
    const SUPPORT: SupportLevel = SupportLevel::None;
}

/// The same configuration, defaults only: support level full.
#[derive(Default)]
struct Plain {
    applied: usize,
}

impl Handler for Plain {
    type Config = Config;

    fn apply(&mut self, _old: Option<&Config>, _new: &Config) -> Result<(), Failure> {
        self.applied += 1;
        Ok(())
    }
}

fn refused(text: &str) -> Failure {
    match from_json::<Config>(text) {
        Ok(config) => panic!("{text} was accepted: {config:?}"),
        Err(failure) => failure,
    }
}

#[test]
fn pointers_escape_tilde_then_slash() {
    assert_eq!(pointer(Vec::<&str>::new()), "");
    assert_eq!(pointer(["level"]), "/level");
    assert_eq!(pointer(["outputs", "1", "level"]), "/outputs/1/level");
    assert_eq!(pointer(["a/b", "c~d", "~1", ""]), "/a~1b/c~0d/~01/");
    assert_eq!(pointer(vec![String::from("x")]), "/x");
}

#[test]
fn missing_and_unknown_keys_are_named_differently() {
    let missing = refused(r#"{"outputs": [{"level": "warn"}]}"#);
    assert_eq!(
        missing,
        Failure::at("/outputs/0/type", "missing field \"type\"")
    );

    let unknown = refused(r#"{"outputs": [{"type": "stdout", "path": "x"}]}"#);
    assert_eq!(unknown.field.as_deref(), Some("/outputs/0/path"));
    assert_eq!(
        unknown.message,
        "unknown field \"path\", expected `type` or `level`"
    );

    let top = refused(r#"{"levle": "info"}"#);
    assert_eq!(top.field.as_deref(), Some("/levle"));
    assert!(
        top.message
            .starts_with("unknown field \"levle\", expected one of `level`"),
        "{}",
        top.message
    );
    assert!(!top.transient);
}

#[test]
fn duplicate_keys_are_named() {
    let duplicate = refused(r#"{"json": true, "json": false}"#);
    assert_eq!(duplicate, Failure::at("/json", "duplicate field \"json\""));
}

#[test]
fn nested_arrays_give_indices() {
    let failure = refused(r#"{"outputs": [{"type": "stdout"}, {"type": "stderr", "level": 3}]}"#);
    assert_eq!(failure.field.as_deref(), Some("/outputs/1/level"));
    assert_eq!(
        failure.message,
        "invalid type: integer `3`, expected one of `debug`, `info`, `warn`"
    );

    let failure =
        refused(r#"{"outputs": [{"type": "stdout"}, {"type": "stderr", "level": "loud"}]}"#);
    assert_eq!(failure.field.as_deref(), Some("/outputs/1/level"));
    assert_eq!(
        failure.message,
        "unknown variant `loud`, expected one of `debug`, `info`, `warn`"
    );

    let failure = refused(r#"{"outputs": [{"type": "stdout"}, {"type": 7}]}"#);
    assert_eq!(
        failure,
        Failure::at(
            "/outputs/1/type",
            "invalid type: integer `7`, expected a string"
        )
    );
}

#[test]
fn tilde_and_slash_in_keys_are_escaped() {
    let failure = refused(r#"{"fields": {"ok": "x", "a/b~c": 1}}"#);
    assert_eq!(
        failure,
        Failure::at(
            "/fields/a~1b~0c",
            "invalid type: integer `1`, expected a string"
        )
    );
    let failure = refused(r#"{"a/b~c": 1}"#);
    assert_eq!(failure.field.as_deref(), Some("/a~1b~0c"));
    assert!(
        failure
            .message
            .starts_with("unknown field \"a/b~c\", expected")
    );
    // A key with a backtick, unknown.
    let failure = refused(r#"{"outputs": [{"type": "x", "a`, expected b": 1}]}"#);
    assert_eq!(failure.field.as_deref(), Some("/outputs/0/a`, expected b"));
    assert_eq!(
        failure.message,
        "unknown field \"a`, expected b\", expected `type` or `level`"
    );
}

#[test]
fn type_errors_say_what_was_expected_without_position() {
    for (text, field, message) in [
        (
            r#"{"json": 42}"#,
            "/json",
            "invalid type: integer `42`, expected a boolean",
        ),
        (
            r#"{"json": null}"#,
            "/json",
            "invalid type: null, expected a boolean",
        ),
        (
            r#"{"level": null}"#,
            "/level",
            "invalid type: null, expected one of `debug`, `info`, `warn`",
        ),
        (
            r#"{"outputs": {}}"#,
            "/outputs",
            "invalid type: map, expected a sequence",
        ),
        (
            r#"{"fields": {"a": ["x"]}}"#,
            "/fields/a",
            "invalid type: sequence, expected a string",
        ),
    ] {
        assert_eq!(refused(text), Failure::at(field, message), "{text}");
    }
    // About the whole document: no field.
    assert_eq!(
        refused("[]"),
        Failure::new("invalid type: sequence, expected struct Config")
    );
}

#[test]
fn structs_only_from_objects() {
    assert_eq!(
        refused(r#"{"outputs": [["stdout"]]}"#),
        Failure::at(
            "/outputs/0",
            "invalid type: sequence, expected struct Output"
        )
    );
    assert_eq!(
        refused(r#"["warn", true]"#),
        Failure::new("invalid type: sequence, expected struct Config")
    );
}

/// An enum with content, inside a struct.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum Sink {
    Null,
    File(String),
    Socket { host: String, port: u16 },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sinks {
    sinks: Vec<Sink>,
}

#[test]
fn enums_from_strings_and_single_key_objects() {
    let text = r#"{"sinks": ["null", {"null": null}, {"file": "a"}, {"socket": {"host": "h", "port": 1}}]}"#;
    let sinks = from_json::<Sinks>(text).unwrap().sinks;
    assert!(matches!(sinks[0], Sink::Null));
    assert!(matches!(sinks[1], Sink::Null));
    assert!(matches!(&sinks[2], Sink::File(path) if path == "a"));
    assert!(matches!(&sinks[3], Sink::Socket { host, port: 1 } if host == "h"));

    let failure = from_json::<Sinks>(r#"{"sinks": ["null", 7]}"#).unwrap_err();
    assert_eq!(
        failure,
        Failure::at(
            "/sinks/1",
            "invalid type: integer `7`, expected one of `null`, `file`, `socket`"
        )
    );
    let failure =
        from_json::<Sinks>(r#"{"sinks": [{"socket": {"host": "h", "port": 70000}}]}"#).unwrap_err();
    assert_eq!(
        failure,
        Failure::at(
            "/sinks/0/socket/port",
            "invalid value: integer `70000`, expected u16"
        )
    );
    let failure = from_json::<Sinks>(r#"{"sinks": [{"socket": ["h", 1]}]}"#).unwrap_err();
    assert_eq!(failure.field.as_deref(), Some("/sinks/0/socket"));
    assert!(
        failure.message.starts_with("invalid type: sequence"),
        "{failure}"
    );
    let failure = from_json::<Sinks>(r#"{"sinks": [{"file": "a", "null": null}]}"#).unwrap_err();
    assert_eq!(failure.field.as_deref(), Some("/sinks/0"));
    assert_eq!(
        failure.message,
        "invalid value: map, expected an object with a single key, the variant"
    );
    let failure = from_json::<Sinks>(r#"{"sinks": [{}]}"#).unwrap_err();
    assert_eq!(failure.field.as_deref(), Some("/sinks/0"));
    let failure = from_json::<Sinks>(r#"{"sinks": ["file"]}"#).unwrap_err();
    assert_eq!(failure.field.as_deref(), Some("/sinks/0"));
    assert_eq!(
        failure.message,
        "invalid type: unit variant, expected newtype variant"
    );
}

#[test]
fn invalid_json_has_no_field_and_keeps_its_position() {
    for text in ["", "{", r#"{"json": tru}"#, "{} x", r#"{"json": 1e400}"#] {
        let failure = refused(text);
        assert_eq!(failure.field, None, "{text}");
        assert!(
            failure.message.starts_with("invalid JSON: "),
            "{text}: {failure}"
        );
        assert!(
            failure.message.contains(" at line 1 column "),
            "{text}: {failure}"
        );
    }
}

#[test]
fn a_plan_from_a_configuration_to_itself_is_in_place() {
    let text = r#"{"json": true}"#;
    let mut test = Runner::<Test>::new();
    test.apply(None, text).unwrap();
    assert_eq!(test.prepare(Some(text), text).unwrap().plan, Plan::InPlace);
    // The same effective configuration written differently, not in force.
    let same = r#"{ "json" : true, "level": "info" }"#;
    assert_eq!(test.prepare(Some(same), text).unwrap().plan, Plan::InPlace);

    // Even when every change needs a restart.
    let mut frozen = Runner::<Frozen>::new();
    assert_eq!(frozen.support_level(), SupportLevel::None);
    assert_eq!(
        frozen.prepare(Some(text), text).unwrap().plan,
        Plan::InPlace
    );
    assert_eq!(
        frozen.prepare(Some(text), same).unwrap().plan,
        Plan::InPlace
    );
}

#[test]
fn plans_name_the_fields_that_need_a_restart() {
    let mut test = Runner::<Test>::new();
    assert_eq!(test.support_level(), SupportLevel::Partial);
    assert_eq!(
        test.prepare(None, r#"{"json": true}"#).unwrap().plan,
        Plan::InPlace
    );
    assert_eq!(
        test.prepare(Some("{}"), r#"{"json": true}"#).unwrap().plan,
        Plan::Restart(vec![Restart::new("/json", "the format is chosen at start")])
    );
    assert_eq!(
        test.prepare(Some("{}"), r#"{"level": "warn"}"#)
            .unwrap()
            .plan,
        Plan::InPlace
    );
    // An old configuration that does not parse counts as none.
    assert_eq!(
        test.prepare(Some("{not json"), r#"{"json": true}"#)
            .unwrap()
            .plan,
        Plan::InPlace
    );

    let mut frozen = Runner::<Frozen>::new();
    assert_eq!(
        frozen
            .prepare(Some("{}"), r#"{"level": "warn"}"#)
            .unwrap()
            .plan,
        Plan::Restart(vec![Restart::new(
            "",
            "this handler's support level is none: every change needs a restart"
        )])
    );
    assert_eq!(
        Runner::<Plain>::new()
            .prepare(Some("{}"), r#"{"json": true}"#)
            .unwrap()
            .plan,
        Plan::InPlace
    );
}

#[test]
fn prepare_returns_the_effective_configuration() {
    let mut plain = Runner::<Plain>::new();
    let prepared = plain
        .prepare(
            None,
            r#"{"outputs": [{"type": "stdout"}], "fields": {"b": "2", "a": "1"}}"#,
        )
        .unwrap();
    assert_eq!(
        prepared.effective.as_deref(),
        Some(
            r#"{"level":"info","json":false,"outputs":[{"type":"stdout","level":null}],"fields":{"a":"1","b":"2"},"fail":false}"#
        )
    );
}

#[test]
fn prepare_has_no_effect() {
    let mut test = Runner::<Test>::new();
    test.prepare(None, "{}").unwrap();
    assert!(test.config().is_none());
    assert!(test.handler().applied.is_empty());

    test.apply(None, "{}").unwrap();
    test.prepare(Some("{}"), r#"{"json": true}"#).unwrap();
    assert_eq!(test.text(), Some("{}"));
    assert!(!test.config().unwrap().json);
    assert_eq!(test.handler().applied, vec![None]);

    // A refused candidate changes nothing either.
    let failure = test
        .prepare(Some("{}"), r#"{"outputs": [{"type": ""}]}"#)
        .unwrap_err();
    assert_eq!(
        failure,
        Failure::at("/outputs/0/type", "an output type must not be empty")
    );
    assert_eq!(test.text(), Some("{}"));
    assert_eq!(test.handler().applied, vec![None]);
}

#[test]
fn apply_after_prepare_does_not_parse_again() {
    let mut test = Runner::<Test>::new();
    let before = parses();
    test.prepare(None, "{}").unwrap();
    assert_eq!(parses() - before, 1);
    test.apply(None, "{}").unwrap();
    assert_eq!(parses() - before, 1, "apply parsed the prepared text again");

    // The old configuration is the one in force: not parsed either.
    let new = r#"{"level": "warn"}"#;
    test.prepare(Some("{}"), new).unwrap();
    assert_eq!(parses() - before, 2);
    test.apply(Some("{}"), new).unwrap();
    assert_eq!(parses() - before, 2);
    assert_eq!(test.config().unwrap().level, Level::Warn);
    assert_eq!(
        test.effective(),
        Some(r#"{"level":"warn","json":false,"outputs":[],"fields":{},"fail":false}"#)
    );
    assert_eq!(test.handler().applied, vec![None, Some(false)]);
}

#[test]
fn apply_without_prepare_parses_and_checks() {
    let mut test = Runner::<Test>::new();
    let before = parses();
    test.apply(None, r#"{"json": true}"#).unwrap();
    assert_eq!(parses() - before, 1);
    assert!(test.config().unwrap().json);

    // Prepared text differs from the applied one: parsed and checked again.
    test.prepare(Some(r#"{"json": true}"#), "{}").unwrap();
    let failure = test
        .apply(Some(r#"{"json": true}"#), r#"{"outputs": [{"type": ""}]}"#)
        .unwrap_err();
    assert_eq!(failure.field.as_deref(), Some("/outputs/0/type"));
    assert!(test.config().unwrap().json);
    assert_eq!(parses() - before, 3);
}

#[test]
fn a_failed_apply_keeps_the_configuration_in_force() {
    let mut test = Runner::<Test>::new();
    test.apply(None, "{}").unwrap();
    let failing = r#"{"fail": true}"#;
    test.prepare(Some("{}"), failing).unwrap();
    let failure = test.apply(Some("{}"), failing).unwrap_err();
    assert_eq!(failure, Failure::new("asked to fail").transient());
    assert_eq!(test.text(), Some("{}"));

    test.rollback("{}").unwrap();
    assert_eq!(test.handler().rolled_back, 1);
    assert_eq!(test.text(), Some("{}"));
    assert_eq!(test.handler().applied, vec![None]);
}

#[test]
fn rollback_makes_a_configuration_in_force() {
    let mut plain = Runner::<Plain>::new();
    plain.apply(None, "{}").unwrap();
    plain.rollback(r#"{"json": true}"#).unwrap();
    assert_eq!(plain.text(), Some(r#"{"json": true}"#));
    // By default, rollback is apply without an old configuration.
    assert_eq!(plain.handler().applied, 2);
    let failure = plain.rollback(r#"{"json": 1}"#).unwrap_err();
    assert_eq!(failure.field.as_deref(), Some("/json"));
    assert_eq!(plain.text(), Some(r#"{"json": true}"#));
}

#[test]
fn failures_display_their_field() {
    assert_eq!(Failure::at("/a", "bad").to_string(), "/a: bad");
    assert_eq!(Failure::new("bad").to_string(), "bad");
    assert!(Failure::new("later").transient().transient);
}
