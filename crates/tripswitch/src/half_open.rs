//! What happens when an open period ends.

use std::time::Duration;

use crate::error::ConfigError;
use crate::state::MAX_PROBES;

/// How long a half-open state may last by default before the breaker opens
/// again: a probe that never returns cannot hold the breaker half-open (and
/// a fail-fast breaker rejecting every call) for longer than this.
pub const DEFAULT_MAX_HALF_OPEN: Duration = Duration::from_secs(30);

/// How a breaker tests the service once its open period ends.
///
/// - [`HalfOpen::release_all`] is the seed's way: every waiting call goes
///   through at once and the breaker is closed again straight away. A service
///   that is still down then takes the whole herd.
/// - [`HalfOpen::probes`] is the safer way (gobreaker, Hystrix, Polly,
///   pybreaker): only `n` probe calls go through at a time; the others keep
///   waiting (or are rejected when failing fast). The breaker closes after
///   enough probes succeed in a row ([`close_after`](Self::close_after),
///   pybreaker's `success_threshold`), and opens again, with the next
///   backoff step, as soon as one fails. [`budget`](Self::budget) also caps
///   how many calls the whole half-open state lets through (gobreaker's
///   `MaxRequests`), not only how many at a time.
/// - [`HalfOpen::judged_by_rate`] is Resilience4j's way: a small window of
///   its own. `calls` calls are let through, in all; once every one has
///   ended, the breaker opens again if their failure rate (or slow-call
///   rate, with [`slow_call_rate`](Self::slow_call_rate)) reached the
///   threshold, and closes otherwise: one failure among many successes does
///   not reopen it.
///
/// Every way is bounded in time by default ([`DEFAULT_MAX_HALF_OPEN`]).
/// A probe that ends without a verdict (cancelled, or failed with an
/// ignored error) gives its place back, to the budget too: it was no test
/// of the service.
///
/// ```
/// use std::time::Duration;
/// use tripswitch::HalfOpen;
///
/// // Three at a time, closing after five successes in a row.
/// let careful = HalfOpen::probes(3)
///     .close_after(5)
///     .max_duration(Duration::from_secs(30));
/// // gobreaker's MaxRequests = 3: three calls in all, closing after three successes.
/// let gobreaker = HalfOpen::probes(3).budget(3);
/// // Resilience4j: ten calls, reopening if half of them or more failed.
/// let resilience4j = HalfOpen::judged_by_rate(10, 0.5);
/// # let _ = (careful, gobreaker, resilience4j);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HalfOpen {
    pub(crate) probes: Option<u32>,
    pub(crate) close_after: u32,
    pub(crate) budget: Option<u32>,
    pub(crate) judge: ProbeJudge,
    pub(crate) max_duration: Option<Duration>,
}

/// How the half-open state decides (see [`HalfOpen`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ProbeJudge {
    /// The first failed probe reopens; `close_after` successes close.
    FirstFailure,
    /// Once `budget` probes have ended: reopen if the failure rate reached
    /// `failure_rate`, or the slow-call rate `slow_call_rate`; close otherwise.
    Rate {
        failure_rate: f32,
        slow_call_rate: Option<f32>,
    },
}

impl HalfOpen {
    /// The seed's behaviour: let everybody through and close at once.
    pub fn release_all() -> Self {
        Self {
            probes: None,
            close_after: 1,
            budget: None,
            judge: ProbeJudge::FirstFailure,
            max_duration: None,
        }
    }

    /// Let at most `probes` calls through at a time; close once `probes`
    /// probes have succeeded (change that with [`close_after`](Self::close_after)).
    /// Open again if no decision came within [`DEFAULT_MAX_HALF_OPEN`] (30
    /// seconds): a probe that hangs cannot hold the breaker half-open
    /// (change that with [`max_duration`](Self::max_duration), or remove
    /// the bound with [`without_max_duration`](Self::without_max_duration)).
    pub fn probes(probes: u32) -> Self {
        Self {
            probes: Some(probes),
            close_after: probes,
            budget: None,
            judge: ProbeJudge::FirstFailure,
            max_duration: Some(DEFAULT_MAX_HALF_OPEN),
        }
    }

    /// Resilience4j's half-open state: let `calls` calls through (all at
    /// once if they come at once, `calls` in all), and once every one has
    /// ended, open again if at least `failure_rate` (0 to 1) of them failed,
    /// or close. Bounded by [`DEFAULT_MAX_HALF_OPEN`] like the others, so
    /// that a call that never ends cannot hold the decision.
    ///
    /// ```
    /// use tripswitch::HalfOpen;
    ///
    /// // permittedNumberOfCallsInHalfOpenState = 4, failureRateThreshold = 50:
    /// // F, S, S, S closes the breaker (25%); F, F, S, F opens it (75%).
    /// let half_open = HalfOpen::judged_by_rate(4, 0.5);
    /// # let _ = half_open;
    /// ```
    pub fn judged_by_rate(calls: u32, failure_rate: f64) -> Self {
        Self {
            probes: Some(calls),
            close_after: calls,
            budget: Some(calls),
            // f32: a rate needs no more, and the settings stay small.
            judge: ProbeJudge::Rate {
                failure_rate: failure_rate as f32,
                slow_call_rate: None,
            },
            max_duration: Some(DEFAULT_MAX_HALF_OPEN),
        }
    }

    /// With [`judged_by_rate`](Self::judged_by_rate): also open again if at
    /// least `rate` (0 to 1) of the calls were slower than the breaker's
    /// slow-call threshold ([`slow_call_threshold`](crate::Builder::slow_call_threshold),
    /// or a slow-call-rate policy's). Resilience4j's `slowCallRateThreshold`.
    /// A breaker without a slow-call threshold refuses it (`try_build`).
    /// Has no effect on the other ways, where a slow probe counts as a failed
    /// one whenever the breaker judges slow calls.
    pub fn slow_call_rate(mut self, rate: f64) -> Self {
        if let ProbeJudge::Rate { slow_call_rate, .. } = &mut self.judge {
            *slow_call_rate = Some(rate as f32);
        }
        self
    }

    /// Let at most `calls` calls through during one half-open state, in
    /// all, however quickly they end (gobreaker's `MaxRequests`, which is
    /// both this and [`probes`](Self::probes)). Further calls are rejected
    /// when failing fast, with a `retry_after` until the half-open state's
    /// maximum duration, or wait for the decision. Must be at least
    /// [`close_after`](Self::close_after), or the breaker could never close.
    /// [`judged_by_rate`](Self::judged_by_rate)'s budget is its number of
    /// calls, whatever is set here.
    pub fn budget(mut self, calls: u32) -> Self {
        self.budget = Some(calls);
        self
    }

    /// The most calls one half-open state lets through in all, if capped.
    pub fn budget_limit(&self) -> Option<u32> {
        match self.judge {
            // `judged_by_rate`'s budget is its number of calls.
            ProbeJudge::Rate { .. } => self.probes,
            ProbeJudge::FirstFailure => self.budget,
        }
    }

    /// Close after this many successful probes (a success frees its slot for
    /// the next probe); pybreaker's `success_threshold`. The successes are in
    /// a row: the first failure reopens the breaker. Not used by
    /// [`judged_by_rate`](Self::judged_by_rate), which decides once its calls have ended.
    pub fn close_after(mut self, successes: u32) -> Self {
        self.close_after = successes;
        self
    }

    /// Open again if the half-open state has not decided within `max`, so that
    /// a probe that never finishes cannot hold the breaker half-open forever
    /// (default [`DEFAULT_MAX_HALF_OPEN`]).
    pub fn max_duration(mut self, max: Duration) -> Self {
        self.max_duration = Some(max);
        self
    }

    /// No bound on the half-open state: it lasts until the probes decide,
    /// however long a probe takes (Resilience4j's and gobreaker's default,
    /// and the top complaint in their trackers). Prefer
    /// [`max_duration`](Self::max_duration).
    pub fn without_max_duration(mut self) -> Self {
        self.max_duration = None;
        self
    }

    /// How long the half-open state may last, if bounded.
    pub fn max_duration_limit(&self) -> Option<Duration> {
        self.max_duration
    }

    /// The number of probes let through at a time; `None` for [`release_all`](Self::release_all).
    pub fn probe_limit(&self) -> Option<u32> {
        self.probes
    }

    /// The nearest valid settings (for `Builder::build`, which clamps what
    /// `try_build` refuses): 1 to `MAX_PROBES` probes, closing after at
    /// least one success, a maximum duration of at least a millisecond.
    pub(crate) fn clamped(self) -> Self {
        let probes = self.probes.map(|p| p.clamp(1, MAX_PROBES));
        // `probes(n)` closes after n successes: clamped with n.
        let close_after = match (self.probes, probes) {
            (Some(asked), Some(clamped)) if asked != clamped && self.close_after == asked => {
                clamped
            }
            _ => self.close_after.max(1),
        };
        let judge = match self.judge {
            ProbeJudge::FirstFailure => ProbeJudge::FirstFailure,
            ProbeJudge::Rate {
                failure_rate,
                slow_call_rate,
            } => ProbeJudge::Rate {
                failure_rate: clamped_rate(failure_rate),
                slow_call_rate: slow_call_rate.map(clamped_rate),
            },
        };
        let budget = match judge {
            // The rate is judged over `probes` calls: the budget is theirs.
            ProbeJudge::Rate { .. } => probes,
            ProbeJudge::FirstFailure => self
                .budget
                .filter(|_| probes.is_some())
                .map(|b| b.clamp(close_after.min(MAX_PROBES), MAX_PROBES)),
        };
        Self {
            probes,
            close_after,
            budget,
            judge,
            max_duration: self.max_duration.map(|d| d.max(Duration::from_millis(1))),
        }
    }

    /// Whether the half-open state keeps its own account of the calls it let
    /// through (a budget, or a rate to judge).
    #[inline]
    pub(crate) fn keeps_tally(&self) -> bool {
        self.probes.is_some()
            && (self.budget.is_some() || matches!(self.judge, ProbeJudge::Rate { .. }))
    }

    /// Whether the slow-call rate judges the probes.
    pub(crate) fn judges_slow_rate(&self) -> bool {
        matches!(
            self.judge,
            ProbeJudge::Rate {
                slow_call_rate: Some(_),
                ..
            }
        )
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(probes) = self.probes
            && !(1..=MAX_PROBES).contains(&probes)
        {
            return Err(ConfigError::new(
                "half_open.probes",
                probes,
                format!("between 1 and {MAX_PROBES}"),
            ));
        }
        if self.close_after == 0 {
            return Err(ConfigError::new(
                "half_open.close_after",
                self.close_after,
                "at least 1",
            ));
        }
        if let Some(budget) = self.budget
            && matches!(self.judge, ProbeJudge::FirstFailure)
        {
            if self.probes.is_none() {
                return Err(ConfigError::new(
                    "half_open.budget",
                    budget,
                    "used with probes (HalfOpen::probes): release_all lets everybody through",
                ));
            }
            if !(1..=MAX_PROBES).contains(&budget) {
                return Err(ConfigError::new(
                    "half_open.budget",
                    budget,
                    format!("between 1 and {MAX_PROBES}"),
                ));
            }
            if budget < self.close_after {
                return Err(ConfigError::new(
                    "half_open.budget",
                    budget,
                    format!(
                        "at least close_after ({}): with fewer calls the breaker could never close",
                        self.close_after
                    ),
                ));
            }
        }
        if let ProbeJudge::Rate {
            failure_rate,
            slow_call_rate,
        } = self.judge
        {
            if !(0.0..=1.0).contains(&failure_rate) {
                return Err(ConfigError::new(
                    "half_open.failure_rate",
                    failure_rate,
                    "between 0 and 1",
                ));
            }
            if let Some(rate) = slow_call_rate
                && !(0.0..=1.0).contains(&rate)
            {
                return Err(ConfigError::new(
                    "half_open.slow_call_rate",
                    rate,
                    "between 0 and 1",
                ));
            }
        }
        if let Some(max) = self.max_duration
            && max.is_zero()
        {
            return Err(ConfigError::new(
                "half_open.max_duration",
                max,
                "longer than zero",
            ));
        }
        Ok(())
    }
}

/// A rate in 0..=1; one that is not a number reopens only when every call
/// failed (as the trip policies' thresholds).
fn clamped_rate(rate: f32) -> f32 {
    if rate.is_nan() {
        1.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

impl Default for HalfOpen {
    /// One probe at a time, closing after one success (gobreaker's default),
    /// bounded by [`DEFAULT_MAX_HALF_OPEN`] (gobreaker has no bound).
    fn default() -> Self {
        Self::probes(1)
    }
}
