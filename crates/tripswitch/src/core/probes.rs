//! Half-open probe slots: taken, given back, and handed to waiting calls
//! oldest first.

use std::task::Waker;

use super::rules::Move;
use super::*;
use crate::loom::Ordering;
use crate::state::{State, Word};
use crate::waiters::{Grant, Locked};

impl Core {
    pub(super) fn probe_succeeded(&self, generation: u64) {
        let successes = self
            .cold
            .half_open_successes
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if successes >= self.settings.half_open.close_after
            && self.apply(Move::ProbesSucceeded, Some(generation), None)
        {
            return;
        }
        self.release_probe(generation);
    }

    /// A probe of `generation` ended without a verdict (cancelled, an
    /// ignored error, or a grant nobody used): its slot and its place in
    /// the budget are given back.
    pub(crate) fn return_probe(&self, generation: u64) {
        self.refund_budget(generation);
        self.release_probe(generation);
    }

    /// Frees a probe slot of `generation` and hands it to the next waiter.
    ///
    /// The queue is only locked when somebody waits. A call that queues while
    /// the slot is being freed cannot be missed: this side frees the slot,
    /// then reads the queue length with a read-modify-write; the queuing side
    /// updates the length with a read-modify-write, then looks for a free
    /// slot itself. The two read-modify-writes on the length are ordered, so
    /// either this side sees the waiter or the waiter sees the free slot.
    pub(crate) fn release_probe(&self, generation: u64) {
        self.give_back_slot(generation);
        if self.waiters().len_synced() > 0 {
            self.grant_probes(generation);
        }
    }

    pub(super) fn give_back_slot(&self, generation: u64) {
        let mut current = self.load();
        while current.generation() == generation
            && current.state() == State::HalfOpen
            && current.probes() > 0
        {
            match self.word.compare_exchange_weak(
                current.0,
                current.with_probes(current.probes() - 1).0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = Word(actual),
            }
        }
    }

    pub(super) fn take_slot(&self, generation: u64) -> bool {
        let limit = self.settings.half_open.probes.unwrap_or(u32::MAX);
        let mut current = self.load();
        while current.generation() == generation
            && current.state() == State::HalfOpen
            && current.probes() < limit
        {
            match self.word.compare_exchange_weak(
                current.0,
                current.with_probes(current.probes() + 1).0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = Word(actual),
            }
        }
        false
    }

    /// Hands free probe slots of `generation` to waiting calls, oldest first.
    pub(super) fn grant_probes(&self, generation: u64) {
        let wakers = {
            let mut queue = self.waiters().lock();
            self.grant_probes_locked(&mut queue, generation)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// [`grant_probes`](Self::grant_probes) with the queue already locked;
    /// returns the wakers to wake once it is unlocked.
    pub(super) fn grant_probes_locked(
        &self,
        queue: &mut Locked<'_>,
        generation: u64,
    ) -> Vec<Waker> {
        let mut wakers = Vec::new();
        while queue.len() > 0 && self.take_slot(generation) {
            if !self.spend_budget(generation) {
                self.give_back_slot(generation);
                break;
            }
            match queue.grant_next(Grant::Probe { generation }) {
                Some(waker) => wakers.push(waker),
                None => {
                    self.refund_budget(generation);
                    self.give_back_slot(generation);
                    break;
                }
            }
        }
        wakers
    }
}
