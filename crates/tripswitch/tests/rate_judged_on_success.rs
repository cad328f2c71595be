//! A rate is judged on every outcome that can change the verdict, successes
//! included, on every success path (issue 17, first defect: F,F,F,S,S over
//! a 5-call window read 60% and stayed closed until another failure).

mod common;

use std::time::Duration;

use futures::FutureExt;
use tripswitch::clock::FakeClock;
use tripswitch::policy::{FailureRate, SlowCallRate, Window};
use tripswitch::{CircuitBreaker, State};

fn outcome(breaker: &CircuitBreaker, fail: bool) {
    let _ = breaker
        .execute(|| async move { if fail { Err("down") } else { Ok(()) } })
        .now_or_never()
        .expect("a closed breaker does not wait");
}

/// F, F, F, S, S: closed after each of the first four, open after the fifth.
fn three_failures_then_two_successes_trip_on_the_last(breaker: &CircuitBreaker) {
    for fail in [true, true, true, false] {
        outcome(breaker, fail);
        assert_eq!(breaker.state(), State::Closed);
    }
    outcome(breaker, false);
    assert_eq!(
        breaker.state(),
        State::Open,
        "60% of 5 calls failed: the fifth call, a success, is judged"
    );
}

/// Ported from Resilience4j's
/// `CircuitBreakerStateMachineTest.shouldOpenAfterFailureRateThresholdExceeded`:
/// 50% over a time window of 5 s, at least 5 calls; three failures, then two
/// successes; the second success opens the breaker at a rate of 60%.
#[test]
fn a_time_window_is_judged_on_the_success_that_makes_it_judgeable() {
    let breaker = CircuitBreaker::builder()
        .clock(FakeClock::new())
        .failure_rate(
            FailureRate::new(0.5, Window::last_in_buckets(Duration::from_secs(5), 5)).min_calls(5),
        )
        .fail_fast()
        .try_build()
        .unwrap();
    three_failures_then_two_successes_trip_on_the_last(&breaker);
    assert_eq!(breaker.metrics().failure_rate, Some(0.6));
}

/// The repro on a count window (the breaker's own fast success path).
#[test]
fn a_count_window_is_judged_on_the_success_that_makes_it_judgeable() {
    let breaker = CircuitBreaker::builder()
        .clock(FakeClock::new())
        .failure_rate(FailureRate::new(0.5, Window::last_calls(5)).min_calls(5))
        .fail_fast()
        .try_build()
        .unwrap();
    three_failures_then_two_successes_trip_on_the_last(&breaker);
}

/// The same through the general success path (a listener makes every
/// success go through `record`).
#[test]
fn the_observed_path_judges_successes_too() {
    let breaker = CircuitBreaker::builder()
        .clock(FakeClock::new())
        .failure_rate(FailureRate::new(0.5, Window::last_calls(5)).min_calls(5))
        .on_event(|_| {})
        .fail_fast()
        .try_build()
        .unwrap();
    three_failures_then_two_successes_trip_on_the_last(&breaker);
}

/// The same with a consecutive-failures policy beside the window (the
/// paired path), and with two windows (the general windows path).
#[test]
fn paired_and_multi_window_paths_judge_successes_too() {
    let paired = CircuitBreaker::builder()
        .clock(FakeClock::new())
        .consecutive_failures(10)
        .failure_rate(FailureRate::new(0.5, Window::last_calls(5)).min_calls(5))
        .fail_fast()
        .try_build()
        .unwrap();
    three_failures_then_two_successes_trip_on_the_last(&paired);

    let clock = FakeClock::new();
    let two_windows = CircuitBreaker::builder()
        .clock(clock)
        .failure_rate(FailureRate::new(0.5, Window::last_calls(5)).min_calls(5))
        .failure_rate(
            FailureRate::new(0.9, Window::last_in_buckets(Duration::from_secs(5), 5)).min_calls(5),
        )
        .fail_fast()
        .try_build()
        .unwrap();
    three_failures_then_two_successes_trip_on_the_last(&two_windows);
}

/// Ported from Resilience4j's
/// `CircuitBreakerStateMachineTest.shouldOpenAfterSlowCallRateThresholdExceeded`:
/// slow-call rate 50%, 5 calls; slow failure, slow success, fast failure,
/// fast success, slow success: open at 60% slow. (Here slow calls really
/// take 5 s of paused time, so the window is 60 s long to hold all five.)
#[tokio::test(start_paused = true)]
async fn the_slow_call_rate_is_judged_on_every_outcome() {
    let breaker = CircuitBreaker::builder()
        .slow_call_rate(
            SlowCallRate::new(
                Duration::from_secs(4),
                0.5,
                Window::last_in_buckets(Duration::from_secs(60), 6),
            )
            .min_calls(5),
        )
        .fail_fast()
        .try_build()
        .unwrap();
    let call = |slow: bool, fail: bool| {
        let breaker = &breaker;
        async move {
            let _ = breaker
                .execute(|| async move {
                    if slow {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    if fail { Err("down") } else { Ok(()) }
                })
                .await;
        }
    };
    for (slow, fail) in [(true, true), (true, false), (false, true), (false, false)] {
        call(slow, fail).await;
        assert_eq!(breaker.state(), State::Closed);
    }
    call(true, false).await;
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().slow_call_rate, Some(0.6));
}

/// Old successes leaving a time window raise its rate: the next success is
/// judged on the window as it is then.
#[test]
fn successes_leaving_a_time_window_can_make_a_success_trip_it() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .failure_rate(
            FailureRate::new(0.5, Window::last_in_buckets(Duration::from_secs(10), 10))
                .min_calls(4),
        )
        .fail_fast()
        .try_build()
        .unwrap();
    for _ in 0..6 {
        outcome(&breaker, false);
    }
    clock.advance(Duration::from_secs(5));
    for _ in 0..3 {
        outcome(&breaker, true);
    }
    assert_eq!(breaker.state(), State::Closed, "3 of 9 failed");
    // The six successes leave the window; 3 failures remain.
    clock.advance(Duration::from_secs(6));
    outcome(&breaker, false);
    assert_eq!(breaker.state(), State::Open, "3 of 4 failed");
}

/// A healthy window never trips on successes, whatever the threshold, and
/// its successes stay on the fast path (no judgement without failures).
#[test]
fn a_window_without_failures_never_trips() {
    let breaker = CircuitBreaker::builder()
        .clock(FakeClock::new())
        .failure_rate(FailureRate::new(0.0, Window::last_calls(5)).min_calls(1))
        .fail_fast()
        .try_build()
        .unwrap();
    for _ in 0..20 {
        outcome(&breaker, false);
    }
    assert_eq!(breaker.state(), State::Closed);
    outcome(&breaker, true);
    assert_eq!(
        breaker.state(),
        State::Open,
        "a threshold of 0: any failure"
    );
}
