//! Transitions: the one compare-and-swap that moves the breaker, for
//! automatic, manual and shared moves alike, and the moves themselves.
//! Which moves are legal is decided by [`rules`](super::rules), purely.

use std::time::Duration;

use super::rules::{self, Decision, Move};
use super::*;
use crate::clock::nanos;
use crate::loom::{Ordering, lock};
use crate::open_period::AnyDebug;
use crate::state::{State, Word};

impl Core {
    /// Carries out `request` if [`rules::decide`] allows it from the current
    /// state (and, for an automatic move, if the breaker is still in
    /// `generation`): the one compare-and-swap that moves the breaker.
    /// Returns whether it moved (or renewed).
    ///
    /// The word is compared and swapped with AcqRel: the winner sees every
    /// write made before the state it leaves was entered, and what it then
    /// writes (deadlines, counts) is seen by whoever loads the new word.
    pub(crate) fn apply(
        &self,
        request: Move,
        generation: Option<u64>,
        error: Option<&dyn AnyDebug>,
    ) -> bool {
        let mut current = self.load();
        let (from, next, decision) = loop {
            if generation.is_some_and(|g| g != current.generation()) {
                return false;
            }
            let decision = rules::decide(request, current.state());
            let to = match decision {
                Decision::To(to) => to,
                Decision::Renew => current.state(),
                Decision::Refused => return false,
            };
            let next = current.next(to);
            match self.word.compare_exchange_weak(
                current.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break (current.state(), next, decision),
                Err(actual) => current = Word(actual),
            }
        };
        if decision != Decision::Renew {
            self.entered(from, next, request.reason(), error);
        }
        true
    }

    /// A shared store's order to be open for `remaining` (from closed,
    /// half-open, or open with another deadline).
    pub(crate) fn shared_open(&self, remaining: Duration) -> bool {
        self.cold
            .shared_open_for
            .store(nanos(remaining), Ordering::Release);
        self.apply(Move::SharedOpen, None, None)
    }

    /// A shared store's grant of the fleet's probes to this breaker, for at most `lease`.
    pub(crate) fn shared_half_open(&self, lease: Duration) -> bool {
        self.cold
            .shared_half_open_for
            .store(nanos(lease), Ordering::Release);
        self.apply(Move::SharedHalfOpen, None, None)
    }

    /// A shared store's order to close (the fleet closed).
    pub(crate) fn shared_close(&self) -> bool {
        self.apply(Move::SharedClose, None, None)
    }

    /// [`reset`](crate::CircuitBreaker::reset): back to closed in a new
    /// generation (even from closed, so that calls admitted before it do not
    /// count), with the trip policies' counts and the backoff cleared.
    pub(crate) fn reset(&self) {
        self.apply(Move::Reset, None, None);
        for policy in self.policies.iter() {
            policy.reset();
        }
        self.cold.openings.store(0, Ordering::Relaxed);
        *lock(&self.cold.state_since) = self.totals.snapshot();
    }

    /// The open (or bounded half-open) period of `generation` is over.
    pub(super) fn period_elapsed(&self, state: State, generation: u64) {
        match state {
            State::Open => self.end_open(generation),
            State::HalfOpen => {
                let word = self.load();
                if word.generation() == generation
                    && word.probes() == 0
                    && self.settings.shared().is_none()
                    && !self.cold.half_open_leased.load(Ordering::Acquire)
                    && let Some(max) = self.settings.half_open.max_duration
                {
                    // Nothing is stuck: no probe is in flight. The bound
                    // guards against a probe that never returns; an idle
                    // half-open state waits for its first call (as
                    // gobreaker's does), its bound renewed from now, rather
                    // than reopen without having probed. (A fleet's
                    // half-open lease, or one granted through
                    // `SharedControl` without a store, ends it all the same.)
                    let until = super::deadline::Moment::after(self.now(), max);
                    self.cold
                        .half_open_until
                        .store(Some(until), Ordering::Release);
                    if self.settings.eager_transitions {
                        self.arm_alarm(generation, max);
                    }
                    return;
                }
                self.apply(Move::HalfOpenTimedOut, Some(generation), None);
            }
            _ => {}
        }
    }

    pub(super) fn end_open(&self, generation: u64) {
        let probes = self.settings.half_open.probes.is_some();
        self.apply(Move::EndOpenPeriod { probes }, Some(generation), None);
    }
}
