//! The permit API, for code that cannot be wrapped in a closure.

mod common;

use std::time::Duration;

use common::Boom;
use tripswitch::{CircuitBreaker, HalfOpen, RejectReason, State};

fn breaker() -> CircuitBreaker {
    CircuitBreaker::builder()
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(1))
        .fail_fast()
        .try_build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn permits_record_success_and_failure() {
    let breaker = breaker();
    breaker.acquire().await.unwrap().success();
    assert_eq!(breaker.metrics().totals.successes, 1);
    breaker
        .acquire()
        .await
        .unwrap()
        .failure(&Boom("stream broke"));
    assert_eq!(breaker.state(), State::Open);
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.reason(), RejectReason::Open);
}

#[tokio::test(start_paused = true)]
async fn a_permit_dropped_without_a_verdict_records_nothing_and_frees_its_slot() {
    let breaker = breaker();
    breaker.acquire().await.unwrap().failure(&Boom("x"));
    tokio::time::advance(Duration::from_secs(1)).await;
    let probe = breaker.try_acquire().unwrap();
    assert!(probe.is_probe());
    assert_eq!(
        breaker.try_acquire().unwrap_err().reason(),
        RejectReason::HalfOpenFull
    );
    drop(probe);
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    let probe = breaker.try_acquire().unwrap();
    probe.success();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().totals.cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn owned_permits_can_be_moved_into_other_tasks() {
    let breaker = breaker();
    let permit = breaker.acquire_owned().await.unwrap();
    tokio::spawn(async move { permit.failure(&Boom("in another task")) })
        .await
        .unwrap();
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn acquire_waits_in_wait_mode() {
    let breaker = CircuitBreaker::builder()
        .freeze_for(Duration::from_secs(2))
        .build();
    breaker.acquire().await.unwrap().failure(&Boom("x"));
    let start = tokio::time::Instant::now();
    let permit = breaker.acquire().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    permit.success();
}
