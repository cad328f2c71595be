//! Forcing open, releasing, disabling, metrics-only and reset, from any clone.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Boom, Recorder, fail, succeed};
use tripswitch::{CircuitBreaker, HalfOpen, RejectReason, State};

fn breaker_with(recorder: &Recorder) -> CircuitBreaker {
    CircuitBreaker::builder()
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(1))
        .fail_fast()
        .on_event(recorder.listener())
        .try_build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn forced_open_stays_open_and_rejections_carry_no_retry_time() {
    let recorder = Recorder::default();
    let breaker = breaker_with(&recorder);
    let clone = breaker.clone();
    clone.force_open();
    assert_eq!(breaker.state(), State::ForcedOpen);
    assert!(breaker.is_frozen());
    tokio::time::advance(Duration::from_secs(3600)).await;
    let rejected = succeed(&breaker).await.unwrap_err();
    let rejected = rejected.rejected().unwrap();
    assert_eq!(rejected.reason(), RejectReason::ForcedOpen);
    assert_eq!(rejected.retry_after(), None);
    assert!(
        rejected
            .to_string()
            .contains("stays open until it is released")
    );
    breaker.resume();
    assert_eq!(breaker.state(), State::Closed);
    succeed(&breaker).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn no_event_for_a_transition_to_the_current_state() {
    let recorder = Recorder::default();
    let breaker = breaker_with(&recorder);
    breaker.force_open();
    breaker.force_open();
    breaker.resume();
    breaker.resume();
    breaker.reset();
    assert_eq!(
        recorder.transitions(),
        vec![
            (State::Closed, State::ForcedOpen),
            (State::ForcedOpen, State::Closed)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_calls_wait_for_a_forced_open_breaker_to_be_released() {
    let breaker = Arc::new(CircuitBreaker::builder().build());
    breaker.force_open();
    let waiter = {
        let breaker = Arc::clone(&breaker);
        tokio::spawn(async move { succeed(&breaker).await })
    };
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!waiter.is_finished());
    breaker.resume();
    assert_eq!(waiter.await.unwrap(), Ok(1));
}

#[tokio::test(start_paused = true)]
async fn disabled_lets_everything_through_and_records_nothing() {
    let recorder = Recorder::default();
    let breaker = breaker_with(&recorder);
    breaker.disable();
    for _ in 0..10 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Disabled);
    assert_eq!(breaker.metrics().totals.failures, 0);
    assert_eq!(recorder.count("failure"), 0);
    breaker.resume();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn metrics_only_records_but_never_trips() {
    let recorder = Recorder::default();
    let breaker = breaker_with(&recorder);
    breaker.force_metrics_only();
    for _ in 0..10 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::MetricsOnly);
    assert_eq!(breaker.metrics().totals.failures, 10);
    assert_eq!(recorder.count("failure"), 10);
}

#[tokio::test(start_paused = true)]
async fn reset_closes_and_clears_counts_and_backoff() {
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(3)
        .fail_fast()
        .try_build()
        .unwrap();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    breaker.reset();
    assert_eq!(breaker.metrics().consecutive_failures, Some(0));
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    succeed(&breaker).await.unwrap();
}

#[test]
fn manual_control_races_with_traffic_without_wedging() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let breaker = CircuitBreaker::builder()
            .consecutive_failures(3)
            .half_open(HalfOpen::probes(2))
            .freeze_for(Duration::from_millis(1))
            .max_wait(Duration::from_millis(50))
            .try_build()
            .unwrap();
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let breaker = breaker.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..500u64 {
                    let _ = breaker
                        .execute(|| async move {
                            if (i + t) % 5 == 0 {
                                Err(Boom("x"))
                            } else {
                                Ok(())
                            }
                        })
                        .await;
                }
            }));
        }
        let controller = {
            let breaker = breaker.clone();
            tokio::spawn(async move {
                for i in 0..200 {
                    match i % 5 {
                        0 => breaker.force_open(),
                        1 => breaker.resume(),
                        2 => breaker.disable(),
                        3 => breaker.force_metrics_only(),
                        _ => breaker.reset(),
                    }
                    tokio::task::yield_now().await;
                }
                breaker.reset();
            })
        };
        controller.await.unwrap();
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("no call hangs")
                .unwrap();
        }
        breaker.reset();
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.metrics().waiting, 0);
        assert_eq!(breaker.metrics().probes_in_flight, 0);
    });
}

/// A reset starts a new generation even from closed: a call started before
/// it does not count after it, and no Closed→Closed event is emitted.
/// (The defect an independent test found: `consecutive_failures(2)`, call X
/// left hanging, one failure, `reset()`, X fails, one more failure opened
/// the breaker.) Ported from Resilience4j's `shouldResetClosedState`
/// (a reset from closed clears the counts) with gobreaker's `TestGeneration`
/// (a request of the previous generation has no effect).
#[test]
fn a_reset_from_closed_starts_a_new_generation() {
    let recorder = common::Recorder::default();
    let breaker = CircuitBreaker::builder()
        .clock(tripswitch::clock::FakeClock::new())
        .consecutive_failures(2)
        .fail_fast()
        .on_event(recorder.listener())
        .try_build()
        .unwrap();
    let hanging = breaker.try_acquire().unwrap();
    breaker.try_acquire().unwrap().failure(&"one");
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    assert!(recorder.transitions().is_empty(), "no Closed→Closed event");
    hanging.failure(&"from before the reset");
    breaker.try_acquire().unwrap().failure(&"two");
    assert_eq!(
        breaker.state(),
        State::Closed,
        "only one failure counts since the reset"
    );
    assert_eq!(breaker.metrics().consecutive_failures, Some(1));
    breaker.try_acquire().unwrap().failure(&"three");
    assert_eq!(breaker.state(), State::Open);
}
