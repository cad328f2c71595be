//! [`FailureCount`]: trip on a number of failures within a window, whatever
//! the successes around them (Sentinel's "error count" rule).
//!
//! This policy is the example ARCHITECTURE.md points to: a built-in policy
//! is one file implementing [`TripPolicy`], plus its `pub use` in
//! `policy/mod.rs`. It has no fast path of its own, so every success goes
//! through [`TripPolicy::record`].

use std::time::Duration;

use super::window::Window;
use super::window_state::WindowState;
use super::{CallRecord, PolicyStats, TripPolicy};
use crate::error::ConfigError;

/// Trip when the window holds at least `failures` failed calls, however
/// many calls succeeded: for a dependency where any burst of errors
/// matters (a payment gateway, a licence server), and for low traffic,
/// where a rate needs many calls to mean anything.
///
/// Only a failure can trip it (a success never adds a failure). Ignored
/// errors are not calls here. Goes into a breaker with
/// [`Builder::trip_policy`](crate::Builder::trip_policy); each holds its
/// own window, so give each breaker its own.
///
/// ```
/// use std::time::Duration;
/// use tripswitch::policy::{FailureCount, Window};
///
/// // Open on 5 failures within the last 10 seconds.
/// let breaker = tripswitch::CircuitBreaker::standard()
///     .trip_policy(FailureCount::new(5, Window::last(Duration::from_secs(10)))?)
///     .build();
/// # drop(breaker);
/// # Ok::<(), tripswitch::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct FailureCount {
    failures: u64,
    window: WindowState,
}

impl FailureCount {
    /// Trip on `failures` failed calls within `window`.
    ///
    /// # Errors
    ///
    /// `failures` must be at least 1, and no more than a count window's
    /// size; the window must be valid (see [`Window`]).
    pub fn new(failures: u32, window: Window) -> Result<Self, ConfigError> {
        window.validate("failure_count.window")?;
        let most = window.max_calls().unwrap_or(u32::MAX);
        if !(1..=most).contains(&failures) {
            return Err(ConfigError::new(
                "failure_count.failures",
                failures,
                match window.max_calls() {
                    Some(size) => format!("between 1 and the window's size of {size} calls"),
                    None => "at least 1".to_owned(),
                },
            ));
        }
        Ok(Self {
            failures: u64::from(failures),
            // Judged on failures only: no success needs judging.
            window: WindowState::new(window, u32::MAX),
        })
    }

    /// The number of failures that trips the breaker.
    pub fn failures(&self) -> u32 {
        u32::try_from(self.failures).unwrap_or(u32::MAX)
    }
}

impl TripPolicy for FailureCount {
    fn record(&self, call: &CallRecord) -> bool {
        let counts = self
            .window
            .record(call.failed, call.slow, call.at.unwrap_or_default());
        call.failed && counts.failures >= self.failures
    }

    fn reset(&self) {
        self.window.reset();
    }

    fn needs_time(&self) -> bool {
        self.window.needs_time()
    }

    fn stats(&self, at: Duration) -> PolicyStats {
        let counts = self.window.counts(at);
        PolicyStats {
            failures_in_window: Some(counts.failures),
            calls_in_window: Some(counts.calls),
            ..PolicyStats::default()
        }
    }
}
