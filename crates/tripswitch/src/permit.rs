//! Permits: admission and verdict as two steps, for code that cannot be
//! wrapped in a closure (streaming bodies, middleware).

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::core::{Core, Verdict};
use crate::error::Rejected;
use crate::events::OperationPanicked;
use crate::ticket::{Ticket, TicketKind};
use crate::wait::Wait;
use crate::waiters::WaitFor;

/// A run in progress: records its verdict once, or, if dropped without one,
/// a cancellation (or, while the thread panics, a failure).
pub(crate) struct Run<C: Deref<Target = Core>> {
    core: C,
    ticket: Option<Ticket>,
}

impl<C: Deref<Target = Core>> Run<C> {
    #[inline(always)]
    pub(crate) fn new(core: C, ticket: Ticket) -> Self {
        Self {
            core,
            ticket: Some(ticket),
        }
    }

    pub(crate) fn kind(&self) -> Option<TicketKind> {
        self.ticket.map(|t| t.kind())
    }

    /// Records a success (the short path).
    #[inline(always)]
    pub(crate) fn succeed(mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.core.record_success(ticket);
        }
    }

    /// Records the verdict; returns whether the breaker is open afterwards.
    pub(crate) fn finish(mut self, verdict: Verdict<'_>) -> bool {
        match self.ticket.take() {
            Some(ticket) => self.core.record(ticket, verdict),
            None => false,
        }
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// The seed's retry: under the seed's accounting a counted run is
    /// counted as released (as `execute` does for its retry).
    pub(crate) fn for_retry(&mut self) {
        if let Some(ticket) = self.ticket
            && self.core.seed_accounting()
            && ticket.kind() == TicketKind::Counted
        {
            self.ticket = Some(ticket.with_kind(TicketKind::Released));
        }
    }
}

impl<C: Deref<Target = Core>> Drop for Run<C> {
    /// Inlined, so that a run whose verdict was recorded drops with one test.
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            dropped_without_verdict(&self.core, ticket);
        }
    }
}

/// A run dropped without a verdict: a cancellation, or a failure while the
/// thread panics.
#[cold]
#[inline(never)]
fn dropped_without_verdict(core: &Core, ticket: Ticket) {
    let verdict = if std::thread::panicking() {
        Verdict::Failure(&OperationPanicked)
    } else {
        Verdict::Cancelled
    };
    core.record(ticket, verdict);
}

macro_rules! permit_methods {
    () => {
        /// Records a success.
        #[inline]
        pub fn success(self) {
            self.run.succeed();
        }

        /// Records a failure with its error (an error the breaker was told to
        /// ignore counts as ignored).
        pub fn failure<E: fmt::Debug + 'static>(self, error: &E) {
            let verdict = if self.run.core().is_ignored(error) {
                Verdict::Ignored(error)
            } else {
                Verdict::Failure(error)
            };
            self.run.finish(verdict);
        }

        /// Records an outcome decided elsewhere (a classifier), without an
        /// error value: an `Ok` response that is a failure, say.
        pub fn record(self, outcome: crate::Outcome) {
            let verdict = match outcome {
                crate::Outcome::Success => Verdict::Success,
                crate::Outcome::Failure => Verdict::Failure(&crate::outcome::ClassifiedOk),
                crate::Outcome::Ignored => Verdict::Ignored(&crate::outcome::ClassifiedOk),
            };
            self.run.finish(verdict);
        }

        /// Records an error that counts as neither success nor failure.
        pub fn ignored<E: fmt::Debug + 'static>(self, error: &E) {
            self.run.finish(Verdict::Ignored(error));
        }

        /// Whether this permit holds a half-open probe slot.
        pub fn is_probe(&self) -> bool {
            self.run.kind() == Some(TicketKind::Probe)
        }
    };
}

/// Permission to run one call through a breaker; say how it went with
/// [`success`](Permit::success), [`failure`](Permit::failure) or
/// [`ignored`](Permit::ignored).
///
/// A permit dropped without a verdict records nothing and frees its
/// half-open slot at once, except while its thread is panicking: then it
/// records a failure.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let breaker = tripswitch::CircuitBreaker::new();
/// let permit = breaker.acquire().await.expect("the seed's breaker never rejects");
/// // ... stream a response body ...
/// permit.success();
/// # }
/// ```
#[must_use = "a permit records nothing unless given a verdict"]
pub struct Permit<'a> {
    run: Run<&'a Core>,
}

impl Permit<'_> {
    permit_methods!();
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("probe", &self.is_probe())
            .finish()
    }
}

/// A [`Permit`] that owns a handle to its breaker, so it can be stored or sent
/// anywhere (`'static`).
#[must_use = "a permit records nothing unless given a verdict"]
pub struct OwnedPermit {
    run: Run<Arc<Core>>,
}

impl OwnedPermit {
    permit_methods!();

    /// Not public API: for language bindings that run the seed's retry
    /// themselves. The permit of the retry after a freeze: under the seed's
    /// accounting a counted run becomes a released one (totals only, no
    /// `on_error`, no trip), as in [`execute`](crate::CircuitBreaker::execute).
    #[doc(hidden)]
    pub fn __for_retry(mut self) -> Self {
        self.run.for_retry();
        self
    }

    /// Not public API: for language bindings. Records a failure, as
    /// [`failure`](Self::failure), and returns whether the breaker is open
    /// after it (because this run tripped it, or because it already was).
    #[doc(hidden)]
    pub fn __failure_open_after<E: fmt::Debug + 'static>(self, error: &E) -> bool {
        self.run.finish(Verdict::Failure(error))
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("probe", &self.is_probe())
            .finish()
    }
}

/// The future of [`CircuitBreaker::acquire`](crate::CircuitBreaker::acquire).
///
/// # Cancel safety
///
/// Dropping it leaves the queue; a probe slot it was handed is given back.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    pub(crate) wait: Wait<&'a Core>,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<Permit<'a>, Rejected>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let core: &'a Core = self.wait.core();
        self.wait.poll_wait(cx).map(|granted| {
            granted.map(|grant| Permit {
                run: Run::new(core, core.ticket_for(grant)),
            })
        })
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire").finish_non_exhaustive()
    }
}

/// The future of [`CircuitBreaker::acquire_owned`](crate::CircuitBreaker::acquire_owned).
///
/// # Cancel safety
///
/// As for [`Acquire`].
#[must_use = "futures do nothing unless polled"]
pub struct AcquireOwned {
    pub(crate) wait: Wait<Arc<Core>>,
}

impl Future for AcquireOwned {
    type Output = Result<OwnedPermit, Rejected>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let granted = std::task::ready!(self.wait.poll_wait(cx));
        Poll::Ready(granted.map(|grant| {
            let core = Arc::clone(self.wait.core());
            let ticket = core.ticket_for(grant);
            OwnedPermit {
                run: Run::new(core, ticket),
            }
        }))
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned").finish_non_exhaustive()
    }
}

pub(crate) fn acquire(core: &Core) -> Acquire<'_> {
    Acquire {
        wait: Wait::new(core, WaitFor::Call),
    }
}

pub(crate) fn acquire_owned(core: Arc<Core>) -> AcquireOwned {
    AcquireOwned {
        wait: Wait::new(core, WaitFor::Call),
    }
}

#[inline(always)]
pub(crate) fn permit(core: &Core, ticket: Ticket) -> Permit<'_> {
    Permit {
        run: Run::new(core, ticket),
    }
}

#[inline(always)]
pub(crate) fn owned_permit(core: Arc<Core>, ticket: Ticket) -> OwnedPermit {
    OwnedPermit {
        run: Run::new(core, ticket),
    }
}
