//! What follows a transition that this thread won: deadlines, the open
//! period's start, events, and waiting calls released or re-armed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Waker;
use std::time::Duration;

use super::deadline::Moment;
use super::*;
use crate::events::{EventKind, TransitionReason, call_guarded};
use crate::loom::{Ordering, lock};
use crate::open_period::{AnyDebug, PeriodEnd, TripContext};
use crate::policy::PolicyStats;
use crate::state::{State, Word};
use crate::ticket::TicketKind;
use crate::waiters::Grant;

impl Core {
    /// Everything that follows a transition that this thread won.
    pub(super) fn entered(
        &self,
        from: State,
        word: Word,
        reason: TransitionReason,
        error: Option<&dyn AnyDebug>,
    ) {
        let to = word.state();
        let generation = word.generation();
        let now = self.now();
        // When the transition took effect: a period that ended before anyone
        // looked (transitions out of a period are made lazily, by the next
        // call or read) is stamped at its deadline, not when it was noticed.
        let took_effect = match reason {
            TransitionReason::OpenPeriodEnded if from == State::Open => {
                self.open_until.load(Ordering::Acquire)
            }
            TransitionReason::HalfOpenTimedOut => self.cold.half_open_until.load(Ordering::Acquire),
            _ => None,
        }
        .map(Moment::as_duration)
        .filter(|at| *at <= now)
        .unwrap_or(now);
        if from == State::Open {
            self.open_until.store(None, Ordering::Release);
            self.cold.freeze_bound.store(None, Ordering::Release);
        }
        if from == State::HalfOpen {
            self.cold.half_open_until.store(None, Ordering::Release);
        }
        self.clear_freeze(|slot| slot < generation);
        *lock(&self.cold.state_since) = self.totals.snapshot();
        // Opening is news an operator acts on (WARN); the rest is INFO.
        if to.is_open() {
            crate::events::trace(|| {
                tracing::warn!(
                    breaker = self.name().unwrap_or(""),
                    %from,
                    %to,
                    %reason,
                    "tripswitch: state changed"
                )
            });
        } else {
            crate::events::trace(|| {
                tracing::info!(
                    breaker = self.name().unwrap_or(""),
                    %from,
                    %to,
                    %reason,
                    "tripswitch: state changed"
                )
            });
        }
        if let Some(shared) = self.settings.shared() {
            call_guarded("the shared state's transition hook", self.name(), || {
                shared.transitioned(from, to, reason)
            });
        }

        match to {
            State::Open => self.opened(from, word, reason, error, now, took_effect),
            State::HalfOpen => {
                self.cold.half_open_successes.store(0, Ordering::Release);
                self.cold
                    .half_open_leased
                    .store(reason == TransitionReason::Shared, Ordering::Release);
                self.open_probe_tally(generation);
                let max = match reason {
                    TransitionReason::Shared => {
                        let lease = self.cold.shared_half_open_for.load(Ordering::Acquire);
                        let lease = Duration::from_nanos(lease);
                        Some(
                            self.settings
                                .half_open
                                .max_duration
                                .map_or(lease, |m| m.min(lease)),
                        )
                    }
                    _ => self.settings.half_open.max_duration,
                };
                let mut due = false;
                if let Some(max) = max {
                    // From when the state took effect, as its event is
                    // stamped: the periods that follow agree with the stamps.
                    let until = Moment::after(took_effect, max);
                    let remaining = until.remaining(now);
                    self.cold
                        .half_open_until
                        .store(Some(until), Ordering::Release);
                    if !self.settings.fail_fast || self.settings.eager_transitions {
                        self.install_freeze(generation, Some(until), None);
                        due |= self.arm_backup(generation, remaining);
                    }
                    if self.settings.eager_transitions {
                        due |= self.arm_alarm(generation, remaining);
                    }
                }
                self.emit_transition(from, to, reason, took_effect);
                let observers = self.waiters().lock().release_observers();
                observers.into_iter().for_each(Waker::wake);
                self.grant_probes(generation);
                if due && self.settings.eager_transitions {
                    self.refresh(false);
                }
            }
            State::Closed | State::MetricsOnly | State::Disabled => {
                if to != State::Disabled {
                    for policy in self.policies.iter() {
                        policy.reset();
                    }
                }
                if to == State::Closed {
                    self.cold.openings.store(0, Ordering::Relaxed);
                }
                self.emit_transition(from, to, reason, took_effect);
                let kind = match to {
                    State::Disabled => TicketKind::PassThrough,
                    State::Closed if self.settings.seed_accounting => TicketKind::Released,
                    _ => TicketKind::Counted,
                };
                // Waiters are let in only if this state still holds: a
                // listener (or another thread) that moved the breaker on
                // meanwhile (`force_open` from the transition's event) keeps
                // them waiting for the state it chose.
                let wakers = {
                    let mut queue = self.waiters().lock();
                    if self.load().generation() == generation {
                        queue.grant_all(Grant::Admit { generation, kind })
                    } else {
                        Vec::new()
                    }
                };
                wakers.into_iter().for_each(Waker::wake);
            }
            State::ForcedOpen => self.emit_transition(from, to, reason, took_effect),
        }
    }

    pub(super) fn opened(
        &self,
        from: State,
        word: Word,
        reason: TransitionReason,
        error: Option<&dyn AnyDebug>,
        now: Duration,
        took_effect: Duration,
    ) {
        let generation = word.generation();
        let openings = match from {
            State::HalfOpen => self.cold.openings.fetch_add(1, Ordering::Relaxed),
            // A shared store moved the deadline: the same opening.
            State::Open => self.cold.openings.load(Ordering::Relaxed).saturating_sub(1),
            _ => {
                self.cold.openings.store(1, Ordering::Relaxed);
                0
            }
        };
        let stats = self.policy_stats(now);
        let context = TripContext {
            error,
            reason,
            consecutive_openings: openings,
            consecutive_failures: stats.consecutive_failures,
            failure_rate: stats.failure_rate,
            failures_in_window: stats.failures_in_window,
            slow_call_rate: stats.slow_call_rate,
        };
        let period = &self.settings.open_period;
        let end = if reason == TransitionReason::Shared {
            let remaining = self.cold.shared_open_for.load(Ordering::Acquire);
            Ok(PeriodEnd::After(Duration::from_nanos(remaining)))
        } else {
            catch_unwind(AssertUnwindSafe(|| period.start(&context)))
        };
        match end {
            Ok(PeriodEnd::After(duration)) => {
                // From when the opening took effect, as its event is stamped
                // (a half-open state that timed out before anyone looked).
                let until = Moment::after(took_effect, duration);
                let remaining = until.remaining(now);
                self.period_due.store(false, Ordering::Release);
                self.cold.freeze_bound.store(None, Ordering::Release);
                self.open_until.store(Some(until), Ordering::Release);
                self.install_freeze(generation, Some(until), None);
                let mut due = self.arm_backup(generation, remaining);
                if self.settings.fail_fast || self.settings.eager_transitions {
                    // Rejections do not read the clock: an alarm tells them
                    // when the period is over (and, with eager transitions,
                    // ends it).
                    due |= self.arm_alarm(generation, remaining);
                }
                self.emit_transition(from, State::Open, reason, took_effect);
                if due && self.settings.eager_transitions {
                    // Over already (a zero period, or one that ended before
                    // anyone looked): no alarm will ring for it.
                    self.freeze_woken.store(true, Ordering::SeqCst);
                    self.waiters().wake_all();
                    self.refresh(false);
                    return;
                }
            }
            Ok(PeriodEnd::Future(future)) => {
                // The freeze ends when its future does, and at the latest
                // `max_freeze` from now, whoever polls it (or nobody).
                let bound = Moment::after(now, self.settings.max_freeze());
                self.cold.freeze_bound.store(Some(bound), Ordering::Release);
                self.install_freeze(generation, Some(bound), Some(future));
                self.arm_backup(generation, self.settings.max_freeze());
                self.emit_transition(from, State::Open, reason, took_effect);
                // Start the freeze at once, so that a freeze function's side
                // effects happen when the breaker trips, as in the seed.
                self.drive_freeze();
            }
            Err(_) => {
                crate::events::trace(|| {
                    tracing::error!(
                        breaker = self.name().unwrap_or(""),
                        "tripswitch: the freeze function panicked; the open period ends at once"
                    )
                });
                self.emit_transition(from, State::Open, reason, took_effect);
                self.end_open(generation);
                return;
            }
        }
        // Calls that were already queued (for a probe slot, or the seed's
        // retry) have a new deadline to set their alarms by, and maybe a
        // freeze to drive: all are woken (each on its own runtime), so that
        // none depends on another's task being run.
        self.freeze_woken.store(true, Ordering::SeqCst);
        self.waiters().wake_all();
    }

    pub(super) fn emit_transition(
        &self,
        from: State,
        to: State,
        reason: TransitionReason,
        now: Duration,
    ) {
        self.emit(EventKind::Transition { from, to, reason }, Some(now));
    }

    /// The policies' counts at `at`: for each, the first policy that keeps it.
    pub(super) fn policy_stats(&self, at: Duration) -> PolicyStats {
        self.policies
            .iter()
            .fold(PolicyStats::default(), |stats, policy| {
                stats.or(policy.stats(at))
            })
    }
}
