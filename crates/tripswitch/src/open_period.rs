//! How long a tripped breaker stays open: fixed, backoff, computed, or an async freeze.

use std::any::Any;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;
use crate::events::TransitionReason;
use crate::loom::{AtomicU64, Ordering};

/// A boxed freeze future, as returned by a freeze function.
pub(crate) type FreezeFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// An error seen through the breaker: printable, and downcastable to its own type.
pub(crate) trait AnyDebug: fmt::Debug {
    fn as_any(&self) -> &dyn Any;
}

impl<T: fmt::Debug + 'static> AnyDebug for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What a duration function or freeze function knows when the breaker opens.
///
/// It carries the error that tripped the breaker, so that a service's own
/// hint can set the freeze:
///
/// ```
/// use std::time::Duration;
/// use tripswitch::CircuitBreaker;
///
/// #[derive(Debug)]
/// struct Overloaded { retry_after: Option<Duration> }
///
/// let breaker = CircuitBreaker::builder()
///     .open_for_fn(|trip| {
///         trip.error::<Overloaded>()
///             .and_then(|e| e.retry_after)
///             .unwrap_or(Duration::from_secs(5))
///     })
///     .build();
/// # drop(breaker);
/// ```
#[derive(Clone, Copy)]
pub struct TripContext<'a> {
    pub(crate) error: Option<&'a dyn AnyDebug>,
    pub(crate) reason: TransitionReason,
    pub(crate) consecutive_openings: u32,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) failures_in_window: Option<u64>,
    pub(crate) slow_call_rate: Option<f64>,
}

impl<'a> TripContext<'a> {
    /// The error that tripped the breaker, if it was of type `E`.
    pub fn error<E: 'static>(&self) -> Option<&'a E> {
        self.error.and_then(|e| e.as_any().downcast_ref::<E>())
    }

    /// The error that tripped the breaker, printable whatever its type.
    /// `None` when no error tripped it (a half-open timeout, a slow call).
    pub fn error_debug(&self) -> Option<&'a dyn fmt::Debug> {
        self.error.map(|e| e as &dyn fmt::Debug)
    }

    /// Why the breaker is opening.
    pub fn reason(&self) -> TransitionReason {
        self.reason
    }

    /// How many times the breaker has opened since it was last closed, not
    /// counting this one: 0 when it trips from closed, 1 when the first probe
    /// after that fails, and so on. Backoff steps follow this number.
    pub fn consecutive_openings(&self) -> u32 {
        self.consecutive_openings
    }

    /// Consecutive failures, with a consecutive-failures policy.
    ///
    /// This and the other counts are those of the closed state that last
    /// tripped the breaker (the windows are cleared when it closes again),
    /// so on a failed probe they still describe the original trip.
    pub fn consecutive_failures(&self) -> Option<u32> {
        self.consecutive_failures
    }

    /// The failure rate in the window, with a failure-rate policy.
    pub fn failure_rate(&self) -> Option<f64> {
        self.failure_rate
    }

    /// The number of failures in the window, with a failure-rate policy.
    pub fn failures_in_window(&self) -> Option<u64> {
        self.failures_in_window
    }

    /// The slow-call rate in the window, with a slow-call policy.
    pub fn slow_call_rate(&self) -> Option<f64> {
        self.slow_call_rate
    }
}

impl fmt::Debug for TripContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TripContext")
            .field("error", &self.error)
            .field("reason", &self.reason)
            .field("consecutive_openings", &self.consecutive_openings)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failure_rate", &self.failure_rate)
            .field("failures_in_window", &self.failures_in_window)
            .field("slow_call_rate", &self.slow_call_rate)
            .finish()
    }
}

/// Exponential backoff for the open period: `initial × multiplierⁿ`, capped at
/// `max`, with optional jitter, where n is the number of consecutive openings.
/// It starts again from `initial` once the breaker closes.
///
/// ```
/// use std::time::Duration;
/// use tripswitch::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60))
///     .multiplier(2.0)
///     .jitter(0.1)
///     .jitter_seed(7); // deterministic jitter, for tests
/// assert_eq!(backoff.step(0, 0.5), Duration::from_secs(1));
/// assert_eq!(backoff.step(3, 0.5), Duration::from_secs(8));
/// assert_eq!(backoff.step(10, 0.5), Duration::from_secs(60));
/// ```
#[derive(Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
    source: RandomSource,
}

#[derive(Clone)]
enum RandomSource {
    Seeded(Arc<AtomicU64>),
    Custom(Arc<dyn Fn() -> f64 + Send + Sync>),
}

impl Backoff {
    /// Start at `initial`, double on each consecutive opening, never exceed `max`.
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        let seed = RandomState::new().build_hasher().finish();
        Self {
            initial,
            max,
            multiplier: 2.0,
            jitter: 0.0,
            source: RandomSource::Seeded(Arc::new(AtomicU64::new(seed))),
        }
    }

    /// The factor between one step and the next (default 2; at least 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Spread each step by up to `±jitter` of its length (0 to 1; default 0),
    /// so that many breakers tripped together do not probe together.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Draw jitter from a seeded generator: the same seed gives the same steps.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.source = RandomSource::Seeded(Arc::new(AtomicU64::new(seed)));
        self
    }

    /// Draw jitter from `source`, which returns numbers in `0.0..1.0`.
    pub fn jitter_source(mut self, source: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        self.source = RandomSource::Custom(Arc::new(source));
        self
    }

    /// The open period after `openings` consecutive openings, for a random draw
    /// `random` in `0.0..1.0` (0.5 means no jitter either way).
    pub fn step(&self, openings: u32, random: f64) -> Duration {
        let exponent = i32::try_from(openings).unwrap_or(i32::MAX);
        let base = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        let spread = 1.0 + self.jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
        let seconds = (base * spread).min(self.max.as_secs_f64());
        if seconds.is_finite() && seconds > 0.0 {
            Duration::try_from_secs_f64(seconds).unwrap_or(self.max)
        } else if seconds.is_nan() || seconds <= 0.0 {
            Duration::ZERO
        } else {
            self.max
        }
    }

    pub(crate) fn next(&self, openings: u32) -> Duration {
        let random = if self.jitter == 0.0 {
            0.5
        } else {
            match &self.source {
                RandomSource::Seeded(state) => splitmix_unit(state),
                RandomSource::Custom(source) => source(),
            }
        };
        self.step(openings, random)
    }

    /// The nearest valid backoff (for `Builder::build`, which clamps what
    /// `try_build` refuses): an initial step of at least a millisecond, a
    /// multiplier of at least 1 (1 if not a number), a maximum of at least
    /// the initial step, jitter between 0 and 1 (0 if not a number).
    pub(crate) fn clamped(mut self) -> Self {
        self.initial = self.initial.max(Duration::from_millis(1));
        self.multiplier = if self.multiplier.is_finite() {
            self.multiplier.max(1.0)
        } else if self.multiplier == f64::INFINITY {
            f64::MAX
        } else {
            1.0
        };
        self.max = self.max.max(self.initial);
        self.jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.initial.is_zero() {
            return Err(ConfigError::new(
                "backoff.initial",
                self.initial,
                "longer than zero",
            ));
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(ConfigError::new(
                "backoff.multiplier",
                self.multiplier,
                "a finite number of at least 1",
            ));
        }
        if self.max < self.initial {
            return Err(ConfigError::new(
                "backoff.max",
                self.max,
                format!("at least backoff.initial ({:?})", self.initial),
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::new(
                "backoff.jitter",
                self.jitter,
                "between 0 and 1",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backoff")
            .field("initial", &self.initial)
            .field("max", &self.max)
            .field("multiplier", &self.multiplier)
            .field("jitter", &self.jitter)
            .finish_non_exhaustive()
    }
}

/// One draw in `0.0..1.0` from a SplitMix64 generator kept in an atomic.
fn splitmix_unit(state: &AtomicU64) -> f64 {
    let mut z = state
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A function from the trip's context to the open period.
pub(crate) type DurationFn = Arc<dyn Fn(&TripContext<'_>) -> Duration + Send + Sync>;
/// A function from the trip's context to a future that ends the open period.
pub(crate) type FreezeFn = Arc<dyn Fn(&TripContext<'_>) -> FreezeFuture + Send + Sync>;

/// The configured length of open periods. A backoff is boxed: it is most
/// of the enum's size, and every breaker keeps one of these (24 bytes
/// instead of 64).
#[derive(Clone)]
pub(crate) enum OpenPeriod {
    Fixed(Duration),
    Backoff(Box<Backoff>),
    Computed(DurationFn),
    Freeze(FreezeFn),
}

impl fmt::Debug for OpenPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenPeriod::Fixed(d) => f.debug_tuple("Fixed").field(d).finish(),
            OpenPeriod::Backoff(b) => f.debug_tuple("Backoff").field(b).finish(),
            OpenPeriod::Computed(_) => f.write_str("Computed(..)"),
            OpenPeriod::Freeze(_) => f.write_str("Freeze(..)"),
        }
    }
}

/// How an open period ends.
pub(crate) enum PeriodEnd {
    /// After this long on the breaker's clock.
    After(Duration),
    /// When this future completes.
    Future(FreezeFuture),
}

impl OpenPeriod {
    pub(crate) fn start(&self, context: &TripContext<'_>) -> PeriodEnd {
        match self {
            OpenPeriod::Fixed(d) => PeriodEnd::After(*d),
            OpenPeriod::Backoff(b) => PeriodEnd::After(b.next(context.consecutive_openings)),
            OpenPeriod::Computed(f) => PeriodEnd::After(f(context)),
            OpenPeriod::Freeze(f) => PeriodEnd::Future(f(context)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_bounds_and_is_seeded() {
        let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(100))
            .jitter(0.5)
            .jitter_seed(42);
        let again = backoff.clone().jitter_seed(42);
        for step in 0..6 {
            let d = backoff.next(step);
            assert_eq!(d, again.next(step));
            let base = 2f64.powi(step as i32);
            assert!(d.as_secs_f64() >= base * 0.5 - 1e-9 && d.as_secs_f64() <= base * 1.5 + 1e-9);
        }
    }
}
