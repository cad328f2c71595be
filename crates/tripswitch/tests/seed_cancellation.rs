//! Dropping `execute` futures at any await point (point 8 of the core issue).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::noop_waker;
use tokio::time::Instant;
use tripswitch::CircuitBreaker;

fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let waker = noop_waker();
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}
use std::pin::Pin;

#[tokio::test(start_paused = true)]
async fn dropping_the_call_that_drives_a_freeze_still_releases_the_others() {
    // A custom freeze future must be polled by somebody: the failing call
    // starts it, and when that call is dropped the waiters take over.
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .freeze_with(|| tokio::time::sleep(Duration::from_secs(3)))
            .build(),
    );
    let start = Instant::now();
    let mut tripper = Box::pin(breaker.execute(|| async { Err::<(), _>("boom") }));
    assert!(poll_once(&mut tripper).is_pending());
    assert!(breaker.is_frozen());

    let mut waiters = Vec::new();
    for i in 0..5 {
        let breaker = Arc::clone(&breaker);
        waiters.push(tokio::spawn(async move {
            let v = breaker.execute(|| async move { Ok::<_, ()>(i) }).await;
            (v, start.elapsed())
        }));
    }
    tokio::task::yield_now().await;
    drop(tripper);
    for (i, waiter) in waiters.into_iter().enumerate() {
        assert_eq!(waiter.await.unwrap(), (Ok(i), Duration::from_secs(3)));
    }
    assert!(!breaker.is_frozen());
}

#[tokio::test(start_paused = true)]
async fn dropping_waiters_leaves_the_rest_in_place() {
    let breaker = Arc::new(CircuitBreaker::new());
    let tripper = {
        let breaker = Arc::clone(&breaker);
        tokio::spawn(async move { breaker.execute(|| async { Err::<(), _>("x") }).await })
    };
    tokio::task::yield_now().await;
    let start = Instant::now();
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..10 {
        let breaker = Arc::clone(&breaker);
        let task =
            tokio::spawn(async move { breaker.execute(|| async move { Ok::<_, ()>(i) }).await });
        if i % 2 == 0 {
            dropped.push(task)
        } else {
            kept.push((i, task))
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for task in &dropped {
        task.abort();
    }
    for (i, task) in kept {
        assert_eq!(task.await.unwrap(), Ok(i));
    }
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(breaker.metrics().waiting, 0, "nobody is left in the queue");
    tripper.await.unwrap().unwrap_err();
}

#[tokio::test(start_paused = true)]
async fn dropping_a_call_while_its_operation_runs_records_nothing() {
    let breaker = CircuitBreaker::new();
    let slow = breaker.execute(|| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Err::<(), _>("never reached")
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(1), slow)
            .await
            .is_err()
    );
    assert!(!breaker.is_frozen());
    let metrics = breaker.metrics();
    assert_eq!(metrics.totals.failures, 0);
    assert_eq!(metrics.totals.cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_retry_leaves_the_breaker_consistent() {
    let breaker = CircuitBreaker::builder()
        .freeze_for(Duration::from_secs(1))
        .build();
    let runs = AtomicU32::new(0);
    let call = breaker.execute(|| {
        let run = runs.fetch_add(1, Ordering::SeqCst);
        async move {
            if run == 0 {
                Err("first")
            } else {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }
        }
    });
    // Cancel during the retry's operation.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), call)
            .await
            .is_err()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(!breaker.is_frozen());
    assert_eq!(breaker.execute(|| async { Ok::<_, ()>(3) }).await, Ok(3));
}

#[tokio::test(start_paused = true)]
async fn cancelling_at_every_poll_point_never_wedges_the_breaker() {
    // Drop a failing call after 0, 1, 2, ... polls; afterwards a fresh call
    // must always get through within one freeze.
    for polls in 0..8 {
        let breaker = CircuitBreaker::builder()
            .freeze_with(|| tokio::time::sleep(Duration::from_secs(1)))
            .build();
        let mut call = Box::pin(breaker.execute(|| async {
            tokio::task::yield_now().await;
            Err::<(), _>("x")
        }));
        for _ in 0..polls {
            if poll_once(&mut call).is_ready() {
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(call);
        let start = Instant::now();
        let value = tokio::time::timeout(
            Duration::from_secs(30),
            breaker.execute(|| async { Ok::<_, ()>(1) }),
        )
        .await
        .expect("the breaker recovered");
        assert_eq!(value, Ok(1));
        assert!(
            start.elapsed() <= Duration::from_secs(1),
            "after {polls} polls"
        );
        assert_eq!(breaker.metrics().waiting, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_the_waiter_woken_to_drive_a_new_freeze_wakes_the_next() {
    use tripswitch::HalfOpen;
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .half_open(HalfOpen::probes(1))
            .freeze_for(Duration::from_secs(1))
            .try_build()
            .unwrap(),
    );
    breaker.acquire().await.unwrap().failure(&"trip");
    tokio::time::advance(Duration::from_secs(1)).await;
    let probe = breaker.try_acquire_owned().unwrap();
    let spawn_waiter = |breaker: Arc<CircuitBreaker>| {
        tokio::spawn(async move { breaker.execute(|| async { Ok::<_, ()>(1) }).await })
    };
    let first = spawn_waiter(Arc::clone(&breaker));
    tokio::task::yield_now().await;
    let second = spawn_waiter(Arc::clone(&breaker));
    tokio::task::yield_now().await;
    assert_eq!(breaker.metrics().waiting, 2);
    // The probe fails: the breaker opens again and wakes the first waiter to
    // drive the new freeze; that waiter is dropped before it runs.
    probe.failure(&"still down");
    first.abort();
    let result = tokio::time::timeout(Duration::from_secs(30), second)
        .await
        .expect("the second waiter was not left hanging");
    assert_eq!(result.unwrap(), Ok(1));
}
