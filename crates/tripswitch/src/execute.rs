//! The future behind [`CircuitBreaker::execute`](crate::CircuitBreaker::execute).
//!
//! Written by hand rather than as an `async fn` so that the happy path (a
//! closed breaker, a successful call) is a handful of instructions: one
//! atomic load to be admitted, the operation, one counter increment.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::core::{Core, Ticket, TicketKind, Verdict};
use crate::error::Error;
use crate::events::OperationPanicked;
use crate::outcome::{ClassifiedOk, Outcome};
use crate::wait::Wait;
use crate::waiters::WaitFor;

/// How a call's result counts.
pub(crate) trait Classify<T, E> {
    /// Whether every `Ok` is a success and every `Err` goes through the
    /// breaker's own rules (the short path applies to `Ok`).
    const DEFAULT: bool;
    fn classify(&self, core: &Core, result: &Result<T, E>) -> Outcome;
}

/// The breaker's own rules: `Ok` succeeds, `Err` fails unless ignored.
pub(crate) struct ByBreaker;

impl<T, E: 'static> Classify<T, E> for ByBreaker {
    const DEFAULT: bool = true;
    fn classify(&self, core: &Core, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(error) if core.is_ignored(error) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

/// A caller's classifier.
pub(crate) struct ByCaller<C>(pub(crate) C);

impl<T, E, C: Fn(&Result<T, E>) -> Outcome> Classify<T, E> for ByCaller<C> {
    const DEFAULT: bool = false;
    fn classify(&self, _: &Core, result: &Result<T, E>) -> Outcome {
        (self.0)(result)
    }
}

pin_project! {
    #[project = ExecuteProj]
    /// A call through the breaker: admission (maybe waiting), the operation,
    /// and the seed's retry after a freeze.
    ///
    /// Dropping it records nothing for a run in progress and frees its
    /// half-open slot; dropping it while the thread panics (the operation
    /// panicked) records a failure.
    pub(crate) struct Execute<'a, F, Fut, E, C> {
        core: &'a Core,
        operation: F,
        classify: C,
        #[pin]
        running: Option<Fut>,
        // The admission of the run in progress.
        ticket: Option<Ticket>,
        waiting: Option<Wait<&'a Core>>,
        // The seed's retry: the first run's error while the retry waits.
        first_error: Option<E>,
        retrying: bool,
        done: bool,
    }

    impl<'a, F, Fut, E, C> PinnedDrop for Execute<'a, F, Fut, E, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(ticket) = this.ticket.take() {
                let verdict = if std::thread::panicking() {
                    Verdict::Failure(&OperationPanicked)
                } else {
                    Verdict::Cancelled
                };
                this.core.record(ticket, verdict);
            }
        }
    }
}

impl<'a, F, Fut, E, C> Execute<'a, F, Fut, E, C> {
    pub(crate) fn new(core: &'a Core, operation: F, classify: C) -> Self {
        Self {
            core,
            operation,
            classify,
            running: None,
            ticket: None,
            waiting: None,
            first_error: None,
            retrying: false,
            done: false,
        }
    }
}

impl<F, Fut, T, E, C> Future for Execute<'_, F, Fut, E, C>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Debug + 'static,
    C: Classify<T, E>,
{
    type Output = Result<T, Error<E>>;

    /// The happy path is inlined into the caller: admission with one atomic
    /// load, the operation's poll, and the success's counter. Everything
    /// else (waiting, failures, the retry) is in [`poll_slow`].
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.ticket.is_none() && this.waiting.is_none() && !*this.done {
            match this.core.admit_fast() {
                Some(ticket) => {
                    *this.ticket = Some(ticket);
                    this.running.set(Some((this.operation)()));
                }
                None => return poll_slow(this, cx),
            }
        }
        if C::DEFAULT
            && let Some(running) = this.running.as_mut().as_pin_mut()
        {
            let guard = UnwindGuard {
                core: this.core,
                ticket: this.ticket,
            };
            let polled = running.poll(cx);
            guard.disarm();
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(value)) => {
                    this.running.set(None);
                    if let Some(ticket) = this.ticket.take() {
                        this.core.record_success(ticket);
                    }
                    *this.done = true;
                    return Poll::Ready(Ok(value));
                }
                Poll::Ready(Err(error)) => {
                    this.running.set(None);
                    if let Poll::Ready(done) = finish_run(&mut this, Err(error)) {
                        return Poll::Ready(done);
                    }
                }
            }
        }
        poll_slow(this, cx)
    }
}

/// Records a panic as the run's failure if the operation's poll unwinds.
struct UnwindGuard<'a, 'b> {
    core: &'a Core,
    ticket: &'b mut Option<Ticket>,
}

impl UnwindGuard<'_, '_> {
    /// The poll returned without unwinding: nothing to record.
    #[inline(always)]
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for UnwindGuard<'_, '_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.core.record(ticket, Verdict::Failure(&OperationPanicked));
        }
    }
}

/// Everything but the happy path.
#[inline(never)]
fn poll_slow<F, Fut, T, E, C>(
    mut this: ExecuteProj<'_, '_, F, Fut, E, C>,
    cx: &mut Context<'_>,
) -> Poll<Result<T, Error<E>>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Debug + 'static,
    C: Classify<T, E>,
{
    let core = *this.core;
    loop {
        if let Some(running) = this.running.as_mut().as_pin_mut() {
            let guard = UnwindGuard {
                core,
                ticket: this.ticket,
            };
            let polled = running.poll(cx);
            guard.disarm();
            let result = ready!(polled);
            this.running.set(None);
            if let Poll::Ready(done) = finish_run(&mut this, result) {
                return Poll::Ready(done);
            }
        } else if let Some(waiting) = this.waiting.as_mut() {
            let granted = ready!(waiting.poll_wait(cx));
            *this.waiting = None;
            match granted {
                Ok(grant) => {
                    let mut ticket = core.ticket_for(grant);
                    if *this.retrying {
                        *this.first_error = None;
                        if core.settings.seed_accounting && ticket.kind == TicketKind::Counted {
                            ticket.kind = TicketKind::Released;
                        }
                    }
                    *this.ticket = Some(ticket);
                    this.running.set(Some((this.operation)()));
                }
                Err(rejected) => {
                    *this.done = true;
                    // A retry that cannot wait returns the first run's error.
                    return Poll::Ready(Err(match this.first_error.take() {
                        Some(error) => Error::Inner(error),
                        None => Error::Rejected(rejected),
                    }));
                }
            }
        } else if *this.done {
            panic!("tripswitch: an `execute` future was polled after it completed");
        } else {
            match core.admit_fast() {
                Some(ticket) => {
                    *this.ticket = Some(ticket);
                    this.running.set(Some((this.operation)()));
                }
                None => *this.waiting = Some(Wait::new(core, WaitFor::Call)),
            }
        }
    }
}

/// Records a finished run. Ready with the call's result, or Pending when the
/// seed's retry is to wait for the freeze (then `waiting` is set).
#[inline(never)]
fn finish_run<F, Fut, T, E, C>(
    this: &mut ExecuteProj<'_, '_, F, Fut, E, C>,
    result: Result<T, E>,
) -> Poll<Result<T, Error<E>>>
where
    E: fmt::Debug + 'static,
    C: Classify<T, E>,
{
    let core = *this.core;
    let Some(ticket) = this.ticket.take() else {
        unreachable_run();
        *this.done = true;
        return Poll::Ready(result.map_err(Error::Inner));
    };
    if C::DEFAULT
        && let Ok(value) = result
    {
        core.record_success(ticket);
        *this.done = true;
        return Poll::Ready(Ok(value));
    }
    let outcome = this.classify.classify(core, &result);
    let verdict = match (outcome, &result) {
        (Outcome::Success, _) => Verdict::Success,
        (Outcome::Failure, Err(error)) => Verdict::Failure(error),
        (Outcome::Failure, Ok(_)) => Verdict::Failure(&ClassifiedOk),
        (Outcome::Ignored, Err(error)) => Verdict::Ignored(error),
        (Outcome::Ignored, Ok(_)) => Verdict::Ignored(&ClassifiedOk),
    };
    let may_retry = !*this.retrying
        && outcome == Outcome::Failure
        && matches!(ticket.kind, TicketKind::Counted | TicketKind::Probe)
        && core.settings.retry_after_freeze;
    let open_after = core.record(ticket, verdict);
    match result {
        Err(error) if may_retry && open_after => {
            *this.first_error = Some(error);
            *this.retrying = true;
            *this.waiting = Some(Wait::new(core, WaitFor::Call));
            Poll::Pending
        }
        result => {
            *this.done = true;
            Poll::Ready(result.map_err(Error::Inner))
        }
    }
}

/// A run without a ticket cannot happen: every run is started with one.
#[cold]
fn unreachable_run() {
    debug_assert!(false, "tripswitch: a run finished without its admission ticket");
}
