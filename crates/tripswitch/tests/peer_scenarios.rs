//! The classic scenarios of other breakers' test suites (gobreaker, pybreaker,
//! Resilience4j, Polly), configured the way those libraries' users would.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Boom, Recorder, fail, succeed};
use tripswitch::policy::{FailureRate, SlowCallRate, Window};
use tripswitch::{CircuitBreaker, Error, HalfOpen, RejectReason, State};

const MINUTE: Duration = Duration::from_secs(60);

fn reason(result: Result<u32, Error<Boom>>) -> RejectReason {
    result
        .unwrap_err()
        .rejected()
        .expect("a rejection")
        .reason()
}

/// gobreaker: ReadyToTrip = ConsecutiveFailures > 5, Timeout 60s, MaxRequests 1.
fn gobreaker_default() -> CircuitBreaker {
    CircuitBreaker::builder()
        .name("gobreaker")
        .consecutive_failures(6)
        .freeze_for(MINUTE)
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .try_build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn gobreaker_state_transitions() {
    let breaker = gobreaker_default();
    for _ in 0..5 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(reason(succeed(&breaker).await), RejectReason::Open);

    tokio::time::advance(MINUTE - Duration::from_millis(1)).await;
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(breaker.state(), State::HalfOpen);

    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open, "a failed probe reopens");
    tokio::time::advance(MINUTE).await;
    succeed(&breaker).await.unwrap();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "one successful probe closes"
    );
}

#[tokio::test(start_paused = true)]
async fn gobreaker_too_many_requests_in_half_open() {
    let breaker = gobreaker_default();
    for _ in 0..6 {
        fail(&breaker).await.unwrap_err();
    }
    tokio::time::advance(MINUTE).await;
    let probe = breaker.try_acquire().unwrap();
    assert_eq!(reason(succeed(&breaker).await), RejectReason::HalfOpenFull);
    probe.success();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn gobreaker_generation_a_result_from_before_a_transition_is_not_counted() {
    let breaker = Arc::new(gobreaker_default());
    // A slow call starts while closed...
    let slow = {
        let breaker = Arc::clone(&breaker);
        tokio::spawn(async move {
            breaker
                .execute(|| async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok::<u32, Boom>(1)
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    // ...the breaker trips meanwhile...
    for _ in 0..6 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Open);
    // ...and the old call's success does not close it.
    assert_eq!(slow.await.unwrap(), Ok(1));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        breaker.metrics().totals.successes,
        1,
        "it still counts in the totals"
    );
}

/// pybreaker: fail_max = 3, reset_timeout = 60s, excluded exceptions, listeners.
#[tokio::test(start_paused = true)]
async fn pybreaker_fail_max_excluded_errors_and_listeners() {
    #[derive(Debug)]
    struct ValidationError;
    let recorder = Recorder::default();
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(3)
        .ignore_errors(|_: &ValidationError| true)
        .freeze_for(MINUTE)
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .on_event(recorder.listener())
        .try_build()
        .unwrap();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    // An excluded error is not a failure: the count stays at 2.
    breaker
        .execute(|| async { Err::<(), _>(ValidationError) })
        .await
        .unwrap_err();
    assert_eq!(breaker.metrics().consecutive_failures, Some(2));
    succeed(&breaker).await.unwrap(); // success resets the counter
    assert_eq!(breaker.metrics().consecutive_failures, Some(0));
    for _ in 0..3 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(MINUTE).await;
    succeed(&breaker).await.unwrap();
    assert_eq!(
        recorder.transitions(),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
}

/// Resilience4j: COUNT_BASED window of 5, minimumNumberOfCalls 5,
/// failureRateThreshold 50%, waitDurationInOpenState 60s,
/// permittedNumberOfCallsInHalfOpenState 2.
#[tokio::test(start_paused = true)]
async fn resilience4j_failure_rate_with_minimum_calls_and_half_open_permits() {
    let breaker = CircuitBreaker::builder()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(5)).min_calls(5))
        .freeze_for(MINUTE)
        .half_open(HalfOpen::probes(2).close_after(2))
        .fail_fast()
        .try_build()
        .unwrap();
    for _ in 0..4 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "minimumNumberOfCalls not reached"
    );
    // The fifth call makes the window judgeable: 80% failed, so this
    // success opens the breaker (Resilience4j judges after every outcome).
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(reason(succeed(&breaker).await), RejectReason::Open);

    tokio::time::advance(MINUTE).await;
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    assert_eq!(
        breaker.try_acquire().unwrap_err().reason(),
        RejectReason::HalfOpenFull
    );
    first.success();
    second.success();
    assert_eq!(breaker.state(), State::Closed);
}

/// Resilience4j: slowCallDurationThreshold 1s, slowCallRateThreshold 50%.
#[tokio::test(start_paused = true)]
async fn resilience4j_slow_call_rate() {
    let breaker = CircuitBreaker::builder()
        .slow_call_rate(
            SlowCallRate::new(Duration::from_secs(1), 0.5, Window::last_calls(4)).min_calls(4),
        )
        .fail_fast()
        .try_build()
        .unwrap();
    let call = |secs: u64| {
        breaker.execute(move || async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            Ok::<_, Boom>(())
        })
    };
    call(2).await.unwrap();
    call(0).await.unwrap();
    call(0).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    call(3).await.unwrap();
    assert_eq!(breaker.state(), State::Open);
}

/// Polly advanced breaker: failureThreshold 0.5, samplingDuration 10s,
/// minimumThroughput 4, breakDuration 30s.
#[tokio::test(start_paused = true)]
async fn polly_advanced_breaker_sampling_duration_and_minimum_throughput() {
    let breaker = CircuitBreaker::builder()
        .failure_rate(
            FailureRate::new(0.5, Window::last_in_buckets(Duration::from_secs(10), 10))
                .min_calls(4),
        )
        .freeze_for(Duration::from_secs(30))
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .try_build()
        .unwrap();
    // Three failures: 100%, but below the minimum throughput.
    for _ in 0..3 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Closed);
    // They fall out of the sampling duration.
    tokio::time::advance(Duration::from_secs(11)).await;
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "1 of 4 in the sampling duration"
    );
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Closed, "2 of 5");
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open, "3 of 6 = 50%");
    tokio::time::advance(Duration::from_secs(30)).await;
    // Polly: only one trial call in half-open.
    let trial = breaker.try_acquire().unwrap();
    assert_eq!(reason(succeed(&breaker).await), RejectReason::HalfOpenFull);
    trial.failure(&Boom("still broken"));
    assert_eq!(breaker.state(), State::Open);
}

/// Polly: isolate (forced open) and reset.
#[tokio::test(start_paused = true)]
async fn polly_isolate_and_reset() {
    let breaker = gobreaker_default();
    breaker.force_open();
    assert_eq!(reason(succeed(&breaker).await), RejectReason::ForcedOpen);
    breaker.reset();
    succeed(&breaker).await.unwrap();
}
