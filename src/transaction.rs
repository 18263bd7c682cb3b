//! The reload transaction of one component, in two steps:
//!
//! - **prepare** — parse, unchanged?, validate, decide (support level,
//!   `can-reload`), `reload` in the handler's instance, the effective
//!   configuration. It has no effect outside the sandbox.
//! - **commit** — subscribers stage the value, the revision is written
//!   (one SQLite transaction), subscribers get it — or **abort**: the
//!   handler rolls back, or a cut-off instance is replaced by a fresh one
//!   brought back to the configuration in force ([`ComponentState::recover`]).
//!
//! A load, a handler swap and a rollback to another handler prepare in a
//! fresh instance (`validate`, `reload(none, new)`: [`prepare_load`]); a
//! reload, a rollback to a version of the same handler, a batch member and a
//! dry run prepare in the warm instance from the configuration in force. A
//! batch prepares every member and then commits all or aborts all; a dry
//! run prepares in a throw-away instance and never commits. Every failure is
//! one [`Failure`] `{phase, cause, error}`; every handler call goes through
//! [`Attempt::call`] (its fuel counted) or [`Attempt::with_retries`] (the
//! retry policy). It runs on a blocking thread with the component's lock
//! held, so transactions of one component are serial.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde_json::Value;

use crate::diff::diff;
use crate::events::{Event, EventError, EventStore, timestamp};
use crate::manager::subscribers::Subscribers;
use crate::outcome::{
    Cause, Contract, EventKind, HandlerFailure, Outcome, Phase, Plan, RestartReason, SupportLevel,
};
use crate::redact::Redactor;
use crate::sandbox::{CallFailure, CallReport, CompiledHandler, HandlerInstance, Sandbox};
use crate::settings::Limits;
use crate::state::{NewRevision, Revision, RevisionSource, Revisions};

/// A configuration as handed to the runtime: JSON text, or a value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigInput {
    /// JSON text, passed to the handler as it is.
    Json(String),
    /// A value, passed to the handler as compact JSON.
    Value(Value),
}

impl From<&str> for ConfigInput {
    fn from(s: &str) -> Self {
        ConfigInput::Json(s.to_owned())
    }
}

impl From<String> for ConfigInput {
    fn from(s: String) -> Self {
        ConfigInput::Json(s)
    }
}

impl From<Value> for ConfigInput {
    fn from(v: Value) -> Self {
        ConfigInput::Value(v)
    }
}

/// The configuration in force.
#[derive(Clone)]
pub(crate) struct Committed {
    /// What the handler accepted, and its text as the handler saw it.
    pub(crate) input: Arc<Value>,
    pub(crate) input_text: Arc<str>,
    /// What subscribers were given.
    pub(crate) effective: Arc<Value>,
    pub(crate) version: u64,
    /// Where it came from (a file, the API, a rollback).
    pub(crate) source: RevisionSource,
}

/// Everything the transaction needs besides the component itself.
pub(crate) struct Context<'a> {
    pub(crate) sandbox: &'a Sandbox,
    pub(crate) events: &'a EventStore,
    pub(crate) revisions: Option<&'a Revisions>,
    pub(crate) rollback_on_failure: bool,
    pub(crate) fresh_instance_per_reload: bool,
    /// Hides secret values in what events show.
    pub(crate) redact: &'a Redactor,
    /// False in a dry run: events are made, not recorded or logged.
    pub(crate) record: bool,
    /// Where each event's replay record goes, with a revision store.
    pub(crate) replays: Option<&'a crate::replay::ReplaySink>,
}

/// One component: its handler, warm instance, limits, and what is in force.
pub(crate) struct ComponentState {
    pub(crate) name: Arc<str>,
    pub(crate) handler: Arc<CompiledHandler>,
    pub(crate) instance: Option<HandlerInstance>,
    pub(crate) limits: Limits,
    pub(crate) committed: Option<Committed>,
    pub(crate) pending: Option<Arc<Value>>,
    pub(crate) degraded: bool,
    pub(crate) subscribers: Arc<Mutex<Subscribers>>,
    pub(crate) support: Option<SupportLevel>,
    /// How many instances were created, the first included.
    pub(crate) instances_created: u64,
    /// The version committed before this process started (from the
    /// last-known-good record), so numbering goes on across restarts.
    pub(crate) base_version: u64,
    /// Where the component stands as of its last event, for readers that
    /// must not wait for a reload in flight (status pages, the admin API).
    pub(crate) published: Arc<Mutex<Option<crate::manager::ComponentInfo>>>,
}

/// A reload request.
pub(crate) struct Request {
    pub(crate) input: ConfigInput,
    pub(crate) source: RevisionSource,
}

impl Request {
    pub(crate) fn new(input: ConfigInput, kind: EventKind, config_path: Option<String>) -> Request {
        Request {
            input,
            source: RevisionSource {
                path: config_path,
                ..RevisionSource::of(kind)
            },
        }
    }
}

/// An attempt being recorded.
struct Attempt {
    started: Instant,
    at: SystemTime,
    source: RevisionSource,
    /// In a batch: stop before the commit, leaving what would be committed
    /// in `ready`.
    defer_commit: bool,
    /// A dry run of a 0.2.0 handler: stop after `prepare`, which has no
    /// effect, with its plan and effective configuration.
    prepare_only: bool,
    ready: Option<Ready>,
    /// For the replay record: the texts the handler saw, how the attempt
    /// ran, and the handler that ran it when it is not the one in force.
    old_text: Option<Arc<str>>,
    new_text: Option<Arc<str>>,
    mode: crate::replay::ReplayMode,
    ran: Option<Arc<CompiledHandler>>,
    old: Option<Arc<Value>>,
    new: Option<Arc<Value>>,
    retries: u32,
    fuel: u64,
    /// The attempt's `transaction` span: each handler call is a `phase`
    /// span under it; the event records its version, outcome and fuel.
    span: tracing::Span,
}

/// A reload prepared in its handler, waiting for the batch's commit.
struct Ready {
    new: Arc<Value>,
    text: Arc<str>,
    effective: Arc<Value>,
}

/// Why an attempt failed: where, the cause, and the message (every
/// failure, the handler's or the host's, is this one type).
pub(crate) struct Failure {
    pub(crate) phase: Phase,
    pub(crate) cause: Cause,
    pub(crate) error: EventError,
}

impl Failure {
    /// A handler call's failure in `phase`.
    fn of(phase: Phase, e: &CallFailure) -> Failure {
        Failure {
            phase,
            cause: e.cause(),
            error: error_of(e),
        }
    }

    /// The host's own failure.
    fn host(phase: Phase, cause: Cause, message: impl Into<String>) -> Failure {
        Failure {
            phase,
            cause,
            error: host_error(message),
        }
    }
}

/// How an attempt ended, before it becomes an event.
struct Ending {
    outcome: Outcome,
    failure: Option<Failure>,
    effective: Option<Arc<Value>>,
    /// For `restart_required`: the fields and why.
    restart: Vec<RestartReason>,
}

impl Ending {
    fn ok(outcome: Outcome, effective: Option<Arc<Value>>) -> Ending {
        Ending {
            outcome,
            failure: None,
            effective,
            restart: Vec::new(),
        }
    }

    fn restart_required(restart: Vec<RestartReason>) -> Ending {
        Ending {
            restart,
            ..Ending::ok(Outcome::RestartRequired, None)
        }
    }

    fn failed(outcome: Outcome, phase: Phase, cause: Cause, error: EventError) -> Ending {
        Ending::failure(
            outcome,
            Failure {
                phase,
                cause,
                error,
            },
        )
    }

    fn failure(outcome: Outcome, failure: Failure) -> Ending {
        Ending {
            outcome,
            failure: Some(failure),
            effective: None,
            restart: Vec::new(),
        }
    }
}

impl Attempt {
    /// One handler call: its fuel is counted into the attempt.
    fn call<T>(&mut self, report: CallReport<T>) -> Result<T, CallFailure> {
        self.fuel += report.fuel;
        report.result
    }

    /// One handler call in a `phase` span (child of the transaction's),
    /// which records the call's fuel and outcome.
    fn step<T>(
        &mut self,
        phase: &'static str,
        call: impl FnOnce() -> CallReport<T>,
    ) -> Result<T, CallFailure> {
        let span = tracing::info_span!(
            parent: &self.span,
            "phase",
            phase,
            fuel = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let report = span.in_scope(call);
        span.record("fuel", report.fuel);
        span.record(
            "outcome",
            match &report.result {
                Ok(_) => "ok",
                Err(e) => e.cause().name(),
            },
        );
        self.call(report)
    }

    /// A handler call under the retry policy: a transient failure is tried
    /// again, up to `max_retries` times, `retry_interval` apart; every try's
    /// fuel is counted.
    fn with_retries<T>(
        &mut self,
        limits: &Limits,
        phase: &'static str,
        mut call: impl FnMut() -> CallReport<T>,
    ) -> Result<T, CallFailure> {
        let mut tries = 0;
        loop {
            match self.step(phase, &mut call) {
                Err(e) if e.is_transient() && tries < limits.max_retries => {
                    tries += 1;
                    self.retries += 1;
                    std::thread::sleep(limits.retry_interval);
                }
                result => return result,
            }
        }
    }
}

pub(crate) fn error_of(e: &CallFailure) -> EventError {
    match e {
        CallFailure::Refused(HandlerFailure { message, field, .. }) => EventError {
            message: message.clone(),
            field: field.clone(),
        },
        CallFailure::Fault { message, .. } => EventError {
            message: message.clone(),
            field: None,
        },
    }
}

fn host_error(message: impl Into<String>) -> EventError {
    EventError {
        message: message.into(),
        field: None,
    }
}

/// Parses the input into the attempt, or ends it as rejected in the parse phase.
fn parse_into(
    a: &mut Attempt,
    input: ConfigInput,
    limit: usize,
) -> Result<(Arc<Value>, Arc<str>), Ending> {
    let (new, text) = parse(input, limit).map_err(|m| {
        Ending::failed(
            Outcome::Rejected,
            Phase::Parse,
            Cause::Invalid,
            host_error(m),
        )
    })?;
    a.new = Some(new.clone());
    a.new_text = Some(text.clone());
    Ok((new, text))
}

/// Parses the input; the text is what the handler will see.
pub(crate) fn parse(input: ConfigInput, limit: usize) -> Result<(Arc<Value>, Arc<str>), String> {
    let (value, text) = match input {
        ConfigInput::Json(text) => {
            if text.len() > limit {
                return Err(format!(
                    "the configuration is {} bytes, over the {limit} byte limit",
                    text.len()
                ));
            }
            let value: Value =
                serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?;
            (value, text)
        }
        ConfigInput::Value(value) => {
            let text = value.to_string();
            if text.len() > limit {
                return Err(format!(
                    "the configuration is {} bytes, over the {limit} byte limit",
                    text.len()
                ));
            }
            (value, text)
        }
    };
    Ok((Arc::new(value), Arc::from(text)))
}

impl ComponentState {
    fn event(&self, ctx: &Context<'_>, a: Attempt, end: Ending) -> Arc<Event> {
        let redact = ctx.redact;
        let replay = ctx.replays.filter(|_| ctx.record).and_then(|sink| {
            let new_text = a.new_text.clone()?;
            let ran = a.ran.clone().unwrap_or_else(|| self.handler.clone());
            Some((
                sink,
                new_text,
                ran,
                a.old_text.clone(),
                a.mode,
                end.effective.clone(),
            ))
        });
        let changes = match (&a.old, &a.new) {
            (Some(old), Some(new)) => diff(old, new)
                .into_iter()
                .map(|c| redact.change(c))
                .collect(),
            _ => Vec::new(),
        };
        let (failed_phase, cause, error) = match end.failure {
            Some(f) => (Some(f.phase), Some(f.cause), Some(f.error)),
            None => (None, None, None),
        };
        let event = Event {
            // Given when the event is recorded.
            id: 0,
            component: self.name.to_string(),
            kind: a.source.kind,
            config_path: a.source.path,
            old_config: a.old.as_ref().map(|v| redact.value(v)),
            new_config: a.new.as_ref().map(|v| redact.value(v)),
            effective_config: end.effective.as_ref().map(|v| redact.value(v)),
            changes,
            timestamp: timestamp(a.at),
            outcome: end.outcome,
            failed_phase,
            cause,
            error,
            retries: a.retries,
            duration_us: a.started.elapsed().as_micros() as u64,
            fuel_consumed: a.fuel,
            version: self.committed.as_ref().map_or(0, |c| c.version),
            handler_hash: self.handler.hash.clone(),
            from_version: a.source.from_version,
            batch: a.source.batch,
            dry_run: !ctx.record,
            restart: end.restart,
        };
        if !ctx.record {
            return Arc::new(event);
        }
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(crate::manager::info_of(self));
        a.span.record("version", event.version);
        a.span.record("outcome", event.outcome.name());
        a.span.record("fuel", event.fuel_consumed);
        let _entered = a.span.enter();
        match end.outcome {
            Outcome::Applied | Outcome::Unchanged => tracing::info!(event = %event.summary()),
            Outcome::RestartRequired => tracing::info!(event = %event.summary()),
            _ => tracing::warn!(event = %event.summary()),
        }
        let event = ctx.events.record(event, self.support);
        if let Some((sink, new_text, ran, old_text, mode, effective)) = replay {
            let record = crate::replay::ReplayRecord {
                event_id: event.id,
                timestamp: event.timestamp.clone(),
                component: event.component.clone(),
                kind: event.kind,
                mode,
                handler_hash: ran.hash.clone(),
                old_config: old_text.map(|t| t.to_string()),
                new_config: Some(new_text.to_string()),
                limits: (&self.limits).into(),
                retries: event.retries,
                outcome: event.outcome,
                cause: event.cause,
                failed_phase: event.failed_phase,
                effective: effective.map(|e| (*e).clone()),
            };
            sink.send(record, ran.wasm.clone());
        }
        event
    }

    fn fresh_instance(&mut self, ctx: &Context<'_>, a: &mut Attempt) -> Result<(), CallFailure> {
        self.instance = None;
        self.instances_created += 1;
        let report = self
            .handler
            .instantiate(ctx.sandbox, self.name.clone(), &self.limits);
        let instance = a.step("instantiate", || report)?;
        self.support = Some(instance.support_level());
        self.instance = Some(instance);
        Ok(())
    }

    /// Replaces a cut-off (or missing) instance with a fresh one brought back
    /// to the configuration in force. On failure the component is degraded.
    fn restore(&mut self, ctx: &Context<'_>, a: &mut Attempt) -> Result<(), (Phase, CallFailure)> {
        let Some(committed) = self.committed.clone() else {
            self.instance = None;
            return Ok(());
        };
        let result = self
            .fresh_instance(ctx, a)
            .map_err(|e| (Phase::Instantiate, e))
            .and_then(|()| {
                // Transient failures are retried here too, as in a reload.
                let instance = self.instance.as_mut().expect("fresh instance");
                let limits = &self.limits;
                a.with_retries(limits, "reload", || {
                    instance.load(limits, &committed.input_text)
                })
                .map(drop)
                .map_err(|e| (Phase::Reload, e))
            });
        match &result {
            Ok(()) => self.degraded = false,
            Err(_) => {
                self.instance = None;
                self.degraded = true;
            }
        }
        result
    }

    /// After a failure: drop a cut-off instance and restore a fresh one, or
    /// (for an ordinary failure past validation) ask the handler to roll
    /// back. Gives the event's ending: the abort of a prepared transaction.
    fn recover(
        &mut self,
        ctx: &Context<'_>,
        a: &mut Attempt,
        failure: Failure,
        handler_applied: bool,
    ) -> Ending {
        let poisoned = self.instance.as_ref().is_none_or(|i| i.is_poisoned());
        // Before `reload` nothing was applied, so there is nothing to roll back.
        let outcome = if handler_applied {
            Outcome::RolledBack
        } else {
            Outcome::Rejected
        };
        if poisoned {
            return match self.restore(ctx, a) {
                Ok(()) => Ending::failure(outcome, failure),
                Err((rphase, rerr)) => self.degraded_ending(failure, rphase, &rerr),
            };
        }
        if !handler_applied || !ctx.rollback_on_failure {
            return Ending::failure(Outcome::Rejected, failure);
        }
        let old = self
            .committed
            .as_ref()
            .expect("a reload has a configuration in force")
            .input_text
            .clone();
        let instance = self.instance.as_mut().expect("instance is present");
        match a.step("rollback", || instance.rollback(&self.limits, &old)) {
            Ok(()) => Ending::failure(Outcome::RolledBack, failure),
            Err(rollback_err) => {
                // The handler could not roll back; a fresh instance loaded
                // with the old configuration is the next best thing.
                tracing::warn!(component = %self.name, "rollback failed: {}", rollback_err.message());
                match self.restore(ctx, a) {
                    Ok(()) => Ending::failure(Outcome::RolledBack, failure),
                    Err((rphase, rerr)) => self.degraded_ending(failure, rphase, &rerr),
                }
            }
        }
    }

    fn degraded_ending(
        &self,
        mut failure: Failure,
        restore_phase: Phase,
        restore_err: &CallFailure,
    ) -> Ending {
        failure.error.message = format!(
            "{}; then restoring the old configuration failed in {:?} ({:?}): {}; the component is \
             degraded and keeps serving the old configuration",
            failure.error.message,
            restore_phase,
            restore_err.cause(),
            restore_err.message()
        );
        Ending::failure(Outcome::Degraded, failure)
    }

    /// Makes the new configuration the one in force: subscribers stage it,
    /// the revision is written (one SQLite transaction), then subscribers
    /// get it.
    fn commit(
        &mut self,
        ctx: &Context<'_>,
        source: &RevisionSource,
        input: Arc<Value>,
        input_text: Arc<str>,
        effective: Arc<Value>,
    ) -> Result<(), Failure> {
        let _phase = tracing::info_span!("phase", phase = "commit").entered();
        // The subscribers' lock is held only to stage and to publish, never
        // across the disk write: readers and new subscribers do not wait
        // for an fsync. (Reloads of this component are serialised by the
        // component's own lock, so nothing else stages in between.)
        let staged = self
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stage(effective.clone())
            .map_err(|m| Failure::host(Phase::Apply, Cause::Subscriber, m))?;
        let version = self.next_version();
        if let Some(store) = ctx.revisions {
            let revision = self.revision(source, version, &input_text, &effective);
            store
                .write(&[NewRevision {
                    revision,
                    wasm: &self.handler.wasm,
                }])
                .map_err(|e| {
                    Failure::host(
                        Phase::Commit,
                        Cause::Storage,
                        format!("cannot persist the revision: {e}"),
                    )
                })?;
        }
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .publish(staged);
        self.committed = Some(Committed {
            input,
            input_text,
            effective,
            version,
            source: source.clone(),
        });
        self.pending = None;
        self.degraded = false;
        Ok(())
    }

    /// The version the next commit gets.
    pub(crate) fn next_version(&self) -> u64 {
        self.committed
            .as_ref()
            .map_or(self.base_version, |c| c.version)
            + 1
    }

    /// The revision a commit of `input_text` as `version` writes.
    pub(crate) fn revision(
        &self,
        source: &RevisionSource,
        version: u64,
        input_text: &str,
        effective: &Value,
    ) -> Revision {
        Revision {
            component: self.name.to_string(),
            version,
            timestamp: timestamp(SystemTime::now()),
            source: source.clone(),
            handler_hash: self.handler.hash.clone(),
            config: input_text.to_owned(),
            effective: effective.clone(),
        }
    }

    /// The first load: a fresh instance, validate, `reload(none, new)`, commit.
    pub(crate) fn load(&mut self, ctx: &Context<'_>, req: Request) -> Arc<Event> {
        let mut a = self.attempt(req.source);
        a.mode = crate::replay::ReplayMode::Load;
        let span = a.span.clone();
        let end = span.in_scope(|| self.load_steps(ctx, &mut a, req.input));
        self.event(ctx, a, end)
    }

    fn load_steps(&mut self, ctx: &Context<'_>, a: &mut Attempt, input: ConfigInput) -> Ending {
        let (new, text) = match parse_into(a, input, self.limits.output_bytes) {
            Ok(p) => p,
            Err(end) => return end,
        };
        if let Err(e) = self.fresh_instance(ctx, a) {
            return self.load_failed(ctx, a, Failure::of(Phase::Instantiate, &e));
        }
        let instance = self.instance.as_mut().expect("fresh instance");
        let effective = match prepare_load(&self.limits, a, instance, &new, &text) {
            Ok(e) => e,
            Err(f) => return self.load_failed(ctx, a, f),
        };
        match self.commit(ctx, &a.source.clone(), new, text, effective.clone()) {
            Ok(()) => Ending::ok(Outcome::Applied, Some(effective)),
            Err(f) => {
                self.instance = None;
                Ending::failure(Outcome::Rejected, f)
            }
        }
    }

    /// A degraded component's way back: the new configuration loaded in a
    /// fresh instance as at a first load (`validate`, `reload(none, new)`)
    /// and committed. `None` when that fails too (the component stays
    /// degraded, on the configuration in force).
    fn load_fresh(
        &mut self,
        ctx: &Context<'_>,
        a: &mut Attempt,
        new: &Arc<Value>,
        text: &Arc<str>,
    ) -> Option<Ending> {
        self.fresh_instance(ctx, a).ok()?;
        let instance = self.instance.as_mut()?;
        let Ok(effective) = prepare_load(&self.limits, a, instance, new, text) else {
            self.instance = None;
            return None;
        };
        if a.defer_commit {
            a.ready = Some(Ready {
                new: new.clone(),
                text: text.clone(),
                effective: effective.clone(),
            });
            return Some(Ending::ok(Outcome::Applied, Some(effective)));
        }
        match self.commit(
            ctx,
            &a.source.clone(),
            new.clone(),
            text.clone(),
            effective.clone(),
        ) {
            Ok(()) => Some(Ending::ok(Outcome::Applied, Some(effective))),
            Err(_) => {
                self.instance = None;
                None
            }
        }
    }

    /// A failed first load: the instance is dropped; if an older
    /// configuration is in force (a restart), it is restored.
    fn load_failed(&mut self, ctx: &Context<'_>, a: &mut Attempt, failure: Failure) -> Ending {
        self.instance = None;
        if self.committed.is_none() {
            return Ending::failure(Outcome::Rejected, failure);
        }
        match self.restore(ctx, a) {
            Ok(()) => Ending::failure(Outcome::Rejected, failure),
            Err((rphase, rerr)) => self.degraded_ending(failure, rphase, &rerr),
        }
    }

    /// A reload from the configuration in force to `req`'s.
    pub(crate) fn reload(&mut self, ctx: &Context<'_>, req: Request) -> Arc<Event> {
        let committed = self
            .committed
            .clone()
            .expect("components are added with a configuration in force");
        let mut a = self.attempt(req.source);
        let span = a.span.clone();
        let end = span.in_scope(|| self.reload_steps(ctx, &mut a, &committed, req.input));
        self.event(ctx, a, end)
    }

    fn reload_steps(
        &mut self,
        ctx: &Context<'_>,
        a: &mut Attempt,
        old: &Committed,
        input: ConfigInput,
    ) -> Ending {
        // 1. parse
        let (new, text) = match parse_into(a, input, self.limits.output_bytes) {
            Ok(p) => p,
            Err(end) => return end,
        };

        // 2. unchanged? (a degraded component goes on, to recover)
        if *new == *old.input && !self.degraded {
            self.pending = None;
            return Ending::ok(Outcome::Unchanged, Some(old.effective.clone()));
        }

        // A degraded or cut-off component first gets a fresh instance; in
        // isolation mode every reload does, one that never saw the old
        // configuration.
        if ctx.fresh_instance_per_reload && !self.degraded {
            if let Err(e) = self.fresh_instance(ctx, a) {
                return Ending::failure(Outcome::Rejected, Failure::of(Phase::Instantiate, &e));
            }
        } else if self.instance.as_ref().is_none_or(|i| i.is_poisoned())
            && let Err((phase, e)) = self.restore(ctx, a)
        {
            // The old configuration cannot be brought back; the new one may
            // be what repairs the component: load it in a fresh instance.
            if let Some(end) = self.load_fresh(ctx, a, &new, &text) {
                return end;
            }
            let error = error_of(&e);
            let message = format!(
                "the component is degraded: bringing a fresh instance back to the old \
                     configuration failed: {}",
                error.message
            );
            return Ending::failed(
                Outcome::Degraded,
                phase,
                e.cause(),
                EventError {
                    message,
                    field: error.field,
                },
            );
        }

        // 3. check and plan (0.1.0: validate, then can-reload when the
        // support level is partial; 0.2.0: prepare) — deterministic, never
        // retried, no effect.
        let instance = self.instance.as_mut().expect("instance is present");
        let planned = match check_and_plan(
            &self.limits,
            a,
            instance,
            Some((&old.input, &old.input_text)),
            (&new, &text),
        ) {
            Ok(p) => p,
            Err(f) => return self.recover(ctx, a, f, false),
        };

        // 4. decide
        if let Some(reasons) = planned.restart {
            // Naming a 0.1.0 handler's fields asks it more questions; one
            // that faulted on them leaves no cut-off instance behind.
            if self.instance.as_ref().is_some_and(|i| i.is_poisoned())
                && let Err((phase, e)) = self.restore(ctx, a)
            {
                tracing::warn!(
                    component = %self.name,
                    "replacing the instance after a can-reload probe failed in {phase:?}: {}",
                    e.message()
                );
            }
            // In a batch a restart-required member fails the batch: nothing
            // of it is kept for the next start.
            if !a.defer_commit {
                self.pending = Some(new);
                self.persist_pending(ctx);
            }
            return Ending::restart_required(reasons);
        }
        if a.prepare_only {
            // A 0.2.0 dry run: what `prepare` said is the answer.
            let effective = planned.effective.unwrap_or_else(|| new.clone());
            return Ending::ok(Outcome::Applied, Some(effective));
        }

        // 5. reload, retrying transient failures and one timeout. The
        // budget counts this call's tries only: retries spent restoring the
        // old configuration after a timeout do not use it up.
        let mut timeout_retried = false;
        let mut tries = 0;
        let mut prepared = Some(planned.effective);
        let output = loop {
            let instance = self.instance.as_mut().expect("instance is present");
            // A 0.2.0 retry prepares again first: `apply` comes only right
            // after a successful `prepare` on the same instance.
            match make_it_so(
                &self.limits,
                a,
                instance,
                Some(&old.input_text),
                &text,
                prepared.take(),
            ) {
                Ok(output) => break output,
                Err(e) if tries < self.limits.max_retries && e.is_transient() => {
                    tries += 1;
                    a.retries += 1;
                    std::thread::sleep(self.limits.retry_interval);
                }
                Err(e)
                    if tries < self.limits.max_retries
                        && !timeout_retried
                        && e.cause() == Cause::Timeout =>
                {
                    timeout_retried = true;
                    tries += 1;
                    a.retries += 1;
                    if let Err((rphase, rerr)) = self.restore(ctx, a) {
                        return self.degraded_ending(Failure::of(Phase::Reload, &e), rphase, &rerr);
                    }
                    std::thread::sleep(self.limits.retry_interval);
                }
                Err(e) => {
                    return self.recover(ctx, a, Failure::of(Phase::Reload, &e), true);
                }
            }
        };
        let effective = match output.effective(&new) {
            Ok(e) => e,
            Err(m) => {
                let failure = Failure::host(Phase::Reload, Cause::BadOutput, m);
                return self.recover(ctx, a, failure, true);
            }
        };

        // 6. apply and 7. commit — in a batch, once every member is ready.
        if a.defer_commit {
            a.ready = Some(Ready {
                new,
                text,
                effective: effective.clone(),
            });
            return Ending::ok(Outcome::Applied, Some(effective));
        }
        match self.commit(ctx, &a.source.clone(), new, text, effective.clone()) {
            Ok(()) => Ending::ok(Outcome::Applied, Some(effective)),
            Err(f) => self.recover(ctx, a, f, true),
        }
    }
}

impl ComponentState {
    fn attempt(&self, source: RevisionSource) -> Attempt {
        let kind = source.kind.name();
        Attempt {
            started: Instant::now(),
            at: SystemTime::now(),
            source,
            defer_commit: false,
            prepare_only: false,
            ready: None,
            old_text: self.committed.as_ref().map(|c| c.input_text.clone()),
            new_text: None,
            mode: crate::replay::ReplayMode::Reload,
            ran: None,
            old: self.committed.as_ref().map(|c| c.input.clone()),
            new: None,
            retries: 0,
            fuel: 0,
            span: tracing::info_span!(
                "transaction",
                component = %self.name,
                kind,
                version = tracing::field::Empty,
                outcome = tracing::field::Empty,
                fuel = tracing::field::Empty,
            ),
        }
    }

    /// A configuration that could not be read or parsed by its source.
    pub(crate) fn reject_input(
        &mut self,
        ctx: &Context<'_>,
        source: RevisionSource,
        cause: Cause,
        message: String,
    ) -> Arc<Event> {
        let a = self.attempt(source);
        let end = Ending::failed(Outcome::Rejected, Phase::Parse, cause, host_error(message));
        self.event(ctx, a, end)
    }

    /// A new handler that could not even be compiled.
    pub(crate) fn reject_handler(&mut self, ctx: &Context<'_>, message: String) -> Arc<Event> {
        let a = self.attempt(RevisionSource::of(EventKind::HandlerSwap));
        let end = Ending::failed(
            Outcome::Rejected,
            Phase::Instantiate,
            Cause::Invalid,
            host_error(format!("{message}; the old handler stays")),
        );
        self.event(ctx, a, end)
    }

    /// Swaps in a new handler if it accepts the configuration in force.
    pub(crate) fn swap(&mut self, ctx: &Context<'_>, handler: Arc<CompiledHandler>) -> Arc<Event> {
        let committed = self
            .committed
            .clone()
            .expect("components are added with a configuration in force");
        let mut a = self.attempt(RevisionSource::of(EventKind::HandlerSwap));
        a.new = Some(committed.input.clone());
        a.new_text = Some(committed.input_text.clone());
        a.mode = crate::replay::ReplayMode::Load;
        a.ran = Some(handler.clone());
        // The same bytes again (a file restored, touched, copied over
        // itself): nothing to swap, no new version.
        let end = if handler.hash == self.handler.hash && !self.degraded {
            Ending::ok(Outcome::Unchanged, Some(committed.effective.clone()))
        } else {
            self.swap_steps(
                ctx,
                &mut a,
                committed.input.clone(),
                committed.input_text.clone(),
                handler,
            )
        };
        self.event(ctx, a, end)
    }

    /// A rollback to an earlier revision whose handler differs from the one
    /// in force: that handler, in a fresh instance, loads that configuration
    /// (`validate`, `reload(none, config)`), and both are committed together
    /// as a new version; on any failure the handler and configuration in
    /// force stay.
    pub(crate) fn swap_with_config(
        &mut self,
        ctx: &Context<'_>,
        handler: Arc<CompiledHandler>,
        req: Request,
    ) -> Arc<Event> {
        let mut a = self.attempt(req.source);
        a.mode = crate::replay::ReplayMode::Load;
        a.ran = Some(handler.clone());
        let end = match parse_into(&mut a, req.input, self.limits.output_bytes) {
            Ok((new, text)) => self.swap_steps(ctx, &mut a, new, text, handler),
            Err(end) => end,
        };
        self.event(ctx, a, end)
    }

    fn swap_steps(
        &mut self,
        ctx: &Context<'_>,
        a: &mut Attempt,
        input: Arc<Value>,
        input_text: Arc<str>,
        handler: Arc<CompiledHandler>,
    ) -> Ending {
        let refused = |mut failure: Failure| {
            failure.error.message = format!(
                "the new handler {}: {}; the old handler stays",
                handler.hash, failure.error.message
            );
            Ending::failure(Outcome::Rejected, failure)
        };
        let report = handler.instantiate(ctx.sandbox, self.name.clone(), &self.limits);
        let mut instance = match a.step("instantiate", || report) {
            Ok(i) => i,
            Err(e) => return refused(Failure::of(Phase::Instantiate, &e)),
        };
        let effective = match prepare_load(&self.limits, a, &mut instance, &input, &input_text) {
            Ok(e) => e,
            Err(f) => return refused(f),
        };
        let old_handler = std::mem::replace(&mut self.handler, handler);
        let source = a.source.clone();
        match self.commit(ctx, &source, input, input_text, effective.clone()) {
            Ok(()) => {
                self.instances_created += 1;
                self.support = Some(instance.support_level());
                self.instance = Some(instance);
                Ending::ok(Outcome::Applied, Some(effective))
            }
            Err(f) => {
                self.handler = old_handler;
                Ending::failure(Outcome::Rejected, f)
            }
        }
    }

    /// Keeps a restart-required configuration in the revision store, so
    /// the next start knows of it.
    fn persist_pending(&self, ctx: &Context<'_>) {
        let Some(store) = ctx.revisions else {
            return;
        };
        let pending = self.pending.as_ref().map(|p| p.to_string());
        if let Err(e) = store.set_pending(&self.name, pending.as_deref()) {
            tracing::warn!(component = %self.name, "cannot persist the pending configuration: {e}");
        }
    }
}

/// The steps of a first load in `instance` (a fresh one): `validate`, then
/// `reload(none, new)`, and the effective configuration. Nothing outside the
/// sandbox changes; the load, a handler swap and a rollback to another
/// handler commit what it gives.
fn prepare_load(
    limits: &Limits,
    a: &mut Attempt,
    instance: &mut HandlerInstance,
    new: &Arc<Value>,
    text: &str,
) -> Result<Arc<Value>, Failure> {
    let planned = check_and_plan(limits, a, instance, None, (new, text))?;
    let output = make_it_so(limits, a, instance, None, text, Some(planned.effective))
        .map_err(|e| Failure::of(Phase::Reload, &e))?;
    output
        .effective(new)
        .map_err(|m| Failure::host(Phase::Reload, Cause::BadOutput, m))
}

/// What making a configuration the one in force gave.
enum Made {
    /// 0.1.0: `reload`'s output, the effective configuration as text.
    Output(Option<String>),
    /// 0.2.0: the effective configuration `prepare` gave, already read as
    /// JSON (none: the candidate itself).
    Prepared(Option<Arc<Value>>),
}

impl Made {
    /// The effective configuration, `new` itself when the handler gave none.
    fn effective(self, new: &Arc<Value>) -> Result<Arc<Value>, String> {
        match self {
            Made::Output(output) => effective_of(output, new),
            Made::Prepared(effective) => Ok(effective.unwrap_or_else(|| new.clone())),
        }
    }
}

/// A 0.2.0 `prepare`'s effective configuration, read as JSON before
/// anything is applied.
fn prepared_effective(text: Option<String>) -> Result<Option<Arc<Value>>, String> {
    text.map(|t| {
        serde_json::from_str::<Value>(&t)
            .map(Arc::new)
            .map_err(|e| format!("the effective configuration is not JSON: {e}"))
    })
    .transpose()
}

/// What checking a configuration found: a restart and why, or none; and
/// the effective configuration a 0.2.0 `prepare` gave, read as JSON.
struct Planned {
    restart: Option<Vec<RestartReason>>,
    effective: Option<Arc<Value>>,
}

/// Checks `new` and plans how it replaces `old` (none at a first load),
/// with no effect: 0.1.0 `validate`, then `can-reload` when the support
/// level is partial (and, when it refuses, `can-reload` per changed field to
/// name them); 0.2.0 `prepare`, whose plan names the fields itself.
fn check_and_plan(
    limits: &Limits,
    a: &mut Attempt,
    instance: &mut HandlerInstance,
    old: Option<(&Value, &str)>,
    (new, text): (&Value, &str),
) -> Result<Planned, Failure> {
    let level = instance.support_level();
    match instance.contract() {
        Contract::V0_1 => {
            a.step("validate", || instance.validate(limits, text))
                .map_err(|e| Failure::of(Phase::Validate, &e))?;
            let Some((old, old_text)) = old else {
                return Ok(Planned {
                    restart: None,
                    effective: None,
                });
            };
            let restart = match level {
                SupportLevel::Full => None,
                SupportLevel::None => Some(changed_fields(old, new, SUPPORT_NONE)),
                SupportLevel::Partial => {
                    let can = a
                        .step("can_reload", || instance.can_reload(limits, old_text, text))
                        .map_err(|e| Failure::of(Phase::CanReload, &e))?;
                    (!can).then(|| probe_fields(limits, a, instance, old, old_text, new))
                }
            };
            Ok(Planned {
                restart,
                effective: None,
            })
        }
        Contract::V0_2 => {
            let prepared = a
                .step("prepare", || {
                    instance.prepare(limits, old.map(|(_, t)| t), text)
                })
                .map_err(|e| Failure::of(Phase::Prepare, &e))?;
            let effective = prepared_effective(prepared.effective)
                .map_err(|m| Failure::host(Phase::Prepare, Cause::BadOutput, m))?;
            let restart = match (old, prepared.plan) {
                // A first load takes effect however it would be planned.
                (None, _) => None,
                (Some((old, _)), Plan::Restart(reasons)) if reasons.is_empty() => {
                    Some(changed_fields(old, new, UNNAMED))
                }
                (Some(_), Plan::Restart(reasons)) => Some(reasons),
                (Some((old, _)), Plan::InPlace) if level == SupportLevel::None => {
                    Some(changed_fields(old, new, SUPPORT_NONE))
                }
                (Some(_), Plan::InPlace) => None,
            };
            Ok(Planned { restart, effective })
        }
    }
}

/// Makes `text` the configuration in force in the handler: 0.1.0 `reload`
/// (its output is the effective configuration); 0.2.0 `apply`, after
/// `prepare` again unless `prepared` holds what the last `prepare` on this
/// instance gave (the effective configuration is `prepare`'s).
fn make_it_so(
    limits: &Limits,
    a: &mut Attempt,
    instance: &mut HandlerInstance,
    old: Option<&str>,
    text: &str,
    prepared: Option<Option<Arc<Value>>>,
) -> Result<Made, CallFailure> {
    match instance.contract() {
        Contract::V0_1 => a
            .step("reload", || instance.reload(limits, old, text))
            .map(Made::Output),
        Contract::V0_2 => {
            let effective = match prepared {
                Some(effective) => effective,
                None => {
                    let p = a.step("prepare", || instance.prepare(limits, old, text))?;
                    prepared_effective(p.effective).map_err(|message| CallFailure::Fault {
                        cause: Cause::BadOutput,
                        message,
                    })?
                }
            };
            a.step("apply", || instance.apply(limits, old, text))?;
            Ok(Made::Prepared(effective))
        }
    }
}

const SUPPORT_NONE: &str = "the handler's support level is none: every change needs a restart";
const UNNAMED: &str = "the handler plans a restart without naming a field";

/// The top-level keys whose values differ between two objects.
fn changed_keys<'v>(
    o: &'v serde_json::Map<String, Value>,
    n: &'v serde_json::Map<String, Value>,
) -> std::collections::BTreeSet<&'v String> {
    o.keys()
        .chain(n.keys())
        .filter(|k| o.get(*k) != n.get(*k))
        .collect()
}

fn reason(field: String, reason: &str) -> RestartReason {
    RestartReason {
        field,
        reason: reason.to_owned(),
    }
}

/// The top-level fields that differ between `old` and `new`, each with
/// `why` (the whole configuration when either is not an object).
fn changed_fields(old: &Value, new: &Value, why: &str) -> Vec<RestartReason> {
    let keys = match (old, new) {
        (Value::Object(o), Value::Object(n)) => changed_keys(o, n),
        _ => Default::default(),
    };
    if keys.is_empty() {
        return vec![reason(String::new(), why)];
    }
    keys.into_iter()
        .map(|k| reason(crate::diff::pointer_token(k), why))
        .collect()
}

/// Most fields a 0.1.0 handler's `can-reload` is asked about one by one.
const MAX_PROBED_FIELDS: usize = 16;

/// A 0.1.0 handler refused to reload `old` → `new` in place but cannot say
/// why: for each changed top-level field, the candidate "old with that one
/// field as in new" is validated first (`can-reload` is only ever asked
/// about configurations the handler accepted; a candidate it refuses alone
/// is skipped), then `can-reload(old, candidate)`; those it refuses are
/// named. When none is refused alone (the fields only need a restart
/// together), when there are more than [`MAX_PROBED_FIELDS`], when the
/// probes take longer than one validation deadline in all, or when a probe
/// faults (the caller then replaces the instance), every changed field is
/// named.
fn probe_fields(
    limits: &Limits,
    a: &mut Attempt,
    instance: &mut HandlerInstance,
    old: &Value,
    old_text: &str,
    new: &Value,
) -> Vec<RestartReason> {
    const TOGETHER: &str = "can-reload refuses the changes together, none alone (a 0.1.0 \
                            handler gives no reason)";
    const ALONE: &str = "can-reload refuses this change alone (found by the host, field by \
                         field: a 0.1.0 handler gives no reason)";
    let all = changed_fields(old, new, TOGETHER);
    let (Value::Object(o), Value::Object(n)) = (old, new) else {
        return all;
    };
    let keys = changed_keys(o, n);
    if keys.len() > MAX_PROBED_FIELDS {
        return all;
    }
    let started = Instant::now();
    let mut refused = Vec::new();
    for key in keys {
        if started.elapsed() > limits.validation_timeout {
            return all;
        }
        let mut candidate = o.clone();
        match n.get(key) {
            Some(v) => candidate.insert(key.clone(), v.clone()),
            None => candidate.remove(key),
        };
        let candidate = Value::Object(candidate).to_string();
        match a.step("validate", || instance.validate(limits, &candidate)) {
            Ok(()) => {}
            Err(CallFailure::Refused(_)) => continue,
            Err(_) => return all,
        }
        match a.step("can_reload", || {
            instance.can_reload(limits, old_text, &candidate)
        }) {
            Ok(true) => {}
            Ok(false) => refused.push(reason(crate::diff::pointer_token(key), ALONE)),
            Err(_) => return all,
        }
    }
    if refused.is_empty() { all } else { refused }
}

/// The effective configuration: the handler's output when it gave one.
pub(crate) fn effective_of(output: Option<String>, new: &Arc<Value>) -> Result<Arc<Value>, String> {
    match output {
        None => Ok(new.clone()),
        Some(text) => serde_json::from_str::<Value>(&text)
            .map(Arc::new)
            .map_err(|e| format!("the effective configuration is not JSON: {e}")),
    }
}

impl ComponentState {
    /// A shadow of this component for a dry run: the same handler, limits
    /// and configuration in force; no instance, subscribers of its own.
    pub(crate) fn shadow(&self) -> ComponentState {
        let effective = self
            .committed
            .as_ref()
            .map_or_else(|| Arc::new(Value::Null), |c| c.effective.clone());
        ComponentState {
            name: self.name.clone(),
            handler: self.handler.clone(),
            instance: None,
            limits: self.limits.clone(),
            committed: self.committed.clone(),
            pending: None,
            degraded: false,
            subscribers: Arc::new(Mutex::new(Subscribers::new(effective))),
            support: None,
            instances_created: 0,
            base_version: self.base_version,
            published: Arc::new(Mutex::new(None)),
        }
    }

    /// A dry run in this (shadow) component: a fresh instance is brought to
    /// the configuration in force, as the live one is, then the reload is
    /// prepared in it up to the commit. The event is what a real reload
    /// would say (its fuel and time count the reload alone); nothing is
    /// recorded, persisted or published.
    pub(crate) fn dry_run(
        &mut self,
        ctx: &Context<'_>,
        req: Request,
    ) -> (Arc<Event>, Option<Arc<Value>>) {
        let committed = self
            .committed
            .clone()
            .expect("components are added with a configuration in force");
        let mut a = self.attempt(req.source);
        a.defer_commit = true;
        // The throw-away instance is brought to the configuration in force
        // first, as the live one is (a 0.2.0 handler is told `old` only on
        // an instance that has it); then a 0.1.0 handler reloads, and a
        // 0.2.0 handler only prepares, which has no effect.
        a.prepare_only = self.handler.contract() == Contract::V0_2;
        let warm = self.fresh_instance(ctx, &mut a).and_then(|()| {
            let instance = self.instance.as_mut().expect("fresh instance");
            a.step("reload", || {
                instance.load(&self.limits, &committed.input_text)
            })
            .map(drop)
        });
        let end = match warm {
            Err(e) => {
                let mut error = error_of(&e);
                error.message = format!(
                    "a fresh instance could not be brought to the configuration in force: {}",
                    error.message
                );
                Ending::failed(Outcome::Rejected, Phase::Instantiate, e.cause(), error)
            }
            Ok(()) => {
                a.fuel = 0;
                a.started = Instant::now();
                self.reload_steps(ctx, &mut a, &committed, req.input)
            }
        };
        self.instance = None;
        let effective = end.effective.clone();
        (self.event(ctx, a, end), effective)
    }
}

/// One member of a batch: its component, locked, and its request.
pub(crate) type Member<'a> = (&'a mut ComponentState, Request);

/// Reloads every member as one: each is prepared in its own handler
/// (parse, unchanged?, validate, decide, reload) without committing; then
/// either every change is staged with its subscribers, written in one
/// SQLite transaction and published, or — when any member failed anywhere —
/// every member that got as far as its handler's `reload` is rolled back,
/// so every member keeps its old configuration and no subscriber sees a
/// mix. Members come locked, in name order. Gives one event per member.
pub(crate) fn reload_batch(
    ctx: &Context<'_>,
    members: Vec<Member<'_>>,
    batch: &str,
) -> Vec<Arc<Event>> {
    let mut prepared = Vec::with_capacity(members.len());
    for (state, mut req) in members {
        req.source.batch = Some(batch.to_owned());
        let mut a = state.attempt(req.source);
        a.defer_commit = true;
        let end = match state.committed.clone() {
            Some(committed) => state.reload_steps(ctx, &mut a, &committed, req.input),
            None => Ending::failed(
                Outcome::Rejected,
                Phase::Parse,
                Cause::Invalid,
                host_error("the component has no configuration in force"),
            ),
        };
        prepared.push((state, a, end));
    }
    // The first member that cannot commit, and why.
    let mut failure = prepared
        .iter()
        .find(|(_, a, end)| a.ready.is_none() && end.outcome != Outcome::Unchanged)
        .map(|(state, _, end)| {
            let why = end
                .failure
                .as_ref()
                .map(|f| format!("{:?} in {:?}: {}", f.cause, f.phase, f.error.message))
                .unwrap_or_else(|| format!("{:?}", end.outcome));
            format!("member {:?} cannot commit ({why})", state.name.as_ref())
        });
    // Every member ready: stage all, write all, publish all.
    let mut staged = Vec::new();
    if failure.is_none() {
        for (state, a, _) in prepared.iter() {
            let Some(ready) = &a.ready else { continue };
            let stage = state
                .subscribers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .stage(ready.effective.clone());
            match stage {
                Ok(s) => staged.push((state.name.clone(), s)),
                Err(m) => {
                    failure = Some(format!(
                        "a subscriber of member {:?} refused it: {m}",
                        state.name.as_ref()
                    ));
                    break;
                }
            }
        }
    }
    if failure.is_none()
        && let Some(store) = ctx.revisions
    {
        let revisions: Vec<NewRevision<'_>> = prepared
            .iter()
            .filter_map(|(state, a, _)| {
                let ready = a.ready.as_ref()?;
                Some(NewRevision {
                    revision: state.revision(
                        &a.source,
                        state.next_version(),
                        &ready.text,
                        &ready.effective,
                    ),
                    wasm: &state.handler.wasm,
                })
            })
            .collect();
        if let Err(e) = store.write(&revisions) {
            failure = Some(format!("cannot persist the batch's revisions: {e}"));
        }
    }
    let mut events = Vec::with_capacity(prepared.len());
    match failure {
        None => {
            let mut staged = staged.into_iter();
            for (state, mut a, end) in prepared {
                if let Some(ready) = a.ready.take() {
                    let (_, s) = staged.next().expect("one staged value per ready member");
                    state.publish(s, ready, a.source.clone());
                }
                events.push(state.event(ctx, a, end));
            }
        }
        Some(why) => {
            drop(staged);
            let storage = why.starts_with("cannot persist");
            for (state, mut a, end) in prepared {
                let end = if a.ready.take().is_some() {
                    let (phase, cause) = if storage {
                        (Phase::Commit, Cause::Storage)
                    } else {
                        (Phase::Commit, Cause::Batch)
                    };
                    let failure =
                        Failure::host(phase, cause, format!("batch {batch} aborted: {why}"));
                    let end = state.recover(ctx, &mut a, failure, true);
                    // Without the handler's rollback (rollback_on_failure =
                    // false) the instance would keep the batch's
                    // configuration: a fresh one is brought back instead.
                    if end.outcome == Outcome::Rejected {
                        match state.restore(ctx, &mut a) {
                            Ok(()) => Ending {
                                outcome: Outcome::RolledBack,
                                ..end
                            },
                            Err((rphase, rerr)) => match end.failure {
                                Some(f) => state.degraded_ending(f, rphase, &rerr),
                                None => end,
                            },
                        }
                    } else {
                        end
                    }
                } else if end.outcome == Outcome::Unchanged {
                    Ending::ok(Outcome::Unchanged, end.effective)
                } else {
                    end
                };
                events.push(state.event(ctx, a, end));
            }
        }
    }
    events
}

impl ComponentState {
    /// Publishes a batch member's staged value and makes it the one in force.
    fn publish(
        &mut self,
        staged: crate::manager::subscribers::Staged,
        ready: Ready,
        source: RevisionSource,
    ) {
        let version = self.next_version();
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .publish(staged);
        self.committed = Some(Committed {
            input: ready.new,
            input_text: ready.text,
            effective: ready.effective,
            version,
            source,
        });
        self.pending = None;
        self.degraded = false;
    }
}
