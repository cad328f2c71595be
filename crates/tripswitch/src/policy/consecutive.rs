use crate::error::ConfigError;
use crate::sync::{AtomicU32, Ordering};

/// Trip after `n` failures in a row; a success starts the count again.
///
/// The seed's breaker is `ConsecutiveFailures::new(1)`; gobreaker's default
/// trips after more than five.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsecutiveFailures {
    pub(crate) threshold: u32,
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
        Ok(Self { threshold })
    }

    /// The number of consecutive failures that trips the breaker.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }
}

/// The running count behind [`ConsecutiveFailures`].
#[derive(Debug)]
pub(crate) struct ConsecutiveState {
    threshold: u32,
    failures: AtomicU32,
}

impl ConsecutiveState {
    pub(crate) fn new(config: ConsecutiveFailures) -> Self {
        Self {
            threshold: config.threshold.max(1),
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
