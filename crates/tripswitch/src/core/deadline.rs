//! Time as types: a moment on the breaker's clock, and an optional deadline
//! kept in one atomic word. The one sentinel (no deadline) lives here and
//! nowhere else.

use std::time::Duration;

use crate::clock::nanos;
use crate::loom::{AtomicU64, Ordering};

/// A moment on the breaker's clock: nanoseconds since the clock's origin,
/// saturating at [`Moment::END`] (about 584 years), which a deadline
/// reaches when its period is `Duration::MAX`: it never comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Moment(u64);

impl Moment {
    /// The last moment, one short of [`AtomicDeadline`]'s "none".
    pub(crate) const END: Moment = Moment(u64::MAX - 1);

    /// The moment `since_origin` after the clock's origin (saturating).
    #[inline]
    pub(crate) fn at(since_origin: Duration) -> Moment {
        Moment(nanos(since_origin).min(Self::END.0))
    }

    /// The moment `after` past `now` (saturating at [`END`](Self::END)).
    #[inline]
    pub(crate) fn after(now: Duration, after: Duration) -> Moment {
        Moment::at(now.saturating_add(after))
    }

    /// Nanoseconds since the clock's origin.
    #[inline]
    pub(crate) fn nanos(self) -> u64 {
        self.0
    }

    /// This moment as a reading of the clock.
    #[inline]
    pub(crate) fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// How long from `now` until this moment (zero once it has passed).
    #[inline]
    pub(crate) fn remaining(self, now: Duration) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(nanos(now)))
    }

    /// Whether this moment has come at `now`.
    #[inline]
    pub(crate) fn has_come(self, now: Duration) -> bool {
        Moment::at(now) >= self
    }
}

/// An optional [`Moment`] in one atomic word.
///
/// Invariant: the word holds a moment's nanoseconds, or `NONE` (which no
/// moment takes: they stop at [`Moment::END`]). Orderings are the caller's
/// (see each field of `Core`): a deadline is stored with `Release` before
/// the state word's transition or the event that makes it relevant, and
/// loaded with `Acquire`.
#[derive(Debug)]
pub(crate) struct AtomicDeadline(AtomicU64);

/// No deadline.
const NONE: u64 = u64::MAX;

impl Default for AtomicDeadline {
    fn default() -> Self {
        Self::none()
    }
}

impl AtomicDeadline {
    /// No deadline yet.
    pub(crate) fn none() -> Self {
        Self(AtomicU64::new(NONE))
    }

    /// The deadline, if one is set.
    #[inline]
    pub(crate) fn load(&self, order: Ordering) -> Option<Moment> {
        match self.0.load(order) {
            NONE => None,
            nanos => Some(Moment(nanos)),
        }
    }

    /// Sets (or clears) the deadline.
    #[inline]
    pub(crate) fn store(&self, deadline: Option<Moment>, order: Ordering) {
        self.0.store(deadline.map_or(NONE, Moment::nanos), order);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_saturate_short_of_none_and_round_trip() {
        let deadline = AtomicDeadline::none();
        assert_eq!(deadline.load(Ordering::Relaxed), None);
        let end = Moment::after(Duration::from_secs(1), Duration::MAX);
        assert_eq!(end, Moment::END);
        deadline.store(Some(end), Ordering::Relaxed);
        assert_eq!(deadline.load(Ordering::Relaxed), Some(Moment::END));
        assert!(!end.has_come(Duration::from_secs(1_000_000_000)));
        let soon = Moment::after(Duration::from_secs(1), Duration::from_secs(2));
        assert_eq!(
            soon.remaining(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(soon.remaining(Duration::from_secs(9)), Duration::ZERO);
        assert!(soon.has_come(Duration::from_secs(3)));
        deadline.store(None, Ordering::Relaxed);
        assert_eq!(deadline.load(Ordering::Relaxed), None);
    }
}
