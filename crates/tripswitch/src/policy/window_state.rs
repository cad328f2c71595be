//! The live state of a [`Window`]: a count ring or time buckets, chosen
//! from its configuration.

use std::time::Duration;

use super::count_ring::CountRing;
use super::time_buckets::TimeBuckets;
use super::window::{MAX_BUCKETS, MAX_WINDOW_CALLS, Window, WindowCounts};

/// The live state of a [`Window`].
#[derive(Debug)]
pub(crate) enum WindowState {
    /// Shared with the breaker's success path (see `Core::record_success`).
    Count(std::sync::Arc<CountRing>),
    /// Shared with the breaker's success path too.
    Time(std::sync::Arc<TimeBuckets>),
}

impl WindowState {
    /// `judge_at`: the rate policy's `min_calls`, the number of calls at
    /// which a count window is first judged (see [`CountRing::judge_at`]).
    pub(crate) fn new(window: Window, judge_at: u32) -> Self {
        match window {
            // Clamped as well as validated: a window is only built from a
            // checked configuration, and the clamp keeps the allocation and
            // the bucket index within their bounds even so.
            Window::LastCalls(n) => WindowState::Count(std::sync::Arc::new(
                CountRing::new(n.clamp(1, MAX_WINDOW_CALLS)).judged_at(judge_at),
            )),
            Window::LastDuration { length, buckets } => WindowState::Time(std::sync::Arc::new(
                TimeBuckets::new(length, buckets.clamp(1, MAX_BUCKETS)),
            )),
        }
    }

    pub(crate) fn record(&self, failed: bool, slow: bool, at: Duration) -> WindowCounts {
        match self {
            WindowState::Count(ring) => ring.record(failed, slow),
            WindowState::Time(buckets) => buckets.record(failed, slow, at),
        }
    }

    pub(crate) fn counts(&self, at: Duration) -> WindowCounts {
        match self {
            WindowState::Count(ring) => ring.counts(),
            WindowState::Time(buckets) => buckets.counts(at),
        }
    }

    /// The counts, read to judge the window: a time window that holds no
    /// failure or slow call any more is marked clean (its successes then
    /// stop asking to be judged).
    pub(crate) fn judged_counts(&self, at: Duration) -> WindowCounts {
        match self {
            WindowState::Count(ring) => ring.counts(),
            WindowState::Time(buckets) => buckets.judged_counts(at),
        }
    }

    pub(crate) fn reset(&self) {
        match self {
            WindowState::Count(ring) => ring.reset(),
            WindowState::Time(buckets) => buckets.reset(),
        }
    }

    pub(crate) fn needs_time(&self) -> bool {
        matches!(self, WindowState::Time(_))
    }

    /// The count ring, for the fast success path.
    pub(crate) fn ring(&self) -> Option<&std::sync::Arc<CountRing>> {
        match self {
            WindowState::Count(ring) => Some(ring),
            WindowState::Time(_) => None,
        }
    }

    /// The time buckets, for the fast success path.
    pub(crate) fn buckets(&self) -> Option<&std::sync::Arc<TimeBuckets>> {
        match self {
            WindowState::Time(buckets) => Some(buckets),
            WindowState::Count(_) => None,
        }
    }
}
