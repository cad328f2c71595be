//! The sleeps that [`StdClock`](super::StdClock) and
//! [`FakeClock`](super::FakeClock) hand out: a completion flag with a waker,
//! kept in an ordered queue until their time comes, and taken out of that
//! queue as soon as they are dropped, so that memory follows the sleeps that
//! are still wanted (not every sleep made in the last `max_wait`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use super::lock;

/// Completion flag and waker of one sleep, shared with whatever fires it.
#[derive(Debug, Default)]
pub(super) struct SleepState {
    /// Set once, when the sleep's time has come. Release on the firing side
    /// and Acquire on the polling side: a poll that sees it set also sees
    /// everything the firing side did before.
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl SleepState {
    pub(super) fn fire(&self) {
        self.done.store(true, Ordering::Release);
        // Taken out first: the waker runs (it may wake a crowd) with no
        // lock of this sleep held.
        let waker = lock(&self.waker).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_done() {
            return Poll::Ready(());
        }
        *lock(&self.waker) = Some(cx.waker().clone());
        // Fired between the first check and storing the waker: don't miss it.
        if self.is_done() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Sleeps waiting for their time, in the order they end, keyed by when
/// (`K`: an instant, or nanoseconds on a fake clock) and a sequence number.
#[derive(Debug)]
pub(super) struct Sleepers<K> {
    next_seq: u64,
    queue: BTreeMap<(K, u64), Arc<SleepState>>,
}

impl<K: Ord + Copy> Default for Sleepers<K> {
    fn default() -> Self {
        Self {
            next_seq: 0,
            queue: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy> Sleepers<K> {
    /// Queues a sleep that ends at `at`; returns its key.
    pub(super) fn insert(&mut self, at: K, state: Arc<SleepState>) -> (K, u64) {
        self.next_seq += 1;
        let key = (at, self.next_seq);
        self.queue.insert(key, state);
        key
    }

    /// Forgets a sleep that nobody waits for any more.
    pub(super) fn remove(&mut self, key: (K, u64)) {
        self.queue.remove(&key);
    }

    /// Takes out every sleep that ends at or before `now`, to be fired
    /// (outside the lock: firing wakes tasks).
    pub(super) fn take_due(&mut self, now: K) -> Vec<Arc<SleepState>> {
        let mut due = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        due
    }

    /// When the next sleep ends.
    pub(super) fn next(&self) -> Option<K> {
        self.queue.first_key_value().map(|((at, _), _)| *at)
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// A shared queue of sleeps, as the sleeps see it: they hold it weakly, so
/// a queue that is gone (a dropped fake clock) is simply not told.
pub(super) type SharedSleepers<K> = Weak<Mutex<Sleepers<K>>>;

/// The future of one sleep.
#[derive(Debug)]
pub(super) struct ThreadSleep<K: Ord + Copy> {
    state: Arc<SleepState>,
    /// Where the sleep is queued, if it is (a sleep that ends at once, or
    /// never, is not).
    queued: Option<(SharedSleepers<K>, (K, u64))>,
}

impl<K: Ord + Copy> ThreadSleep<K> {
    /// A sleep that has already ended.
    pub(super) fn done() -> Self {
        let state = Arc::new(SleepState::default());
        state.fire();
        Self {
            state,
            queued: None,
        }
    }

    /// A sleep that never ends (its end is past what the clock can tell).
    pub(super) fn never() -> Self {
        Self {
            state: Arc::new(SleepState::default()),
            queued: None,
        }
    }

    /// A sleep queued in `sleepers` until `at`.
    pub(super) fn queued(sleepers: &Arc<Mutex<Sleepers<K>>>, at: K) -> Self {
        Self::queued_in(sleepers, &mut lock(sleepers), at)
    }

    /// [`queued`](Self::queued), with `sleepers` already locked as `locked`.
    pub(super) fn queued_in(
        sleepers: &Arc<Mutex<Sleepers<K>>>,
        locked: &mut Sleepers<K>,
        at: K,
    ) -> Self {
        let state = Arc::new(SleepState::default());
        let key = locked.insert(at, Arc::clone(&state));
        Self {
            state,
            queued: Some((Arc::downgrade(sleepers), key)),
        }
    }
}

impl<K: Ord + Copy> Future for ThreadSleep<K> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.state.poll(cx)
    }
}

impl<K: Ord + Copy> Drop for ThreadSleep<K> {
    fn drop(&mut self) {
        if let Some((sleepers, key)) = self.queued.take()
            && !self.state.is_done()
            && let Some(sleepers) = sleepers.upgrade()
        {
            lock(&sleepers).remove(key);
        }
    }
}
