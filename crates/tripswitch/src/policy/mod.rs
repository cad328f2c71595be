//! When a breaker trips: the built-in policies and the trait for your own.
//!
//! A breaker may have several policies; it trips as soon as any one of them
//! says so. Every policy sees the outcome of each counted call in the closed
//! (or metrics-only) state, and is cleared when the breaker closes again.
//!
//! - [`ConsecutiveFailures`]: `n` failures in a row (the seed trips on one).
//! - [`FailureRate`]: the share of failures over a sliding [`Window`].
//! - [`SlowCallRate`]: the share of calls slower than a threshold.
//! - [`FailureCount`]: a number of failures within a window.
//! - anything implementing [`TripPolicy`].
//!
//! There is one policy system: the built-in policies implement
//! [`TripPolicy`] as yours do. What they have in addition is a fast path:
//! direct access to their counters for successes, which the breaker finds
//! by their type once when it is built (`core/success_path.rs`), so that a
//! success costs one counter increment instead of a call through the trait.
//! A policy of any other type (one wrapping a built-in policy included)
//! sees every call through [`TripPolicy::record`].
//! A new built-in policy is one file here implementing the trait, plus one
//! registration (its `pub use` below, and a builder setter if it deserves
//! one); see ARCHITECTURE.md.

mod consecutive;
mod count_ring;
mod failure_count;
mod last_slice;
mod rate;
mod striped_successes;
mod time_buckets;
mod window;
mod window_state;

pub use consecutive::ConsecutiveFailures;
pub use failure_count::FailureCount;
pub use rate::{FailureRate, SlowCallRate};
pub use window::{MAX_BUCKETS, MAX_WINDOW_CALLS, Window};

pub(crate) use consecutive::ConsecutiveState;
pub(crate) use count_ring::CountRing;
pub(crate) use rate::{RatePolicy, RateState};
#[cfg(loom)]
pub(crate) use striped_successes::StripedSuccesses;
pub(crate) use time_buckets::TimeBuckets;

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

/// What a policy can tell of its counts, for [`Metrics`](crate::Metrics)
/// and the [`TripContext`](crate::TripContext) of an opening. Each field is
/// `None` when the policy does not keep that count; a breaker reports the
/// first policy's value that is `Some`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct PolicyStats {
    /// Failures in a row.
    pub consecutive_failures: Option<u32>,
    /// The share of failed calls in the window, when it holds a call.
    pub failure_rate: Option<f64>,
    /// The number of failed calls in the window.
    pub failures_in_window: Option<u64>,
    /// The share of slow calls in the window, when it holds a call.
    pub slow_call_rate: Option<f64>,
    /// The number of calls the window holds now (Polly's throughput,
    /// Resilience4j's buffered calls).
    pub calls_in_window: Option<u64>,
}

impl PolicyStats {
    /// Each field from `self`, or else from `other`.
    pub(crate) fn or(self, other: PolicyStats) -> PolicyStats {
        PolicyStats {
            consecutive_failures: self.consecutive_failures.or(other.consecutive_failures),
            failure_rate: self.failure_rate.or(other.failure_rate),
            failures_in_window: self.failures_in_window.or(other.failures_in_window),
            slow_call_rate: self.slow_call_rate.or(other.slow_call_rate),
            calls_in_window: self.calls_in_window.or(other.calls_in_window),
        }
    }
}

/// The built-in policies' counters, as the success fast paths use them: the
/// breaker records a success in them without a call through the trait (see
/// `core/success_path.rs`). Found by type when the breaker is built
/// (`fast_path`), so a policy of another type, even one wrapping a
/// built-in policy, sees every success through [`TripPolicy::record`].
#[derive(Debug, Clone)]
pub(crate) enum FastKind {
    /// A consecutive-failures count.
    Consecutive(std::sync::Arc<ConsecutiveState>),
    /// A rate over a count or time window.
    Rate(std::sync::Arc<RateState>),
}

/// A rule deciding when the breaker trips: the one trait behind every
/// policy, the built-in ones ([`ConsecutiveFailures`], and the rates set
/// with [`Builder::failure_rate`](crate::Builder::failure_rate) and
/// [`Builder::slow_call_rate`](crate::Builder::slow_call_rate)) and yours
/// ([`Builder::trip_policy`](crate::Builder::trip_policy)).
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
pub trait TripPolicy: std::any::Any + Send + Sync + fmt::Debug + 'static {
    /// Records one call; returns `true` when the breaker should trip now.
    fn record(&self, call: &CallRecord) -> bool;

    /// Forgets every recorded call (the breaker closed again or was reset).
    fn reset(&self);

    /// Whether this policy needs [`CallRecord::at`] (a clock read per call).
    fn needs_time(&self) -> bool {
        false
    }

    /// Whether this policy judges slow calls: a breaker with one counts a
    /// slow half-open probe as a failed one.
    fn judges_slow_calls(&self) -> bool {
        false
    }

    /// The policy's counts at `at` (the breaker's clock), for metrics and
    /// the context of an opening. Nothing by default.
    fn stats(&self, at: Duration) -> PolicyStats {
        let _ = at;
        PolicyStats::default()
    }
}

/// The direct path for successes of a built-in policy, found by its type:
/// `None` for any other policy.
pub(crate) fn fast_path(policy: &dyn TripPolicy) -> Option<FastKind> {
    let policy: &dyn std::any::Any = policy;
    if let Some(consecutive) = policy.downcast_ref::<ConsecutiveFailures>() {
        Some(consecutive.fast_kind())
    } else {
        policy
            .downcast_ref::<RatePolicy>()
            .map(RatePolicy::fast_kind)
    }
}
