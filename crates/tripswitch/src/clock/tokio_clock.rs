use std::time::Duration;

use super::{Clock, Sleep};

/// A [`Clock`] on tokio's time: `tokio::time::Instant` and `tokio::time::sleep`.
///
/// Because it reads `tokio::time::Instant`, it follows tokio's paused time
/// (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`), which is
/// the simplest way to test code that uses a breaker.
///
/// Sleeping needs a tokio runtime with the time driver enabled.
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

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Time on tokio's clock since `origin` (zero if tokio's paused clock was
/// moved behind it).
#[inline]
pub(super) fn since(origin: tokio::time::Instant) -> Duration {
    tokio::time::Instant::now().saturating_duration_since(origin)
}
