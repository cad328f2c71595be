use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::lock;
use super::sleepers::{Sleepers, ThreadSleep};
use super::{Clock, Sleep, nanos};

/// A clock that only moves when told to, for deterministic tests on any executor.
///
/// Clones share the same time. [`advance`](FakeClock::advance) completes every
/// sleep whose end has been reached, so a breaker frozen for five seconds
/// lets its waiters through as soon as the test advances five seconds. Time
/// saturates at `u64::MAX` nanoseconds (584 years) instead of wrapping, and a
/// sleep dropped before its end is forgotten at once.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tripswitch::CircuitBreaker;
/// use tripswitch::clock::FakeClock;
///
/// let clock = FakeClock::new();
/// let breaker = CircuitBreaker::builder()
///     .clock(clock.clone())
///     .freeze_for(Duration::from_secs(5))
///     .build();
/// # futures::executor::block_on(async {
/// let _ = breaker.execute(|| async { Err::<(), _>("down") }).now_or_never();
/// # });
/// # use futures::FutureExt;
/// assert!(breaker.is_frozen());
/// clock.advance(Duration::from_secs(5));
/// assert!(!breaker.is_frozen());
/// ```
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Nanoseconds since the origin; only ever grows (saturating).
    now: AtomicU64,
    sleepers: Arc<Mutex<Sleepers<u64>>>,
}

impl FakeClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by` (saturating) and completes every sleep that has ended.
    pub fn advance(&self, by: Duration) {
        let by = nanos(by);
        let previous = self
            .inner
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(by))
            })
            .unwrap_or_else(|now| now);
        let now = previous.saturating_add(by);
        let due = lock(&self.inner.sleepers).take_due(now);
        for state in due {
            state.fire();
        }
    }

    /// How many sleeps are still waiting for time to reach them.
    pub fn pending_sleeps(&self) -> usize {
        lock(&self.inner.sleepers).len()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.inner.now.load(Ordering::Acquire))
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        // Queued under the lock that `advance` fires under, after reading
        // the time inside it: an `advance` cannot slip between the two.
        let mut sleepers = lock(&self.inner.sleepers);
        let now = self.inner.now.load(Ordering::Acquire);
        let at = now.saturating_add(nanos(duration));
        if at <= now {
            return Box::pin(ThreadSleep::<u64>::done());
        }
        Box::pin(ThreadSleep::queued_in(
            &self.inner.sleepers,
            &mut sleepers,
            at,
        ))
    }
}
