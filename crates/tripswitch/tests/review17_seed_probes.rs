//! Review 17: the seed's wait mode (retry after the freeze, seed accounting)
//! combined with the half-open window's budget and rate judge.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tripswitch::{CircuitBreaker, HalfOpen, State};

/// One call fails, trips the breaker, waits out the freeze and runs again
/// (the seed's retry), succeeding. The next call must not wait for the
/// half-open bound: the retry either closed the breaker or gave its place
/// back.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn seed_retry_with_budget_does_not_strand_half_open() {
    for half_open in [
        HalfOpen::probes(1).budget(1),
        HalfOpen::probes(1),
        HalfOpen::judged_by_rate(1, 0.5),
        HalfOpen::judged_by_rate(2, 0.5),
    ] {
        let b = CircuitBreaker::builder()
            .freeze_for(Duration::from_secs(5))
            .half_open(half_open)
            .build();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let start = tokio::time::Instant::now();
        let first = b
            .execute(|| {
                let r = r.clone();
                async move {
                    if r.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err("down")
                    } else {
                        Ok(1)
                    }
                }
            })
            .await;
        assert_eq!(first.unwrap(), 1, "{half_open:?}: the retry's result");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        let before = tokio::time::Instant::now();
        let second = tokio::time::timeout(
            Duration::from_secs(60),
            b.execute(|| async { Ok::<_, &str>(2) }),
        )
        .await
        .expect("not stuck");
        assert_eq!(second.unwrap(), 2);
        assert!(
            before.elapsed() < Duration::from_secs(1),
            "{half_open:?}: the next call waited {:?} (state {:?}, probes in flight {})",
            before.elapsed(),
            b.state(),
            b.metrics().probes_in_flight
        );
    }
}

/// The seed's retry fails again: the breaker must reopen (or at least not
/// hold the half-open state with a spent budget and no verdict).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn seed_retry_failing_with_budget() {
    for half_open in [
        HalfOpen::probes(1).budget(1),
        HalfOpen::judged_by_rate(1, 0.5),
    ] {
        let b = CircuitBreaker::builder()
            .freeze_for(Duration::from_secs(5))
            .half_open(half_open)
            .build();
        let first = b.execute(|| async { Err::<(), _>("down") }).await;
        assert!(first.is_err());
        let m = b.metrics();
        assert_eq!(m.probes_in_flight, 0, "{half_open:?}: {m:?}");
        // A healthy call now: let through within one freeze at most.
        let before = tokio::time::Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(120),
            b.execute(|| async { Ok::<_, &str>(()) }),
        )
        .await
        .expect("not stuck");
        assert!(r.is_ok());
        assert!(
            before.elapsed() <= Duration::from_secs(5),
            "{half_open:?}: waited {:?}",
            before.elapsed()
        );
        assert_eq!(b.state(), State::Closed);
    }
}
