//! A rejection's `retry_after` is exact even when the process-wide anchor
//! its deadline is kept against was taken on another runtime's paused clock,
//! hours ahead of this one (rejections carry deadlines as offsets from that
//! anchor, not the breaker's clock itself). Its own test binary, so that
//! this test is the one that takes the anchor.

use std::time::Duration;

use tripswitch::{CircuitBreaker, Error};

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

async fn rejection_after(breaker: &CircuitBreaker, wait: Duration) -> tripswitch::Rejected {
    let failed = breaker.execute(|| async { Err::<(), _>("down") }).await;
    assert!(matches!(failed, Err(Error::Inner("down"))));
    tokio::time::advance(wait).await;
    match breaker.execute(|| async { Ok::<(), &str>(()) }).await {
        Err(Error::Rejected(rejected)) => rejected,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn retry_after_is_exact_across_runtimes_with_paused_clocks() {
    let fail_fast = || {
        CircuitBreaker::builder()
            .freeze_for(Duration::from_millis(1500))
            .fail_fast()
            .build()
    };
    // The first breaker of the process takes the anchor, on a clock three
    // hours ahead of the next runtime's.
    paused_runtime().block_on(async {
        tokio::time::advance(Duration::from_secs(3 * 3600)).await;
        let breaker = fail_fast();
        let rejected = rejection_after(&breaker, Duration::from_millis(250)).await;
        assert_eq!(rejected.retry_after(), Some(Duration::from_millis(1250)));
    });
    paused_runtime().block_on(async {
        let breaker = fail_fast();
        let rejected = rejection_after(&breaker, Duration::from_millis(500)).await;
        assert_eq!(rejected.retry_after(), Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(rejected.retry_after(), Some(Duration::from_millis(600)));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(rejected.retry_after(), Some(Duration::ZERO));
        assert_eq!(
            rejected.to_string(),
            "circuit breaker rejected the call: it is open; calls are let through again in 0ns"
        );
    });
}
