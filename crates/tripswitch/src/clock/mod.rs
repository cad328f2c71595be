//! The clock seam: where the breaker reads time and how it sleeps.
//!
//! Every timed decision (how long a breaker stays open, time-based windows,
//! slow calls, maximum waits) goes through a [`Clock`]. The default clock is
//! [`TokioClock`] with the `tokio` feature (tokio's timer; it honours tokio's
//! paused time in tests) and [`StdClock`] without it. Tests that run on any
//! executor can use [`FakeClock`] and move time by hand.

mod fake;
mod std_clock;
#[cfg(feature = "tokio")]
mod tokio_clock;
#[cfg(feature = "quanta")]
mod tsc_clock;

pub use fake::FakeClock;
pub use std_clock::StdClock;
#[cfg(feature = "tokio")]
pub use tokio_clock::TokioClock;
#[cfg(feature = "quanta")]
pub use tsc_clock::TscClock;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A future that completes once a [`Clock::sleep`] has elapsed.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A monotonic time source and a way to wait on it.
///
/// Implement it to run timed freezes on a runtime other than tokio, or to
/// drive time by hand in tests (see [`FakeClock`]).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tripswitch::clock::{Clock, FakeClock};
///
/// let clock = FakeClock::new();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now(), Duration::from_millis(1500));
/// ```
pub trait Clock: Any + Send + Sync + fmt::Debug {
    /// Time elapsed since this clock's origin. It must never go backwards.
    fn now(&self) -> Duration;

    /// A future that completes once `duration` has passed on this clock.
    ///
    /// The future is polled from whichever task happens to be waiting on the
    /// breaker, so it must not rely on being polled by one particular task.
    fn sleep(&self, duration: Duration) -> Sleep;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        (**self).sleep(duration)
    }
}

/// The clock a breaker uses unless told otherwise.
pub(crate) fn default_clock() -> Arc<dyn Clock> {
    #[cfg(feature = "tokio")]
    {
        Arc::new(TokioClock::new())
    }
    #[cfg(not(feature = "tokio"))]
    {
        Arc::new(StdClock::new())
    }
}

/// Nanoseconds on a clock, saturating at `u64::MAX` (about 584 years).
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Locks a clock's own mutex, ignoring poisoning: clocks hold no invariants a
/// panic could break half-way. (Clocks use `std` locks even under loom: they are
/// test fixtures, not part of the models.)
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A handle to read a breaker's clock later, without an atomic reference
/// count for the built-in clocks: a rejection carries one so that its
/// `retry_after` is computed when asked, not on every rejected call.
#[derive(Clone)]
pub(crate) enum ClockHandle {
    #[cfg(feature = "tokio")]
    Tokio(TokioClock),
    Std(StdClock),
    Shared(Arc<dyn Clock>),
}

impl ClockHandle {
    pub(crate) fn of(clock: &Arc<dyn Clock>) -> Self {
        let any: &dyn Any = &**clock;
        #[cfg(feature = "tokio")]
        if let Some(tokio) = any.downcast_ref::<TokioClock>() {
            return ClockHandle::Tokio(*tokio);
        }
        if let Some(std) = any.downcast_ref::<StdClock>() {
            return ClockHandle::Std(*std);
        }
        ClockHandle::Shared(Arc::clone(clock))
    }

    pub(crate) fn now(&self) -> Duration {
        match self {
            #[cfg(feature = "tokio")]
            ClockHandle::Tokio(clock) => clock.now(),
            ClockHandle::Std(clock) => clock.now(),
            ClockHandle::Shared(clock) => clock.now(),
        }
    }
}

impl fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClockHandle")
    }
}
