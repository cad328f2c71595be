//! When a breaker trips: the built-in policies and the trait for your own.
//!
//! A breaker may have several policies; it trips as soon as any one of them
//! says so. Every policy sees the outcome of each counted call in the closed
//! (or metrics-only) state, and is cleared when the breaker closes again.
//!
//! - [`ConsecutiveFailures`]: `n` failures in a row (the seed trips on one).
//! - [`FailureRate`]: the share of failures over a sliding [`Window`].
//! - [`SlowCallRate`]: the share of calls slower than a threshold.
//! - anything implementing [`TripPolicy`].

mod consecutive;
mod last_slice;
mod rate;
mod striped_successes;
mod window;

pub use consecutive::ConsecutiveFailures;
pub use rate::{FailureRate, SlowCallRate};
pub use window::{MAX_BUCKETS, MAX_WINDOW_CALLS, Window};

pub(crate) use consecutive::ConsecutiveState;
pub(crate) use rate::{Measure as RateMeasure, RateState};
#[cfg(loom)]
pub(crate) use striped_successes::StripedSuccesses;
pub(crate) use window::{CountRing, TimeBuckets};

use std::fmt;
use std::time::Duration;

/// One counted call, as a [`TripPolicy`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallRecord {
    /// Whether the call failed (ignored errors never reach a policy).
    pub failed: bool,
    /// Whether the call was slower than the breaker's slow-call threshold.
    pub slow: bool,
    /// How long the call took, when the breaker measures calls (it does when a
    /// slow-call or time-window policy is configured).
    pub elapsed: Option<Duration>,
    /// When the call finished on the breaker's clock, when the breaker reads
    /// the clock for calls.
    pub at: Option<Duration>,
}

/// A rule deciding when the breaker trips, for policies the crate does not ship.
///
/// `record` is called concurrently from many threads, so implementations keep
/// their counts in atomics or behind a short lock.
///
/// # Example
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use tripswitch::policy::{CallRecord, TripPolicy};
///
/// /// Trips after `limit` failures in total, successes notwithstanding.
/// #[derive(Debug)]
/// struct TotalFailures { limit: u32, seen: AtomicU32 }
///
/// impl TripPolicy for TotalFailures {
///     fn record(&self, call: &CallRecord) -> bool {
///         call.failed && self.seen.fetch_add(1, Ordering::Relaxed) + 1 >= self.limit
///     }
///     fn reset(&self) {
///         self.seen.store(0, Ordering::Relaxed);
///     }
/// }
///
/// let breaker = tripswitch::CircuitBreaker::builder()
///     .trip_policy(TotalFailures { limit: 3, seen: AtomicU32::new(0) })
///     .build();
/// # drop(breaker);
/// ```
pub trait TripPolicy: Send + Sync + fmt::Debug + 'static {
    /// Records one call; returns `true` when the breaker should trip now.
    fn record(&self, call: &CallRecord) -> bool;

    /// Forgets every recorded call (the breaker closed again or was reset).
    fn reset(&self);

    /// Whether this policy needs [`CallRecord::at`] (a clock read per call).
    fn needs_time(&self) -> bool {
        false
    }
}

/// A configured trip policy, as the breaker holds it.
#[derive(Debug)]
pub(crate) enum Policy {
    /// Shared with the breaker's success path (see `Core::record_success`).
    Consecutive(std::sync::Arc<consecutive::ConsecutiveState>),
    Rate(RateState),
    Custom(Box<dyn TripPolicy>),
}

impl Policy {
    pub(crate) fn record(&self, call: &CallRecord) -> bool {
        match self {
            Policy::Consecutive(p) => p.record(call.failed),
            Policy::Rate(p) => p.record(call),
            Policy::Custom(p) => p.record(call),
        }
    }

    pub(crate) fn reset(&self) {
        match self {
            Policy::Consecutive(p) => p.reset(),
            Policy::Rate(p) => p.reset(),
            Policy::Custom(p) => p.reset(),
        }
    }

    pub(crate) fn needs_time(&self) -> bool {
        match self {
            Policy::Consecutive(_) => false,
            Policy::Rate(p) => p.needs_time(),
            Policy::Custom(p) => p.needs_time(),
        }
    }

    pub(crate) fn consecutive_failures(&self) -> Option<u32> {
        match self {
            Policy::Consecutive(p) => Some(p.current()),
            _ => None,
        }
    }
}

/// The live state of `ConsecutiveFailures::new(n)`, for `n` already checked (0 counts as 1).
pub(crate) fn consecutive_state(n: u32) -> std::sync::Arc<consecutive::ConsecutiveState> {
    std::sync::Arc::new(consecutive::ConsecutiveState::new(ConsecutiveFailures {
        threshold: n.max(1),
    }))
}
