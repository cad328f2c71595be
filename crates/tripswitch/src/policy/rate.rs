use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::events::RateMeasure;

use super::window::{Window, WindowCounts};
use super::window_state::WindowState;
use super::{CallRecord, FastKind, PolicyStats, TripPolicy};
use crate::error::ConfigError;

/// Default minimum number of calls in the window before a rate is judged.
const DEFAULT_MIN_CALLS: u32 = 10;

/// Trip when the share of failed calls in a sliding window reaches a threshold.
///
/// The rate is judged as soon as the window holds `min_calls` calls (a count
/// window does not have to fill up first), and then after every outcome that
/// can change the verdict, a success included: the success that makes the
/// window judgeable, and any success while a time window holds failures
/// (old successes leaving it raise the rate), as Resilience4j does. A window
/// without a single failure never trips, whatever the threshold. Ignored
/// errors are not calls here.
///
/// ```
/// use std::time::Duration;
/// use tripswitch::policy::{FailureRate, Window};
///
/// // Resilience4j's shape: 50% of the last 100 calls, judged from 20 calls on.
/// let by_count = FailureRate::new(0.5, Window::last_calls(100)).min_calls(20);
/// // Or over the last 500ms, in 5 buckets of 100ms.
/// let by_time = FailureRate::new(0.5, Window::last_in_buckets(Duration::from_millis(500), 5));
/// # let _ = (by_count, by_time);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureRate {
    pub(crate) threshold: f64,
    pub(crate) window: Window,
    pub(crate) min_calls: u32,
}

impl FailureRate {
    /// Trip when at least `threshold` (0 to 1) of the calls in `window` failed.
    ///
    /// `min_calls` defaults to 10, or to the window's size if that is smaller.
    /// The values are checked by [`Builder::try_build`](crate::Builder::try_build).
    pub fn new(threshold: f64, window: Window) -> Self {
        Self {
            threshold,
            window,
            min_calls: default_min_calls(window),
        }
    }

    /// The number of calls the window must hold before the rate is judged.
    pub fn min_calls(mut self, min_calls: u32) -> Self {
        self.min_calls = min_calls;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        validate_rate("failure_rate", self.threshold, self.window, self.min_calls)
    }
}

/// Trip when the share of slow calls in a sliding window reaches a threshold.
///
/// A call is slow when it takes longer than `slow_after`, whether it succeeded
/// or failed. Configuring this also makes the breaker emit slow-call events.
///
/// ```
/// use std::time::Duration;
/// use tripswitch::policy::{SlowCallRate, Window};
///
/// let policy = SlowCallRate::new(Duration::from_millis(200), 0.8, Window::last_calls(50));
/// # let _ = policy;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowCallRate {
    pub(crate) slow_after: Duration,
    pub(crate) threshold: f64,
    pub(crate) window: Window,
    pub(crate) min_calls: u32,
}

impl SlowCallRate {
    /// Trip when at least `threshold` (0 to 1) of the calls in `window` took longer than `slow_after`.
    ///
    /// `min_calls` defaults as for [`FailureRate::new`].
    pub fn new(slow_after: Duration, threshold: f64, window: Window) -> Self {
        Self {
            slow_after,
            threshold,
            window,
            min_calls: default_min_calls(window),
        }
    }

    /// The number of calls the window must hold before the rate is judged.
    pub fn min_calls(mut self, min_calls: u32) -> Self {
        self.min_calls = min_calls;
        self
    }

    /// The duration past which a call counts as slow.
    pub fn slow_after(&self) -> Duration {
        self.slow_after
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.slow_after.is_zero() {
            return Err(ConfigError::new(
                "slow_call_rate.slow_after",
                self.slow_after,
                "longer than zero",
            ));
        }
        validate_rate(
            "slow_call_rate",
            self.threshold,
            self.window,
            self.min_calls,
        )
    }
}

fn default_min_calls(window: Window) -> u32 {
    match window.max_calls() {
        Some(size) => DEFAULT_MIN_CALLS.min(size.max(1)),
        None => DEFAULT_MIN_CALLS,
    }
}

/// A threshold in 0..=1 (`Builder::build` clamps what `try_build` refuses;
/// a threshold that is not a number never trips on a partial failure).
fn clamped_threshold(threshold: f64) -> f64 {
    if threshold.is_nan() {
        1.0
    } else {
        threshold.clamp(0.0, 1.0)
    }
}

/// `min_calls` between 1 and the window's size (as `clamped_threshold`).
fn clamped_min_calls(min_calls: u32, window: Window) -> u32 {
    match window.max_calls() {
        Some(size) => min_calls.clamp(1, size.clamp(1, super::MAX_WINDOW_CALLS)),
        None => min_calls.max(1),
    }
}

fn validate_rate(
    prefix: &'static str,
    threshold: f64,
    window: Window,
    min_calls: u32,
) -> Result<(), ConfigError> {
    let (threshold_name, window_name, min_name) = match prefix {
        "failure_rate" => (
            "failure_rate.threshold",
            "failure_rate.window",
            "failure_rate.min_calls",
        ),
        _ => (
            "slow_call_rate.threshold",
            "slow_call_rate.window",
            "slow_call_rate.min_calls",
        ),
    };
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ConfigError::new(
            threshold_name,
            threshold,
            "between 0 and 1",
        ));
    }
    window.validate(window_name)?;
    if min_calls == 0 {
        return Err(ConfigError::new(min_name, min_calls, "at least 1"));
    }
    if let Some(size) = window.max_calls()
        && min_calls > size
    {
        return Err(ConfigError::new(
            min_name,
            min_calls,
            format!("at most the window's size of {size} calls"),
        ));
    }
    Ok(())
}

/// What a rate policy measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    Failures,
    Slow,
}

/// A [`FailureRate`] or [`SlowCallRate`] as a breaker holds it: the
/// built-in rates' [`TripPolicy`].
#[derive(Debug)]
pub(crate) struct RatePolicy(Arc<RateState>);

impl RatePolicy {
    pub(crate) fn failures(config: FailureRate) -> Self {
        Self(Arc::new(RateState::failures(config)))
    }

    pub(crate) fn slow(config: SlowCallRate) -> Self {
        Self(Arc::new(RateState::slow(config)))
    }
}

impl TripPolicy for RatePolicy {
    fn record(&self, call: &CallRecord) -> bool {
        self.0.record(call)
    }

    fn reset(&self) {
        self.0.reset();
    }

    fn needs_time(&self) -> bool {
        self.0.needs_time()
    }

    fn judges_slow_calls(&self) -> bool {
        self.0.measure == Measure::Slow
    }

    fn stats(&self, at: Duration) -> PolicyStats {
        let counts = self.0.window.counts(at);
        let rate = self.0.rate_of(counts);
        match self.0.measure {
            Measure::Failures => PolicyStats {
                failure_rate: rate,
                failures_in_window: Some(counts.failures),
                calls_in_window: Some(counts.calls),
                ..PolicyStats::default()
            },
            Measure::Slow => PolicyStats {
                slow_call_rate: rate,
                calls_in_window: Some(counts.calls),
                ..PolicyStats::default()
            },
        }
    }
}

impl RatePolicy {
    /// Its live state.
    pub(crate) fn state(&self) -> &RateState {
        &self.0
    }

    /// Its window, for the breaker's success fast path.
    pub(crate) fn fast_kind(&self) -> FastKind {
        FastKind::Rate(Arc::clone(&self.0))
    }
}

/// The live state of a [`FailureRate`] or [`SlowCallRate`].
#[derive(Debug)]
pub(crate) struct RateState {
    measure: Measure,
    /// A slow-call rate's own threshold: each judges calls by its own,
    /// from the call's duration (the breaker times calls whenever one is set).
    slow_after: Option<Duration>,
    threshold: f64,
    min_calls: u64,
    window: WindowState,
    /// Whether the rate's [`EventKind::RateExceeded`](crate::events::EventKind::RateExceeded)
    /// was raised since the window was last cleared: set by the one outcome
    /// that swaps it from false (so the event is raised once however many
    /// outcomes find the rate exceeded), cleared with the window. Relaxed: it
    /// orders nothing else, and a swap is atomic whatever the ordering.
    announced: AtomicBool,
}

/// What an [`EventKind::RateExceeded`](crate::events::EventKind::RateExceeded) tells.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateReport {
    pub(crate) measure: RateMeasure,
    pub(crate) rate: f64,
    pub(crate) threshold: f64,
    pub(crate) calls: u64,
    pub(crate) failed_or_slow: u64,
}

impl RateState {
    fn failures(config: FailureRate) -> Self {
        Self {
            measure: Measure::Failures,
            slow_after: None,
            threshold: clamped_threshold(config.threshold),
            min_calls: u64::from(clamped_min_calls(config.min_calls, config.window)),
            window: WindowState::new(
                config.window,
                clamped_min_calls(config.min_calls, config.window),
            ),
            announced: AtomicBool::new(false),
        }
    }

    fn slow(config: SlowCallRate) -> Self {
        Self {
            measure: Measure::Slow,
            slow_after: Some(config.slow_after),
            threshold: clamped_threshold(config.threshold),
            min_calls: u64::from(clamped_min_calls(config.min_calls, config.window)),
            window: WindowState::new(
                config.window,
                clamped_min_calls(config.min_calls, config.window),
            ),
            announced: AtomicBool::new(false),
        }
    }

    /// Records a call and judges the window, whatever the outcome: a
    /// success can trip it too (the window reaches `min_calls`, or old
    /// successes leave a time window), as in Resilience4j.
    fn record(&self, call: &CallRecord) -> bool {
        let at = call.at.unwrap_or_default();
        let slow = match (self.slow_after, call.elapsed) {
            (Some(after), Some(elapsed)) => elapsed > after,
            _ => call.slow,
        };
        let counts = self.window.record(call.failed, slow, at);
        self.exceeded(counts)
    }

    /// Judges the window as it is now (after a success recorded by a fast
    /// path that asked for it).
    pub(crate) fn judge(&self, at: Duration) -> bool {
        self.exceeded(self.window.judged_counts(at))
    }

    /// Whether the rate trips the breaker: the window holds `min_calls`
    /// calls, at least one of them failed (or was slow), and the rate is at
    /// or above the threshold. (A window without a single failure never
    /// trips, whatever the threshold: a threshold of 0 means "any failure
    /// once `min_calls` are reached".)
    fn exceeded(&self, counts: WindowCounts) -> bool {
        let hits = match self.measure {
            Measure::Failures => counts.failures,
            Measure::Slow => counts.slow,
        };
        counts.calls >= self.min_calls
            && hits > 0
            && self
                .rate_of(counts)
                .is_some_and(|rate| rate >= self.threshold)
    }

    /// The report of an exceeded rate, the first time it is asked for since
    /// the window was last cleared (and only if the rate is exceeded now).
    pub(crate) fn announce(&self, at: Duration) -> Option<RateReport> {
        if self.announced.load(Ordering::Relaxed) {
            return None;
        }
        let counts = self.window.counts(at);
        let rate = self.rate_of(counts)?;
        if !self.exceeded(counts) || self.announced.swap(true, Ordering::Relaxed) {
            return None;
        }
        let (measure, failed_or_slow) = match self.measure {
            Measure::Failures => (RateMeasure::Failures, counts.failures),
            Measure::Slow => (RateMeasure::SlowCalls, counts.slow),
        };
        Some(RateReport {
            measure,
            rate,
            threshold: self.threshold,
            calls: counts.calls,
            failed_or_slow,
        })
    }

    fn rate_of(&self, counts: WindowCounts) -> Option<f64> {
        if counts.calls == 0 {
            return None;
        }
        let hits = match self.measure {
            Measure::Failures => counts.failures,
            Measure::Slow => counts.slow,
        };
        Some(hits as f64 / counts.calls as f64)
    }

    fn reset(&self) {
        self.window.reset();
        self.announced.store(false, Ordering::Relaxed);
    }

    fn needs_time(&self) -> bool {
        self.window.needs_time()
    }

    /// The count ring, when the window counts calls (successes then take the fast path).
    pub(crate) fn ring(&self) -> Option<&std::sync::Arc<super::CountRing>> {
        self.window.ring()
    }

    /// The time buckets, when the window counts time (successes then take the fast path).
    pub(crate) fn buckets(&self) -> Option<&std::sync::Arc<super::TimeBuckets>> {
        self.window.buckets()
    }
}
