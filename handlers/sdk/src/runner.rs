//! The calls of contract 0.2 over a [`Handler`], in plain Rust.

use crate::{Failure, Handler, Plan, Prepared, Restart, SupportLevel};
use std::borrow::Cow;
use std::fmt;

/// The reason given for every change of a handler whose support level is
/// [`SupportLevel::None`] when its [`Handler::restart`] names no field.
pub(crate) const SUPPORT_NONE_REASON: &str =
    "this handler's support level is none: every change needs a restart";

/// A configuration text, what it parsed to and its effective configuration.
struct Loaded<C> {
    text: String,
    config: C,
    effective: String,
}

/// Runs a [`Handler`] as contract 0.2's calls do: [`prepare`](Runner::prepare),
/// [`apply`](Runner::apply), [`rollback`](Runner::rollback).
///
/// [`export_handler!`](crate::export_handler) keeps one `Runner` per instance
/// and forwards the component's exports to it; natively (tests, benchmarks) a
/// `Runner` is used directly, with the same results.
///
/// A `Runner` holds the handler, the configuration in force (the last one
/// applied or rolled back to successfully, with its text and effective
/// configuration) and the last prepared one, so that `apply` right after
/// `prepare` of the same text does not parse and check it again.
pub struct Runner<H: Handler> {
    handler: H,
    in_force: Option<Loaded<H::Config>>,
    prepared: Option<Loaded<H::Config>>,
}

impl<H: Handler> Default for Runner<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: Handler> fmt::Debug for Runner<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("handler", &std::any::type_name::<H>())
            .field("in_force", &self.in_force.as_ref().map(|l| &l.text))
            .field("prepared", &self.prepared.as_ref().map(|l| &l.text))
            .finish()
    }
}

impl<H: Handler> Runner<H> {
    /// A runner with `H::default()` and no configuration in force.
    pub fn new() -> Self {
        Runner {
            handler: H::default(),
            in_force: None,
            prepared: None,
        }
    }

    /// The handler's support level, [`Handler::SUPPORT`].
    pub fn support_level(&self) -> SupportLevel {
        H::SUPPORT
    }

    /// Parses and checks `text`, and computes its effective configuration.
    fn load(text: &str) -> Result<Loaded<H::Config>, Failure> {
        let config = H::parse(text)?;
        H::check(&config)?;
        let effective = H::effective(&config);
        Ok(Loaded {
            text: text.to_owned(),
            config,
            effective,
        })
    }

    /// Checks `new` and plans how it replaces `old`; changes nothing in force.
    ///
    /// `new` is parsed ([`Handler::parse`]) and checked ([`Handler::check`])
    /// once; its failure is returned as is. `old` (none on a first load and on
    /// a fresh instance) is the configuration in force when its text is the
    /// one in force, else it is parsed; an `old` that does not parse counts
    /// as none. The plan is
    ///
    /// 1. [`Plan::InPlace`] without `old`, or when both effective
    ///    configurations ([`Handler::effective`]) are equal (so a plan from a
    ///    configuration to itself is always in place);
    /// 2. with [`SupportLevel::None`], [`Plan::Restart`] with the reasons of
    ///    [`Handler::restart`], or if it gives none one reason with field `""`
    ///    and reason "this handler's support level is none: every change
    ///    needs a restart";
    /// 3. [`Plan::Restart`] when [`Handler::restart`] gives reasons;
    /// 4. else [`Plan::InPlace`].
    ///
    /// The result's `effective` is always `Some` effective configuration of
    /// `new`. The parsed `new` is kept for [`apply`](Runner::apply).
    pub fn prepare(&mut self, old: Option<&str>, new: &str) -> Result<Prepared, Failure> {
        self.prepared = None;
        let candidate = Self::load(new)?;
        let parsed_old;
        let old = match (old, &self.in_force) {
            (None, _) => None,
            (Some(text), Some(in_force)) if in_force.text == text => {
                Some((&in_force.config, Cow::Borrowed(in_force.effective.as_str())))
            }
            (Some(text), _) => {
                parsed_old = H::parse(text).ok();
                parsed_old
                    .as_ref()
                    .map(|config| (config, Cow::Owned(H::effective(config))))
            }
        };
        let plan = match old {
            None => Plan::InPlace,
            Some((_, old_effective)) if *old_effective == candidate.effective => Plan::InPlace,
            Some((old, _)) => {
                let reasons = H::restart(old, &candidate.config);
                if H::SUPPORT == SupportLevel::None && reasons.is_empty() {
                    Plan::Restart(vec![Restart::new("", SUPPORT_NONE_REASON)])
                } else if reasons.is_empty() {
                    Plan::InPlace
                } else {
                    Plan::Restart(reasons)
                }
            }
        };
        let effective = candidate.effective.clone();
        self.prepared = Some(candidate);
        Ok(Prepared {
            plan,
            effective: Some(effective),
        })
    }

    /// Makes `new` the configuration in force.
    ///
    /// When `new` is the text last prepared, its parsed configuration is
    /// reused: no second parse or check. Otherwise (a host that skipped
    /// `prepare`) it is parsed and checked again. Then [`Handler::apply`] is
    /// called with the configuration in force on this instance (none at
    /// first; the `old` text is not parsed) and `new`; on success `new`
    /// becomes the configuration in force. On failure nothing changes.
    pub fn apply(&mut self, old: Option<&str>, new: &str) -> Result<(), Failure> {
        let _ = old;
        let candidate = match self.prepared.take() {
            Some(prepared) if prepared.text == new => prepared,
            _ => Self::load(new)?,
        };
        let in_force = self.in_force.as_ref().map(|loaded| &loaded.config);
        match self.handler.apply(in_force, &candidate.config) {
            Ok(()) => {
                self.in_force = Some(candidate);
                Ok(())
            }
            Err(failure) => {
                self.prepared = Some(candidate);
                Err(failure)
            }
        }
    }

    /// Returns to `config`, the last configuration applied successfully:
    /// parses and checks it, calls [`Handler::rollback`] and, on success,
    /// makes it the configuration in force.
    pub fn rollback(&mut self, config: &str) -> Result<(), Failure> {
        let loaded = Self::load(config)?;
        self.handler.rollback(&loaded.config)?;
        self.in_force = Some(loaded);
        Ok(())
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The configuration in force, if any.
    pub fn config(&self) -> Option<&H::Config> {
        self.in_force.as_ref().map(|loaded| &loaded.config)
    }

    /// The text of the configuration in force, if any.
    pub fn text(&self) -> Option<&str> {
        self.in_force.as_ref().map(|loaded| loaded.text.as_str())
    }

    /// The effective configuration in force, if any.
    pub fn effective(&self) -> Option<&str> {
        self.in_force
            .as_ref()
            .map(|loaded| loaded.effective.as_str())
    }
}
