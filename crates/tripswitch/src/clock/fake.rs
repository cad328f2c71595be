use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::std_clock::{SleepState, ThreadSleep};
use super::{Clock, Sleep, nanos};
use std::sync::Mutex;

use super::lock;

/// A clock that only moves when told to, for deterministic tests on any executor.
///
/// Clones share the same time. [`advance`](FakeClock::advance) completes every
/// sleep whose end has been reached, so a breaker frozen for five seconds
/// lets its waiters through as soon as the test advances five seconds.
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
    now: AtomicU64,
    sleepers: Mutex<Vec<(u64, Arc<SleepState>)>>,
}

impl FakeClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by` and completes every sleep that has ended.
    pub fn advance(&self, by: Duration) {
        let now = self
            .inner
            .now
            .fetch_add(nanos(by), Ordering::AcqRel)
            .saturating_add(nanos(by));
        let due: Vec<_> = {
            let mut sleepers = lock(&self.inner.sleepers);
            let (due, pending) = sleepers.drain(..).partition(|(at, _)| *at <= now);
            *sleepers = pending;
            due
        };
        for (_, state) in due {
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
        let state = Arc::new(SleepState::default());
        let at = self
            .inner
            .now
            .load(Ordering::Acquire)
            .saturating_add(nanos(duration));
        let mut sleepers = lock(&self.inner.sleepers);
        if at <= self.inner.now.load(Ordering::Acquire) {
            state.fire();
        } else {
            sleepers.push((at, Arc::clone(&state)));
        }
        drop(sleepers);
        Box::pin(ThreadSleep { state })
    }
}
