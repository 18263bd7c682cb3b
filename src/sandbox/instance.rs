//! One handler instance in its own store, and the limited call of each export.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{v1, v2};
use super::{CompiledHandler, HostState, Pre, Sandbox};
use crate::outcome::{
    Cause, Contract, HandlerFailure, Plan, Prepared, RestartReason, SupportLevel,
};
use crate::settings::Limits;
use crate::text::cut_at_char_boundary;

/// Longest failure message or field pointer kept from a handler.
pub(crate) const FAILURE_TEXT_BYTES: usize = 4096;

/// Why a handler call did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// The handler answered with its `failure` record; the instance is fine.
    Refused(HandlerFailure),
    /// The call was cut off, or its output was unusable.
    Fault {
        /// Why.
        cause: Cause,
        /// What happened, with the handler's captured stderr when it trapped.
        message: String,
    },
}

impl CallFailure {
    /// The event cause this failure is reported as.
    pub fn cause(&self) -> Cause {
        match self {
            CallFailure::Refused(_) => Cause::Invalid,
            CallFailure::Fault { cause, .. } => *cause,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            CallFailure::Refused(f) => &f.message,
            CallFailure::Fault { message, .. } => message,
        }
    }

    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, CallFailure::Refused(f) if f.transient)
    }
}

/// A call's answer and what it cost.
pub(crate) struct CallReport<T> {
    pub(crate) result: Result<T, CallFailure>,
    /// Fuel used; only a lower bound when the call was interrupted.
    pub(crate) fuel: u64,
}

/// A live instance of a handler. After a fault it is poisoned: wasmtime
/// refuses to enter it again, and so do we.
pub(crate) struct HandlerInstance {
    store: Store<HostState>,
    bindings: Exports,
    sandbox: Sandbox,
    support: SupportLevel,
    poisoned: bool,
    /// 0.2.0: the text of the last successful `prepare`, which alone may
    /// be applied next (the contract: `apply` only right after a
    /// successful `prepare` of the same text on the same instance).
    prepared: Option<String>,
}

/// The exports of a live instance, of either contract.
enum Exports {
    V1(v1::Handler),
    V2(v2::Handler),
}

impl CompiledHandler {
    /// The contract the handler implements.
    pub(crate) fn contract(&self) -> Contract {
        match self.pre {
            Pre::V1(_) => Contract::V0_1,
            Pre::V2(_) => Contract::V0_2,
        }
    }

    /// Creates a fresh instance and asks its support level, both under the
    /// validation deadline.
    pub(crate) fn instantiate(
        &self,
        sandbox: &Sandbox,
        component: Arc<str>,
        limits: &Limits,
    ) -> CallReport<HandlerInstance> {
        let mut store = Store::new(
            sandbox.engine(),
            HostState::new(component, limits, sandbox.inner.replay_clock),
        );
        store.limiter(|s| &mut s.limiter);
        if sandbox.inner.options.epoch_interruption {
            store.epoch_deadline_callback(|ctx| {
                if Instant::now() >= ctx.data().deadline {
                    Ok(UpdateDeadline::Interrupt)
                } else {
                    Ok(UpdateDeadline::Continue(1))
                }
            });
        }
        arm(&mut store, sandbox, limits.fuel, limits.validation_timeout);
        let instantiated = match &self.pre {
            Pre::V1(pre) => pre.instantiate(&mut store).map(Exports::V1),
            Pre::V2(pre) => pre.instantiate(&mut store).map(Exports::V2),
        };
        disarm(&mut store, sandbox);
        let bindings = match instantiated {
            Ok(b) => b,
            Err(err) => {
                let fuel = fuel_used(&store, sandbox, limits.fuel);
                let message = format!("instantiating the handler: {}", describe(&err, &store));
                return CallReport {
                    result: Err(CallFailure::Fault {
                        cause: classify(&err, &store),
                        message,
                    }),
                    fuel,
                };
            }
        };
        let mut instance = HandlerInstance {
            store,
            bindings,
            sandbox: sandbox.clone(),
            support: SupportLevel::None,
            poisoned: false,
            prepared: None,
        };
        let first = instance.fuel_spent_so_far(limits.fuel);
        let report = instance.call(limits, limits.validation_timeout, |b, s| match b {
            Exports::V1(b) => b.call_support_level(s).map(|l| match l {
                v1::SupportLevel::Full => SupportLevel::Full,
                v1::SupportLevel::Partial => SupportLevel::Partial,
                v1::SupportLevel::None => SupportLevel::None,
            }),
            Exports::V2(b) => b.call_support_level(s).map(|l| match l {
                v2::SupportLevel::Full => SupportLevel::Full,
                v2::SupportLevel::Partial => SupportLevel::Partial,
                v2::SupportLevel::None => SupportLevel::None,
            }),
        });
        let fuel = first + report.fuel;
        match report.result {
            Ok(level) => {
                instance.support = level;
                CallReport {
                    result: Ok(instance),
                    fuel,
                }
            }
            Err(e) => CallReport {
                result: Err(e),
                fuel,
            },
        }
    }
}

fn arm(store: &mut Store<HostState>, sandbox: &Sandbox, fuel: u64, timeout: Duration) {
    let start = Instant::now();
    if sandbox.inner.options.consume_fuel {
        // Fuel can only be refused when fuel is off; it is on here.
        let _ = store.set_fuel(fuel);
    }
    if let Some(watchdog) = &sandbox.inner.watchdog {
        let deadline = start + timeout;
        store.data_mut().deadline = deadline;
        store.set_epoch_deadline(1);
        store.data_mut().armed = Some(watchdog.arm(deadline));
    }
    let data = store.data_mut();
    data.limiter.refused = false;
    data.log.reset();
    data.stdout.take();
    data.stderr.take();
}

/// The call is over: its deadline is no longer needed.
fn disarm(store: &mut Store<HostState>, sandbox: &Sandbox) {
    if let (Some(watchdog), Some(armed)) = (&sandbox.inner.watchdog, store.data_mut().armed.take())
    {
        watchdog.disarm(armed);
    }
}

fn fuel_used(store: &Store<HostState>, sandbox: &Sandbox, fuel: u64) -> u64 {
    if sandbox.inner.options.consume_fuel {
        fuel.saturating_sub(store.get_fuel().unwrap_or(0))
    } else {
        0
    }
}

/// Sorts a fault by its type, never by its text.
fn classify(err: &wasmtime::Error, store: &Store<HostState>) -> Cause {
    let refused = store.data().limiter.refused;
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return Cause::Capacity;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Cause::OutOfFuel,
        Some(Trap::Interrupt) => Cause::Timeout,
        _ if refused => Cause::MemoryLimit,
        _ => Cause::Trap,
    }
}

/// The error's text plus whatever the handler wrote to stdout/stderr, so a
/// Rust handler's panic message reaches the operator.
fn describe(err: &wasmtime::Error, store: &Store<HostState>) -> String {
    let mut text = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    };
    if store.data().limiter.refused {
        text.push_str("; the memory limit refused a growth");
    }
    for (name, out) in [
        ("stderr", &store.data().stderr),
        ("stdout", &store.data().stdout),
    ] {
        let captured = out.take();
        let captured = captured.trim();
        if !captured.is_empty() {
            text.push_str(&format!("; handler {name}: {captured}"));
        }
    }
    text
}

/// What a call that returned wrote to stdout/stderr goes to the host's log
/// (a call that trapped puts it in its event instead).
fn log_captured(store: &Store<HostState>) {
    for (stream, out) in [
        ("stdout", &store.data().stdout),
        ("stderr", &store.data().stderr),
    ] {
        let text = out.take();
        let text = text.trim_end();
        if !text.is_empty() {
            tracing::info!(target: "handler", component = %store.data().log.component(), stream, "{text}");
        }
    }
}

fn bounded(mut text: String) -> String {
    if text.len() > FAILURE_TEXT_BYTES {
        let total = text.len();
        let kept = cut_at_char_boundary(&text, FAILURE_TEXT_BYTES).len();
        text.truncate(kept);
        text.push_str(&format!("… ({total} bytes in all)"));
    }
    text
}

/// A handler's `failure` record of either contract.
struct RawFailure {
    message: String,
    field: Option<String>,
    transient: bool,
}

impl From<v1::Failure> for RawFailure {
    fn from(f: v1::Failure) -> Self {
        RawFailure {
            message: f.message,
            field: f.field,
            transient: f.transient,
        }
    }
}

impl From<v2::Failure> for RawFailure {
    fn from(f: v2::Failure) -> Self {
        RawFailure {
            message: f.message,
            field: f.field,
            transient: f.transient,
        }
    }
}

fn failure(f: RawFailure) -> CallFailure {
    let mut r = bound_failure(f.message, f.field);
    if let CallFailure::Refused(h) = &mut r {
        h.transient = f.transient;
    }
    r
}

/// Restart reasons kept from one plan, and the bytes of each text.
const MAX_RESTART_REASONS: usize = 64;

fn plan_of(plan: v2::Plan) -> Plan {
    match plan {
        v2::Plan::InPlace => Plan::InPlace,
        v2::Plan::Restart(reasons) => Plan::Restart(
            reasons
                .into_iter()
                .take(MAX_RESTART_REASONS)
                .map(|r| RestartReason {
                    field: bounded(r.field),
                    reason: bounded(r.reason),
                })
                .collect(),
        ),
    }
}

/// A `reload`'s effective configuration, refused as bad output when it is
/// longer than `limit` bytes.
pub(crate) fn bound_output(
    out: Option<String>,
    limit: usize,
) -> Result<Option<String>, CallFailure> {
    match out {
        Some(out) if out.len() > limit => Err(CallFailure::Fault {
            cause: Cause::BadOutput,
            message: format!(
                "the effective configuration is {} bytes, over the {limit} byte output limit",
                out.len()
            ),
        }),
        out => Ok(out),
    }
}

/// A handler's failure record, its texts cut to a bounded length.
pub(crate) fn bound_failure(message: String, field: Option<String>) -> CallFailure {
    CallFailure::Refused(HandlerFailure {
        message: bounded(message),
        field: field.map(bounded),
        transient: false,
    })
}

impl HandlerInstance {
    pub(crate) fn support_level(&self) -> SupportLevel {
        self.support
    }

    /// True once a call was cut off; such an instance is never entered again.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    fn fuel_spent_so_far(&self, fuel: u64) -> u64 {
        fuel_used(&self.store, &self.sandbox, fuel)
    }

    fn call<T>(
        &mut self,
        limits: &Limits,
        timeout: Duration,
        f: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> CallReport<T> {
        if self.poisoned {
            return CallReport {
                result: Err(CallFailure::Fault {
                    cause: Cause::Trap,
                    message: "the instance was cut off earlier and cannot be entered again".into(),
                }),
                fuel: 0,
            };
        }
        arm(&mut self.store, &self.sandbox, limits.fuel, timeout);
        let result = f(&self.bindings, &mut self.store);
        disarm(&mut self.store, &self.sandbox);
        let fuel = fuel_used(&self.store, &self.sandbox, limits.fuel);
        let log = &self.store.data().log;
        if log.dropped > 0 {
            tracing::warn!(
                lines = log.lines,
                dropped = log.dropped,
                "handler log lines over the per-call budget were dropped"
            );
        }
        match result {
            Ok(v) => {
                log_captured(&self.store);
                CallReport {
                    result: Ok(v),
                    fuel,
                }
            }
            Err(err) => {
                self.poisoned = true;
                let cause = classify(&err, &self.store);
                let mut message = describe(&err, &self.store);
                if cause == Cause::Timeout {
                    message = format!(
                        "exceeded its {} ms deadline: {message}",
                        timeout.as_millis()
                    );
                }
                CallReport {
                    result: Err(CallFailure::Fault { cause, message }),
                    fuel,
                }
            }
        }
    }

    /// The contract of the instance's handler.
    pub(crate) fn contract(&self) -> Contract {
        match self.bindings {
            Exports::V1(_) => Contract::V0_1,
            Exports::V2(_) => Contract::V0_2,
        }
    }

    /// A call of an export the instance's contract lacks: the host's
    /// mistake, reported without entering the instance.
    fn lacks<T>(&self, export: &str) -> CallReport<T> {
        CallReport {
            result: Err(CallFailure::Fault {
                cause: Cause::Trap,
                message: format!(
                    "a {} handler has no `{export}` export",
                    self.contract().version()
                ),
            }),
            fuel: 0,
        }
    }

    /// 0.1.0's `validate`.
    pub(crate) fn validate(&mut self, limits: &Limits, config: &str) -> CallReport<()> {
        if self.contract() != Contract::V0_1 {
            return self.lacks("validate");
        }
        let r = self.call(limits, limits.validation_timeout, |b, s| match b {
            Exports::V1(b) => b
                .call_validate(s, config)
                .map(|r| r.map_err(RawFailure::from)),
            Exports::V2(_) => unreachable!("checked above"),
        });
        flatten(r)
    }

    /// 0.1.0's `can-reload`.
    pub(crate) fn can_reload(&mut self, limits: &Limits, old: &str, new: &str) -> CallReport<bool> {
        if self.contract() != Contract::V0_1 {
            return self.lacks("can-reload");
        }
        self.call(limits, limits.validation_timeout, |b, s| match b {
            Exports::V1(b) => b.call_can_reload(s, old, new),
            Exports::V2(_) => unreachable!("checked above"),
        })
    }

    /// 0.1.0's `reload`, with its output checked against the output bound.
    pub(crate) fn reload(
        &mut self,
        limits: &Limits,
        old: Option<&str>,
        new: &str,
    ) -> CallReport<Option<String>> {
        if self.contract() != Contract::V0_1 {
            return self.lacks("reload");
        }
        let r = self.call(limits, limits.reload_timeout, |b, s| match b {
            Exports::V1(b) => b
                .call_reload(s, old, new)
                .map(|r| r.map_err(RawFailure::from)),
            Exports::V2(_) => unreachable!("checked above"),
        });
        let r = flatten(r);
        CallReport {
            result: r
                .result
                .and_then(|out| bound_output(out, limits.output_bytes)),
            fuel: r.fuel,
        }
    }

    /// 0.2.0's `prepare`, under the validation deadline, its effective
    /// configuration checked against the output bound.
    pub(crate) fn prepare(
        &mut self,
        limits: &Limits,
        old: Option<&str>,
        new: &str,
    ) -> CallReport<Prepared> {
        if self.contract() != Contract::V0_2 {
            return self.lacks("prepare");
        }
        let r = self.call(limits, limits.validation_timeout, |b, s| match b {
            Exports::V2(b) => b
                .call_prepare(s, old, new)
                .map(|r| r.map_err(RawFailure::from)),
            Exports::V1(_) => unreachable!("checked above"),
        });
        let r = flatten(r);
        let result = r.result.and_then(|p| {
            Ok(Prepared {
                plan: plan_of(p.plan),
                effective: bound_output(p.effective, limits.output_bytes)?,
            })
        });
        match (&result, &mut self.prepared) {
            (Ok(_), Some(text)) => {
                text.clear();
                text.push_str(new);
            }
            (Ok(_), none) => *none = Some(new.to_owned()),
            (Err(_), prepared) => *prepared = None,
        }
        CallReport {
            result,
            fuel: r.fuel,
        }
    }

    /// 0.2.0's `apply`, under the reload deadline.
    pub(crate) fn apply(
        &mut self,
        limits: &Limits,
        old: Option<&str>,
        new: &str,
    ) -> CallReport<()> {
        if self.contract() != Contract::V0_2 {
            return self.lacks("apply");
        }
        // Never entered out of turn, whoever asks (the transaction, a
        // probe, the conformance kit).
        if self.prepared.take().as_deref() != Some(new) {
            return CallReport {
                result: Err(CallFailure::Fault {
                    cause: Cause::Trap,
                    message: "apply was not called: the last call on this instance was not a \
                              successful prepare of the same text (contract 0.2.0)"
                        .into(),
                }),
                fuel: 0,
            };
        }
        let r = self.call(limits, limits.reload_timeout, |b, s| match b {
            Exports::V2(b) => b
                .call_apply(s, old, new)
                .map(|r| r.map_err(RawFailure::from)),
            Exports::V1(_) => unreachable!("checked above"),
        });
        flatten(r)
    }

    /// A first load of `config` in this instance: 0.1.0's `reload(none,
    /// config)`; 0.2.0's `prepare(none, config)` then `apply(none, config)`.
    /// Gives the effective configuration the handler returned, if any.
    pub(crate) fn load(&mut self, limits: &Limits, config: &str) -> CallReport<Option<String>> {
        match self.contract() {
            Contract::V0_1 => self.reload(limits, None, config),
            Contract::V0_2 => {
                let prepared = self.prepare(limits, None, config);
                let effective = match prepared.result {
                    Ok(p) => p.effective,
                    Err(e) => {
                        return CallReport {
                            result: Err(e),
                            fuel: prepared.fuel,
                        };
                    }
                };
                let applied = self.apply(limits, None, config);
                CallReport {
                    result: applied.result.map(|()| effective),
                    fuel: prepared.fuel + applied.fuel,
                }
            }
        }
    }

    /// `rollback`, of either contract.
    pub(crate) fn rollback(&mut self, limits: &Limits, config: &str) -> CallReport<()> {
        self.prepared = None;
        let r = self.call(limits, limits.reload_timeout, |b, s| match b {
            Exports::V1(b) => b
                .call_rollback(s, config)
                .map(|r| r.map_err(RawFailure::from)),
            Exports::V2(b) => b
                .call_rollback(s, config)
                .map(|r| r.map_err(RawFailure::from)),
        });
        flatten(r)
    }
}

fn flatten<T>(r: CallReport<Result<T, RawFailure>>) -> CallReport<T> {
    CallReport {
        result: match r.result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(f)) => Err(failure(f)),
            Err(e) => Err(e),
        },
        fuel: r.fuel,
    }
}
