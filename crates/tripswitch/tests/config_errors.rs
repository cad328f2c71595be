//! Every invalid setting is refused with an error naming the setting, the
//! value and the allowed range; nothing panics.

use std::time::Duration;

use tripswitch::policy::{FailureRate, SlowCallRate, Window};
use tripswitch::{Backoff, CircuitBreaker, HalfOpen};

fn refused(builder: tripswitch::Builder) -> (String, String) {
    let error = builder
        .try_build()
        .expect_err("the setting must be refused");
    (error.setting().to_string(), error.to_string())
}

#[test]
fn each_invalid_setting_is_named_with_its_value_and_range() {
    let cases: Vec<(tripswitch::Builder, &str, &str)> = vec![
        (
            CircuitBreaker::builder().consecutive_failures(0),
            "consecutive_failures",
            "invalid consecutive_failures: 0 (must be at least 1)",
        ),
        (
            CircuitBreaker::builder().failure_rate(FailureRate::new(1.5, Window::last_calls(10))),
            "failure_rate.threshold",
            "invalid failure_rate.threshold: 1.5 (must be between 0 and 1)",
        ),
        (
            CircuitBreaker::builder()
                .failure_rate(FailureRate::new(f64::NAN, Window::last_calls(10))),
            "failure_rate.threshold",
            "invalid failure_rate.threshold: NaN (must be between 0 and 1)",
        ),
        (
            CircuitBreaker::builder().failure_rate(FailureRate::new(0.5, Window::last_calls(0))),
            "failure_rate.window",
            "invalid failure_rate.window: LastCalls(0) (must be a window of at least 1 call)",
        ),
        (
            CircuitBreaker::builder()
                .failure_rate(FailureRate::new(0.5, Window::last_calls(10)).min_calls(11)),
            "failure_rate.min_calls",
            "invalid failure_rate.min_calls: 11 (must be at most the window's size of 10 calls)",
        ),
        (
            CircuitBreaker::builder()
                .failure_rate(FailureRate::new(0.5, Window::last_calls(10)).min_calls(0)),
            "failure_rate.min_calls",
            "invalid failure_rate.min_calls: 0 (must be at least 1)",
        ),
        (
            CircuitBreaker::builder().failure_rate(FailureRate::new(
                0.5,
                Window::last_in_buckets(Duration::from_secs(1), 0),
            )),
            "failure_rate.window",
            "invalid failure_rate.window: LastDuration { length: 1s, buckets: 0 } (must be at least 1 bucket)",
        ),
        (
            CircuitBreaker::builder()
                .failure_rate(FailureRate::new(0.5, Window::last(Duration::ZERO))),
            "failure_rate.window",
            "invalid failure_rate.window: LastDuration { length: 0ns, buckets: 10 } (must be a window longer than zero)",
        ),
        (
            CircuitBreaker::builder().slow_call_rate(SlowCallRate::new(
                Duration::ZERO,
                0.5,
                Window::last_calls(10),
            )),
            "slow_call_rate.slow_after",
            "invalid slow_call_rate.slow_after: 0ns (must be longer than zero)",
        ),
        (
            CircuitBreaker::builder().slow_call_rate(SlowCallRate::new(
                Duration::from_secs(1),
                -0.1,
                Window::last_calls(10),
            )),
            "slow_call_rate.threshold",
            "invalid slow_call_rate.threshold: -0.1 (must be between 0 and 1)",
        ),
        (
            CircuitBreaker::builder().backoff(Backoff::exponential(
                Duration::from_secs(10),
                Duration::from_secs(1),
            )),
            "backoff.max",
            "invalid backoff.max: 1s (must be at least backoff.initial (10s))",
        ),
        (
            CircuitBreaker::builder()
                .backoff(Backoff::exponential(Duration::ZERO, Duration::from_secs(1))),
            "backoff.initial",
            "invalid backoff.initial: 0ns (must be longer than zero)",
        ),
        (
            CircuitBreaker::builder().backoff(
                Backoff::exponential(Duration::from_secs(1), Duration::from_secs(10))
                    .multiplier(0.5),
            ),
            "backoff.multiplier",
            "invalid backoff.multiplier: 0.5 (must be a finite number of at least 1)",
        ),
        (
            CircuitBreaker::builder().backoff(
                Backoff::exponential(Duration::from_secs(1), Duration::from_secs(10)).jitter(2.0),
            ),
            "backoff.jitter",
            "invalid backoff.jitter: 2.0 (must be between 0 and 1)",
        ),
        (
            CircuitBreaker::builder().half_open(HalfOpen::probes(0)),
            "half_open.probes",
            "invalid half_open.probes: 0 (must be between 1 and 65535)",
        ),
        (
            CircuitBreaker::builder().half_open(HalfOpen::probes(1).close_after(0)),
            "half_open.close_after",
            "invalid half_open.close_after: 0 (must be at least 1)",
        ),
        (
            CircuitBreaker::builder().half_open(HalfOpen::probes(1).max_duration(Duration::ZERO)),
            "half_open.max_duration",
            "invalid half_open.max_duration: 0ns (must be longer than zero)",
        ),
        (
            CircuitBreaker::builder().failure_rate(FailureRate::new(
                0.5,
                Window::last_calls(tripswitch::policy::MAX_WINDOW_CALLS + 1),
            )),
            "failure_rate.window",
            "invalid failure_rate.window: LastCalls(10000001) (must be a window of at most 10000000 calls (MAX_WINDOW_CALLS))",
        ),
        (
            CircuitBreaker::builder()
                .failure_rate(FailureRate::new(0.5, Window::last_calls(u32::MAX))),
            "failure_rate.window",
            "invalid failure_rate.window: LastCalls(4294967295) (must be a window of at most 10000000 calls (MAX_WINDOW_CALLS))",
        ),
        (
            CircuitBreaker::builder().slow_call_rate(SlowCallRate::new(
                Duration::from_secs(1),
                0.5,
                Window::last_in_buckets(Duration::from_secs(3600), u32::MAX),
            )),
            "slow_call_rate.window",
            "invalid slow_call_rate.window: LastDuration { length: 3600s, buckets: 4294967295 } (must be at most 100000 buckets (MAX_BUCKETS))",
        ),
        (
            CircuitBreaker::builder().failure_rate(FailureRate::new(
                0.5,
                Window::last_in_buckets(
                    Duration::from_secs(3600),
                    tripswitch::policy::MAX_BUCKETS + 1,
                ),
            )),
            "failure_rate.window",
            "invalid failure_rate.window: LastDuration { length: 3600s, buckets: 100001 } (must be at most 100000 buckets (MAX_BUCKETS))",
        ),
    ];
    for (builder, setting, message) in cases {
        let (got_setting, got_message) = refused(builder);
        assert_eq!(got_setting, setting);
        assert_eq!(got_message, message);
    }
}

#[test]
fn valid_edge_values_are_accepted() {
    for threshold in [0.0, 1.0] {
        CircuitBreaker::builder()
            .failure_rate(FailureRate::new(threshold, Window::last_calls(1)).min_calls(1))
            .try_build()
            .unwrap();
    }
    CircuitBreaker::builder()
        .failure_rate(FailureRate::new(
            0.5,
            Window::last_in_buckets(Duration::from_millis(1), 1),
        ))
        .half_open(HalfOpen::probes(65_535))
        .try_build()
        .unwrap();
    // The caps themselves are accepted.
    CircuitBreaker::builder()
        .failure_rate(FailureRate::new(
            0.5,
            Window::last_calls(tripswitch::policy::MAX_WINDOW_CALLS),
        ))
        .slow_call_rate(SlowCallRate::new(
            Duration::from_secs(1),
            0.5,
            Window::last_in_buckets(Duration::from_secs(3600), tripswitch::policy::MAX_BUCKETS),
        ))
        .try_build()
        .unwrap();
    // The seed's settings cannot be invalid: `build` is infallible.
    let _ = CircuitBreaker::builder()
        .freeze_for(Duration::ZERO)
        .max_waiters(0)
        .build();
}
