//! The future of a call waiting for the breaker to let it through.

use std::future::Future;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::clock::Sleep;
use crate::core::{Core, Moment};
use crate::error::{RejectReason, Rejected};
use crate::waiters::{Grant, Key, WaitFor};

/// Waits for admission (or, for `WaitFor::Unfrozen`, for the end of the open
/// state).
///
/// Each waiting call keeps an alarm of its own, made on the clock from its
/// own task (so on its own runtime): it rings at the current period's
/// deadline or at the call's own `max_wait`, whichever comes first. A timed
/// open period therefore ends at its deadline for every waiter, whichever
/// runtimes come and go, and no waiter depends on another's task being run.
/// While queued it also polls the breaker's async freeze on, so the freeze
/// ends even though no task was spawned for it.
///
/// Dropping it at any point leaves the breaker consistent: it leaves the
/// queue, and gives back a grant it received but did not use.
pub(crate) struct Wait<C: Deref<Target = Core>> {
    core: C,
    wait_for: WaitFor,
    key: Option<Key>,
    /// The call's alarm, if a deadline is known.
    alarm: Option<Alarm>,
    /// When the call gives up (its `max_wait`), on the clock, once queued.
    gives_up_at: Option<Moment>,
    /// When the call joined the queue, if anybody listens for wait times.
    queued_at: Option<Duration>,
    done: bool,
}

/// A waiting call's alarm.
struct Alarm {
    /// When it rings, on the breaker's clock.
    at: Moment,
    /// A sleep on the breaker's clock, made on the task that polls the call.
    /// (On tokio's clock the period also has one ring on the timer thread
    /// for every call: see `Core::arm_backup`.)
    sleep: Sleep,
    /// The waker of the task that made `sleep`.
    waker: Waker,
}

impl<C: Deref<Target = Core>> Wait<C> {
    pub(crate) fn new(core: C, wait_for: WaitFor) -> Self {
        Self {
            core,
            wait_for,
            key: None,
            alarm: None,
            gives_up_at: None,
            queued_at: None,
            done: false,
        }
    }

    pub(crate) fn core(&self) -> &C {
        &self.core
    }

    pub(crate) fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Result<Grant, Rejected>> {
        if self.done {
            // Polled again after completing: behave like a fresh wait.
            self.done = false;
            self.alarm = None;
            self.gives_up_at = None;
        }
        let key = match self.key {
            Some(key) => key,
            None => match self.core.admit_or_enqueue(self.wait_for, cx.waker()) {
                crate::core::Enqueued::Granted(grant) => return self.finish(Ok(grant)),
                crate::core::Enqueued::Rejected(rejected) => return self.finish(Err(rejected)),
                crate::core::Enqueued::Queued(key) => {
                    self.key = Some(key);
                    let core = &self.core;
                    if self.core.listening() {
                        self.queued_at = Some(core.now());
                    }
                    if self.wait_for == WaitFor::Call
                        && let Some(max) = core.max_wait()
                    {
                        let now = core.now();
                        self.gives_up_at = Some(Moment::after(now, max));
                    }
                    key
                }
            },
        };
        // Twice at most: once as woken, once more if the alarm rang (the
        // period it rang for may be over now).
        for _ in 0..2 {
            if let Some(grant) = self.core.waiters().poll(key, cx.waker()) {
                self.key = None;
                return self.finish(Ok(grant));
            }
            if self.core.drive_freeze()
                && let Some(grant) = self.core.waiters().poll(key, cx.waker())
            {
                self.key = None;
                return self.finish(Ok(grant));
            }
            if self
                .gives_up_at
                .is_some_and(|at| at.has_come(self.core.now()))
            {
                return self.time_out(key);
            }
            if !self.alarm_rang(cx) {
                return Poll::Pending;
            }
        }
        // The alarm keeps ringing but nothing is due yet (a clock whose sleeps
        // end early): look again later rather than spin here.
        self.alarm = None;
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Sets the alarm for the earlier of the period's deadline and the
    /// call's own, and polls it. Returns whether it rang.
    ///
    /// The alarm is made again when the call is polled from another task
    /// (another waker: the future moved to another executor or runtime),
    /// so that it rings where the call now runs, and without polling the
    /// old one, whose runtime may be gone.
    fn alarm_rang(&mut self, cx: &mut Context<'_>) -> bool {
        let target = match (self.core.period_deadline(), self.gives_up_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(target) = target else {
            // Nothing is known to end: the transition that ends the wait
            // (a release, a probe slot, a new deadline) wakes this call.
            self.alarm = None;
            return false;
        };
        let current = self
            .alarm
            .as_ref()
            .is_some_and(|alarm| alarm.at == target && alarm.waker.will_wake(cx.waker()));
        if !current {
            let core = &self.core;
            self.alarm = Some(Alarm {
                at: target,
                sleep: core.sleep_until(target),
                waker: cx.waker().clone(),
            });
        }
        let Some(alarm) = &mut self.alarm else {
            return false;
        };
        let rang = match catch_unwind(AssertUnwindSafe(|| alarm.sleep.as_mut().poll(cx))) {
            Ok(poll) => poll.is_ready(),
            Err(_) => {
                // The clock's sleep cannot be polled here (its runtime is
                // shutting down): ring on the process-wide timer instead.
                alarm.sleep = crate::clock::thread_sleep(target.remaining(self.core.now()));
                alarm.sleep.as_mut().poll(cx).is_ready()
            }
        };
        if rang {
            self.alarm = None;
        }
        rang
    }

    /// The call's `max_wait` ran out while queued.
    fn time_out(&mut self, key: Key) -> Poll<Result<Grant, Rejected>> {
        self.key = None;
        match self.core.waiters().cancel(key) {
            Some(grant) => self.finish(Ok(grant)),
            None => {
                self.core.waiter_left();
                let rejected = self.core.reject_with(RejectReason::WaitTimedOut);
                self.finish(Err(rejected))
            }
        }
    }

    fn finish(&mut self, result: Result<Grant, Rejected>) -> Poll<Result<Grant, Rejected>> {
        self.done = true;
        self.alarm = None;
        if let (Some(queued_at), Ok(_)) = (self.queued_at.take(), &result) {
            self.core.waited(self.core.now().saturating_sub(queued_at));
        }
        Poll::Ready(result)
    }
}

impl<C: Deref<Target = Core> + Unpin> Future for Wait<C> {
    type Output = Result<Grant, Rejected>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_wait(cx)
    }
}

impl<C: Deref<Target = Core>> Drop for Wait<C> {
    /// One test inlined; leaving the queue out of line. (Inlined whole, the
    /// queue's lookup made the drop glue of `execute`'s future bigger on
    /// the closed path, which never waits: 94 -> 101 instructions a call.)
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            leave_queue(&self.core, key);
        }
    }
}

/// A queued call dropped: it leaves the queue, and gives back a grant it
/// received but did not use.
#[cold]
#[inline(never)]
fn leave_queue(core: &Core, key: Key) {
    match core.waiters().cancel(key) {
        Some(grant) => core.give_back(grant),
        None => core.waiter_left(),
    }
}
