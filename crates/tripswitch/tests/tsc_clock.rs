//! The time-stamp-counter clock (feature `quanta`): monotonic, sleeps, and
//! drives a breaker's time window and freeze in real time.
#![cfg(feature = "quanta")]

mod common;

use std::time::{Duration, Instant};

use common::{fail, succeed};
use tripswitch::CircuitBreaker;
use tripswitch::clock::{Clock, TscClock};
use tripswitch::policy::{FailureRate, Window};

#[test]
fn it_never_goes_backwards_and_keeps_real_time() {
    let clock = TscClock::new();
    let wall = Instant::now();
    let mut last = clock.now();
    for _ in 0..10_000 {
        let now = clock.now();
        assert!(now >= last);
        last = now;
    }
    std::thread::sleep(Duration::from_millis(20));
    let elapsed = clock.now();
    assert!(elapsed >= Duration::from_millis(19), "{elapsed:?}");
    assert!(
        elapsed <= wall.elapsed() + Duration::from_millis(5),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_breaker_on_it_trips_on_its_time_window_and_its_freeze_ends() {
    let breaker = CircuitBreaker::builder()
        .clock(TscClock::new())
        .failure_rate(FailureRate::new(0.5, Window::last(Duration::from_secs(60))).min_calls(4))
        .freeze_for(Duration::from_millis(30))
        .retry_after_freeze(false)
        .try_build()
        .unwrap();
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    let _ = fail(&breaker).await;
    assert!(!breaker.is_frozen(), "1 in 3 failed");
    let _ = fail(&breaker).await;
    assert!(breaker.is_frozen(), "2 in 4 failed");
    // A waiting call goes through once the 30 ms freeze (a tokio sleep) ends.
    let started = Instant::now();
    succeed(&breaker).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(25));
}

/// A breaker reads this clock in place, in nanoseconds, and a thread's
/// successes after its first in a time slice go straight to the cell it
/// remembers: from several threads at once, on two breakers in turn, every
/// success is still counted once.
#[test]
fn a_time_window_on_it_counts_every_success_from_many_threads_exactly() {
    let build = || {
        CircuitBreaker::builder()
            .clock(TscClock::new())
            .failure_rate(
                FailureRate::new(0.9, Window::last(Duration::from_secs(600))).min_calls(1),
            )
            .fail_fast()
            .try_build()
            .unwrap()
    };
    let (first, second) = (build(), build());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                futures::executor::block_on(async {
                    for _ in 0..2_000 {
                        succeed(&first).await.unwrap();
                        succeed(&second).await.unwrap();
                        succeed(&second).await.unwrap();
                    }
                })
            });
        }
    });
    futures::executor::block_on(fail(&first)).unwrap_err();
    futures::executor::block_on(fail(&second)).unwrap_err();
    assert_eq!(first.metrics().failure_rate, Some(1.0 / 8_001.0));
    assert_eq!(second.metrics().failure_rate, Some(1.0 / 16_001.0));
}
