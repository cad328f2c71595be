//! The future of a call waiting for the breaker to let it through.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::clock::Sleep;
use crate::core::Core;
use crate::error::{RejectReason, Rejected};
use crate::waiters::{Grant, Key, WaitFor};

/// Waits for admission (or, for `WaitFor::Unfrozen`, for the end of the open
/// state). While queued it polls the breaker's freeze on, so the freeze ends
/// even though no task was spawned for it.
///
/// Dropping it at any point leaves the breaker consistent: it leaves the
/// queue, and gives back a grant it received but did not use.
pub(crate) struct Wait<C: Deref<Target = Core>> {
    core: C,
    wait_for: WaitFor,
    key: Option<Key>,
    timeout: Option<Sleep>,
    /// When the call joined the queue, if anybody listens for wait times.
    queued_at: Option<std::time::Duration>,
    done: bool,
}

impl<C: Deref<Target = Core>> Wait<C> {
    pub(crate) fn new(core: C, wait_for: WaitFor) -> Self {
        Self {
            core,
            wait_for,
            key: None,
            timeout: None,
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
            self.timeout = None;
        }
        let key = match self.key {
            Some(key) => key,
            None => match self.core.admit_or_enqueue(self.wait_for, cx.waker()) {
                crate::core::Enqueued::Granted(grant) => return self.finish(Ok(grant)),
                crate::core::Enqueued::Rejected(rejected) => return self.finish(Err(rejected)),
                crate::core::Enqueued::Queued(key) => {
                    self.key = Some(key);
                    self.queued_at = self.core.listening().then(|| self.core.now());
                    key
                }
            },
        };
        if let Some(grant) = self.core.waiters.poll(key, cx.waker()) {
            self.key = None;
            return self.finish(Ok(grant));
        }
        if self.core.drive_freeze(true)
            && let Some(grant) = self.core.waiters.poll(key, cx.waker())
        {
            self.key = None;
            return self.finish(Ok(grant));
        }
        if self.wait_for == WaitFor::Call
            && let Some(max) = self.core.settings.max_wait
        {
            let core = &self.core;
            let timeout = self.timeout.get_or_insert_with(|| core.sleep(max));
            if timeout.as_mut().poll(cx).is_ready() {
                self.key = None;
                return match self.core.waiters.cancel(key) {
                    Some(grant) => self.finish(Ok(grant)),
                    None => {
                        self.core.waiter_left();
                        let rejected = self.core.reject_with(RejectReason::WaitTimedOut);
                        self.finish(Err(rejected))
                    }
                };
            }
        }
        Poll::Pending
    }

    fn finish(&mut self, result: Result<Grant, Rejected>) -> Poll<Result<Grant, Rejected>> {
        self.done = true;
        self.timeout = None;
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
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            match self.core.waiters.cancel(key) {
                Some(grant) => self.core.give_back(grant),
                None => self.core.waiter_left(),
            }
        }
    }
}
