//! `policy::FailureCount`, the policy added as one file (ARCHITECTURE.md):
//! failures within a window trip the breaker, whatever the successes.

mod common;

use std::time::Duration;

use common::{fail, succeed};
use tripswitch::clock::FakeClock;
use tripswitch::policy::{FailureCount, Window};
use tripswitch::{CircuitBreaker, State};

#[tokio::test(start_paused = true)]
async fn failures_in_a_count_window_trip_it_whatever_the_successes() {
    let breaker = CircuitBreaker::standard()
        .trip_policy(FailureCount::new(3, Window::last_calls(100)).unwrap())
        .build();
    for _ in 0..2 {
        fail(&breaker).await.unwrap_err();
        for _ in 0..30 {
            succeed(&breaker).await.unwrap();
        }
    }
    assert_eq!(breaker.state(), State::Closed, "2 failures in 62 calls");
    assert_eq!(breaker.metrics().failure_rate, None, "it is not a rate");
    fail(&breaker).await.unwrap_err();
    assert_eq!(
        breaker.state(),
        State::Open,
        "the third failure in the window"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_that_left_the_window_no_longer_count() {
    let breaker = CircuitBreaker::standard()
        .trip_policy(FailureCount::new(2, Window::last_calls(5)).unwrap())
        .build();
    fail(&breaker).await.unwrap_err();
    for _ in 0..5 {
        succeed(&breaker).await.unwrap();
    }
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Closed, "the first failure slid out");
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_time_window_forgets_old_failures_and_reports_its_count() {
    use futures::FutureExt;
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .trip_policy(FailureCount::new(2, Window::last(Duration::from_secs(10))).unwrap())
        .build();
    let failing = || {
        breaker
            .execute(|| async { Err::<(), _>("down") })
            .now_or_never()
            .expect("no wait")
            .unwrap_err();
    };
    failing();
    assert_eq!(breaker.metrics().consecutive_failures, None);
    clock.advance(Duration::from_secs(11));
    failing();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "11 s apart in a 10 s window"
    );
    clock.advance(Duration::from_secs(1));
    failing();
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn invalid_settings_are_refused_by_name() {
    let error = FailureCount::new(0, Window::last_calls(10)).unwrap_err();
    assert_eq!(error.setting(), "failure_count.failures");
    let error = FailureCount::new(11, Window::last_calls(10)).unwrap_err();
    assert_eq!(error.setting(), "failure_count.failures");
    assert!(error.to_string().contains("10 calls"), "{error}");
    let error = FailureCount::new(1, Window::last_calls(0)).unwrap_err();
    assert_eq!(error.setting(), "failure_count.window");
    assert_eq!(
        FailureCount::new(7, Window::last(Duration::from_secs(1)))
            .unwrap()
            .failures(),
        7
    );
}
