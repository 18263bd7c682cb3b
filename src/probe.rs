//! A handler alone in a sandbox, called export by export: what
//! `hotreload conform` and the benchmarks use to look inside a handler
//! without a runtime around it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::outcome::{Contract, Prepared, SupportLevel};
use crate::sandbox::{
    CallFailure, CallReport, CompiledHandler, HandlerInstance, Sandbox, SandboxConfig,
    SandboxOptions,
};
use crate::settings::{Limits, Settings};

/// What one call of a [`Probe`] gave, and what it cost.
#[derive(Debug, Clone)]
pub struct ProbeCall<T> {
    /// The answer, or why there was none.
    pub result: Result<T, CallFailure>,
    /// Fuel used (a lower bound when the call was interrupted).
    pub fuel: u64,
    /// Wall time of the call.
    pub elapsed: Duration,
}

/// A `Probe` is one compiled handler with at most one live instance, whose
/// exports are called directly under the given limits.
///
/// After a call is cut off, the next call brings up a fresh instance
/// first, as the runtime does.
///
/// ```no_run
/// use hotreload::{Limits, Probe, SandboxOptions};
/// let wasm = std::fs::read("logging.wasm").unwrap();
/// let mut probe = Probe::new(&wasm, Limits::default(), SandboxOptions::default()).unwrap();
/// let call = probe.validate(r#"{"level": "debug"}"#);
/// assert!(call.result.is_ok());
/// println!("validate took {:?} and {} fuel", call.elapsed, call.fuel);
/// ```
pub struct Probe {
    sandbox: Sandbox,
    handler: Arc<CompiledHandler>,
    limits: Limits,
    instance: Option<HandlerInstance>,
}

/// The error of a handler that cannot be loaded, as a probe reports it.
/// A sandbox for probing one handler: one live instance and a fresh one
/// replacing it.
pub(crate) fn probe_sandbox(
    options: SandboxOptions,
    cache_dir: Option<std::path::PathBuf>,
) -> SandboxConfig {
    SandboxConfig {
        options,
        pool_instances: 4,
        cache_dir,
        cache_max_bytes: Settings::default().cache_max_mib << 20,
        replay_clock: None,
    }
}

pub(crate) fn load_error(reason: String) -> Error {
    Error::HandlerLoad {
        component: "probe".into(),
        handler: "<bytes>".into(),
        reason,
    }
}

impl Probe {
    /// Compiles `wasm` in a sandbox of its own.
    ///
    /// # Errors
    /// [`Error::HandlerLoad`] naming what is wrong with the handler, or
    /// [`Error::Engine`].
    pub fn new(wasm: &[u8], limits: Limits, options: SandboxOptions) -> Result<Probe, Error> {
        Probe::with_cache(wasm, limits, options, None)
    }

    /// As [`Probe::new`], keeping the compiled handler in `cache_dir`
    /// (see [`Settings::cache_dir`](crate::Settings::cache_dir)), so the
    /// next probe of the same handler does not compile it again.
    ///
    /// # Errors
    /// As [`Probe::new`].
    pub fn with_cache(
        wasm: &[u8],
        limits: Limits,
        options: SandboxOptions,
        cache_dir: Option<std::path::PathBuf>,
    ) -> Result<Probe, Error> {
        let sandbox = Sandbox::new(probe_sandbox(options, cache_dir))?;
        let handler = sandbox.compile(wasm).map_err(load_error)?;
        Ok(Probe::linked(sandbox, handler, limits))
    }

    /// A probe of a handler already compiled and linked in `sandbox`.
    pub(crate) fn linked(sandbox: Sandbox, handler: CompiledHandler, limits: Limits) -> Probe {
        Probe {
            sandbox,
            handler: Arc::new(handler),
            limits,
            instance: None,
        }
    }

    /// The contract the handler implements, told from its exports.
    pub fn contract(&self) -> Contract {
        self.handler.contract()
    }

    /// SHA-256 of the handler, hex.
    pub fn handler_hash(&self) -> &str {
        &self.handler.hash
    }

    /// The limits calls run under.
    pub fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }

    /// Replaces the instance with a fresh one and returns its support level.
    pub fn instantiate(&mut self) -> ProbeCall<SupportLevel> {
        self.instance = None;
        let started = Instant::now();
        let report = self
            .handler
            .instantiate(&self.sandbox, "probe".into(), &self.limits);
        let elapsed = started.elapsed();
        ProbeCall {
            result: report.result.map(|i| {
                let level = i.support_level();
                self.instance = Some(i);
                level
            }),
            fuel: report.fuel,
            elapsed,
        }
    }

    fn call<T>(
        &mut self,
        f: impl FnOnce(&mut HandlerInstance, &Limits) -> CallReport<T>,
    ) -> ProbeCall<T> {
        if self.instance.as_ref().is_none_or(|i| i.is_poisoned()) {
            let fresh = self.instantiate();
            if let Err(e) = fresh.result {
                return ProbeCall {
                    result: Err(e),
                    fuel: fresh.fuel,
                    elapsed: fresh.elapsed,
                };
            }
        }
        let instance = self.instance.as_mut().expect("instance is present");
        let started = Instant::now();
        let report = f(instance, &self.limits);
        ProbeCall {
            result: report.result,
            fuel: report.fuel,
            elapsed: started.elapsed(),
        }
    }

    /// Checks `config` as a first load would, with no effect: 0.1.0's
    /// `validate(config)`, 0.2.0's `prepare(none, config)`.
    pub fn check(&mut self, config: &str) -> ProbeCall<()> {
        match self.contract() {
            Contract::V0_1 => self.validate(config),
            Contract::V0_2 => {
                let call = self.prepare(None, config);
                ProbeCall {
                    result: call.result.map(drop),
                    fuel: call.fuel,
                    elapsed: call.elapsed,
                }
            }
        }
    }

    /// Loads `config` in the instance as a first load does, and gives the
    /// effective configuration the handler returned: 0.1.0's `reload(none,
    /// config)`; 0.2.0's `prepare(none, config)` then `apply(none, config)`.
    pub fn load(&mut self, config: &str) -> ProbeCall<Option<String>> {
        self.call(|i, l| i.load(l, config))
    }

    /// Calls 0.2.0's `prepare(old, new)`; the effective configuration is
    /// checked against the output bound. A 0.1.0 handler has no `prepare`:
    /// the call fails without entering it.
    pub fn prepare(&mut self, old: Option<&str>, new: &str) -> ProbeCall<Prepared> {
        self.call(|i, l| i.prepare(l, old, new))
    }

    /// Calls 0.2.0's `apply(old, new)` (a 0.1.0 handler has none).
    pub fn apply(&mut self, old: Option<&str>, new: &str) -> ProbeCall<()> {
        self.call(|i, l| i.apply(l, old, new))
    }

    /// Calls 0.1.0's `validate(config)` (a 0.2.0 handler has none: see
    /// [`Probe::check`]).
    pub fn validate(&mut self, config: &str) -> ProbeCall<()> {
        self.call(|i, l| i.validate(l, config))
    }

    /// Calls 0.1.0's `can-reload(old, new)`.
    pub fn can_reload(&mut self, old: &str, new: &str) -> ProbeCall<bool> {
        self.call(|i, l| i.can_reload(l, old, new))
    }

    /// Calls 0.1.0's `reload(old, new)`; the output is checked against the
    /// output bound (see [`Probe::load`] for either contract).
    pub fn reload(&mut self, old: Option<&str>, new: &str) -> ProbeCall<Option<String>> {
        self.call(|i, l| i.reload(l, old, new))
    }

    /// Calls `rollback(config)` (either contract).
    pub fn rollback(&mut self, config: &str) -> ProbeCall<()> {
        self.call(|i, l| i.rollback(l, config))
    }
}
