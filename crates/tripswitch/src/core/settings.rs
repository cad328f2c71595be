//! What the builder decided, as a breaker keeps it: small, because every
//! breaker of a registry of thousands keeps its own (see [`Settings`]).

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{ClockReader, nanos};
use crate::events::{ErrorCallback, Listener};
use crate::half_open::HalfOpen;
use crate::open_period::OpenPeriod;
use crate::shared::hook::SharedState;

/// A predicate over a type-erased error.
pub(crate) type ErasedPredicate = Arc<dyn Fn(&dyn Any) -> bool + Send + Sync>;

/// An error-type rule from [`Builder::ignore_errors`](crate::Builder::ignore_errors).
#[derive(Clone)]
pub(crate) struct ErrorRule {
    pub(crate) type_id: TypeId,
    pub(crate) ignore: ErasedPredicate,
}

/// Everything the builder decided.
pub(crate) struct Settings {
    /// The breaker's clock, as the reader that reads it in place (see
    /// [`ClockReader`]).
    pub(crate) clock: ClockReader,
    pub(crate) fail_fast: bool,
    /// How long a call may wait (none: as long as the period lasts).
    pub(crate) max_wait: OptionalU64,
    /// How many calls may wait at once (none: no limit).
    pub(crate) max_waiters: OptionalU64,
    pub(crate) open_period: OpenPeriod,
    /// The longest an async freeze may last before the period ends anyway
    /// (always set).
    pub(crate) max_freeze: OptionalU64,
    pub(crate) half_open: HalfOpen,
    pub(crate) retry_after_freeze: bool,
    pub(crate) seed_accounting: bool,
    /// The slow-call threshold of events and metrics, if any.
    pub(crate) slow_after: OptionalU64,
    /// The callbacks, rules and store, `None` when none is set (see
    /// [`Hooks::boxed`]).
    pub(crate) hooks: Option<Box<Hooks>>,
    /// Timed periods end on time, from their alarm, not when a call or a
    /// read next looks (`Builder::eager_transitions`).
    pub(crate) eager_transitions: bool,
}

/// The settings most breakers leave empty, kept together behind one
/// pointer: a breaker without them pays one word (not 72 bytes) for them,
/// one that has them one more pointer load on its cold paths (failures,
/// events, transitions), never on the closed path's successes.
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) error_rules: Box<[ErrorRule]>,
    /// `None`: the default, a `tracing` debug line naming the breaker
    /// ([`log_error`](crate::events::log_error)), which needs no allocation
    /// of its own.
    pub(crate) on_error: Option<ErrorCallback>,
    pub(crate) listeners: Box<[Listener]>,
    /// How many of `listeners`, first, are the crate's own (the metrics
    /// exporter): they never call back into the breaker, so they see every
    /// event, those raised inside the breaker's callbacks included.
    pub(crate) own_listeners: usize,
    pub(crate) shared: Option<Arc<dyn SharedState>>,
}

impl Hooks {
    /// `None` when every hook is empty.
    pub(crate) fn boxed(self) -> Option<Box<Hooks>> {
        let empty = self.error_rules.is_empty()
            && self.on_error.is_none()
            && self.listeners.is_empty()
            && self.shared.is_none();
        (!empty).then(|| Box::new(self))
    }
}

impl Settings {
    pub(crate) fn max_wait(&self) -> Option<Duration> {
        self.max_wait.duration()
    }

    pub(crate) fn max_waiters(&self) -> Option<usize> {
        self.max_waiters.count()
    }

    pub(crate) fn max_freeze(&self) -> Duration {
        self.max_freeze.duration().unwrap_or(Duration::MAX)
    }

    #[inline]
    pub(crate) fn slow_after(&self) -> Option<Duration> {
        self.slow_after.duration()
    }

    #[inline]
    pub(crate) fn error_rules(&self) -> &[ErrorRule] {
        self.hooks.as_ref().map_or(&[], |hooks| &hooks.error_rules)
    }

    #[inline]
    pub(crate) fn on_error(&self) -> Option<&ErrorCallback> {
        self.hooks
            .as_ref()
            .and_then(|hooks| hooks.on_error.as_ref())
    }

    #[inline]
    pub(crate) fn listeners(&self) -> &[Listener] {
        self.hooks.as_ref().map_or(&[], |hooks| &hooks.listeners)
    }

    pub(crate) fn own_listeners(&self) -> usize {
        self.hooks.as_ref().map_or(0, |hooks| hooks.own_listeners)
    }

    pub(crate) fn shared(&self) -> Option<&Arc<dyn SharedState>> {
        self.hooks.as_ref().and_then(|hooks| hooks.shared.as_ref())
    }
}

/// An optional `u64` (nanoseconds, or a count) in 8 bytes instead of the 16
/// of an `Option<Duration>` or `Option<usize>`: `u64::MAX` is none, and
/// values saturate one below it (about 584 years; more calls than a
/// process can hold). A saturated duration reads back as `Duration::MAX`:
/// longer than any reading of a clock (which counts nanoseconds in a
/// `u64`), so a threshold or a bound set that high is never reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OptionalU64(u64);

impl OptionalU64 {
    const NONE: u64 = u64::MAX;
    const SATURATED: u64 = u64::MAX - 1;

    fn some(value: u64) -> Self {
        Self(value.min(Self::SATURATED))
    }

    pub(crate) fn of_duration(duration: Option<Duration>) -> Self {
        duration.map_or(Self(Self::NONE), |duration| Self::some(nanos(duration)))
    }

    pub(crate) fn of_count(count: Option<usize>) -> Self {
        count.map_or(Self(Self::NONE), |count| {
            Self::some(u64::try_from(count).unwrap_or(u64::MAX))
        })
    }

    #[inline]
    pub(crate) fn duration(self) -> Option<Duration> {
        match self.0 {
            Self::NONE => None,
            Self::SATURATED => Some(Duration::MAX),
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    pub(crate) fn count(self) -> Option<usize> {
        (self.0 != Self::NONE).then(|| usize::try_from(self.0).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_stays_none_and_the_largest_values_stay_set() {
        assert_eq!(OptionalU64::of_duration(None).duration(), None);
        assert_eq!(OptionalU64::of_count(None).count(), None);
        let second = Duration::from_secs(1);
        assert_eq!(
            OptionalU64::of_duration(Some(second)).duration(),
            Some(second)
        );
        assert_eq!(
            OptionalU64::of_duration(Some(Duration::ZERO)).duration(),
            Some(Duration::ZERO)
        );
        assert_eq!(OptionalU64::of_count(Some(0)).count(), Some(0));
        assert_eq!(OptionalU64::of_count(Some(7)).count(), Some(7));
        // Saturated, never turned into "none".
        let longest = OptionalU64::of_duration(Some(Duration::MAX)).duration();
        assert_eq!(
            longest,
            Some(Duration::MAX),
            "longer than any clock reading"
        );
        let just_below = Duration::from_nanos(u64::MAX - 2);
        assert_eq!(
            OptionalU64::of_duration(Some(just_below)).duration(),
            Some(just_below)
        );
        assert!(OptionalU64::of_count(Some(usize::MAX)).count().is_some());
    }
}
