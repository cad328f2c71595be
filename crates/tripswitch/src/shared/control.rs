//! How a shared store steers one breaker.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::core::Core;
use crate::{Counts, State};

/// Steers one breaker on behalf of a shared store. Holds the breaker weakly:
/// once every [`CircuitBreaker`](crate::CircuitBreaker) handle is dropped,
/// every method does nothing and [`is_alive`](Self::is_alive) is false.
#[derive(Clone)]
pub struct SharedControl {
    core: Weak<Core>,
}

impl SharedControl {
    pub(crate) fn new(core: &Arc<Core>) -> Self {
        SharedControl {
            core: Arc::downgrade(core),
        }
    }

    /// Whether the breaker still exists.
    pub fn is_alive(&self) -> bool {
        self.core.strong_count() > 0
    }

    /// The breaker's current state (`None` once it is gone).
    pub fn state(&self) -> Option<State> {
        self.core.upgrade().map(|core| {
            core.refresh(false);
            core.load().state()
        })
    }

    /// How many half-open probes the breaker lets through at a time, as
    /// configured; `None` when it has no half-open state (the seed's
    /// [`HalfOpen::release_all`](crate::HalfOpen::release_all)).
    pub fn probe_limit(&self) -> Option<u32> {
        self.core.upgrade().and_then(|core| core.probe_limit())
    }

    /// Counts since the breaker was built (the same as
    /// [`Metrics::totals`](crate::Metrics::totals), without the rest of the
    /// metrics). A store publishes the differences between two readings.
    pub fn counts(&self) -> Counts {
        self.core
            .upgrade()
            .map(|core| core.totals())
            .unwrap_or_default()
    }

    /// How long until the breaker lets calls through by itself: zero when
    /// closed, the rest of the open period when open, `None` when that is
    /// not known (half-open, forced open, an async freeze, or gone).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.core.upgrade().and_then(|core| core.retry_after())
    }

    /// How many calls are waiting for the breaker (in wait mode): with
    /// [`Counts::rejected`], it tells a store whether this process has calls
    /// to probe with.
    pub fn waiting(&self) -> usize {
        self.core.upgrade().map_or(0, |core| core.waiting())
    }

    /// Opens the breaker for `remaining` from now (the fleet's open period),
    /// from closed, half-open, or open with another deadline. When it runs
    /// out the breaker goes on by itself (half-open, or closed), as after
    /// any open period. Returns whether the breaker moved.
    pub fn hold_open(&self, remaining: Duration) -> bool {
        self.core
            .upgrade()
            .is_some_and(|core| core.shared_open(remaining))
    }

    /// Hands the fleet's half-open probes to this breaker: from open to
    /// half-open, for at most `lease` (shorter if the breaker's own
    /// [`HalfOpen::max_duration`](crate::HalfOpen::max_duration) is). When
    /// the lease runs out undecided, the breaker opens again, as with
    /// `max_duration`. Returns whether the breaker moved.
    pub fn half_open(&self, lease: Duration) -> bool {
        self.core
            .upgrade()
            .is_some_and(|core| core.shared_half_open(lease))
    }

    /// Closes the breaker (from open or half-open): the fleet closed.
    /// Returns whether the breaker moved.
    pub fn close(&self) -> bool {
        self.core.upgrade().is_some_and(|core| core.shared_close())
    }
}

impl fmt::Debug for SharedControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedControl")
            .field("state", &self.state())
            .finish()
    }
}
