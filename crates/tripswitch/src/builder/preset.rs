//! The presets a [`Builder`](super::Builder) starts from, and the one table
//! of their defaults.

use std::fmt;
use std::time::Duration;

use crate::half_open::HalfOpen;
use crate::policy::{FailureRate, Window};

/// A breaker's starting point: the value of every setting the builder is
/// not told.
///
/// A preset is chosen once, when the builder is made, and never inferred
/// from the settings that follow: each setter changes only its own
/// setting. [`CircuitBreaker::builder`](crate::CircuitBreaker::builder)
/// starts from [`Preset::Seed`], [`CircuitBreaker::standard`](crate::CircuitBreaker::standard)
/// from [`Preset::Standard`], and [`Builder::from_preset`](super::Builder::from_preset)
/// from any.
///
/// The table of defaults (settings not listed have the same default in
/// every preset: no name, the default clock, no listeners, no maximum wait,
/// no cap on waiters, [`max_freeze`](super::Builder::max_freeze) 5 minutes,
/// no error ignored):
///
/// | setting | `Seed` | `Standard` |
/// |---|---|---|
/// | trip policy, when none is set | 1 failure ([`consecutive_failures`](super::Builder::consecutive_failures)`(1)`) | 5 failures in a row |
/// | open period | 5 s | 5 s |
/// | while open | calls wait ([`wait_when_open`](super::Builder::wait_when_open)) | calls are rejected at once ([`fail_fast`](super::Builder::fail_fast)) |
/// | half-open | [`HalfOpen::release_all`] | [`HalfOpen::default`]: one probe at a time, close after one success |
/// | [`retry_after_freeze`](super::Builder::retry_after_freeze) | on | off |
/// | [`seed_accounting`](super::Builder::seed_accounting) | on | off |
///
/// The anchors' presets start where each library's defaults start, so that
/// a service moving to tripswitch keeps its breaker's behaviour (the guide
/// has [a migration table](crate::guide#migrating-from-another-breaker)
/// mapping each library's settings). They all fail fast, count every
/// outcome and do not retry. Each source default is cited on its variant.
///
/// | setting | `Resilience4j` | `Polly` | `Gobreaker` | `Pybreaker` | `Hystrix` |
/// |---|---|---|---|---|---|
/// | trip policy | 50% of the last 100 calls, from 100 calls | 10% over 30 s, from 100 calls | more than 5 failures in a row (6) | 5 failures in a row | 50% over 10 s in 10 buckets, from 20 calls |
/// | open period | 60 s | 5 s | 60 s | 60 s | 5 s |
/// | half-open | [`HalfOpen::judged_by_rate`]`(10, 0.5)` | one probe in all ([`HalfOpen::probes`]`(1).`[`budget`](HalfOpen::budget)`(1)`), ending after 5 s | one probe in all (`MaxRequests` 1) | one probe at a time, close after 1 success (`success_threshold` 1) | one probe at a time |
/// | half-open bound | 30 s | 5 s (the break) | 30 s | 30 s | 30 s |
///
/// Where they knowingly differ from their source:
///
/// - every half-open state with a probe in flight is bounded in time
///   ([`DEFAULT_MAX_HALF_OPEN`](crate::DEFAULT_MAX_HALF_OPEN), 30 s, unless
///   said otherwise), where Resilience4j, gobreaker and pybreaker wait for a
///   probe that may never end (remove the bound with
///   [`HalfOpen::without_max_duration`]; Hystrix's test request is bounded
///   by its command's timeout, 1 s by default). An idle half-open state,
///   no probe in flight, waits for its first call, as theirs do;
/// - Resilience4j's default slow-call rule (100% of calls slower than 60 s)
///   is left out, since it would time every call (add it with
///   [`slow_call_rate`](super::Builder::slow_call_rate));
/// - a failure rate is judged on every outcome that can change the verdict,
///   successes included (as Resilience4j does); Polly judges only on a
///   failure, so with `Polly` the success that brings the window to its
///   minimum throughput can break the circuit where Polly would wait for the
///   next failure.
///
/// ```
/// use tripswitch::{Builder, CircuitBreaker, Preset};
///
/// // The same breaker, three ways.
/// let a = CircuitBreaker::standard().build();
/// let b = Builder::from_preset(Preset::Standard).build();
/// let c = CircuitBreaker::builder()
///     .consecutive_failures(5)
///     .fail_fast()
///     .half_open(tripswitch::HalfOpen::default())
///     .retry_after_freeze(false)
///     .seed_accounting(false)
///     .try_build()?;
/// # drop((a, b, c));
/// # Ok::<(), tripswitch::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Preset {
    /// The Python `CircuitBreaker` this crate started from: one failure
    /// freezes the breaker for 5 seconds; calls made meanwhile wait, then
    /// all run; the failing call runs once more after the freeze; that
    /// retry and the released calls are not counted.
    #[default]
    Seed,
    /// The closed / open / half-open breaker users of Resilience4j, Polly
    /// and gobreaker expect: five failures in a row open it for 5 seconds,
    /// calls are rejected at once while it is open, then one probe at a
    /// time decides, and every outcome counts.
    Standard,
    /// Resilience4j's `CircuitBreakerConfig.ofDefaults()`:
    /// `failureRateThreshold` 50, a `COUNT_BASED` sliding window of
    /// `slidingWindowSize` 100 with `minimumNumberOfCalls` 100,
    /// `waitDurationInOpenState` 60 s, `permittedNumberOfCallsInHalfOpenState`
    /// 10 judged by the same failure rate.
    Resilience4j,
    /// Polly v8's `CircuitBreakerStrategyOptions` defaults: `FailureRatio`
    /// 0.1, `MinimumThroughput` 100, `SamplingDuration` 30 s,
    /// `BreakDuration` 5 s; one probe call in the half-open state, the
    /// others rejected, and a new break after one break duration if the
    /// probe has not ended (Polly lets a new probe through then).
    Polly,
    /// gobreaker's `Settings{}` defaults: `ReadyToTrip` more than 5
    /// consecutive failures, `Timeout` 60 s, `MaxRequests` 1 (one call in
    /// the whole half-open state, closing on its success).
    Gobreaker,
    /// pybreaker's `CircuitBreaker()` defaults: `fail_max` 5,
    /// `reset_timeout` 60 s, `success_threshold` 1.
    Pybreaker,
    /// Hystrix's defaults: `circuitBreaker.errorThresholdPercentage` 50,
    /// `circuitBreaker.requestVolumeThreshold` 20,
    /// `metrics.rollingStats.timeInMilliseconds` 10,000 in
    /// `numBuckets` 10, `circuitBreaker.sleepWindowInMilliseconds` 5,000,
    /// one test request in the half-open state.
    Hystrix,
}

/// Every preset, for listings and tests.
pub(crate) const ALL_PRESETS: [Preset; 7] = [
    Preset::Seed,
    Preset::Standard,
    Preset::Resilience4j,
    Preset::Polly,
    Preset::Gobreaker,
    Preset::Pybreaker,
    Preset::Hystrix,
];

impl Preset {
    /// The preset's name, as configuration files spell it (`"seed"`,
    /// `"standard"`, `"resilience4j"`, `"polly"`, `"gobreaker"`,
    /// `"pybreaker"`, `"hystrix"`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::Seed => "seed",
            Preset::Standard => "standard",
            Preset::Resilience4j => "resilience4j",
            Preset::Polly => "polly",
            Preset::Gobreaker => "gobreaker",
            Preset::Pybreaker => "pybreaker",
            Preset::Hystrix => "hystrix",
        }
    }

    /// The preset named `name` (as [`name`](Self::name) spells it), if any.
    ///
    /// ```
    /// use tripswitch::Preset;
    ///
    /// assert_eq!(Preset::from_name("gobreaker"), Some(Preset::Gobreaker));
    /// assert_eq!(Preset::from_name("nope"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Preset> {
        ALL_PRESETS.into_iter().find(|preset| preset.name() == name)
    }

    /// The defaults of this preset: the one table the builder starts from.
    pub(crate) fn defaults(self) -> Defaults {
        match self {
            Preset::Seed => Defaults {
                policy: DefaultPolicy::Consecutive(1),
                open_for: Duration::from_secs(5),
                fail_fast: false,
                half_open: HalfOpen::release_all(),
                retry_after_freeze: true,
                seed_accounting: true,
            },
            Preset::Standard => Defaults {
                policy: DefaultPolicy::Consecutive(5),
                open_for: Duration::from_secs(5),
                ..Defaults::fail_fast()
            },
            Preset::Resilience4j => Defaults {
                policy: DefaultPolicy::FailureRate(
                    FailureRate::new(0.5, Window::last_calls(100)).min_calls(100),
                ),
                open_for: Duration::from_secs(60),
                half_open: HalfOpen::judged_by_rate(10, 0.5),
                ..Defaults::fail_fast()
            },
            Preset::Polly => Defaults {
                policy: DefaultPolicy::FailureRate(
                    FailureRate::new(0.1, Window::last(Duration::from_secs(30))).min_calls(100),
                ),
                open_for: Duration::from_secs(5),
                half_open: HalfOpen::probes(1)
                    .budget(1)
                    .max_duration(Duration::from_secs(5)),
                ..Defaults::fail_fast()
            },
            Preset::Gobreaker => Defaults {
                policy: DefaultPolicy::Consecutive(6),
                open_for: Duration::from_secs(60),
                half_open: HalfOpen::probes(1).budget(1),
                ..Defaults::fail_fast()
            },
            Preset::Pybreaker => Defaults {
                policy: DefaultPolicy::Consecutive(5),
                open_for: Duration::from_secs(60),
                half_open: HalfOpen::probes(1).close_after(1),
                ..Defaults::fail_fast()
            },
            Preset::Hystrix => Defaults {
                policy: DefaultPolicy::FailureRate(
                    FailureRate::new(0.5, Window::last_in_buckets(Duration::from_secs(10), 10))
                        .min_calls(20),
                ),
                open_for: Duration::from_secs(5),
                half_open: HalfOpen::probes(1),
                ..Defaults::fail_fast()
            },
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The trip policy a preset uses when none is set.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DefaultPolicy {
    Consecutive(u32),
    FailureRate(FailureRate),
}

/// The settings whose default depends on the preset (see [`Preset`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    /// The trip policy used when none is set.
    pub(crate) policy: DefaultPolicy,
    /// The fixed open period.
    pub(crate) open_for: Duration,
    pub(crate) fail_fast: bool,
    pub(crate) half_open: HalfOpen,
    pub(crate) retry_after_freeze: bool,
    pub(crate) seed_accounting: bool,
}

impl Defaults {
    /// What every preset but the seed shares: fail fast, one probe at a
    /// time, every outcome counted, no retry (the rest to be set).
    fn fail_fast() -> Defaults {
        Defaults {
            policy: DefaultPolicy::Consecutive(5),
            open_for: Duration::from_secs(5),
            fail_fast: true,
            half_open: HalfOpen::default(),
            retry_after_freeze: false,
            seed_accounting: false,
        }
    }
}
