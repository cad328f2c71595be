//! What a breaker tells its listeners, and how listeners are called.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use crate::State;
use crate::error::RejectReason;

/// Why the breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransitionReason {
    /// A trip policy tripped on a closed breaker.
    Tripped,
    /// The open period (or the freeze function) ended.
    OpenPeriodEnded,
    /// Enough probes succeeded in the half-open state.
    ProbesSucceeded,
    /// A probe failed in the half-open state.
    ProbeFailed,
    /// The half-open state lasted longer than its maximum.
    HalfOpenTimedOut,
    /// [`force_open`](crate::CircuitBreaker::force_open) was called.
    ForcedOpen,
    /// [`resume`](crate::CircuitBreaker::resume) was called.
    Released,
    /// [`disable`](crate::CircuitBreaker::disable) was called.
    Disabled,
    /// [`metrics_only`](crate::CircuitBreaker::metrics_only) was called.
    MetricsOnly,
    /// [`reset`](crate::CircuitBreaker::reset) was called.
    Reset,
    /// A shared store (state shared by a fleet of processes) said so,
    /// through [`SharedControl`](crate::shared::SharedControl).
    Shared,
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransitionReason::Tripped => "a trip policy tripped",
            TransitionReason::OpenPeriodEnded => "the open period ended",
            TransitionReason::ProbesSucceeded => "enough probe calls succeeded",
            TransitionReason::ProbeFailed => "a probe call failed",
            TransitionReason::HalfOpenTimedOut => "the half-open state timed out",
            TransitionReason::ForcedOpen => "it was forced open",
            TransitionReason::Released => "it was released",
            TransitionReason::Disabled => "it was disabled",
            TransitionReason::MetricsOnly => "it was set to metrics-only",
            TransitionReason::Reset => "it was reset",
            TransitionReason::Shared => "the fleet's shared state said so",
        })
    }
}

/// Something that happened to a breaker.
///
/// Listeners are called after the change they describe has been published
/// (a listener that reads [`state`](crate::CircuitBreaker::state) sees the new
/// state), never while the breaker holds a lock. A listener that panics is
/// logged and otherwise ignored.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub(crate) breaker: Option<&'a str>,
    pub(crate) at: Duration,
    pub(crate) kind: EventKind<'a>,
}

impl<'a> Event<'a> {
    /// The breaker's name, if it has one.
    pub fn breaker(&self) -> Option<&'a str> {
        self.breaker
    }

    /// When it happened, on the breaker's clock. A transition out of a
    /// timed period (its end, or a half-open state that timed out) is
    /// stamped at the period's deadline, even when the breaker noticed it
    /// later (transitions are made by the next call or read, unless the
    /// breaker was built with [`eager_transitions`](crate::Builder::eager_transitions),
    /// which makes them when the period ends).
    pub fn at(&self) -> Duration {
        self.at
    }

    /// What happened.
    pub fn kind(&self) -> &EventKind<'a> {
        &self.kind
    }
}

/// The kinds of [`Event`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum EventKind<'a> {
    /// The breaker moved from one state to another.
    Transition {
        /// The state it left.
        from: State,
        /// The state it entered.
        to: State,
        /// Why.
        reason: TransitionReason,
    },
    /// A counted call succeeded.
    Success {
        /// How long it took, when the breaker measures calls.
        elapsed: Option<Duration>,
    },
    /// A counted call failed (the seed's `on_error` sees these).
    Failure {
        /// The call's error (for a panic, a description of it).
        error: &'a dyn fmt::Debug,
        /// How long it took, when the breaker measures calls.
        elapsed: Option<Duration>,
    },
    /// A call failed with an error the breaker was told to ignore.
    Ignored {
        /// The call's error.
        error: &'a dyn fmt::Debug,
    },
    /// A counted call took longer than the slow-call threshold.
    Slow {
        /// How long it took.
        elapsed: Duration,
        /// The threshold it passed.
        threshold: Duration,
    },
    /// A call was refused.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
    /// A call that had to wait (wait mode) was let through.
    Waited {
        /// How long it waited.
        waited: Duration,
    },
    /// A failure-rate or slow-call-rate policy found its window over its
    /// threshold (Resilience4j's `FailureRateExceeded` and
    /// `SlowCallRateExceeded`). Raised by the outcome that made the rate
    /// exceed the threshold, just before the transition it causes (in the
    /// metrics-only state, which never opens, it is raised all the same);
    /// once per policy until the policy's window is cleared (the breaker
    /// closes, is reset or changes mode), however many outcomes keep the rate
    /// over the threshold.
    RateExceeded {
        /// Which rate.
        measure: RateMeasure,
        /// The rate, 0 to 1.
        rate: f64,
        /// The policy's threshold, 0 to 1.
        threshold: f64,
        /// The calls in the window.
        calls: u64,
        /// The calls in the window that failed (for
        /// [`RateMeasure::Failures`]) or were slow ([`RateMeasure::SlowCalls`]).
        failed_or_slow: u64,
    },
}

/// Which rate an [`EventKind::RateExceeded`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateMeasure {
    /// The share of failed calls ([`FailureRate`](crate::policy::FailureRate)).
    Failures,
    /// The share of slow calls ([`SlowCallRate`](crate::policy::SlowCallRate)).
    SlowCalls,
}

/// A listener for every event.
pub(crate) type Listener = Arc<dyn Fn(&Event<'_>) + Send + Sync>;
/// The seed's `on_error`: a listener for failures only.
pub(crate) type ErrorCallback = Arc<dyn Fn(&dyn fmt::Debug) + Send + Sync>;

/// The description handed to `on_error` when an operation panicked.
#[derive(Debug)]
pub(crate) struct OperationPanicked;

/// Runs a user callback, containing a panic so that it cannot wedge the breaker.
pub(crate) fn call_guarded(what: &str, breaker: Option<&str>, callback: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(callback)).is_err() {
        trace(|| {
            tracing::error!(
                breaker = breaker.unwrap_or(""),
                "tripswitch: {what} panicked; the panic was contained and the breaker keeps working"
            )
        });
    }
}

/// Runs a breaker's callbacks (`on_error`, listeners) unless this thread is
/// already inside one of that breaker's callbacks: a callback that calls
/// into its own breaker (a listener that calls `try_acquire`, an `on_error`
/// that runs a failing call) raises events that are then **not** delivered
/// to the same breaker's callbacks again, or each would call the next
/// without end. `breaker` identifies the breaker (its address). Other
/// breakers' callbacks still run, and each breaker appears at most once on
/// a thread's stack, so nesting is bounded by the number of breakers.
/// Returns whether `deliver` ran.
pub(crate) fn unless_reentered(breaker: usize, deliver: impl FnOnce()) -> bool {
    thread_local! {
        static DELIVERING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let entered = DELIVERING.with(|delivering| {
        let mut delivering = delivering.borrow_mut();
        if delivering.contains(&breaker) {
            false
        } else {
            delivering.push(breaker);
            true
        }
    });
    if !entered {
        return false;
    }
    /// Leaves the breaker's delivery on the way out, unwinding or not.
    struct Leave(usize);
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = DELIVERING.try_with(|delivering| {
                let mut delivering = delivering.borrow_mut();
                if let Some(at) = delivering.iter().rposition(|b| *b == self.0) {
                    delivering.swap_remove(at);
                }
            });
        }
    }
    let _leave = Leave(breaker);
    deliver();
    true
}

/// The `on_error` a breaker has unless given another: a `tracing` debug
/// line. Called with the breaker's name when a failure is reported, so that
/// no breaker keeps a closure (and a copy of its name) for it. Called under
/// [`call_guarded`], as a user's `on_error` is: a subscriber that panics on
/// it is contained there.
pub(crate) fn log_error(name: Option<&str>, error: &dyn fmt::Debug) {
    // DEBUG: one failure is routine (a gateway sees dozens a second);
    // state changes are what an operator wants at INFO and above.
    tracing::debug!(
        breaker = name.unwrap_or(""),
        error = ?error,
        "tripswitch: guarded call failed"
    );
}

/// Writes a `tracing` line, containing a panic of the subscriber (user code
/// the breaker runs): a subscriber that panics loses its line, never the
/// breaker's state, a transition half made, or the caller's call. The panic
/// is not reported: the report would go to the same subscriber.
#[inline]
pub(crate) fn trace(line: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(line));
}
