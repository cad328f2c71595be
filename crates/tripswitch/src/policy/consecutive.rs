use std::sync::Arc;
use std::time::Duration;

use super::{CallRecord, FastKind, PolicyStats, TripPolicy};
use crate::error::ConfigError;
use crate::loom::{AtomicU32, Ordering};

/// Trip after `n` failures in a row; a success starts the count again.
///
/// The seed's breaker is `ConsecutiveFailures::new(1)`; gobreaker's default
/// trips after more than five. The builder makes one with
/// [`consecutive_failures`](crate::Builder::consecutive_failures); one made
/// here goes in with [`trip_policy`](crate::Builder::trip_policy). Each
/// holds its own count: give each breaker its own.
///
/// ```
/// use tripswitch::policy::ConsecutiveFailures;
///
/// let breaker = tripswitch::CircuitBreaker::standard()
///     .trip_policy(ConsecutiveFailures::new(3)?)
///     .build();
/// # drop(breaker);
/// # Ok::<(), tripswitch::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct ConsecutiveFailures {
    state: Arc<ConsecutiveState>,
}

impl ConsecutiveFailures {
    /// Trip after `threshold` consecutive failures.
    ///
    /// # Errors
    ///
    /// `threshold` must be at least 1.
    ///
    /// ```
    /// use tripswitch::policy::ConsecutiveFailures;
    /// assert!(ConsecutiveFailures::new(5).is_ok());
    /// let err = ConsecutiveFailures::new(0).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid consecutive_failures: 0 (must be at least 1)");
    /// ```
    pub fn new(threshold: u32) -> Result<Self, ConfigError> {
        if threshold == 0 {
            return Err(ConfigError::new(
                "consecutive_failures",
                threshold,
                "at least 1",
            ));
        }
        Ok(Self::clamped(threshold))
    }

    /// A policy for `threshold`, 0 counting as 1 (`Builder::build` clamps
    /// what `try_build` refuses).
    pub(crate) fn clamped(threshold: u32) -> Self {
        Self {
            state: Arc::new(ConsecutiveState::new(threshold)),
        }
    }

    /// The number of consecutive failures that trips the breaker.
    pub fn threshold(&self) -> u32 {
        self.state.threshold
    }
}

impl TripPolicy for ConsecutiveFailures {
    fn record(&self, call: &CallRecord) -> bool {
        self.state.record(call.failed)
    }

    fn reset(&self) {
        self.state.reset();
    }

    fn stats(&self, _at: Duration) -> PolicyStats {
        PolicyStats {
            consecutive_failures: Some(self.state.current()),
            ..PolicyStats::default()
        }
    }
}

impl ConsecutiveFailures {
    /// Its counter, for the breaker's success fast path.
    pub(crate) fn fast_kind(&self) -> FastKind {
        FastKind::Consecutive(Arc::clone(&self.state))
    }
}

/// The running count behind [`ConsecutiveFailures`].
#[derive(Debug)]
pub(crate) struct ConsecutiveState {
    threshold: u32,
    failures: AtomicU32,
}

impl ConsecutiveState {
    fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            failures: AtomicU32::new(0),
        }
    }

    #[inline]
    pub(crate) fn record(&self, failed: bool) -> bool {
        if failed {
            self.failures
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1)
                >= self.threshold
        } else {
            // Read before writing: on the happy path the count is already zero,
            // and a plain load keeps the cache line shared between cores.
            if self.failures.load(Ordering::Relaxed) != 0 {
                self.failures.store(0, Ordering::Relaxed);
            }
            false
        }
    }

    pub(crate) fn reset(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn current(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }
}
