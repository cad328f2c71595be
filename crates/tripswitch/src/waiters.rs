//! The wake-up queue of calls waiting for an open breaker to let them through.
//!
//! Waiters are kept in arrival order. Letting a call through is a hand-over:
//! the queue marks the waiter's entry as granted (for a half-open probe, the
//! slot is already taken on its behalf) and wakes it; a waiter that is dropped
//! holding a grant gives it back. No waiter polls or sleeps on its own.
//!
//! Every operation here runs under one short lock that is never held while
//! user code runs or across an `.await`. Wakers are woken after the lock is
//! released.

use std::collections::VecDeque;
use std::task::Waker;

use crate::loom::{AtomicUsize, Mutex, MutexGuard, Ordering, lock};
use crate::ticket::TicketKind;

/// What a waiter was let through with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Let through into the state of this generation.
    Admit {
        generation: u64,
        /// How the call counts (released from a freeze under the seed's accounting: not at all).
        kind: TicketKind,
    },
    /// A half-open probe slot of this generation, already taken for the waiter.
    Probe { generation: u64 },
    /// For [`wait_unfrozen`](crate::CircuitBreaker::wait_unfrozen): the breaker is no longer open.
    Unfrozen,
}

/// What a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitFor {
    /// Admission of a call.
    Call,
    /// Only the end of the open state.
    Unfrozen,
}

/// A waiter's place in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    index: usize,
    seq: u64,
}

#[derive(Debug)]
enum Slot {
    Vacant,
    Waiting {
        seq: u64,
        waiter: WaitFor,
        waker: Waker,
    },
    Granted {
        seq: u64,
        grant: Grant,
    },
}

#[derive(Debug, Default)]
pub(crate) struct List {
    slots: Vec<Slot>,
    free: Vec<usize>,
    order: VecDeque<Key>,
    next_seq: u64,
    /// Waiting (not yet granted) entries, calls and observers.
    waiting: usize,
    /// Of those, calls (what `max_waiters` limits: an observer waiting in
    /// `wait_unfrozen` is not a call).
    calls: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Waiters {
    /// Number of waiting (not yet granted) entries, readable without the lock.
    waiting: AtomicUsize,
    list: Mutex<List>,
}

/// The locked queue.
pub(crate) struct Locked<'a> {
    waiters: &'a Waiters,
    list: MutexGuard<'a, List>,
}

impl Waiters {
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            waiters: self,
            list: lock(&self.list),
        }
    }

    /// How many calls are waiting right now.
    pub(crate) fn len(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// How many calls are waiting, read with a read-modify-write so that it
    /// is ordered with the queue's own updates (see `Core::release_probe`).
    pub(crate) fn len_synced(&self) -> usize {
        self.waiting.fetch_add(0, Ordering::AcqRel)
    }

    /// Checks a waiter: returns its grant (and forgets the entry) if it has
    /// one, otherwise remembers `waker` to wake it by.
    pub(crate) fn poll(&self, key: Key, waker: &Waker) -> Option<Grant> {
        let mut locked = self.lock();
        let slot = locked.list.slots.get_mut(key.index)?;
        match slot {
            Slot::Granted { seq, grant } if *seq == key.seq => {
                let grant = *grant;
                locked.free(key.index);
                locked.compact();
                Some(grant)
            }
            Slot::Waiting {
                seq, waker: stored, ..
            } if *seq == key.seq => {
                if !stored.will_wake(waker) {
                    stored.clone_from(waker);
                }
                None
            }
            _ => None,
        }
    }

    /// Takes a waiter out of the queue; returns the grant it held, if any,
    /// which the caller must give back.
    pub(crate) fn cancel(&self, key: Key) -> Option<Grant> {
        let mut locked = self.lock();
        let list = &mut *locked.list;
        match list.slots.get(key.index) {
            Some(Slot::Granted { seq, grant }) if *seq == key.seq => {
                let grant = *grant;
                locked.free(key.index);
                locked.compact();
                Some(grant)
            }
            Some(Slot::Waiting { seq, waiter, .. }) if *seq == key.seq => {
                let is_call = *waiter == WaitFor::Call;
                if is_call {
                    locked.list.calls -= 1;
                }
                locked.list.waiting -= 1;
                locked.publish_len();
                locked.free(key.index);
                locked.compact();
                None
            }
            _ => None,
        }
    }

    /// Wakes the oldest waiting entry without granting anything, so that it
    /// polls the breaker's freeze on (see `FreezeWake`); an entry whose waker
    /// is `except` (the freeze itself, waiting on its own breaker) is skipped.
    pub(crate) fn wake_first_except(&self, except: &Waker) {
        let waker = {
            let locked = self.lock();
            let list = &*locked.list;
            list.order
                .iter()
                .find_map(|key| match &list.slots[key.index] {
                    Slot::Waiting { seq, waker, .. }
                        if *seq == key.seq && !waker.will_wake(except) =>
                    {
                        Some(waker.clone())
                    }
                    _ => None,
                })
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Wakes every waiting entry without granting anything, so that each
    /// looks at the breaker again (a new deadline to set its alarm by).
    /// Always takes the lock (no shortcut on the length): a waiter queues
    /// under it and reads the deadline after, so either it sees the new
    /// deadline or this sees it.
    pub(crate) fn wake_all(&self) {
        let wakers: Vec<Waker> = {
            let locked = self.lock();
            let list = &*locked.list;
            list.order
                .iter()
                .filter_map(|key| match &list.slots[key.index] {
                    Slot::Waiting { seq, waker, .. } if *seq == key.seq => Some(waker.clone()),
                    _ => None,
                })
                .collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl Locked<'_> {
    /// Queues a new waiter.
    pub(crate) fn push(&mut self, waiter: WaitFor, waker: &Waker) -> Key {
        let list = &mut *self.list;
        list.next_seq += 1;
        let seq = list.next_seq;
        let slot = Slot::Waiting {
            seq,
            waiter,
            waker: waker.clone(),
        };
        let index = match list.free.pop() {
            Some(index) => {
                list.slots[index] = slot;
                index
            }
            None => {
                list.slots.push(slot);
                list.slots.len() - 1
            }
        };
        let key = Key { index, seq };
        list.order.push_back(key);
        list.waiting += 1;
        if waiter == WaitFor::Call {
            list.calls += 1;
        }
        self.publish_len();
        key
    }

    /// Number of waiting entries.
    pub(crate) fn len(&self) -> usize {
        self.list.waiting
    }

    /// Number of waiting calls (observers left out).
    pub(crate) fn calls(&self) -> usize {
        self.list.calls
    }

    /// Grants the oldest waiting call (observers are skipped) and returns its waker.
    pub(crate) fn grant_next(&mut self, grant: Grant) -> Option<Waker> {
        let list = &mut *self.list;
        let mut skipped = Vec::new();
        let mut woken = None;
        while let Some(key) = list.order.pop_front() {
            match &list.slots[key.index] {
                Slot::Waiting {
                    seq,
                    waiter: WaitFor::Call,
                    ..
                } if *seq == key.seq => {
                    let old = std::mem::replace(
                        &mut list.slots[key.index],
                        Slot::Granted {
                            seq: key.seq,
                            grant,
                        },
                    );
                    if let Slot::Waiting { waker, .. } = old {
                        woken = Some(waker);
                    }
                    list.waiting -= 1;
                    list.calls -= 1;
                    break;
                }
                Slot::Waiting { seq, .. } if *seq == key.seq => skipped.push(key),
                _ => {}
            }
        }
        // Observers keep their place in the queue.
        for key in skipped.into_iter().rev() {
            list.order.push_front(key);
        }
        self.publish_len();
        woken
    }

    /// Grants every waiting call with `grant` and every observer with
    /// [`Grant::Unfrozen`]; returns their wakers.
    pub(crate) fn grant_all(&mut self, grant: Grant) -> Vec<Waker> {
        self.grant_where(|waiter| match waiter {
            WaitFor::Call => Some(grant),
            WaitFor::Unfrozen => Some(Grant::Unfrozen),
        })
    }

    /// Grants every observer; calls keep waiting.
    pub(crate) fn release_observers(&mut self) -> Vec<Waker> {
        self.grant_where(|waiter| match waiter {
            WaitFor::Call => None,
            WaitFor::Unfrozen => Some(Grant::Unfrozen),
        })
    }

    fn grant_where(&mut self, mut decide: impl FnMut(WaitFor) -> Option<Grant>) -> Vec<Waker> {
        let list = &mut *self.list;
        let mut wakers = Vec::new();
        let mut kept = VecDeque::new();
        for key in std::mem::take(&mut list.order) {
            let Slot::Waiting { seq, waiter, .. } = &list.slots[key.index] else {
                continue;
            };
            if *seq != key.seq {
                continue;
            }
            match decide(*waiter) {
                Some(grant) => {
                    let old = std::mem::replace(
                        &mut list.slots[key.index],
                        Slot::Granted {
                            seq: key.seq,
                            grant,
                        },
                    );
                    if let Slot::Waiting { waker, waiter, .. } = old {
                        wakers.push(waker);
                        if waiter == WaitFor::Call {
                            list.calls -= 1;
                        }
                    }
                    list.waiting -= 1;
                }
                None => kept.push_back(key),
            }
        }
        list.order = kept;
        self.publish_len();
        wakers
    }

    fn free(&mut self, index: usize) {
        self.list.slots[index] = Slot::Vacant;
        self.list.free.push(index);
    }

    /// Drops queue positions of cancelled waiters once they dominate the
    /// queue, and gives the memory of a past crowd back once nobody waits
    /// and every granted entry has been collected.
    fn compact(&mut self) {
        let list = &mut *self.list;
        if list.waiting == 0 {
            // Every position left is stale.
            list.order.clear();
        } else if list.order.len() > 2 * list.waiting + 16 {
            let slots = &list.slots;
            list.order.retain(
                |key| matches!(&slots[key.index], Slot::Waiting { seq, .. } if *seq == key.seq),
            );
        }
        if list.waiting == 0 && list.order.is_empty() && list.free.len() == list.slots.len() {
            // Nobody waits: give the memory of a past crowd back.
            list.slots = Vec::new();
            list.free = Vec::new();
            list.order = VecDeque::new();
        }
    }

    fn publish_len(&self) {
        // A swap, not a store: a read-modify-write keeps `len_synced`
        // readers ordered with it.
        self.waiters
            .waiting
            .swap(self.list.waiting, Ordering::AcqRel);
    }
}
