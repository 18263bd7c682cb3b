//! Quick start (docs): a strict logging handler for contract 0.2, on the hotreload-handler SDK.
use hotreload_handler::{Failure, Handler, LogLevel, Restart, SupportLevel, export_handler, log};
use serde::{Deserialize, Serialize};
#[derive(Deserialize, Serialize)] // `{"level":"warn"}` is in effect `{"level":"warn","json":false}`
#[serde(deny_unknown_fields)]
pub struct Config {
    level: String,
    #[serde(default)]
    json: bool,
}
#[derive(Default)]
pub struct Quickstart;
impl Handler for Quickstart {
    type Config = Config;
    const SUPPORT: SupportLevel = SupportLevel::Partial;
    fn check(c: &Config) -> Result<(), Failure> {
        let known = ["trace", "debug", "info", "warn", "error"].contains(&c.level.as_str());
        let unknown = Failure::at("/level", "expected one of trace, debug, info, warn, error");
        known.then_some(()).ok_or(unknown)
    }
    fn restart(a: &Config, b: &Config) -> Vec<Restart> {
        Vec::from_iter((a.json != b.json).then(|| Restart::new("/json", "read at start only")))
    }
    fn apply(&mut self, _: Option<&Config>, c: &Config) -> Result<(), Failure> {
        log(LogLevel::Info, &format!("reconfigured: level={}", c.level));
        Ok(())
    }
}
export_handler!(Quickstart);
