//! Half-open probing: limits, closing, reopening, timeouts, dropped probes,
//! and concurrent probes on a multi-thread runtime.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Boom, Recorder, fail, succeed};
use tokio::sync::Barrier;
use tripswitch::events::TransitionReason;
use tripswitch::{Backoff, CircuitBreaker, HalfOpen, State};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn only_the_configured_number_of_probes_run_and_the_rest_wait() {
    let running = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .half_open(HalfOpen::probes(2).close_after(4))
            .freeze_for(SECOND)
            .try_build()
            .unwrap(),
    );
    fail(&breaker).await.unwrap_err();
    let mut calls = Vec::new();
    for _ in 0..10 {
        let (breaker, running, most) = (
            Arc::clone(&breaker),
            Arc::clone(&running),
            Arc::clone(&most),
        );
        calls.push(tokio::spawn(async move {
            breaker
                .execute(|| async {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Boom>(())
                })
                .await
        }));
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    // Two probes at a time until four succeeded; then the breaker closed and
    // the rest ran together.
    assert_eq!(breaker.state(), State::Closed);
    assert!(most.load(Ordering::SeqCst) >= 2);
    assert_eq!(breaker.metrics().totals.successes, 10);
}

#[tokio::test(start_paused = true)]
async fn probes_close_after_enough_successes() {
    let recorder = Recorder::default();
    let breaker = CircuitBreaker::builder()
        .half_open(HalfOpen::probes(1).close_after(3))
        .freeze_for(SECOND)
        .fail_fast()
        .on_event(recorder.listener())
        .try_build()
        .unwrap();
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(SECOND).await;
    for expected in [State::HalfOpen, State::HalfOpen, State::Closed] {
        succeed(&breaker).await.unwrap();
        assert_eq!(breaker.state(), expected);
    }
    assert_eq!(
        recorder.transitions(),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
    assert_eq!(
        recorder.reasons(),
        vec![
            TransitionReason::Tripped,
            TransitionReason::OpenPeriodEnded,
            TransitionReason::ProbesSucceeded
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_with_the_next_backoff_step() {
    let breaker = CircuitBreaker::builder()
        .backoff(Backoff::exponential(SECOND, Duration::from_secs(30)))
        .half_open(HalfOpen::probes(3).close_after(3))
        .fail_fast()
        .try_build()
        .unwrap();
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(SECOND).await;
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err(); // any failed probe reopens
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().retry_after, Some(Duration::from_secs(2)));
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_never_finishes_cannot_hold_the_breaker_half_open() {
    let recorder = Recorder::default();
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(5)))
            .freeze_for(SECOND)
            .on_event(recorder.listener())
            .try_build()
            .unwrap(),
    );
    fail(&breaker).await.unwrap_err();
    let stuck = {
        let breaker = Arc::clone(&breaker);
        tokio::spawn(async move {
            breaker
                .execute(|| async {
                    std::future::pending::<()>().await;
                    Ok::<_, Boom>(())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.metrics().probes_in_flight, 1);
    // A waiting call is woken when the half-open state times out, waits out the
    // new open period, and then probes successfully.
    let start = tokio::time::Instant::now();
    succeed(&breaker).await.unwrap();
    // Half-open from 1s, timed out at 6s, open again until 7s: 5.5s after 1.5s.
    assert_eq!(start.elapsed(), Duration::from_millis(5500));
    assert!(
        recorder
            .reasons()
            .contains(&TransitionReason::HalfOpenTimedOut)
    );
    assert_eq!(breaker.state(), State::Closed);
    stuck.abort();
}

#[tokio::test(start_paused = true)]
async fn the_seed_preset_lets_everybody_through_and_closes_at_once() {
    let recorder = Recorder::default();
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .freeze_for(SECOND)
            .on_event(recorder.listener())
            .build(),
    );
    let _ = breaker.execute(|| async { Err::<(), _>(Boom("x")) }).await;
    assert_eq!(
        recorder.transitions(),
        vec![(State::Closed, State::Open), (State::Open, State::Closed)]
    );
}

#[test]
fn concurrent_probes_on_a_multi_thread_runtime_never_exceed_the_limit() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        for _ in 0..20 {
            let limit = 3;
            let running = Arc::new(AtomicU32::new(0));
            let most = Arc::new(AtomicU32::new(0));
            let breaker = Arc::new(
                CircuitBreaker::builder()
                    .half_open(HalfOpen::probes(limit).close_after(1_000))
                    .freeze_for(Duration::from_millis(1))
                    .fail_fast()
                    .try_build()
                    .unwrap(),
            );
            fail(&breaker).await.unwrap_err();
            tokio::time::sleep(Duration::from_millis(2)).await;
            let barrier = Arc::new(Barrier::new(16));
            let mut tasks = Vec::new();
            for _ in 0..16 {
                let (breaker, running, most, barrier) = (
                    Arc::clone(&breaker),
                    Arc::clone(&running),
                    Arc::clone(&most),
                    Arc::clone(&barrier),
                );
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    let mut admitted = 0;
                    for _ in 0..50 {
                        let result = breaker
                            .execute(|| async {
                                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                                most.fetch_max(now, Ordering::SeqCst);
                                tokio::task::yield_now().await;
                                running.fetch_sub(1, Ordering::SeqCst);
                                Ok::<_, Boom>(())
                            })
                            .await;
                        admitted += u32::from(result.is_ok());
                    }
                    admitted
                }));
            }
            let mut admitted = 0;
            for task in tasks {
                admitted += task.await.unwrap();
            }
            assert!(
                most.load(Ordering::SeqCst) <= limit,
                "never more than {limit} probes at once"
            );
            assert!(admitted > 0);
            assert_eq!(
                breaker.metrics().probes_in_flight,
                0,
                "every slot came back"
            );
        }
    });
}

/// The stuck-probe guard by default (Resilience4j #903/#935, Polly #1979,
/// Hystrix #1723: a probe that never returns held the breaker half-open):
/// `HalfOpen::default()` and `HalfOpen::probes(n)` open again after
/// `DEFAULT_MAX_HALF_OPEN` unless told otherwise. Ported from Resilience4j's
/// `circuitBreakerTransitionsToOpenAfterWaitDurationInHalfOpenState`
/// (CircuitBreakerStateMachineTest), with the default bound where that test
/// configures one.
#[tokio::test(start_paused = true)]
async fn a_probe_that_never_returns_reopens_the_breaker_after_the_default_bound() {
    use tripswitch::DEFAULT_MAX_HALF_OPEN;
    assert_eq!(DEFAULT_MAX_HALF_OPEN, Duration::from_secs(30));
    assert_eq!(
        HalfOpen::default().max_duration_limit(),
        Some(DEFAULT_MAX_HALF_OPEN)
    );
    assert_eq!(
        HalfOpen::probes(3).max_duration_limit(),
        Some(DEFAULT_MAX_HALF_OPEN)
    );
    assert_eq!(
        HalfOpen::probes(3)
            .without_max_duration()
            .max_duration_limit(),
        None
    );
    assert_eq!(HalfOpen::release_all().max_duration_limit(), None);

    let breaker = CircuitBreaker::standard().consecutive_failures(1).build();
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(5)).await;
    let stuck = breaker.try_acquire().expect("the probe");
    assert_eq!(breaker.state(), State::HalfOpen);
    tokio::time::advance(DEFAULT_MAX_HALF_OPEN - Duration::from_millis(1)).await;
    assert_eq!(breaker.state(), State::HalfOpen);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        breaker.state(),
        State::Open,
        "the stuck probe no longer holds it"
    );
    drop(stuck);

    // Without the bound, the stuck probe holds it (the anchors' behaviour).
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .half_open(HalfOpen::default().without_max_duration())
        .build();
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(5)).await;
    let _stuck = breaker.try_acquire().expect("the probe");
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(breaker.state(), State::HalfOpen);
}

/// A call refused because every probe slot is taken says when the
/// half-open state decides at the latest (Polly's
/// `BrokenCircuitException.RetryAfter` in half-open; issue 17 rule 7).
/// Ported from Polly's `OnActionPreExecute_HalfOpen`
/// (CircuitStateControllerTests): a second call while half-open is
/// rejected, and its rejection carries a retry-after.
#[tokio::test(start_paused = true)]
async fn a_half_open_rejection_says_when_the_state_decides_at_the_latest() {
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(10)))
        .build();
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(5)).await;
    let _probe = breaker.try_acquire().expect("the probe");
    tokio::time::advance(Duration::from_secs(4)).await;
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.reason(), tripswitch::RejectReason::HalfOpenFull);
    assert_eq!(refused.retry_after(), Some(Duration::from_secs(6)));

    let unbounded = CircuitBreaker::standard()
        .consecutive_failures(1)
        .half_open(HalfOpen::probes(1).without_max_duration())
        .build();
    fail(&unbounded).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(5)).await;
    let _probe = unbounded.try_acquire().expect("the probe");
    assert_eq!(unbounded.try_acquire().unwrap_err().retry_after(), None);
}
