//! The freeze: the end of the current open (or bounded half-open) period.
//!
//! A timed period has a deadline and no shared sleep: waiting calls keep
//! alarms of their own, a fail-fast breaker an alarm that only sets a flag.
//! An async freeze (the seed's freeze function) is a future polled by
//! whichever task gets here first, bounded by `max_freeze`.

use super::Moment;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::time::Duration;

use super::*;
use crate::loom::{Ordering, lock};
use crate::open_period::FreezeFuture;
use crate::state::State;

/// The freeze of the current open (or bounded half-open) period.
pub(super) struct FreezeSlot {
    generation: u64,
    /// When the period ends on the clock, if known in advance.
    deadline: Option<Moment>,
    /// The future that ends the period (a freeze function's, or a sleep to the deadline).
    future: Option<FreezeFuture>,
    /// Some task is polling `future` right now (it is out of the slot).
    polling: bool,
    /// A fail-fast breaker's timer for a timed period: polled once, when
    /// armed, with a waker that sets `Core::period_due`; never polled again,
    /// so no runtime's fate can end the period early. (Waiting calls do not
    /// use it: each has an alarm of its own, see `Wait`.)
    alarm: Option<FreezeFuture>,
    /// On tokio's clock, a ring at the period's deadline on the process-wide
    /// timer thread, which wakes every waiting call (see
    /// [`Core::arm_backup`]). Never polled again once armed.
    backup: Option<FreezeFuture>,
}

/// The waker handed to freeze futures: it wakes the oldest waiting call,
/// which polls the freeze on. (If that call is dropped first, its drop
/// wakes the next one: see [`Core::waiter_left`].)
pub(super) struct FreezeWake {
    pub(super) core: Weak<Core>,
}

impl Wake for FreezeWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(core) = self.core.upgrade() {
            core.freeze_woken.store(true, Ordering::SeqCst);
            // A freeze that waits on its own breaker (`wait_unfrozen` inside
            // the freeze function) is itself a waiter with this very waker:
            // it is skipped, or waking it would wake it again, without end.
            core.waiters().wake_first_except(&core.wakers().freeze);
        }
    }
}

/// The waker of a fail-fast period's alarm: it only says the period is due.
pub(super) struct PeriodDue {
    pub(super) core: Weak<Core>,
}

impl Wake for PeriodDue {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(core) = self.core.upgrade() {
            core.period_due.store(true, Ordering::Release);
            if core.settings.eager_transitions {
                // The period is over: move on now (no freeze to poll: its
                // future is user code, driven by waiting calls).
                core.refresh_from_alarm();
            }
        }
    }
}

/// The waker of a period's backup ring: the period may be over, so every
/// waiting call looks (and a fail-fast rejection reads the clock).
pub(super) struct PeriodOver {
    pub(super) core: Weak<Core>,
}

impl Wake for PeriodOver {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(core) = self.core.upgrade() {
            core.period_due.store(true, Ordering::Release);
            core.waiters().wake_all();
            if core.settings.eager_transitions {
                // The alarm's runtime may be idle or gone: this ring, on the
                // process-wide timer thread, moves the breaker on too.
                core.refresh_from_alarm();
            }
        }
    }
}

impl Core {
    /// An eager transition from a period's alarm or its backup ring.
    pub(super) fn refresh_from_alarm(&self) {
        self.refresh(false);
    }

    pub(super) fn install_freeze(
        &self,
        generation: u64,
        deadline: Option<Moment>,
        future: Option<FreezeFuture>,
    ) {
        let previous = lock(&self.cold.freeze).replace(FreezeSlot {
            generation,
            deadline,
            future,
            polling: false,
            alarm: None,
            backup: None,
        });
        // Dropped outside the lock: a future's destructor is user code.
        drop(previous);
    }

    /// Arms a fail-fast period's alarm, `after` from now (see
    /// [`FreezeSlot::alarm`]). If the clock cannot make or poll a sleep
    /// here, there is no alarm: the sampled clock reads of rejections, state
    /// reads and waiting calls' own alarms still end the period.
    /// Returns whether the period is already due (the alarm rang at once).
    pub(super) fn arm_alarm(&self, generation: u64, after: Duration) -> bool {
        let mut alarm = self.sleep(after);
        let mut cx = Context::from_waker(&self.wakers().due);
        match catch_unwind(AssertUnwindSafe(|| alarm.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => {
                let stale = {
                    let mut slot = lock(&self.cold.freeze);
                    match slot.as_mut() {
                        Some(freeze) if freeze.generation == generation => {
                            freeze.alarm.replace(alarm)
                        }
                        _ => Some(alarm),
                    }
                };
                drop(stale);
                false
            }
            Ok(Poll::Ready(())) => {
                self.period_due.store(true, Ordering::Release);
                true
            }
            Err(_) => false,
        }
    }

    pub(super) fn clear_freeze(&self, stale: impl Fn(u64) -> bool) {
        let previous = {
            let mut slot = lock(&self.cold.freeze);
            if slot.as_ref().is_some_and(|s| stale(s.generation)) {
                slot.take()
            } else {
                None
            }
        };
        drop(previous);
    }

    /// Polls the current period's async freeze once, from whichever task
    /// gets here first, and ends the period if it is over: its future
    /// finished (or panicked), or its deadline passed (a timed period's end,
    /// or an async freeze's `max_freeze` bound). A timed period has no
    /// shared sleep to poll: the clock alone tells. Returns whether a
    /// period ended.
    pub(crate) fn drive_freeze(&self) -> bool {
        let word = self.load();
        let state = word.state();
        if !matches!(state, State::Open | State::HalfOpen) {
            return false;
        }
        let generation = word.generation();
        let (deadline, future) = {
            let mut slot = lock(&self.cold.freeze);
            let Some(freeze) = slot.as_mut() else {
                return false;
            };
            if freeze.generation != generation || freeze.polling {
                return false;
            }
            if freeze.future.is_none() {
                let ended = freeze.deadline.is_some_and(|d| d.has_come(self.now()));
                drop(slot);
                if ended {
                    self.period_elapsed(state, generation);
                }
                return ended;
            }
            freeze.polling = true;
            (freeze.deadline, freeze.future.take())
        };
        let Some(mut future) = future else {
            return false;
        };

        if deadline.is_some_and(|d| d.has_come(self.now())) {
            crate::events::trace(|| {
                tracing::warn!(
                    breaker = self.name().unwrap_or(""),
                    max_freeze = ?self.settings.max_freeze(),
                    "tripswitch: the freeze function's future did not finish within max_freeze; the open period ends"
                )
            });
            self.clear_freeze(|g| g == generation);
            drop(future);
            self.period_elapsed(state, generation);
            return true;
        }
        self.freeze_woken.store(false, Ordering::SeqCst);
        let mut cx = Context::from_waker(&self.wakers().freeze);
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => {
                let stale = {
                    let mut slot = lock(&self.cold.freeze);
                    match slot.as_mut() {
                        Some(freeze) if freeze.generation == generation => {
                            freeze.future = Some(future);
                            freeze.polling = false;
                            None
                        }
                        _ => Some(future),
                    }
                };
                drop(stale);
                if self.freeze_woken.load(Ordering::SeqCst) {
                    // It woke while out of the slot, when nobody could poll it.
                    self.waiters().wake_first_except(&self.wakers().freeze);
                }
                false
            }
            Ok(Poll::Ready(())) => {
                self.clear_freeze(|g| g == generation);
                drop(future);
                self.period_elapsed(state, generation);
                true
            }
            Err(_) => {
                crate::events::trace(|| {
                    tracing::error!(
                        breaker = self.name().unwrap_or(""),
                        "tripswitch: the freeze future panicked; the open period ends here"
                    )
                });
                self.clear_freeze(|g| g == generation);
                self.period_elapsed(state, generation);
                true
            }
        }
    }

    /// When the current period must be over at the latest, in nanoseconds
    /// on the clock: a timed open period's end, an async freeze's bound, or
    /// a bounded half-open state's end. Waiting calls set their own alarms
    /// by it. `None` while closed, forced open, or half-open without a
    /// maximum.
    pub(crate) fn period_deadline(&self) -> Option<Moment> {
        match self.load().state() {
            State::Open => self
                .open_until
                .load(Ordering::Acquire)
                .or_else(|| self.cold.freeze_bound.load(Ordering::Acquire)),
            State::HalfOpen => self.cold.half_open_until.load(Ordering::Acquire),
            _ => None,
        }
    }

    /// A sleep on the breaker's clock; if the clock cannot sleep here (tokio's
    /// timer outside a runtime), the process-wide timer thread stands in.
    pub(crate) fn sleep(&self, duration: Duration) -> FreezeFuture {
        let clock = &self.settings.clock;
        match catch_unwind(AssertUnwindSafe(|| clock.sleep(duration))) {
            Ok(sleep) => sleep,
            Err(_) => crate::clock::thread_sleep(duration),
        }
    }

    /// Arms the period's backup ring, `after` from now, on tokio's clock:
    /// a ring on the process-wide timer thread that wakes every waiting
    /// call at the deadline in real time. Each waiting call's own alarm is a
    /// tokio sleep made where the call runs; this one rings even if that
    /// runtime is idle (a call waiting on a runtime it entered but does not
    /// drive). One per period, not one per call, so that releasing a crowd
    /// stays cheap. Under tokio's paused time it may ring early; the calls
    /// then find the period not over and keep waiting on their own alarms.
    ///
    /// Returns whether the period is already over (the ring rang at once):
    /// waiting calls are woken, and the caller, once its transition is told,
    /// moves an eager breaker on (not here: its own event comes first).
    pub(super) fn arm_backup(&self, generation: u64, after: Duration) -> bool {
        if !self.settings.clock.is_tokio() {
            return false;
        }
        let mut backup = crate::clock::thread_sleep(after);
        let mut cx = Context::from_waker(&self.wakers().over);
        if backup.as_mut().poll(&mut cx).is_ready() {
            self.period_due.store(true, Ordering::Release);
            self.waiters().wake_all();
            return true;
        }
        let stale = {
            let mut slot = lock(&self.cold.freeze);
            match slot.as_mut() {
                Some(freeze) if freeze.generation == generation => freeze.backup.replace(backup),
                _ => Some(backup),
            }
        };
        drop(stale);
        false
    }

    /// A sleep until `deadline` on the clock, as [`sleep`](Self::sleep).
    pub(crate) fn sleep_until(&self, deadline: Moment) -> FreezeFuture {
        self.sleep(deadline.remaining(self.now()))
    }
}
