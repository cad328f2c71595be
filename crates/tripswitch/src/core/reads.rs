//! Reads of the breaker from outside a call: state, metrics, retry-after;
//! each performs a transition that is due first.

use std::time::Duration;

use super::admission::TRANSITIONS_PER_LOOK;
use super::*;
use crate::loom::{Ordering, lock};
use crate::metrics::Metrics;
use crate::state::State;

impl Core {
    /// Performs a transition that is due (an open period that has run out)
    /// without waiting for a call to notice it. With `poll_freeze`, an async
    /// freeze is polled once to learn whether it is over (that takes the
    /// freeze slot's lock briefly); without, only atomics and the clock are read.
    pub(crate) fn refresh(&self, poll_freeze: bool) {
        for _ in 0..TRANSITIONS_PER_LOOK {
            let word = self.load();
            match word.state() {
                State::Open => match self.open_until.load(Ordering::Acquire) {
                    None => {
                        if !poll_freeze || !self.drive_freeze() {
                            return;
                        }
                    }
                    Some(until) if until.has_come(self.now()) => {
                        self.end_open(word.generation());
                    }
                    Some(_) => return,
                },
                State::HalfOpen => {
                    let until = self.cold.half_open_until.load(Ordering::Acquire);
                    if until.is_some_and(|until| until.has_come(self.now())) {
                        self.period_elapsed(State::HalfOpen, word.generation());
                    } else {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// How long until calls are let through (see [`Metrics::retry_after`]).
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self.load().state() {
            State::Closed | State::Disabled | State::MetricsOnly => Some(Duration::ZERO),
            State::Open => self
                .open_until
                .load(Ordering::Acquire)
                .map(|until| until.remaining(self.now())),
            State::HalfOpen | State::ForcedOpen => None,
        }
    }

    pub(crate) fn metrics(&self) -> Metrics {
        self.refresh(true);
        let word = self.load();
        let now = self.now();
        // Before the first transition, the counts since the state was
        // entered are the totals (and nothing is allocated to say so).
        // After it, both under the lock: a late run adds to the totals and
        // to the base together (see `count_outcome`).
        let (current, totals) = match self.cold.get().map(|cold| &cold.state_since) {
            None => {
                let totals = self.totals.snapshot();
                (totals, totals)
            }
            Some(since) => {
                let since = lock(since);
                let totals = self.totals.snapshot();
                (totals.saturating_sub(*since), totals)
            }
        };
        let stats = self.policy_stats(now);
        Metrics {
            state: word.state(),
            failure_rate: stats.failure_rate,
            slow_call_rate: stats.slow_call_rate,
            consecutive_failures: stats.consecutive_failures,
            calls_in_window: stats.calls_in_window,
            current,
            totals,
            probes_in_flight: if word.state() == State::HalfOpen {
                word.probes()
            } else {
                0
            },
            waiting: self.waiting(),
            retry_after: self.retry_after(),
        }
    }
}
