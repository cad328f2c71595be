//! The whole configuration space, property-tested: every numeric setting at
//! 0, 1, its maximum, its maximum + 1 and values in between. `try_build`
//! never panics; it refuses exactly the values the docs call invalid (the
//! caps included), naming the setting; and every breaker it accepts runs
//! calls through trips, open periods and probes without panicking, in wait
//! mode and failing fast, on a clock moved to its extremes.
#![cfg(not(loom))]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use futures::FutureExt;
use proptest::prelude::*;
use tripswitch::clock::FakeClock;
use tripswitch::policy::{FailureRate, MAX_BUCKETS, MAX_WINDOW_CALLS, SlowCallRate, Window};
use tripswitch::{Backoff, CircuitBreaker, HalfOpen};

const MAX_PROBES: u32 = 65_535;

fn edges_u32(max: u32) -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(max),
        Just(max.saturating_add(1)),
        Just(u32::MAX),
        1..=max.min(64),
    ]
}

fn edges_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_millis(1)),
        Just(Duration::from_secs(5)),
        Just(Duration::from_secs(u64::MAX)),
        Just(Duration::MAX),
    ]
}

fn edges_ratio() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(1.0),
        Just(0.5),
        Just(-0.0001),
        Just(1.0001),
        Just(f64::NAN),
        Just(f64::INFINITY),
    ]
}

/// A window is small enough to run calls through cheaply, or at a cap.
fn window() -> impl Strategy<Value = Window> {
    prop_oneof![
        edges_u32(MAX_WINDOW_CALLS)
            .prop_filter("the cap itself is tested once below", |n| *n
                != MAX_WINDOW_CALLS)
            .prop_map(Window::last_calls),
        (edges_duration(), edges_u32(MAX_BUCKETS))
            .prop_filter("the cap itself is tested once below", |(_, b)| *b
                != MAX_BUCKETS)
            .prop_map(|(length, buckets)| Window::last_in_buckets(length, buckets)),
    ]
}

fn window_is_valid(window: Window) -> bool {
    match window {
        Window::LastCalls(n) => (1..=MAX_WINDOW_CALLS).contains(&n),
        Window::LastDuration { length, buckets } => {
            (1..=MAX_BUCKETS).contains(&buckets)
                && !length.is_zero()
                && length.as_nanos() / u128::from(buckets) > 0
        }
        _ => false,
    }
}

fn min_calls_valid(window: Window, min_calls: u32) -> bool {
    min_calls >= 1
        && match window {
            Window::LastCalls(n) => min_calls <= n,
            _ => true,
        }
}

#[derive(Debug, Clone)]
struct Config {
    consecutive: Option<u32>,
    rate: Option<(f64, Window, u32)>,
    slow: Option<(Duration, f64, Window, u32)>,
    backoff: Option<(Duration, Duration, f64, f64)>,
    half_open: Option<(u32, u32, Option<Duration>, HalfOpenMode)>,
    freeze: Duration,
    max_wait: Option<Duration>,
    max_waiters: Option<usize>,
    fail_fast: bool,
}

/// How the half-open state decides (issue 17, rule 3).
#[derive(Debug, Clone, Copy)]
enum HalfOpenMode {
    FirstFailure,
    Budget(u32),
    Rate(f64, Option<f64>),
}

fn config() -> impl Strategy<Value = Config> {
    (
        proptest::option::of(edges_u32(u32::MAX - 1)),
        proptest::option::of((edges_ratio(), window(), edges_u32(1000))),
        proptest::option::of((edges_duration(), edges_ratio(), window(), edges_u32(1000))),
        proptest::option::of((
            edges_duration(),
            edges_duration(),
            prop_oneof![
                Just(0.5),
                Just(1.0),
                Just(2.0),
                Just(f64::NAN),
                Just(f64::INFINITY)
            ],
            edges_ratio(),
        )),
        proptest::option::of((
            edges_u32(MAX_PROBES),
            edges_u32(MAX_PROBES),
            proptest::option::of(edges_duration()),
            prop_oneof![
                Just(HalfOpenMode::FirstFailure),
                edges_u32(MAX_PROBES).prop_map(HalfOpenMode::Budget),
                (edges_ratio(), proptest::option::of(edges_ratio()))
                    .prop_map(|(failure, slow)| HalfOpenMode::Rate(failure, slow)),
            ],
        )),
        edges_duration(),
        proptest::option::of(edges_duration()),
        proptest::option::of(prop_oneof![Just(0usize), Just(1), Just(usize::MAX)]),
        any::<bool>(),
    )
        .prop_map(
            |(
                consecutive,
                rate,
                slow,
                backoff,
                half_open,
                freeze,
                max_wait,
                max_waiters,
                fail_fast,
            )| {
                Config {
                    consecutive,
                    rate,
                    slow,
                    backoff,
                    half_open,
                    freeze,
                    max_wait,
                    max_waiters,
                    fail_fast,
                }
            },
        )
}

/// What the docs say is valid, setting by setting.
fn expected_valid(config: &Config) -> bool {
    config.consecutive.is_none_or(|n| n >= 1)
        && config.rate.is_none_or(|(threshold, window, min)| {
            (0.0..=1.0).contains(&threshold)
                && window_is_valid(window)
                && min_calls_valid(window, min)
        })
        && config.slow.is_none_or(|(after, threshold, window, min)| {
            !after.is_zero()
                && (0.0..=1.0).contains(&threshold)
                && window_is_valid(window)
                && min_calls_valid(window, min)
        })
        && config
            .backoff
            .is_none_or(|(initial, max, multiplier, jitter)| {
                !initial.is_zero()
                    && multiplier.is_finite()
                    && multiplier >= 1.0
                    && max >= initial
                    && (0.0..=1.0).contains(&jitter)
            })
        && config
            .half_open
            .is_none_or(|(probes, close_after, max, mode)| {
                (1..=MAX_PROBES).contains(&probes)
                    && max.is_none_or(|m| !m.is_zero())
                    && match mode {
                        HalfOpenMode::FirstFailure => close_after >= 1,
                        HalfOpenMode::Budget(budget) => {
                            close_after >= 1
                                && (1..=MAX_PROBES).contains(&budget)
                                && budget >= close_after
                        }
                        HalfOpenMode::Rate(failure, slow) => {
                            (0.0..=1.0).contains(&failure)
                                && slow.is_none_or(|slow| {
                                    (0.0..=1.0).contains(&slow) && config.slow.is_some()
                                })
                        }
                    }
            })
}

fn build(config: &Config, clock: &FakeClock) -> Result<CircuitBreaker, tripswitch::ConfigError> {
    builder(config, clock).try_build()
}

fn builder(config: &Config, clock: &FakeClock) -> tripswitch::Builder {
    let mut builder = CircuitBreaker::builder()
        .clock(clock.clone())
        .freeze_for(config.freeze)
        .consecutive_failures(config.consecutive.unwrap_or(1));
    if config.consecutive.is_none() && (config.rate.is_some() || config.slow.is_some()) {
        builder = CircuitBreaker::builder()
            .clock(clock.clone())
            .freeze_for(config.freeze)
            .half_open(HalfOpen::release_all());
    }
    if let Some((threshold, window, min)) = config.rate {
        builder = builder.failure_rate(FailureRate::new(threshold, window).min_calls(min));
    }
    if let Some((after, threshold, window, min)) = config.slow {
        builder =
            builder.slow_call_rate(SlowCallRate::new(after, threshold, window).min_calls(min));
    }
    if let Some((initial, max, multiplier, jitter)) = config.backoff {
        builder = builder.backoff(
            Backoff::exponential(initial, max)
                .multiplier(multiplier)
                .jitter(jitter),
        );
    }
    if let Some((probes, close_after, max, mode)) = config.half_open {
        let mut half_open = match mode {
            HalfOpenMode::FirstFailure => HalfOpen::probes(probes).close_after(close_after),
            HalfOpenMode::Budget(budget) => HalfOpen::probes(probes)
                .close_after(close_after)
                .budget(budget),
            HalfOpenMode::Rate(failure, slow) => {
                let judge = HalfOpen::judged_by_rate(probes, failure);
                match slow {
                    Some(slow) => judge.slow_call_rate(slow),
                    None => judge,
                }
            }
        };
        if let Some(max) = max {
            half_open = half_open.max_duration(max);
        }
        builder = builder.half_open(half_open);
    }
    if let Some(max) = config.max_wait {
        builder = builder.max_wait(max);
    }
    if let Some(max) = config.max_waiters {
        builder = builder.max_waiters(max);
    }
    if config.fail_fast {
        builder = builder.fail_fast();
    }
    builder
}

/// Calls through every state: failures to trip it, time past the open
/// period, probes, successes, and time at its extremes.
fn exercise(breaker: &CircuitBreaker, clock: &FakeClock) {
    for round in 0..4 {
        for _ in 0..3 {
            let _ = breaker
                .execute(|| async { Err::<(), _>("down") })
                .now_or_never();
        }
        let _ = breaker.try_acquire().map(|permit| permit.success());
        let _ = breaker.metrics();
        clock.advance(match round {
            0 => Duration::from_millis(1),
            1 => Duration::from_secs(6),
            2 => Duration::from_secs(u64::MAX / 4),
            _ => Duration::MAX,
        });
        for _ in 0..3 {
            let _ = breaker
                .execute(|| async { Ok::<_, &str>(()) })
                .now_or_never();
        }
        let _ = breaker.state();
        let _ = breaker.wait_unfrozen().now_or_never();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn every_configuration_is_refused_by_name_or_runs_without_panicking(config in config()) {
        let clock = FakeClock::new();
        let built = catch_unwind(AssertUnwindSafe(|| build(&config, &clock)));
        prop_assert!(built.is_ok(), "try_build panicked on {config:?}");
        match built.unwrap() {
            Ok(breaker) => {
                prop_assert!(expected_valid(&config), "accepted an invalid configuration: {config:?}");
                let ran = catch_unwind(AssertUnwindSafe(|| exercise(&breaker, &clock)));
                prop_assert!(ran.is_ok(), "a call panicked with {config:?}");
            }
            Err(error) => {
                prop_assert!(!expected_valid(&config), "refused a valid configuration {config:?}: {error}");
                prop_assert!(!error.setting().is_empty());
                prop_assert!(error.to_string().contains(error.setting()));
            }
        }
    }

    #[test]
    fn build_clamps_every_configuration_and_runs_without_panicking(config in config()) {
        let clock = FakeClock::new();
        let built = catch_unwind(AssertUnwindSafe(|| builder(&config, &clock).build()));
        prop_assert!(built.is_ok(), "build panicked on {config:?}");
        let breaker = built.unwrap();
        // A new breaker admits a call, whatever it was told.
        prop_assert!(breaker.try_acquire().is_ok(), "a new breaker refused a call: {config:?}");
        let ran = catch_unwind(AssertUnwindSafe(|| exercise(&breaker, &clock)));
        prop_assert!(ran.is_ok(), "a call panicked with {config:?}");
    }
}

#[test]
fn the_caps_themselves_build_and_run() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .failure_rate(FailureRate::new(0.5, Window::last_calls(MAX_WINDOW_CALLS)).min_calls(1))
        .slow_call_rate(SlowCallRate::new(
            Duration::from_millis(1),
            0.5,
            Window::last_in_buckets(Duration::from_secs(3600), MAX_BUCKETS),
        ))
        .half_open(HalfOpen::probes(MAX_PROBES))
        .fail_fast()
        .try_build()
        .unwrap();
    exercise(&breaker, &clock);
}
