//! The seed's freeze-and-wait behaviour (points 1–5 of the core issue), on
//! tokio's paused clock: no test sleeps in real time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tripswitch::{CircuitBreaker, Error};

const FIVE: Duration = Duration::from_secs(5);

type Seen = Arc<Mutex<Vec<String>>>;

/// Collects what `on_error` was called with.
fn recorder() -> (Seen, impl Fn(&dyn std::fmt::Debug) + Send + Sync + 'static) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (seen, move |e: &dyn std::fmt::Debug| {
        sink.lock().unwrap().push(format!("{e:?}"))
    })
}

#[tokio::test(start_paused = true)]
async fn a_success_passes_through_untouched() {
    let breaker = CircuitBreaker::new();
    let start = Instant::now();
    let value = breaker.execute(|| async { Ok::<_, String>(7) }).await;
    assert_eq!(value, Ok(7));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(!breaker.is_frozen());
}

#[tokio::test(start_paused = true)]
async fn a_failure_calls_on_error_once_freezes_and_retries_once() {
    let (seen, on_error) = recorder();
    let breaker = CircuitBreaker::builder().on_error(on_error).build();
    let runs = AtomicU32::new(0);
    let start = Instant::now();
    let result = breaker
        .execute(|| {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            async move { if run == 0 { Err("first") } else { Ok(run) } }
        })
        .await;
    // The retry ran after the 5 second default freeze and its result came back.
    assert_eq!(result, Ok(1));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), FIVE);
    assert_eq!(*seen.lock().unwrap(), vec!["\"first\"".to_string()]);
    assert!(!breaker.is_frozen());
}

#[tokio::test(start_paused = true)]
async fn the_retry_result_is_returned_whatever_it_is_and_on_error_is_not_called_again() {
    let (seen, on_error) = recorder();
    let breaker = CircuitBreaker::builder().on_error(on_error).build();
    let runs = AtomicU32::new(0);
    let result = breaker
        .execute(|| {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            async move { Err::<(), _>(format!("failure {run}")) }
        })
        .await;
    assert_eq!(result, Err(Error::Inner("failure 1".to_string())));
    assert_eq!(runs.load(Ordering::SeqCst), 2, "exactly one retry");
    assert_eq!(seen.lock().unwrap().len(), 1, "on_error once per call");
    // The retry's failure did not freeze the breaker again.
    assert!(!breaker.is_frozen());
}

#[tokio::test(start_paused = true)]
async fn calls_made_while_frozen_wait_for_the_freeze_then_run() {
    let breaker = Arc::new(CircuitBreaker::new());
    let failing = {
        let breaker = Arc::clone(&breaker);
        tokio::spawn(async move { breaker.execute(|| async { Err::<(), _>("down") }).await })
    };
    tokio::task::yield_now().await;
    assert!(breaker.is_frozen());

    let start = Instant::now();
    let mut waiters = Vec::new();
    for i in 0..20u32 {
        let breaker = Arc::clone(&breaker);
        waiters.push(tokio::spawn(async move {
            let value = breaker.execute(|| async move { Ok::<_, String>(i) }).await;
            (value, start.elapsed())
        }));
    }
    for (i, waiter) in waiters.into_iter().enumerate() {
        let (value, waited) = waiter.await.unwrap();
        assert_eq!(value, Ok(i as u32), "nothing is rejected");
        assert_eq!(waited, FIVE, "every call waited for the end of the freeze");
    }
    assert_eq!(failing.await.unwrap(), Err(Error::Inner("down")));
}

#[tokio::test(start_paused = true)]
async fn one_freeze_at_a_time_and_the_freeze_function_runs_once_per_freeze() {
    let freezes = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&freezes);
    let (seen, on_error) = recorder();
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .freeze_with(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(FIVE)
            })
            .on_error(on_error)
            .build(),
    );
    let start = Instant::now();
    // Three calls are admitted while closed; they fail at 1s, 2s and 3s.
    let mut calls = Vec::new();
    for delay in 1..=3u64 {
        let breaker = Arc::clone(&breaker);
        calls.push(tokio::spawn(async move {
            let runs = AtomicU32::new(0);
            let result = breaker
                .execute(|| {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if run == 0 {
                            tokio::time::sleep(Duration::from_secs(delay)).await;
                            Err(format!("call {delay}"))
                        } else {
                            Ok(delay)
                        }
                    }
                })
                .await;
            (result, start.elapsed())
        }));
    }
    for (delay, call) in (1..=3u64).zip(calls) {
        let (result, finished) = call.await.unwrap();
        assert_eq!(result, Ok(delay), "each failed call retried once");
        // The later failures waited out the running freeze (1s + 5s); they did not extend it.
        assert_eq!(finished, Duration::from_secs(6));
    }
    assert_eq!(freezes.load(Ordering::SeqCst), 1);
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "on_error once for each failing call"
    );
}

#[tokio::test(start_paused = true)]
async fn released_calls_and_retries_are_not_counted() {
    let freezes = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&freezes);
    let (seen, on_error) = recorder();
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .freeze_with(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(FIVE)
            })
            .on_error(on_error)
            .build(),
    );
    let tripper = {
        let breaker = Arc::clone(&breaker);
        tokio::spawn(async move { breaker.execute(|| async { Err::<(), _>("trip") }).await })
    };
    tokio::task::yield_now().await;
    // Calls released from the freeze all fail: their errors go back to their
    // callers, and nothing freezes again.
    let mut released = Vec::new();
    for _ in 0..5 {
        let breaker = Arc::clone(&breaker);
        released.push(tokio::spawn(async move {
            breaker
                .execute(|| async { Err::<(), _>("still down") })
                .await
        }));
    }
    for call in released {
        assert_eq!(call.await.unwrap(), Err(Error::Inner("still down")));
    }
    assert_eq!(tripper.await.unwrap(), Err(Error::Inner("trip")));
    assert_eq!(freezes.load(Ordering::SeqCst), 1);
    assert_eq!(*seen.lock().unwrap(), vec!["\"trip\"".to_string()]);
    assert!(!breaker.is_frozen());
}

#[tokio::test(start_paused = true)]
async fn is_frozen_turns_false_when_the_freeze_ends_even_with_nobody_waiting() {
    let breaker = CircuitBreaker::new();
    // Fail once and abandon the call while it waits out its freeze.
    let call = breaker.execute(|| async { Err::<(), _>("boom") });
    let abandoned = tokio::time::timeout(Duration::from_secs(1), call).await;
    assert!(
        abandoned.is_err(),
        "the call was still waiting out the freeze"
    );
    assert!(breaker.is_frozen());
    tokio::time::advance(Duration::from_millis(3999)).await;
    assert!(breaker.is_frozen());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(!breaker.is_frozen());
}

#[tokio::test(start_paused = true)]
async fn is_frozen_follows_a_custom_freeze_function_with_nobody_waiting() {
    let breaker = CircuitBreaker::builder()
        .freeze_with(|| tokio::time::sleep(Duration::from_secs(2)))
        .build();
    let call = breaker.execute(|| async { Err::<(), _>("boom") });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), call)
            .await
            .is_err()
    );
    assert!(breaker.is_frozen());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!breaker.is_frozen());
}

#[tokio::test(start_paused = true)]
async fn wait_unfrozen_returns_at_once_when_not_frozen_and_at_the_end_otherwise() {
    let breaker = Arc::new(CircuitBreaker::new());
    let start = Instant::now();
    breaker.wait_unfrozen().await;
    assert_eq!(start.elapsed(), Duration::ZERO);

    let tripper = {
        let breaker = Arc::clone(&breaker);
        tokio::spawn(async move { breaker.execute(|| async { Err::<(), _>("x") }).await })
    };
    tokio::task::yield_now().await;
    assert!(breaker.is_frozen());
    breaker.wait_unfrozen().await;
    assert_eq!(start.elapsed(), FIVE);
    assert!(!breaker.is_frozen());
    tripper.await.unwrap().unwrap_err();
}

#[tokio::test(start_paused = true)]
async fn freeze_for_sets_the_freeze_length() {
    let breaker = CircuitBreaker::builder()
        .freeze_for(Duration::from_millis(250))
        .build();
    let start = Instant::now();
    let runs = AtomicU32::new(0);
    let result = breaker
        .execute(|| {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            async move { if run == 0 { Err("x") } else { Ok(()) } }
        })
        .await;
    assert_eq!(result, Ok(()));
    assert_eq!(start.elapsed(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn the_breaker_freezes_again_after_a_freeze_has_ended() {
    let freezes = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&freezes);
    let breaker = CircuitBreaker::builder()
        .freeze_with(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(FIVE)
        })
        .build();
    for _ in 0..3 {
        let _ = breaker.execute(|| async { Err::<(), _>("x") }).await;
    }
    assert_eq!(freezes.load(Ordering::SeqCst), 3);
}
