//! How long the breaker stays open: fixed, backoff, computed from the trip,
//! or an async freeze that sees the error.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{fail, succeed};
use tripswitch::{Backoff, CircuitBreaker, HalfOpen, State};

/// The retry times a fail-fast breaker announces after each failed probe.
async fn announced_periods(breaker: &CircuitBreaker, trips: usize) -> Vec<Duration> {
    let mut periods = Vec::new();
    fail(breaker).await.unwrap_err();
    for _ in 0..trips {
        let rejected = succeed(breaker).await.unwrap_err();
        let period = rejected.rejected().unwrap().retry_after().unwrap();
        periods.push(period);
        tokio::time::advance(period).await;
        assert_eq!(breaker.state(), State::HalfOpen);
        fail(breaker).await.unwrap_err(); // the probe fails: open again, next step
    }
    periods
}

#[tokio::test(start_paused = true)]
async fn sub_second_fixed_periods_work() {
    let breaker = CircuitBreaker::builder()
        .freeze_for(Duration::from_millis(150))
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .try_build()
        .unwrap();
    assert_eq!(
        announced_periods(&breaker, 3).await,
        vec![Duration::from_millis(150); 3]
    );
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_grows_caps_and_restarts_after_closing() {
    let breaker = CircuitBreaker::builder()
        .backoff(Backoff::exponential(
            Duration::from_millis(100),
            Duration::from_millis(500),
        ))
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .try_build()
        .unwrap();
    let ms = Duration::from_millis;
    assert_eq!(
        announced_periods(&breaker, 5).await,
        vec![ms(100), ms(200), ms(400), ms(500), ms(500)]
    );
    // Close it, then trip again: the backoff starts from the beginning.
    tokio::time::advance(ms(500)).await;
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(announced_periods(&breaker, 1).await, vec![ms(100)]);
}

#[tokio::test(start_paused = true)]
async fn jitter_is_deterministic_with_a_seed_or_an_injected_source() {
    let make = |seed| {
        CircuitBreaker::builder()
            .backoff(
                Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60))
                    .jitter(0.5)
                    .jitter_seed(seed),
            )
            .half_open(HalfOpen::probes(1))
            .fail_fast()
            .try_build()
            .unwrap()
    };
    let first = announced_periods(&make(7), 4).await;
    let again = announced_periods(&make(7), 4).await;
    assert_eq!(first, again);
    for (step, period) in first.iter().enumerate() {
        let base = 2f64.powi(step as i32);
        let secs = period.as_secs_f64();
        assert!(
            secs >= base * 0.5 - 1e-6 && secs <= base * 1.5 + 1e-6,
            "{secs} at step {step}"
        );
    }

    let fixed = CircuitBreaker::builder()
        .backoff(
            Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60))
                .jitter(0.5)
                .jitter_source(|| 1.0),
        )
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .try_build()
        .unwrap();
    assert_eq!(
        announced_periods(&fixed, 2).await,
        vec![Duration::from_millis(1500), Duration::from_secs(3)]
    );
}

#[derive(Debug)]
struct Overloaded {
    retry_after: Duration,
}

#[tokio::test(start_paused = true)]
async fn the_open_period_can_come_from_the_error_that_tripped_the_breaker() {
    let breaker = CircuitBreaker::builder()
        .open_for_fn(|trip| {
            trip.error::<Overloaded>()
                .map(|e| e.retry_after)
                .unwrap_or(Duration::from_secs(5))
        })
        .fail_fast()
        .build();
    breaker
        .execute(|| async {
            Err::<(), _>(Overloaded {
                retry_after: Duration::from_secs(42),
            })
        })
        .await
        .unwrap_err();
    let rejected = succeed(&breaker).await.unwrap_err();
    assert_eq!(
        rejected.rejected().unwrap().retry_after(),
        Some(Duration::from_secs(42))
    );
}

#[tokio::test(start_paused = true)]
async fn the_duration_function_sees_the_history() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let breaker = CircuitBreaker::builder()
        .open_for_fn(move |trip| {
            sink.lock()
                .unwrap()
                .push((trip.consecutive_openings(), trip.consecutive_failures()));
            Duration::from_secs(u64::from(trip.consecutive_openings()) + 1)
        })
        .consecutive_failures(2)
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .try_build()
        .unwrap();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(1)).await;
    fail(&breaker).await.unwrap_err(); // failed probe
    tokio::time::advance(Duration::from_secs(2)).await;
    fail(&breaker).await.unwrap_err(); // failed probe
    assert_eq!(
        *seen.lock().unwrap(),
        // Counts are those of the window that last tripped the breaker from closed.
        vec![(0, Some(2)), (1, Some(2)), (2, Some(2))]
    );
}

#[tokio::test(start_paused = true)]
async fn an_async_freeze_function_sees_the_error_that_tripped_the_breaker() {
    let breaker = CircuitBreaker::builder()
        .retry_after_freeze(false)
        .freeze_with_context(|trip| {
            let wait = trip
                .error::<Overloaded>()
                .map_or(Duration::from_secs(1), |e| e.retry_after);
            tokio::time::sleep(wait)
        })
        .build();
    let _ = breaker
        .execute(|| async {
            Err::<(), _>(Overloaded {
                retry_after: Duration::from_secs(7),
            })
        })
        .await;
    // The next call waits out the 7 seconds the error asked for.
    let start = tokio::time::Instant::now();
    succeed(&breaker).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}
