use std::time::Duration;

use super::{Clock, Sleep};

/// A [`Clock`] on tokio's time: `tokio::time::Instant` and `tokio::time::sleep`.
///
/// Because it reads `tokio::time::Instant`, it follows tokio's paused time
/// (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`), which is
/// the simplest way to test code that uses a breaker.
///
/// Sleeping uses the timer of the tokio runtime it is called on (which must
/// have its time driver enabled); outside any runtime it falls back to the
/// process-wide timer thread of [`StdClock`](super::StdClock).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    pub(super) origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        since(self.origin)
    }

    /// Tokio's sleep on the runtime of the calling thread; outside any tokio
    /// runtime, a sleep on the process-wide timer thread of
    /// [`StdClock`](super::StdClock) instead (tokio's would panic there).
    fn sleep(&self, duration: Duration) -> Sleep {
        tokio_sleep(duration)
    }
}

/// [`TokioClock::sleep`], which needs no clock (its origin plays no part).
pub(crate) fn tokio_sleep(duration: Duration) -> Sleep {
    if tokio::runtime::Handle::try_current().is_err() {
        return super::std_clock::thread_sleep(duration);
    }
    Box::pin(tokio::time::sleep(duration))
}

/// Time on tokio's clock since `origin` (zero if tokio's paused clock was
/// moved behind it).
#[inline]
pub(super) fn since(origin: tokio::time::Instant) -> Duration {
    tokio::time::Instant::now().saturating_duration_since(origin)
}
