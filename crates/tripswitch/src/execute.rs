//! The future behind [`CircuitBreaker::execute`](crate::CircuitBreaker::execute).
//!
//! Written by hand rather than as an `async fn` so that the happy path (a
//! closed breaker, a successful call) inlines into the caller: one atomic
//! load to be admitted, the operation, one counter increment. The state is
//! an enum, so a new call only writes its first variant.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::core::{Core, Verdict};
use crate::error::Error;
use crate::events::OperationPanicked;
use crate::outcome::{ClassifiedOk, Outcome};
use crate::ticket::{Ticket, TicketKind};
use crate::wait::Wait;
use crate::waiters::WaitFor;

/// How a call's result counts: the breaker's own rules or a caller's
/// [`Classify`](crate::Classify).
pub(crate) trait Classification<T, E> {
    /// Whether every `Ok` is a success (then the short path applies to it).
    const OK_SUCCEEDS: bool;
    fn classify(&self, core: &Core, result: &Result<T, E>) -> Outcome;
}

/// The breaker's own rules: `Ok` succeeds, `Err` fails unless ignored.
pub(crate) struct ByBreaker;

impl<T, E: 'static> Classification<T, E> for ByBreaker {
    const OK_SUCCEEDS: bool = true;
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

impl<T, E, C: crate::Classify<T, E>> Classification<T, E> for ByCaller<C> {
    const OK_SUCCEEDS: bool = false;
    fn classify(&self, _: &Core, result: &Result<T, E>) -> Outcome {
        self.0.classify(result)
    }
}

pin_project! {
    #[project = StageProj]
    enum Stage<'a, Fut, E> {
        Start,
        Running {
            #[pin]
            future: Fut,
            // Taken when the run's verdict is recorded.
            ticket: Option<Ticket>,
            retry: bool,
        },
        Waiting {
            wait: Wait<&'a Core>,
            // The seed's retry: the first run's error while the retry waits.
            first_error: Option<E>,
        },
        Done,
    }
}

pin_project! {
    #[project = ExecuteProj]
    /// A call through the breaker: admission (maybe waiting), the operation,
    /// and the seed's retry after a freeze.
    ///
    /// Dropping it records nothing for a run in progress and frees its
    /// half-open slot; if the operation panics, the run counts as a failure.
    pub(crate) struct Execute<'a, F, Fut, E, C> {
        core: &'a Core,
        operation: F,
        classify: C,
        #[pin]
        stage: Stage<'a, Fut, E>,
    }

    impl<'a, F, Fut, E, C> PinnedDrop for Execute<'a, F, Fut, E, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let StageProj::Running { ticket, .. } = this.stage.project()
                && let Some(ticket) = ticket.take()
            {
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
            stage: Stage::Start,
        }
    }
}

impl<F, Fut, T, E, C> Future for Execute<'_, F, Fut, E, C>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Debug + 'static,
    C: Classification<T, E>,
{
    type Output = Result<T, Error<E>>;

    /// The happy path is inlined into the caller: admission with one atomic
    /// load, the operation's poll, and the success's counter. Everything
    /// else (waiting, failures, the retry) is in [`poll_slow`].
    ///
    /// `#[inline(always)]`, not `#[inline]`: with a hint only, the compiler
    /// declined to inline it once the same future type was awaited from two
    /// places in a caller, and the call then cost 133 instructions instead
    /// of 98 (the `two-call-sites` benchmark case).
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let StageProj::Start = this.stage.as_mut().project() {
            let ticket = match this.core.admit_fast_or_word() {
                Ok(ticket) => ticket,
                Err(word) => {
                    if this.core.fails_fast()
                        && let Some(open) = this.core.reject_while_open(word)
                    {
                        // An outage's common case, inlined too; the rejection
                        // is built where the result goes.
                        this.stage.set(Stage::Done);
                        return Poll::Ready(Err(Error::Rejected(
                            this.core.rejected_while_open(open),
                        )));
                    }
                    return poll_slow(this, cx);
                }
            };
            let future = call_operation(this.operation, this.core, ticket);
            this.stage.set(Stage::Running {
                future,
                ticket: Some(ticket),
                retry: false,
            });
        }
        if C::OK_SUCCEEDS
            && let StageProj::Running {
                future,
                ticket,
                retry: false,
            } = this.stage.as_mut().project()
        {
            let guard = UnwindGuard {
                core: this.core,
                ticket: &mut *ticket,
            };
            let polled = future.poll(cx);
            guard.disarm();
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(value)) => {
                    // Done before recording: then the drop has nothing to check.
                    let ticket = *ticket;
                    this.stage.set(Stage::Done);
                    if let Some(ticket) = ticket {
                        this.core.record_success(ticket);
                    }
                    return Poll::Ready(Ok(value));
                }
                Poll::Ready(Err(error)) => return poll_failed(this, cx, error),
            }
        }
        poll_slow(this, cx)
    }
}

/// A first run that failed, out of line, whole: only the error crosses
/// from the inlined happy path (the ticket is still in the stage).
#[inline(never)]
fn poll_failed<F, Fut, T, E, C>(
    mut this: ExecuteProj<'_, '_, F, Fut, E, C>,
    cx: &mut Context<'_>,
    error: E,
) -> Poll<Result<T, Error<E>>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Debug + 'static,
    C: Classification<T, E>,
{
    let ticket = match this.stage.as_mut().project() {
        StageProj::Running { ticket, .. } => ticket.take(),
        _ => None,
    };
    this.stage.set(Stage::Done);
    if let Poll::Ready(done) = finish_run(&mut this, ticket, false, Err(error)) {
        return Poll::Ready(done);
    }
    poll_slow(this, cx)
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
            self.core
                .record(ticket, Verdict::Failure(&OperationPanicked));
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
    C: Classification<T, E>,
{
    let core = *this.core;
    loop {
        match this.stage.as_mut().project() {
            StageProj::Start if core.fails_fast() => {
                // `poll` already asked `reject_while_open`, which answered
                // "take the full path": asking again would draw the clock
                // sample a second time and so skip it (see `sample_the_clock`).
                match core.try_admit() {
                    Ok(ticket) => start(&mut this, ticket, false),
                    Err(block) => {
                        this.stage.set(Stage::Done);
                        return Poll::Ready(Err(Error::Rejected(core.reject(block))));
                    }
                }
            }
            StageProj::Start => match core.admit_fast() {
                Some(ticket) => start(&mut this, ticket, false),
                None => this.stage.set(Stage::Waiting {
                    wait: Wait::new(core, WaitFor::Call),
                    first_error: None,
                }),
            },
            StageProj::Running {
                future,
                ticket,
                retry,
            } => {
                let guard = UnwindGuard {
                    core,
                    ticket: &mut *ticket,
                };
                let polled = future.poll(cx);
                guard.disarm();
                let result = ready!(polled);
                let (ticket, retry) = (ticket.take(), *retry);
                this.stage.set(Stage::Done);
                if let Poll::Ready(done) = finish_run(&mut this, ticket, retry, result) {
                    return Poll::Ready(done);
                }
            }
            StageProj::Waiting { wait, first_error } => {
                let granted = ready!(wait.poll_wait(cx));
                let retry = first_error.is_some();
                match granted {
                    Ok(grant) => {
                        let mut ticket = core.ticket_for(grant);
                        if retry && core.seed_accounting() && ticket.kind() == TicketKind::Counted {
                            ticket = ticket.with_kind(TicketKind::Released);
                        }
                        start(&mut this, ticket, retry);
                    }
                    Err(rejected) => {
                        // A retry that cannot wait returns the first run's error.
                        let error = match first_error.take() {
                            Some(error) => Error::Inner(error),
                            None => Error::Rejected(rejected),
                        };
                        this.stage.set(Stage::Done);
                        return Poll::Ready(Err(error));
                    }
                }
            }
            StageProj::Done => {
                panic!("tripswitch: an `execute` future was polled after it completed")
            }
        }
    }
}

/// Starts a run of the operation with its admission ticket.
fn start<F, Fut, E, C>(this: &mut ExecuteProj<'_, '_, F, Fut, E, C>, ticket: Ticket, retry: bool)
where
    F: FnMut() -> Fut,
{
    let future = call_operation(this.operation, this.core, ticket);
    this.stage.set(Stage::Running {
        future,
        ticket: Some(ticket),
        retry,
    });
}

/// Calls the operation closure for a run admitted with `ticket`. A closure
/// that panics before returning its future is the run's failure: the guard
/// records it (and so gives back a half-open slot the ticket holds) while the
/// panic goes on to the caller.
#[inline(always)]
fn call_operation<F, Fut>(operation: &mut F, core: &Core, ticket: Ticket) -> Fut
where
    F: FnMut() -> Fut,
{
    let mut held = Some(ticket);
    let guard = UnwindGuard {
        core,
        ticket: &mut held,
    };
    let future = operation();
    guard.disarm();
    future
}

/// Records a finished run (the stage is already `Done`). Ready with the
/// call's result, or Pending when the seed's retry is to wait for the
/// freeze (then the stage is `Waiting`).
#[inline(never)]
fn finish_run<F, Fut, T, E, C>(
    this: &mut ExecuteProj<'_, '_, F, Fut, E, C>,
    ticket: Option<Ticket>,
    retry: bool,
    result: Result<T, E>,
) -> Poll<Result<T, Error<E>>>
where
    E: fmt::Debug + 'static,
    C: Classification<T, E>,
{
    let core = *this.core;
    let Some(ticket) = ticket else {
        // Every run starts with a ticket; without one there is nothing to record.
        return Poll::Ready(result.map_err(Error::Inner));
    };
    if C::OK_SUCCEEDS
        && let Ok(value) = result
    {
        core.record_success(ticket);
        return Poll::Ready(Ok(value));
    }
    // A classifier that panics must not lose the run's ticket (and with it a
    // half-open slot): the guard records the panic as the run's failure.
    let mut slot = Some(ticket);
    let guard = UnwindGuard {
        core,
        ticket: &mut slot,
    };
    let outcome = this.classify.classify(core, &result);
    guard.disarm();
    let Some(ticket) = slot else {
        return Poll::Ready(result.map_err(Error::Inner));
    };
    let verdict = match (outcome, &result) {
        (Outcome::Success, _) => Verdict::Success,
        (Outcome::Failure, Err(error)) => Verdict::Failure(error),
        (Outcome::Failure, Ok(_)) => Verdict::Failure(&ClassifiedOk),
        (Outcome::Ignored, Err(error)) => Verdict::Ignored(error),
        (Outcome::Ignored, Ok(_)) => Verdict::Ignored(&ClassifiedOk),
    };
    let may_retry = !retry
        && outcome == Outcome::Failure
        && matches!(ticket.kind(), TicketKind::Counted | TicketKind::Probe)
        && core.retries_after_freeze();
    let open_after = core.record(ticket, verdict);
    match result {
        Err(error) if may_retry && open_after => {
            // The seed's retry: wait out the freeze, then run once more.
            this.stage.set(Stage::Waiting {
                wait: Wait::new(core, WaitFor::Call),
                first_error: Some(error),
            });
            Poll::Pending
        }
        result => Poll::Ready(result.map_err(Error::Inner)),
    }
}
