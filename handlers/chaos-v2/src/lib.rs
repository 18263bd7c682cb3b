//! The `chaos-v2` handler: contract 0.2 (`hotreload:handler@0.2.0`) on the
//! SDK, misbehaving on request so the host's 0.2 paths can be tested with a
//! real component. Support level `full`.
//!
//! # Configuration
//!
//! A JSON object, every field optional, unknown fields refused:
//!
//! | field      | values | effect |
//! |------------|--------|--------|
//! | `n`        | integer | none: makes configurations distinct |
//! | `prepare`  | `"panic"`, `"spin"`, `"bad_effective"` | `prepare` traps, loops until cut off, or gives an effective configuration that is not JSON |
//! | `apply`    | `"panic"`, `"spin"`, `"fail"`, `"transient"`, `"transient_once"` | `apply` traps, loops, refuses, refuses as transient (always, or only once in this instance) |
//! | `rollback` | `"fail"` | `rollback` to this configuration refuses |
//!
//! The effective configuration is the configuration with its defaults
//! (`{"n":0,"prepare":null,"apply":null,"rollback":null}`).

use hotreload_handler::{Failure, Handler, export_handler};
use serde::{Deserialize, Serialize};

/// What to do, and when.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    n: u64,
    #[serde(default)]
    prepare: Option<String>,
    #[serde(default)]
    apply: Option<String>,
    #[serde(default)]
    rollback: Option<String>,
}

/// The handler; it remembers whether its instance refused a
/// `transient_once` apply already.
#[derive(Default)]
pub struct Chaos {
    refused_once: bool,
}

fn spin() -> ! {
    let mut i: u64 = 0;
    loop {
        i = std::hint::black_box(i.wrapping_add(1));
    }
}

impl Handler for Chaos {
    type Config = Config;

    fn check(config: &Config) -> Result<(), Failure> {
        match config.prepare.as_deref() {
            Some("panic") => panic!("chaos-v2 panicked on purpose in prepare"),
            Some("spin") => spin(),
            _ => Ok(()),
        }
    }

    fn effective(config: &Config) -> String {
        if config.prepare.as_deref() == Some("bad_effective") {
            return "this is not JSON".into();
        }
        serde_json_text(config)
    }

    fn apply(&mut self, _old: Option<&Config>, new: &Config) -> Result<(), Failure> {
        match new.apply.as_deref() {
            Some("panic") => panic!("chaos-v2 panicked on purpose in apply"),
            Some("spin") => spin(),
            Some("fail") => Err(Failure::new("apply refused on purpose")),
            Some("transient") => {
                Err(Failure::new("apply refused on purpose, try again").transient())
            }
            Some("transient_once") if !self.refused_once => {
                self.refused_once = true;
                Err(Failure::new("apply refused once on purpose, try again").transient())
            }
            _ => Ok(()),
        }
    }

    fn rollback(&mut self, config: &Config) -> Result<(), Failure> {
        match config.rollback.as_deref() {
            Some("fail") => Err(Failure::new("rollback refused on purpose")),
            _ => Ok(()),
        }
    }
}

/// The configuration as compact JSON, its defaults filled in.
fn serde_json_text(config: &Config) -> String {
    let field = |v: &Option<String>| match v {
        Some(s) => format!("{s:?}"),
        None => "null".into(),
    };
    format!(
        "{{\"n\":{},\"prepare\":{},\"apply\":{},\"rollback\":{}}}",
        config.n,
        field(&config.prepare),
        field(&config.apply),
        field(&config.rollback)
    )
}

export_handler!(Chaos);
