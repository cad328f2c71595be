//! The breaker itself: the handle users hold and the calls they make through it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::builder::Builder;
use crate::core::{Core, Move};
use crate::error::{Error, Rejected};
use crate::execute::{ByBreaker, ByCaller, Execute};
use crate::metrics::Metrics;
use crate::permit::{self, Acquire, AcquireOwned, OwnedPermit, Permit};
use crate::state::State;
use crate::wait::Wait;
use crate::waiters::WaitFor;

/// An async circuit breaker guarding one resource.
///
/// It has no type parameters: one breaker guards a resource whatever error
/// types the calls to it return. It is `Send + Sync`, cheap to clone (clones
/// share one state), and can live in a `static`:
///
/// ```
/// use std::sync::LazyLock;
/// use tripswitch::CircuitBreaker;
///
/// static DATABASE: LazyLock<CircuitBreaker> = LazyLock::new(CircuitBreaker::new);
/// ```
///
/// [`CircuitBreaker::new`] is the seed's breaker: after a failure it freezes
/// for five seconds, and calls made meanwhile wait for the freeze to end. The
/// [`builder`](CircuitBreaker::builder) adds everything else (see
/// [`Builder`] and the [guide](crate::guide)).
///
/// # Guarantees
///
/// - A call through a closed breaker touches atomics only; no lock is ever
///   held across an `.await`, and no task or thread is spawned for you.
/// - Waiting calls are released in arrival order, by a wake-up queue, not by
///   polling. Each waiting call also keeps one alarm of its own, made on its
///   own task (so on its own runtime), for the end of the current period or
///   its `max_wait`: a timed open period ends at its deadline for every
///   waiter, whichever runtimes come and go. An async freeze is bounded by
///   [`max_freeze`](Builder::max_freeze).
/// - A fail-fast breaker leaves Open within 1,024 rejections per thread of
///   its deadline even if no timer ever fires, and at once through
///   [`acquire`](Self::acquire), [`state`](Self::state) and [`metrics`](Self::metrics).
/// - A panic in the operation (its closure or its future), a classifier, the
///   freeze function or its future, a duration function, `on_error` or a
///   listener never leaves the breaker stuck: it counts as that run's
///   failure (or ends the freeze) and gives back what the call held.
/// - Callbacks may call back into their own breaker: events raised from
///   inside a breaker's `on_error` or listener, on the same thread, are not
///   delivered to that breaker's callbacks again (so nesting is bounded);
///   the registry's factory runs with no lock held.
/// - No setting and no calling context (no runtime, a runtime shutting
///   down, a clock at its extremes) makes the library panic.
/// - Dropping any future it returns, at any point, leaves it consistent.
#[derive(Clone)]
pub struct CircuitBreaker {
    core: Arc<Core>,
}

impl Default for CircuitBreaker {
    /// The seed's breaker; see [`CircuitBreaker::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl CircuitBreaker {
    /// The seed's breaker: freezes for 5 seconds after a failure; calls wait
    /// while it is frozen; `on_error` logs through `tracing`.
    pub fn new() -> Self {
        Builder::new().build()
    }

    /// A builder, starting from the seed's settings ([`Preset::Seed`](crate::Preset::Seed)).
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A builder, starting from the standard closed / open / half-open
    /// breaker ([`Preset::Standard`](crate::Preset::Standard)): five
    /// failures in a row open it for 5 seconds, calls are rejected at once
    /// while it is open, then one probe at a time decides.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripswitch::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::standard()
    ///     .name("inventory")
    ///     .open_for(Duration::from_secs(30))
    ///     .build();
    /// assert_eq!(breaker.state(), tripswitch::State::Closed);
    /// ```
    pub fn standard() -> Builder {
        Builder::from_preset(crate::Preset::Standard)
    }

    pub(crate) fn from_core(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// The breaker's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.core.name()
    }

    /// Runs `operation` through the breaker.
    ///
    /// With the seed's settings:
    /// - if the breaker is frozen, the call waits until the freeze ends, then
    ///   runs (calls are never rejected in wait mode without limits);
    /// - if the operation fails, `on_error` is called with its error and the
    ///   breaker freezes (unless a freeze is already running); the call waits
    ///   out the freeze, runs `operation` once more and returns that second
    ///   result, whatever it is.
    ///
    /// An error of the operation comes back as [`Error::Inner`], unchanged;
    /// [`Error::Rejected`] only comes from fail-fast mode or wait limits.
    ///
    /// `operation` may borrow local data: it needs neither `'static` nor `Send`.
    /// Its error type must be `Debug + 'static`: the error is handed to
    /// `on_error` and listeners, and a duration function can downcast the
    /// error that tripped the breaker ([`TripContext::error`](crate::TripContext::error)).
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future at any await point (while waiting, while
    /// the operation runs, while a freeze it started runs) records nothing for
    /// the call, frees any half-open slot it held, and leaves the other
    /// waiting calls to be released when the freeze ends.
    ///
    /// # Panics
    ///
    /// A panic in `operation` (the closure, before it returns its future, or
    /// the future) reaches the caller unchanged; the breaker counts it as
    /// the run's failure, gives back a half-open slot the run held, and stays
    /// usable. Polling the returned future again after it completed panics,
    /// as for any future.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tripswitch::{CircuitBreaker, Error};
    ///
    /// let breaker = CircuitBreaker::new();
    /// let value = breaker.execute(|| async { Ok::<_, std::io::Error>(42) }).await;
    /// assert_eq!(value.unwrap(), 42);
    /// # }
    /// ```
    pub fn execute<F, Fut, T, E>(&self, operation: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug + 'static,
    {
        Execute::new(&self.core, operation, ByBreaker)
    }

    /// Like [`execute`](Self::execute), with `classify` (a closure, or any
    /// [`Classify`](crate::Classify)) deciding how each result counts, e.g.
    /// an HTTP 503 returned as `Ok` as a failure. The
    /// breaker's own [`ignore_errors`](Builder::ignore_errors) rules do not
    /// apply: `classify` has the last word.
    ///
    /// # Cancel safety
    ///
    /// As for [`execute`](Self::execute).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tripswitch::{CircuitBreaker, Outcome};
    ///
    /// let breaker = CircuitBreaker::builder().fail_fast().build();
    /// let status = breaker
    ///     .execute_classified(
    ///         |r: &Result<u16, std::io::Error>| match r {
    ///             Ok(status) if *status >= 500 => Outcome::Failure,
    ///             Ok(_) => Outcome::Success,
    ///             Err(_) => Outcome::Failure,
    ///         },
    ///         || async { Ok(503) },
    ///     )
    ///     .await;
    /// assert_eq!(status.unwrap(), 503); // the caller still gets its value...
    /// assert!(breaker.is_frozen());     // ...and the breaker counted a failure
    /// # }
    /// ```
    pub fn execute_classified<C, F, Fut, T, E>(
        &self,
        classify: C,
        operation: F,
    ) -> impl Future<Output = Result<T, Error<E>>>
    where
        C: crate::Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug + 'static,
    {
        Execute::new(&self.core, operation, ByCaller(classify))
    }

    /// Whether the breaker is frozen (open) now: true from the failure that
    /// tripped it until its freeze ends, whether or not any call is waiting.
    /// Also true while it is forced open.
    ///
    /// # Example
    ///
    /// ```
    /// let breaker = tripswitch::CircuitBreaker::new();
    /// assert!(!breaker.is_frozen());
    /// breaker.force_open();
    /// assert!(breaker.is_frozen());
    /// ```
    pub fn is_frozen(&self) -> bool {
        self.core.refresh(true);
        self.core.load().state().is_open()
    }

    /// Waits until the breaker is no longer frozen; returns at once if it is not.
    ///
    /// It does not take a half-open probe slot: a call made right after may
    /// still wait for one.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it only leaves the queue.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let breaker = tripswitch::CircuitBreaker::new();
    /// breaker.wait_unfrozen().await; // not frozen: returns at once
    /// # }
    /// ```
    pub async fn wait_unfrozen(&self) {
        // An unfrozen wait is never rejected: it has no limits.
        let _ = Wait::new(&*self.core, WaitFor::Unfrozen).await;
    }

    /// The breaker's state, read without a lock. An open period whose end
    /// time has passed is ended first, so such a breaker reads as half-open
    /// (or closed). (An async freeze function's future is not polled here;
    /// [`is_frozen`](Self::is_frozen) does that.)
    ///
    /// # Example
    ///
    /// ```
    /// use tripswitch::{CircuitBreaker, State};
    /// let breaker = CircuitBreaker::new();
    /// assert_eq!(breaker.state(), State::Closed);
    /// breaker.disable();
    /// assert_eq!(breaker.state(), State::Disabled);
    /// ```
    pub fn state(&self) -> State {
        self.core.refresh(false);
        self.core.load().state()
    }

    /// A snapshot of the breaker's state and counts.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let breaker = tripswitch::CircuitBreaker::builder().fail_fast().build();
    /// breaker.execute(|| async { Ok::<_, std::io::Error>(()) }).await.unwrap();
    /// let metrics = breaker.metrics();
    /// assert_eq!(metrics.totals.successes, 1);
    /// assert_eq!(metrics.retry_after, Some(std::time::Duration::ZERO));
    /// # }
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.core.metrics()
    }

    /// Waits for permission to run one call, for code that cannot be wrapped
    /// in a closure. See [`Permit`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the queue; a probe slot it was handed is given back.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let breaker = tripswitch::CircuitBreaker::new();
    /// let permit = breaker.acquire().await.expect("no limits: a call is never refused");
    /// match std::fs::metadata("/") {
    ///     Ok(_) => permit.success(),
    ///     Err(error) => permit.failure(&error),
    /// }
    /// # }
    /// ```
    pub fn acquire(&self) -> Acquire<'_> {
        permit::acquire(&self.core)
    }

    /// Like [`acquire`](Self::acquire), with a permit that owns a handle to
    /// the breaker (`'static`), for middleware that stores it.
    pub fn acquire_owned(&self) -> AcquireOwned {
        permit::acquire_owned(Arc::clone(&self.core))
    }

    /// Permission to run one call now, or the reason there is none; never waits.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the breaker is open, forced open, or has no free
    /// half-open slot.
    ///
    /// # Example
    ///
    /// ```
    /// let breaker = tripswitch::CircuitBreaker::builder().fail_fast().build();
    /// breaker.try_acquire().expect("closed").failure(&"boom");
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// assert!(rejected.retry_after().is_some());
    /// ```
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let ticket = self.core.try_admit_now()?;
        Ok(permit::permit(&self.core, ticket))
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a
    /// handle to the breaker (`'static`).
    ///
    /// # Errors
    ///
    /// As for [`try_acquire`](Self::try_acquire).
    #[inline(always)]
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, Rejected> {
        let ticket = self.core.try_admit_now()?;
        Ok(permit::owned_permit(Arc::clone(&self.core), ticket))
    }

    /// Opens the breaker by hand. It stays open (calls wait, or are rejected
    /// when failing fast, without a retry time) until [`resume`](Self::resume)
    /// or [`reset`](Self::reset).
    ///
    /// # Example
    ///
    /// ```
    /// use tripswitch::{CircuitBreaker, RejectReason};
    /// let breaker = CircuitBreaker::builder().fail_fast().build();
    /// breaker.force_open();
    /// assert_eq!(breaker.try_acquire().unwrap_err().reason(), RejectReason::ForcedOpen);
    /// breaker.resume();
    /// assert!(breaker.try_acquire().is_ok());
    /// ```
    pub fn force_open(&self) {
        self.core.apply(Move::ForceOpen, None, None);
    }

    /// Hands control back to the breaker's own rules: leaves a manual state
    /// (forced open, disabled, metrics-only) for closed. Does nothing in the
    /// other states.
    pub fn resume(&self) {
        self.core.apply(Move::Release, None, None);
    }

    /// The former name of [`resume`](Self::resume).
    #[deprecated(note = "renamed `resume`: `release` also meant letting waiting calls through")]
    pub fn release(&self) {
        self.resume();
    }

    /// The handle a shared store uses to steer this breaker (see the
    /// [`shared`](crate::shared) module). It holds the breaker weakly.
    pub fn shared_control(&self) -> crate::shared::SharedControl {
        crate::shared::SharedControl::new(&self.core)
    }

    /// Turns the breaker off: every call goes through and nothing is recorded,
    /// until [`resume`](Self::resume) or [`reset`](Self::reset).
    ///
    /// # Example
    ///
    /// ```
    /// use tripswitch::State;
    /// let breaker = tripswitch::CircuitBreaker::builder().fail_fast().build();
    /// breaker.disable();
    /// breaker.try_acquire().unwrap().failure(&"not counted");
    /// assert_eq!(breaker.state(), State::Disabled);
    /// assert!(breaker.try_acquire().is_ok());
    /// breaker.resume();
    /// assert_eq!(breaker.state(), State::Closed);
    /// ```
    pub fn disable(&self) {
        self.core.apply(Move::Disable, None, None);
    }

    /// Keeps recording outcomes (metrics, events) but never trips, until
    /// [`resume`](Self::resume) or [`reset`](Self::reset).
    pub fn force_metrics_only(&self) {
        self.core.apply(Move::MetricsOnly, None, None);
    }

    /// The former name of [`force_metrics_only`](Self::force_metrics_only).
    #[deprecated(
        note = "renamed `force_metrics_only`, beside `force_open` (and apart from `metrics()`)"
    )]
    pub fn metrics_only(&self) {
        self.force_metrics_only();
    }

    /// Back to closed, whatever the state, with the trip policies' counts and
    /// the backoff cleared. Waiting calls are let through. A reset starts a
    /// new generation, even from closed: calls started before it do not
    /// count after it. (A call that ends on another thread while the reset
    /// is being made may still be counted after it: the generation check
    /// and the count are not one atomic step, so that the happy path takes
    /// no lock.)
    ///
    /// # Example
    ///
    /// ```
    /// let breaker = tripswitch::CircuitBreaker::builder().fail_fast().build();
    /// breaker.try_acquire().unwrap().failure(&"boom");
    /// assert!(breaker.is_frozen());
    /// breaker.reset();
    /// assert!(!breaker.is_frozen());
    /// ```
    pub fn reset(&self) {
        self.core.reset();
    }
}

// For language bindings (the Python package), which run the seed's
// `execute` themselves around a foreign operation: admission and recording
// are these synchronous calls, waiting is `acquire_owned`.
impl CircuitBreaker {
    /// Not public API: for language bindings. A permit if the breaker is
    /// closed, on the same one-load path as [`execute`](Self::execute);
    /// `None` when anything else must be decided (then ask
    /// [`acquire_owned`](Self::acquire_owned), or
    /// [`try_acquire_owned`](Self::try_acquire_owned) when failing fast).
    /// Unlike `try_acquire`, a `None` counts no rejection.
    #[doc(hidden)]
    #[inline]
    pub fn __admit_if_closed(&self) -> Option<OwnedPermit> {
        let ticket = self.core.admit_fast()?;
        Some(permit::owned_permit(Arc::clone(&self.core), ticket))
    }

    /// Not public API: for language bindings, whose every call costs an
    /// object for a permit. Admission on the closed path as a plain token
    /// (the generation that admitted the call), when the breaker does not
    /// time its calls; `None` otherwise (then take the permit path). A token
    /// holds nothing: one never given a verdict records nothing.
    #[doc(hidden)]
    #[inline]
    pub fn __admit_closed_token(&self) -> Option<u64> {
        if self.core.times_calls() {
            return None;
        }
        self.core.admit_fast().map(|ticket| ticket.generation())
    }

    /// Not public API: records the success of a call admitted with
    /// [`__admit_closed_token`](Self::__admit_closed_token).
    #[doc(hidden)]
    #[inline]
    pub fn __succeed_token(&self, token: u64) {
        self.core.record_success(Self::token_ticket(token));
    }

    /// Not public API: the permit of a call admitted with
    /// [`__admit_closed_token`](Self::__admit_closed_token), to record
    /// anything but a success.
    #[doc(hidden)]
    pub fn __permit_for_token(&self, token: u64) -> OwnedPermit {
        permit::owned_permit(Arc::clone(&self.core), Self::token_ticket(token))
    }

    fn token_ticket(token: u64) -> crate::ticket::Ticket {
        crate::ticket::Ticket::new(
            token,
            crate::ticket::TicketKind::Counted,
            crate::ticket::NOT_TIMED,
        )
    }

    /// Not public API: for language bindings. Whether the breaker refuses
    /// calls while open (instead of making them wait).
    #[doc(hidden)]
    pub fn __fails_fast(&self) -> bool {
        self.core.fails_fast()
    }

    /// Not public API: for language bindings. Whether a call whose failure
    /// left the breaker open waits out the freeze and runs once more (the
    /// seed's retry).
    #[doc(hidden)]
    pub fn __retries_after_freeze(&self) -> bool {
        self.core.retries_after_freeze()
    }
}

// For the HTTP integrations, which never let a request wait without bound.
#[cfg(feature = "tower")]
impl CircuitBreaker {
    /// Whether a call may wait with no bound while the breaker is open:
    /// wait mode (not fail-fast) without a `max_wait`.
    pub(crate) fn waits_without_bound(&self) -> bool {
        !self.core.fails_fast() && self.core.max_wait().is_none()
    }

    /// A permit if the breaker is closed, on the same one-load path as
    /// `execute`; `None` when anything else must be decided (then ask
    /// [`acquire_owned`](Self::acquire_owned)).
    pub(crate) fn admit_if_closed(&self) -> Option<OwnedPermit> {
        let ticket = self.core.admit_fast()?;
        Some(permit::owned_permit(Arc::clone(&self.core), ticket))
    }
}
