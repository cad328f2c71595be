//! Errors: what a guarded call returns, and what a bad setting is refused with.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::State;
use crate::clock::{self, Clock, ClockKind};

/// The error of a call made through a breaker.
///
/// `Inner` holds the operation's own error, unchanged. Its `Display` is the
/// inner error's and its [`source`](StdError::source) is the inner error's
/// source, so an error reporter prints the inner error once, not twice.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The operation ran and failed with this error.
    Inner(E),
    /// The breaker did not run the operation.
    Rejected(Rejected),
}

impl<E> Error<E> {
    /// The operation's error, if the operation ran and failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Inner(e) => Some(e),
            Error::Rejected(_) => None,
        }
    }

    /// A reference to the operation's error, if the operation ran and failed.
    pub fn inner(&self) -> Option<&E> {
        match self {
            Error::Inner(e) => Some(e),
            Error::Rejected(_) => None,
        }
    }

    /// The rejection, if the breaker did not run the operation.
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Error::Inner(_) => None,
            Error::Rejected(r) => Some(r),
        }
    }

    /// Whether the breaker refused to run the operation.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected(_))
    }

    /// Maps the operation's error, keeping rejections as they are.
    pub fn map_inner<F, E2>(self, f: F) -> Error<E2>
    where
        F: FnOnce(E) -> E2,
    {
        match self {
            Error::Inner(e) => Error::Inner(f(e)),
            Error::Rejected(r) => Error::Rejected(r),
        }
    }
}

impl<E> From<Rejected> for Error<E> {
    fn from(rejected: Rejected) -> Self {
        Error::Rejected(rejected)
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Inner(e) => e.fmt(f),
            Error::Rejected(r) => r.fmt(f),
        }
    }
}

impl<E: StdError + 'static> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            // Display already shows `e`; pointing `source` at `e` as well would
            // make error reporters print it twice.
            Error::Inner(e) => e.source(),
            Error::Rejected(_) => None,
        }
    }
}

/// Why a breaker refused to run a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The breaker is open and fails fast.
    Open,
    /// The breaker is half-open and every probe slot is taken.
    HalfOpenFull,
    /// The breaker was forced open by hand.
    ForcedOpen,
    /// The call waited for the configured maximum time and gave up.
    WaitTimedOut,
    /// Too many calls were already waiting.
    TooManyWaiters,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::Open => "it is open",
            RejectReason::HalfOpenFull => "it is half-open and all probe calls are taken",
            RejectReason::ForcedOpen => "it was forced open",
            RejectReason::WaitTimedOut => "the call waited for the maximum wait time",
            RejectReason::TooManyWaiters => "too many calls are already waiting",
        })
    }
}

/// A call the breaker did not run, with what a caller needs to decide what to do next.
///
/// Its message says which breaker refused, why, and when calls go through
/// again if that is known, e.g.
/// `circuit breaker "payments" rejected the call: it is open; calls are let through again in 1.5s`.
#[derive(Clone)]
pub struct Rejected {
    /// Where the breaker's open period ends, anchored (see
    /// `ClockAnchor::anchor`); meaningless when `clock` is `Unknown`.
    pub(crate) deadline: i64,
    /// The breaker's name and custom clock; `None` for an unnamed breaker on
    /// a built-in clock, so that rejecting its calls touches no reference count.
    pub(crate) source: Option<Arc<RejectSource>>,
    /// The state and the reason, packed by [`Why`] (a whole word, like
    /// `clock`, so that copying a rejection moves words only).
    pub(crate) why: Why,
    /// The clock to read `retry_after` on; `Unknown` when the end is not known.
    pub(crate) clock: ClockKind,
}

// Small, because it travels in the caller's `Result` on every call, the
// successful ones included: four words, and no more with a `Result` around it.
const _: () = assert!(std::mem::size_of::<Rejected>() <= 32);
const _: () = assert!(std::mem::size_of::<Result<u64, Error<()>>>() <= 32);

/// A rejection's state and reason in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Why(u64);

impl Why {
    #[inline(always)]
    pub(crate) fn new(state: State, reason: RejectReason) -> Why {
        let code = match reason {
            RejectReason::Open => 0,
            RejectReason::HalfOpenFull => 1,
            RejectReason::ForcedOpen => 2,
            RejectReason::WaitTimedOut => 3,
            RejectReason::TooManyWaiters => 4,
        };
        Why(state.bits() | code << 8)
    }

    fn state(self) -> State {
        State::from_bits(self.0 & 0xff)
    }

    fn reason(self) -> RejectReason {
        match self.0 >> 8 {
            0 => RejectReason::Open,
            1 => RejectReason::HalfOpenFull,
            2 => RejectReason::ForcedOpen,
            3 => RejectReason::WaitTimedOut,
            _ => RejectReason::TooManyWaiters,
        }
    }
}

/// What a rejection needs from its breaker beyond copies of plain values.
pub(crate) struct RejectSource {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("name", &self.name())
            .field("state", &self.state())
            .field("reason", &self.reason())
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

impl PartialEq for Rejected {
    /// Two rejections are equal when they come from the same-named breaker,
    /// in the same state, for the same reason, with the same deadline.
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
            && self.why == other.why
            && self.clock == other.clock
            && (self.clock == ClockKind::Unknown || self.deadline == other.deadline)
    }
}

impl Eq for Rejected {}

impl Rejected {
    /// The breaker's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.source.as_ref()?.name.as_deref()
    }

    /// The breaker's state when it refused the call.
    pub fn state(&self) -> State {
        self.why.state()
    }

    /// Why the call was refused.
    pub fn reason(&self) -> RejectReason {
        self.why.reason()
    }

    /// How long from now until the breaker lets calls through again, when known.
    ///
    /// It is computed when asked, from the end of the open period on the
    /// breaker's clock (rejecting a call does not read the clock), so asking
    /// again later gives a shorter duration; zero once the period is over.
    ///
    /// Half-open with every probe slot taken: the time until the half-open
    /// state decides at the latest (its [`max_duration`](crate::HalfOpen::max_duration),
    /// 30 s by default): the probes may close the breaker sooner, or open it
    /// again, and then calls are refused until that period ends too. No
    /// closer bound exists: when a probe returns is not known.
    ///
    /// `None` when the breaker was forced open (it stays open until released),
    /// when it is half-open without a maximum duration, or when the open
    /// period ends with an async freeze function whose length is not known
    /// in advance.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripswitch::clock::FakeClock;
    ///
    /// let clock = FakeClock::new();
    /// let breaker = tripswitch::CircuitBreaker::builder()
    ///     .clock(clock.clone())
    ///     .freeze_for(Duration::from_secs(30))
    ///     .fail_fast()
    ///     .build();
    /// breaker.try_acquire().unwrap().failure(&"boom");
    /// clock.advance(Duration::from_secs(10));
    /// let rejected = breaker.try_acquire().unwrap_err();
    /// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(20)));
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        let kind = self.clock;
        if kind == ClockKind::Unknown {
            return None;
        }
        let custom = self.source.as_ref().and_then(|s| s.clock.as_deref());
        Some(clock::remaining(kind, self.deadline, custom))
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(
                f,
                "circuit breaker {name:?} rejected the call: {}",
                self.reason()
            )?,
            None => write!(f, "circuit breaker rejected the call: {}", self.reason())?,
        }
        match self.retry_after() {
            Some(after) => write!(f, "; calls are let through again in {after:?}"),
            None if self.state() == State::ForcedOpen => {
                f.write_str("; it stays open until it is released")
            }
            None => Ok(()),
        }
    }
}

impl StdError for Rejected {}

/// A setting that was refused when the breaker (or one of its parts) was built.
///
/// The message names the setting, the value given and what is allowed, e.g.
/// `invalid failure_rate.threshold: 1.5 (must be between 0 and 1)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    value: String,
    allowed: String,
}

impl ConfigError {
    pub(crate) fn new(
        setting: &'static str,
        value: impl fmt::Debug,
        allowed: impl Into<String>,
    ) -> Self {
        Self {
            setting,
            value: format!("{value:?}"),
            allowed: allowed.into(),
        }
    }

    /// The name of the setting that was refused, as the builder method spells it.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// The refused value, as written by `Debug`.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What the setting accepts.
    pub fn allowed(&self) -> &str {
        &self.allowed
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}: {} (must be {})",
            self.setting, self.value, self.allowed
        )
    }
}

impl StdError for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn why_round_trips_every_state_and_reason() {
        let states = [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled,
            State::MetricsOnly,
        ];
        let reasons = [
            RejectReason::Open,
            RejectReason::HalfOpenFull,
            RejectReason::ForcedOpen,
            RejectReason::WaitTimedOut,
            RejectReason::TooManyWaiters,
        ];
        for state in states {
            for reason in reasons {
                let why = Why::new(state, reason);
                assert_eq!((why.state(), why.reason()), (state, reason));
            }
        }
    }
}
