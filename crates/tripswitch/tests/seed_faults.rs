//! Panics in the operation and in the freeze function (points 6 and 7 of the
//! core issue): the seed stays frozen forever when its freeze function
//! raises; this breaker does not.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;
use tripswitch::CircuitBreaker;

#[tokio::test(start_paused = true)]
async fn a_freeze_function_that_panics_ends_the_freeze() {
    let breaker = CircuitBreaker::builder()
        .freeze_with(|| -> std::future::Ready<()> { panic!("freeze function failed") })
        .build();
    let start = Instant::now();
    let runs = AtomicU32::new(0);
    let result = breaker
        .execute(|| {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            async move { if run == 0 { Err("boom") } else { Ok(run) } }
        })
        .await;
    assert_eq!(result, Ok(1), "the call was retried and did not hang");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(!breaker.is_frozen());
    // It keeps working.
    assert_eq!(breaker.execute(|| async { Ok::<_, ()>(5) }).await, Ok(5));
}

#[tokio::test(start_paused = true)]
async fn a_freeze_future_that_panics_midway_ends_the_freeze_for_every_waiter() {
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .freeze_with(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                panic!("freeze future failed");
            })
            .build(),
    );
    let start = Instant::now();
    let tripper = {
        let breaker = Arc::clone(&breaker);
        tokio::spawn(async move { breaker.execute(|| async { Err::<(), _>("boom") }).await })
    };
    tokio::task::yield_now().await;
    assert!(breaker.is_frozen());
    let mut waiters = Vec::new();
    for i in 0..10 {
        let breaker = Arc::clone(&breaker);
        waiters.push(tokio::spawn(async move {
            breaker.execute(|| async move { Ok::<_, ()>(i) }).await
        }));
    }
    for (i, waiter) in waiters.into_iter().enumerate() {
        assert_eq!(waiter.await.unwrap(), Ok(i));
    }
    assert!(tripper.await.unwrap().is_err());
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(!breaker.is_frozen());
    // The next failure freezes again (and panics again): still no hang.
    assert!(
        breaker
            .execute(|| async { Err::<(), _>("again") })
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_operation_reaches_its_caller_and_does_not_wedge_the_breaker() {
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .freeze_for(Duration::from_secs(1))
            .build(),
    );
    let panicked = AssertUnwindSafe(breaker.execute(|| async {
        if true {
            panic!("operation exploded");
        }
        Ok::<(), ()>(())
    }))
    .catch_unwind()
    .await;
    let payload = panicked.expect_err("the panic reached the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"operation exploded"));

    // The panic counted as a failure: the breaker froze, and thaws on time.
    assert!(breaker.is_frozen());
    let start = Instant::now();
    assert_eq!(breaker.execute(|| async { Ok::<_, ()>(1) }).await, Ok(1));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(breaker.metrics().totals.failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_operation_in_a_spawned_task_is_a_join_error_and_others_proceed() {
    let breaker = Arc::new(CircuitBreaker::new());
    let crashed = {
        let breaker = Arc::clone(&breaker);
        tokio::spawn(async move {
            breaker
                .execute(|| async { panic!("boom") as Result<(), ()> })
                .await
        })
    };
    assert!(crashed.await.unwrap_err().is_panic());
    let start = Instant::now();
    assert_eq!(breaker.execute(|| async { Ok::<_, ()>(2) }).await, Ok(2));
    assert!(start.elapsed() <= Duration::from_secs(5));
    assert!(!breaker.is_frozen());
}

#[tokio::test(start_paused = true)]
async fn a_panicking_on_error_is_contained() {
    let breaker = CircuitBreaker::builder()
        .on_error(|_| panic!("callback exploded"))
        .freeze_for(Duration::from_millis(10))
        .build();
    let runs = AtomicU32::new(0);
    let result = breaker
        .execute(|| {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            async move { if run == 0 { Err("x") } else { Ok(run) } }
        })
        .await;
    assert_eq!(result, Ok(1));
}
