//! The half-open state's own account of the calls it let through: how many
//! (for a [`budget`](crate::HalfOpen::budget)) and how they ended (for
//! [`judged_by_rate`](crate::HalfOpen::judged_by_rate)).
//!
//! Kept behind a short lock, and only by breakers whose half-open state
//! needs it: the half-open state is the cold path (a few calls between
//! an open period and the decision), the lock is never held while user
//! code runs or across an await, and the generation it holds ties it to
//! one half-open state, so a call of an earlier one cannot spend or judge
//! in a later one.

use super::rules::Move;
use super::*;
use crate::half_open::ProbeJudge;
use crate::loom::lock;

/// The account of one half-open state.
#[derive(Debug, Default)]
pub(crate) struct ProbeTally {
    /// The half-open state's generation; the account is void in any other.
    generation: u64,
    /// Calls let through, less those that gave their place back.
    admitted: u32,
    successes: u32,
    failures: u32,
    slow: u32,
}

impl Core {
    /// Opens the account of the half-open state of `generation`.
    pub(super) fn open_probe_tally(&self, generation: u64) {
        if self.keeps_probe_tally {
            let mut tally = lock(&self.cold.probe_tally);
            // A probe may have opened it first (see `spend_budget`).
            if tally.generation != generation {
                *tally = ProbeTally {
                    generation,
                    ..ProbeTally::default()
                };
            }
        }
    }

    /// Takes one place of the half-open state's budget for a probe of
    /// `generation` (which already holds a slot); `false` when the budget
    /// is spent or the state is over.
    #[inline(always)]
    pub(super) fn spend_budget(&self, generation: u64) -> bool {
        !self.keeps_probe_tally || self.spend_budget_locked(generation)
    }

    #[inline(never)]
    fn spend_budget_locked(&self, generation: u64) -> bool {
        let budget = self.settings.half_open.budget.unwrap_or(u32::MAX);
        let mut tally = lock(&self.cold.probe_tally);
        if tally.generation != generation {
            // The first probe may come before the thread that made the
            // transition opened the account: open it here, if the breaker
            // is still in that half-open state.
            let word = self.load();
            if word.generation() != generation || word.state() != crate::state::State::HalfOpen {
                return false;
            }
            *tally = ProbeTally {
                generation,
                ..ProbeTally::default()
            };
        }
        if tally.admitted >= budget {
            return false;
        }
        tally.admitted += 1;
        true
    }

    /// Gives back a place taken by [`spend_budget`](Self::spend_budget): the
    /// probe ended without a verdict (cancelled, ignored error, or its grant
    /// went unused).
    #[inline]
    pub(super) fn refund_budget(&self, generation: u64) {
        if self.keeps_probe_tally {
            let mut tally = lock(&self.cold.probe_tally);
            if tally.generation == generation {
                tally.admitted = tally.admitted.saturating_sub(1);
            }
        }
    }

    /// Counts a probe's verdict for [`judged_by_rate`](crate::HalfOpen::judged_by_rate);
    /// returns the decision once every call of the budget has ended.
    pub(super) fn judge_probe(&self, generation: u64, failed: bool, slow: bool) -> Option<Move> {
        let ProbeJudge::Rate {
            failure_rate,
            slow_call_rate,
        } = self.settings.half_open.judge
        else {
            return None;
        };
        let calls = self.settings.half_open.budget.unwrap_or(1).max(1);
        let mut tally = lock(&self.cold.probe_tally);
        if tally.generation != generation {
            return None;
        }
        if failed {
            tally.failures += 1;
        } else {
            tally.successes += 1;
        }
        if slow {
            tally.slow += 1;
        }
        let ended = tally.successes + tally.failures;
        if ended < calls {
            return None;
        }
        let share = |count: u32| (f64::from(count) / f64::from(ended)) as f32;
        // A rate reopens only with a failure (or slow call) among the calls,
        // as the trip policies: a threshold of 0 means "any".
        let failing = tally.failures > 0 && share(tally.failures) >= failure_rate;
        let slowing =
            slow_call_rate.is_some_and(|rate| tally.slow > 0 && share(tally.slow) >= rate);
        Some(if failing || slowing {
            Move::ProbeFailed
        } else {
            Move::ProbesSucceeded
        })
    }
}
