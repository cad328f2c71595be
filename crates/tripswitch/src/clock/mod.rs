//! The clock seam: where the breaker reads time and how it sleeps.
//!
//! Every timed decision (how long a breaker stays open, time-based windows,
//! slow calls, maximum waits) goes through a [`Clock`]. The default clock is
//! `TokioClock` with the `tokio` feature (tokio's timer; it honours tokio's
//! paused time in tests) and [`StdClock`] without it. Tests that run on any
//! executor can use [`FakeClock`] and move time by hand.

mod fake;
mod sleepers;
mod std_clock;
#[cfg(feature = "tokio")]
mod tokio_clock;
#[cfg(feature = "quanta")]
mod tsc_clock;

pub use fake::FakeClock;
pub use std_clock::StdClock;
pub(crate) use std_clock::thread_sleep;
#[cfg(feature = "tokio")]
pub use tokio_clock::TokioClock;
#[cfg(feature = "quanta")]
pub use tsc_clock::TscClock;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A future that completes once a [`Clock::sleep`] has elapsed.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A monotonic time source and a way to wait on it.
///
/// Implement it to run timed freezes on a runtime other than tokio, or to
/// drive time by hand in tests (see [`FakeClock`]).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tripswitch::clock::{Clock, FakeClock};
///
/// let clock = FakeClock::new();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now(), Duration::from_millis(1500));
/// ```
pub trait Clock: Any + Send + Sync + fmt::Debug {
    /// Time elapsed since this clock's origin. It must never go backwards.
    fn now(&self) -> Duration;

    /// A future that completes once `duration` has passed on this clock.
    ///
    /// The future is polled from whichever task happens to be waiting on the
    /// breaker, so it must not rely on being polled by one particular task.
    fn sleep(&self, duration: Duration) -> Sleep;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        (**self).sleep(duration)
    }
}

/// The clock a breaker uses unless told otherwise.
pub(crate) fn default_clock() -> Arc<dyn Clock> {
    #[cfg(feature = "tokio")]
    {
        Arc::new(TokioClock::new())
    }
    #[cfg(not(feature = "tokio"))]
    {
        Arc::new(StdClock::new())
    }
}

/// How the breaker reads its own clock: a built-in clock is read in place,
/// with the same arithmetic as its [`Clock::now`], so that a time window's
/// success costs no indirect call; any other clock through its trait object.
///
/// Three variants, not one per built-in clock: a `match` on four compiles
/// to an indirect jump through a table, which the closed path pays on every
/// call of a time window.
#[derive(Debug, Clone)]
pub(crate) enum ClockReader {
    /// [`TokioClock`] or [`StdClock`], which read instants (tokio's are
    /// `std`'s underneath) since `origin`.
    Instants {
        origin: std::time::Instant,
        on_tokio: bool,
    },
    #[cfg(feature = "quanta")]
    Tsc(TscClock),
    /// Any other clock, read and slept on through its trait object.
    Other(Arc<dyn Clock>),
}

impl ClockReader {
    /// The only place that tells the built-in clocks from the others.
    ///
    /// A built-in clock is kept as its reader only (its origin), not as a
    /// trait object: a breaker on the default clock allocates nothing for it.
    pub(crate) fn of(clock: Arc<dyn Clock>) -> Self {
        let any: &dyn Any = &*clock;
        #[cfg(feature = "tokio")]
        if let Some(tokio) = any.downcast_ref::<TokioClock>() {
            return ClockReader::Instants {
                origin: tokio.origin.into_std(),
                on_tokio: true,
            };
        }
        #[cfg(feature = "quanta")]
        if let Some(tsc) = any.downcast_ref::<TscClock>() {
            return ClockReader::Tsc(tsc.clone());
        }
        match any.downcast_ref::<StdClock>() {
            Some(std) => ClockReader::Instants {
                origin: std.origin,
                on_tokio: false,
            },
            None => ClockReader::Other(clock),
        }
    }

    /// The reader of the clock a breaker uses unless told otherwise
    /// ([`default_clock`]), made without allocating it.
    pub(crate) fn of_default() -> Self {
        #[cfg(feature = "tokio")]
        {
            ClockReader::Instants {
                origin: TokioClock::new().origin.into_std(),
                on_tokio: true,
            }
        }
        #[cfg(not(feature = "tokio"))]
        {
            ClockReader::Instants {
                origin: StdClock::new().origin,
                on_tokio: false,
            }
        }
    }

    /// A sleep on the clock (`Clock::sleep`). May panic where the clock
    /// cannot sleep (tokio's timer outside a runtime): the breaker catches it.
    pub(crate) fn sleep(&self, duration: Duration) -> Sleep {
        match self {
            #[cfg(feature = "tokio")]
            ClockReader::Instants { on_tokio: true, .. } => tokio_clock::tokio_sleep(duration),
            ClockReader::Instants { .. } => thread_sleep(duration),
            #[cfg(feature = "quanta")]
            ClockReader::Tsc(tsc) => tsc.sleep(duration),
            ClockReader::Other(clock) => clock.sleep(duration),
        }
    }

    /// The clock as a trait object, for what reads it outside the breaker
    /// (a rejection's `retry_after`): `None` for tokio's and `std`'s clocks,
    /// which rejections read through their process-wide anchors.
    pub(crate) fn as_custom(&self) -> Option<Arc<dyn Clock>> {
        match self {
            ClockReader::Instants { .. } => None,
            #[cfg(feature = "quanta")]
            ClockReader::Tsc(tsc) => Some(Arc::new(tsc.clone())),
            ClockReader::Other(clock) => Some(Arc::clone(clock)),
        }
    }

    /// Whether this is tokio's clock, whose sleeps belong to the runtime
    /// they were made on.
    pub(crate) fn is_tokio(&self) -> bool {
        matches!(self, ClockReader::Instants { on_tokio: true, .. })
    }

    /// For tokio's clock `Some(true)`, for `std`'s `Some(false)`: the
    /// clocks whose readings are instants ([`instant_now`]), which a time
    /// window's last-slice memory compares (see `policy::last_slice`).
    /// `None` for the others.
    #[inline(always)]
    pub(crate) fn reads_instants(&self) -> Option<bool> {
        match self {
            ClockReader::Instants { on_tokio, .. } => Some(*on_tokio),
            _ => None,
        }
    }

    /// The time-stamp-counter clock, if this is it.
    #[cfg(feature = "quanta")]
    pub(crate) fn tsc(&self) -> Option<&TscClock> {
        match self {
            ClockReader::Tsc(tsc) => Some(tsc),
            _ => None,
        }
    }

    /// The origin of tokio's or `std`'s clock, whose readings are
    /// instants; `None` for the other clocks.
    pub(crate) fn instant_origin(&self) -> Option<std::time::Instant> {
        match self {
            ClockReader::Instants { origin, .. } => Some(*origin),
            _ => None,
        }
    }

    /// `clock.now()`, where `clock` is the clock this reader was made of.
    #[inline]
    pub(crate) fn now(&self) -> Duration {
        match self {
            ClockReader::Instants { origin, on_tokio } => {
                instant_now(*on_tokio).saturating_duration_since(*origin)
            }
            #[cfg(feature = "quanta")]
            ClockReader::Tsc(tsc) => Duration::from_nanos(tsc.nanos()),
            ClockReader::Other(clock) => clock.now(),
        }
    }
}

/// Tokio's instant (which follows its paused clock) or `std`'s.
#[inline(always)]
pub(crate) fn instant_now(on_tokio: bool) -> std::time::Instant {
    #[cfg(feature = "tokio")]
    if on_tokio {
        return tokio::time::Instant::now().into_std();
    }
    let _ = on_tokio;
    std::time::Instant::now()
}

/// Nanoseconds on a clock, saturating at `u64::MAX` (about 584 years).
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Locks a clock's own mutex, ignoring poisoning: clocks hold no invariants a
/// panic could break half-way. (Clocks use `std` locks even under loom: they are
/// test fixtures, not part of the models.)
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Which clock a rejection reads when asked for its `retry_after`.
///
/// A word wide on purpose: it is the field that tells a `Result` holding a
/// rejection from an `Ok` (its niche), and a tag written with a one-byte
/// store but copied with eight-byte loads stalls store forwarding, which
/// cost the closed path a fifth of its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum ClockKind {
    /// The end of the period is not known: there is nothing to read.
    Unknown,
    /// [`TokioClock`]: `tokio::time::Instant`, anchored process-wide.
    #[cfg(feature = "tokio")]
    Tokio,
    /// [`StdClock`]: `std::time::Instant`, anchored process-wide.
    Std,
    /// Any other clock: the rejection holds the breaker's clock itself.
    Custom,
}

/// How a breaker's deadlines are handed to its rejections without reading
/// the clock and without an atomic reference count.
///
/// A built-in clock's origin is a per-breaker instant (so that event times
/// start near zero), but a rejection must not carry 16 bytes of `Instant`
/// plus a tag: it travels in every caller's `Result`. Instead the deadline
/// is shifted onto a process-wide anchor of the same kind of instant when
/// the rejection is made (one addition), and read back against that anchor
/// when `retry_after` is asked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClockAnchor {
    kind: ClockKind,
    /// The breaker clock's origin minus the process-wide anchor, in
    /// nanoseconds (negative when the clock started before the anchor).
    offset: i64,
}

impl ClockAnchor {
    /// The anchor of the clock `reader` reads (a built-in clock's origin
    /// against the process-wide anchor of its kind of instant).
    pub(crate) fn of(reader: &ClockReader) -> Self {
        match reader {
            #[cfg(feature = "tokio")]
            ClockReader::Instants {
                origin,
                on_tokio: true,
            } => ClockAnchor {
                kind: ClockKind::Tokio,
                offset: signed_nanos(*origin, tokio_anchor().into_std()),
            },
            ClockReader::Instants { origin, .. } => ClockAnchor {
                kind: ClockKind::Std,
                offset: signed_nanos(*origin, std_anchor()),
            },
            // Its rejections read the breaker's clock itself.
            #[cfg(feature = "quanta")]
            ClockReader::Tsc(_) => ClockAnchor {
                kind: ClockKind::Custom,
                offset: 0,
            },
            ClockReader::Other(_) => ClockAnchor {
                kind: ClockKind::Custom,
                offset: 0,
            },
        }
    }

    pub(crate) fn kind(self) -> ClockKind {
        self.kind
    }

    /// A deadline on the breaker's clock, as a rejection keeps it.
    #[inline(always)]
    pub(crate) fn anchor(self, nanos: u64) -> i64 {
        i64::try_from(nanos)
            .unwrap_or(i64::MAX)
            .saturating_add(self.offset)
    }
}

/// How long until an anchored deadline (see [`ClockAnchor::anchor`]); zero
/// once it has passed. `custom` is the breaker's clock for [`ClockKind::Custom`].
pub(crate) fn remaining(kind: ClockKind, deadline: i64, custom: Option<&dyn Clock>) -> Duration {
    let now: i128 = match (kind, custom) {
        #[cfg(feature = "tokio")]
        (ClockKind::Tokio, _) => signed_nanos(
            tokio::time::Instant::now().into_std(),
            tokio_anchor().into_std(),
        )
        .into(),
        (ClockKind::Std, _) => signed_nanos(std::time::Instant::now(), std_anchor()).into(),
        (ClockKind::Custom, Some(clock)) => nanos(clock.now()).into(),
        (ClockKind::Custom, None) | (ClockKind::Unknown, _) => return Duration::ZERO,
    };
    let left = (i128::from(deadline) - now).max(0);
    Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX))
}

/// `a - b` in nanoseconds, saturating at the ends of `i64` (292 years).
fn signed_nanos(a: std::time::Instant, b: std::time::Instant) -> i64 {
    match a.checked_duration_since(b) {
        Some(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        None => i64::try_from(b.duration_since(a).as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

#[cfg(feature = "tokio")]
fn tokio_anchor() -> tokio::time::Instant {
    static ANCHOR: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    *ANCHOR.get_or_init(tokio::time::Instant::now)
}

fn std_anchor() -> std::time::Instant {
    static ANCHOR: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ANCHOR.get_or_init(std::time::Instant::now)
}
