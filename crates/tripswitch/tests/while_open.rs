//! While the breaker is open: waiting (in arrival order, with limits) or failing fast.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Boom, Recorder, fail, succeed};
use tokio::time::Instant;
use tripswitch::{CircuitBreaker, Error, HalfOpen, RejectReason, State};

#[tokio::test(start_paused = true)]
async fn fail_fast_rejects_without_running_and_says_when_to_come_back() {
    let recorder = Recorder::default();
    let breaker = CircuitBreaker::builder()
        .name("payments")
        .freeze_for(Duration::from_millis(1500))
        .fail_fast()
        .on_event(recorder.listener())
        .build();
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(Duration::from_millis(500)).await;
    let mut ran = false;
    let result = breaker
        .execute(|| {
            ran = true;
            async { Ok::<_, Boom>(()) }
        })
        .await;
    assert!(!ran, "the operation did not run");
    let Err(Error::Rejected(rejected)) = result else {
        panic!("expected a rejection")
    };
    assert_eq!(rejected.name(), Some("payments"));
    assert_eq!(rejected.state(), State::Open);
    assert_eq!(rejected.reason(), RejectReason::Open);
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(
        rejected.to_string(),
        "circuit breaker \"payments\" rejected the call: it is open; calls are let through again in 1s"
    );
    assert_eq!(breaker.metrics().totals.rejected, 1);
    assert_eq!(recorder.count("rejected"), 1);
    // No retry in fail-fast mode: the failing call came straight back.
    tokio::time::advance(Duration::from_secs(1)).await;
    succeed(&breaker).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn waiting_calls_are_released_in_arrival_order() {
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .half_open(HalfOpen::probes(1))
            .freeze_for(Duration::from_secs(1))
            .try_build()
            .unwrap(),
    );
    fail(&breaker).await.unwrap_err();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let breaker = Arc::clone(&breaker);
        let order = Arc::clone(&order);
        tasks.push(tokio::spawn(async move {
            breaker
                .execute(|| async {
                    order.lock().unwrap().push(i);
                    Ok::<_, Boom>(())
                })
                .await
        }));
        tokio::task::yield_now().await; // arrive one after the other
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_gives_up_after_the_maximum_wait() {
    let breaker = CircuitBreaker::builder()
        .freeze_for(Duration::from_secs(10))
        .max_wait(Duration::from_secs(2))
        .retry_after_freeze(false)
        .build();
    fail(&breaker).await.unwrap_err();
    let start = Instant::now();
    let result = succeed(&breaker).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let rejected = result.unwrap_err().rejected().cloned().expect("rejected");
    assert_eq!(rejected.reason(), RejectReason::WaitTimedOut);
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(8)));
    assert_eq!(breaker.metrics().waiting, 0);
}

#[tokio::test(start_paused = true)]
async fn calls_beyond_the_waiter_cap_are_rejected_at_once() {
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .freeze_for(Duration::from_secs(1))
            .max_waiters(2)
            .retry_after_freeze(false)
            .build(),
    );
    fail(&breaker).await.unwrap_err();
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let breaker = Arc::clone(&breaker);
        waiting.push(tokio::spawn(async move { succeed(&breaker).await }));
    }
    tokio::task::yield_now().await;
    assert_eq!(breaker.metrics().waiting, 2);
    let start = Instant::now();
    let third = succeed(&breaker).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        third.rejected().unwrap().reason(),
        RejectReason::TooManyWaiters
    );
    for call in waiting {
        call.await.unwrap().unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn fail_fast_in_half_open_rejects_calls_beyond_the_probes() {
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .half_open(HalfOpen::probes(2))
            .freeze_for(Duration::from_secs(1))
            .fail_fast()
            .try_build()
            .unwrap(),
    );
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(1)).await;
    let slow_probe = |breaker: Arc<CircuitBreaker>| {
        tokio::spawn(async move {
            breaker
                .execute(|| async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, Boom>(())
                })
                .await
        })
    };
    let probes = [
        slow_probe(Arc::clone(&breaker)),
        slow_probe(Arc::clone(&breaker)),
    ];
    tokio::task::yield_now().await;
    let extra = succeed(&breaker).await.unwrap_err();
    let rejected = extra.rejected().unwrap();
    assert_eq!(rejected.reason(), RejectReason::HalfOpenFull);
    assert_eq!(rejected.state(), State::HalfOpen);
    // When the half-open state decides at the latest (its default bound).
    assert!(
        rejected
            .retry_after()
            .is_some_and(|d| d <= tripswitch::DEFAULT_MAX_HALF_OPEN)
    );
    for probe in probes {
        probe.await.unwrap().unwrap();
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_async_freeze_in_fail_fast_mode_has_no_known_retry_time() {
    let breaker = CircuitBreaker::builder()
        .freeze_with(|| tokio::time::sleep(Duration::from_secs(1)))
        .fail_fast()
        .build();
    fail(&breaker).await.unwrap_err();
    let rejected = succeed(&breaker).await.unwrap_err();
    assert_eq!(rejected.rejected().unwrap().retry_after(), None);
    assert!(
        !rejected
            .rejected()
            .unwrap()
            .to_string()
            .contains("again in")
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    succeed(&breaker).await.unwrap();
}

/// A rejection says when to come back on whichever clock the breaker runs:
/// the built-in ones (anchored process-wide) and a clock of the caller's own.
#[test]
fn retry_after_is_read_on_the_breakers_own_clock() {
    use tripswitch::clock::{FakeClock, StdClock};

    let fake = FakeClock::new();
    fake.advance(Duration::from_secs(100));
    let breaker = CircuitBreaker::builder()
        .clock(fake.clone())
        .freeze_for(Duration::from_secs(10))
        .fail_fast()
        .build();
    let rejected = futures::executor::block_on(async {
        fail(&breaker).await.unwrap_err();
        fake.advance(Duration::from_secs(4));
        succeed(&breaker).await.unwrap_err()
    });
    let rejected = rejected.rejected().expect("rejected").clone();
    assert_eq!(rejected.name(), None);
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(6)));
    fake.advance(Duration::from_secs(5));
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(1)));
    fake.advance(Duration::from_secs(5));
    assert_eq!(rejected.retry_after(), Some(Duration::ZERO));

    let breaker = CircuitBreaker::builder()
        .name("std")
        .clock(StdClock::new())
        .freeze_for(Duration::from_secs(60))
        .fail_fast()
        .build();
    let rejected = futures::executor::block_on(async {
        fail(&breaker).await.unwrap_err();
        succeed(&breaker).await.unwrap_err()
    });
    let rejected = rejected.rejected().expect("rejected");
    assert_eq!(rejected.name(), Some("std"));
    let after = rejected.retry_after().expect("a known deadline");
    assert!(
        after > Duration::from_secs(50) && after <= Duration::from_secs(60),
        "{after:?}"
    );
}
