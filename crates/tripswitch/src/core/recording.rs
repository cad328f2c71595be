//! Recording a run's outcome: totals, `on_error` and listeners, the trip
//! policies in the run's generation, and a probe's verdict.

use std::any::TypeId;
use std::fmt;
use std::time::Duration;

use super::rules::Move;
use super::*;
use crate::events::{Event, EventKind, call_guarded, log_error, unless_reentered};
use crate::half_open::ProbeJudge;
use crate::loom::lock;
use crate::metrics::Tally;
use crate::open_period::AnyDebug;
use crate::policy::{CallRecord, ConsecutiveState, RatePolicy, RateState};
use crate::state::State;
use crate::ticket::{Ticket, TicketKind};

/// How a run ended.
#[derive(Clone, Copy)]
pub(crate) enum Verdict<'a> {
    Success,
    Failure(&'a dyn AnyDebug),
    Ignored(&'a dyn AnyDebug),
    Cancelled,
}

impl Core {
    /// Records how a run ended. Returns whether the breaker is open after it
    /// (because this run tripped it, or because it already was).
    pub(crate) fn record(&self, ticket: Ticket, verdict: Verdict<'_>) -> bool {
        if let Verdict::Failure(error) = verdict
            && let Some(consecutive) = self.lone_consecutive_count()
            && self.load().0 == ticket.closed_word()
        {
            return self.failure_to_lone_count(consecutive, ticket, error);
        }
        if ticket.kind() == TicketKind::PassThrough {
            return false;
        }
        let (elapsed, at) = match ticket.started() {
            NOT_TIMED if self.needs_time => (None, Some(self.now())),
            NOT_TIMED => (None, None),
            started => {
                let now = self.now();
                (
                    Some(now.saturating_sub(Duration::from_nanos(started))),
                    Some(now),
                )
            }
        };
        let measured = !matches!(verdict, Verdict::Cancelled | Verdict::Ignored(_));
        let slow = measured
            && matches!((elapsed, self.settings.slow_after()), (Some(e), Some(t)) if e > t);

        self.count_outcome(
            ticket,
            match verdict {
                Verdict::Success => Tally::Success,
                Verdict::Failure(_) => Tally::Failure,
                Verdict::Ignored(_) => Tally::Ignored,
                Verdict::Cancelled => Tally::Cancelled,
            },
            slow,
        );

        if ticket.kind() == TicketKind::Released {
            return self.load().state().is_open();
        }
        self.report(verdict, elapsed, slow, at);

        let word = self.load();
        if word.generation() != ticket.generation() {
            // A transition happened while the call ran: it counts in the
            // totals, not in the new state.
            return word.state().is_open();
        }
        let error = match verdict {
            Verdict::Failure(error) => Some(error),
            _ => None,
        };
        match (ticket.kind(), word.state()) {
            (TicketKind::Counted, State::Closed | State::MetricsOnly) => {
                let failed = match verdict {
                    Verdict::Success => false,
                    Verdict::Failure(_) => true,
                    Verdict::Ignored(_) | Verdict::Cancelled => return false,
                };
                let call = CallRecord {
                    failed,
                    slow,
                    elapsed,
                    at,
                };
                let mut trip = false;
                // Which policies tripped (the first 64), for their events.
                let mut tripped = 0u64;
                for (index, policy) in self.policies.iter().enumerate() {
                    // Every policy sees every call, even once one has tripped.
                    if policy.record(&call) {
                        trip = true;
                        tripped |= 1u64.checked_shl(index as u32).unwrap_or(0);
                    }
                }
                if tripped != 0 && self.listening() {
                    self.announce_tripped(tripped, at);
                }
                if trip && word.state() == State::Closed {
                    let tripped = self.apply(Move::Trip, Some(word.generation()), error);
                    return tripped || self.load().state().is_open();
                }
                false
            }
            (TicketKind::Probe, State::HalfOpen) => {
                let generation = ticket.generation();
                let failed = matches!(verdict, Verdict::Failure(_));
                match verdict {
                    Verdict::Ignored(_) | Verdict::Cancelled => self.return_probe(generation),
                    _ if matches!(self.settings.half_open.judge, ProbeJudge::Rate { .. }) => {
                        match self.judge_probe(generation, failed, slow) {
                            Some(decision) => {
                                self.apply(decision, Some(generation), error);
                            }
                            None => self.release_probe(generation),
                        }
                    }
                    Verdict::Success if !(slow && self.slow_probe_fails) => {
                        self.probe_succeeded(generation);
                    }
                    _ => {
                        self.apply(Move::ProbeFailed, Some(generation), error);
                    }
                }
                self.load().state().is_open()
            }
            _ => word.state().is_open(),
        }
    }

    /// Adds a run's outcome to the totals. A late run (one that started
    /// before the breaker's last transition) counts in the totals but not
    /// in [`Metrics::current`](crate::Metrics::current), gobreaker's
    /// per-generation counts: it is added to the state's base as well, under
    /// the lock that [`metrics`](Core::metrics) reads both under. Late runs
    /// are rare (they straddle a transition), so the lock is off the hot path.
    fn count_outcome(&self, ticket: Ticket, tally: Tally, slow: bool) {
        if self.load().generation() == ticket.generation() {
            self.totals.add(tally);
            if slow {
                self.totals.add(Tally::Slow);
            }
        } else {
            let mut base = lock(&self.cold.state_since);
            self.totals.add(tally);
            base.add(tally);
            if slow {
                self.totals.add(Tally::Slow);
                base.add(Tally::Slow);
            }
        }
    }

    /// [`record`](Self::record) for a failure counted in its own closed
    /// generation, in a breaker whose only policy is a consecutive count
    /// and which neither times runs nor has listeners (the same condition
    /// as the success's short path, `SuccessPath`): what the general path
    /// does for it, without the steps that cannot apply (no elapsed time,
    /// no slow call, no event, no rate to announce, no policy to walk).
    #[inline(never)]
    fn failure_to_lone_count(
        &self,
        consecutive: &ConsecutiveState,
        ticket: Ticket,
        error: &dyn AnyDebug,
    ) -> bool {
        self.totals.add(Tally::Failure);
        self.report(Verdict::Failure(error), None, false, None);
        // `on_error` may have moved the breaker: as in the general path,
        // the failure then counts in the totals only.
        let word = self.load();
        if word.generation() != ticket.generation() {
            return word.state().is_open();
        }
        if consecutive.record(true) && word.state() == State::Closed {
            let tripped = self.apply(Move::Trip, Some(word.generation()), Some(error));
            return tripped || self.load().state().is_open();
        }
        false
    }

    /// Raises [`EventKind::RateExceeded`] for the rate policies among
    /// `tripped` (a bit per policy) that have not raised it yet.
    #[cold]
    #[inline(never)]
    fn announce_tripped(&self, tripped: u64, at: Option<Duration>) {
        let at = at.unwrap_or_else(|| self.now());
        for (index, policy) in self.policies.iter().enumerate().take(64) {
            if tripped & (1 << index) == 0 {
                continue;
            }
            let policy: &dyn std::any::Any = policy.as_ref();
            if let Some(rate) = policy.downcast_ref::<RatePolicy>() {
                self.announce(rate.state(), at);
            }
        }
    }

    /// Raises `rate`'s [`EventKind::RateExceeded`], unless it was raised
    /// since its window was last cleared.
    pub(super) fn announce(&self, rate: &RateState, at: Duration) {
        if let Some(report) = rate.announce(at) {
            self.emit(
                EventKind::RateExceeded {
                    measure: report.measure,
                    rate: report.rate,
                    threshold: report.threshold,
                    calls: report.calls,
                    failed_or_slow: report.failed_or_slow,
                },
                Some(at),
            );
        }
    }

    /// Tells `on_error` and the listeners about a counted run.
    pub(super) fn report(
        &self,
        verdict: Verdict<'_>,
        elapsed: Option<Duration>,
        slow: bool,
        at: Option<Duration>,
    ) {
        if let Verdict::Failure(error) = verdict
            && (self.settings.on_error().is_some()
                || tracing::level_enabled!(tracing::Level::DEBUG))
        {
            // The default (none set) is a `tracing` line at DEBUG, under the
            // same guard: a subscriber is user code too. When DEBUG lines
            // are off, the default has nothing to write, and the guards
            // (a thread-local stack and an unwind boundary) are skipped.
            unless_reentered(self.id(), || {
                call_guarded("the on_error callback", self.name(), || {
                    match self.settings.on_error() {
                        Some(on_error) => on_error(error as &dyn fmt::Debug),
                        None => log_error(self.name(), error as &dyn fmt::Debug),
                    }
                });
            });
        }
        if !self.has_listeners {
            return;
        }
        let kind = match verdict {
            Verdict::Success => EventKind::Success { elapsed },
            Verdict::Failure(error) => EventKind::Failure {
                error: error as &dyn fmt::Debug,
                elapsed,
            },
            Verdict::Ignored(error) => EventKind::Ignored {
                error: error as &dyn fmt::Debug,
            },
            Verdict::Cancelled => return,
        };
        self.emit(kind, at);
        if slow && let (Some(elapsed), Some(threshold)) = (elapsed, self.settings.slow_after()) {
            self.emit(EventKind::Slow { elapsed, threshold }, at);
        }
    }

    /// Whether an error of type `E` is one the breaker was told to ignore.
    pub(crate) fn is_ignored<E: 'static>(&self, error: &E) -> bool {
        let rules = self.settings.error_rules();
        !rules.is_empty()
            && rules
                .iter()
                .any(|rule| rule.type_id == TypeId::of::<E>() && (rule.ignore)(error))
    }

    /// Whether anybody listens to events.
    pub(crate) fn listening(&self) -> bool {
        self.has_listeners
    }

    /// A waiting call was let through after `waited`.
    pub(crate) fn waited(&self, waited: Duration) {
        self.emit(EventKind::Waited { waited }, None);
    }

    #[inline]
    pub(super) fn emit(&self, kind: EventKind<'_>, at: Option<Duration>) {
        if self.has_listeners {
            self.emit_to_listeners(kind, at);
        }
    }

    #[inline(never)]
    pub(super) fn emit_to_listeners(&self, kind: EventKind<'_>, at: Option<Duration>) {
        let event = Event {
            breaker: self.name(),
            at: at.unwrap_or_else(|| self.now()),
            kind,
        };
        let (own, users) = self.settings.listeners().split_at(
            self.settings
                .own_listeners()
                .min(self.settings.listeners().len()),
        );
        for listener in own {
            call_guarded("an event listener", self.name(), || listener(&event));
        }
        if !users.is_empty() {
            unless_reentered(self.id(), || {
                for listener in users {
                    call_guarded("an event listener", self.name(), || listener(&event));
                }
            });
        }
    }
}
