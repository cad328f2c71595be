//! The tower layer: admission in `poll_ready`, waiting without polling,
//! fail-fast rejections as boxed errors, classification, per-clone permits.
#![cfg(all(feature = "tower", not(loom)))]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::noop_waker;
use tower::{Layer, Service, ServiceExt, service_fn};
use tripswitch::tower::{BoxError, CircuitBreakerLayer};
use tripswitch::{CircuitBreaker, HalfOpen, Outcome, RejectReason, Rejected, State};

/// A service that fails while its flag is set.
#[derive(Debug, Clone)]
struct Flaky(Arc<AtomicU32>);

impl Service<u32> for Flaky {
    type Response = u32;
    type Error = String;
    type Future = std::future::Ready<Result<u32, String>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), String>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, n: u32) -> Self::Future {
        let failing = self.0.load(Ordering::SeqCst) != 0;
        std::future::ready(if failing {
            Err(format!("failed {n}"))
        } else {
            Ok(n)
        })
    }
}

fn flaky(failing: Arc<AtomicU32>) -> Flaky {
    Flaky(failing)
}

#[tokio::test(start_paused = true)]
async fn fail_fast_rejections_are_downcastable_errors() {
    let failing = Arc::new(AtomicU32::new(1));
    let breaker = CircuitBreaker::builder()
        .name("backend")
        .freeze_for(Duration::from_secs(1))
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .try_build()
        .unwrap();
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(flaky(failing.clone()));
    let error = service.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(error.to_string(), "failed 1");
    assert_eq!(breaker.state(), State::Open);

    let rejected: BoxError = service.ready().await.unwrap_err();
    let rejected = rejected.downcast_ref::<Rejected>().expect("a Rejected");
    assert_eq!(rejected.reason(), RejectReason::Open);
    assert_eq!(rejected.name(), Some("backend"));

    failing.store(0, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(service.ready().await.unwrap().call(2).await.unwrap(), 2);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn in_wait_mode_poll_ready_is_pending_until_the_breaker_lets_calls_through() {
    let polled_ready = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&polled_ready);
    let inner = tower::service_fn(|n: u32| async move { Ok::<_, Infallible>(n) });
    let inner = tower::util::MapRequestLayer::new(move |n: u32| {
        counter.fetch_add(1, Ordering::SeqCst);
        n
    })
    .layer(inner);
    let breaker = CircuitBreaker::builder()
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(2))
        .try_build()
        .unwrap();
    breaker.force_open();
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(inner);

    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(service.poll_ready(&mut cx).is_pending());
    assert!(service.poll_ready(&mut cx).is_pending());
    assert_eq!(
        breaker.metrics().waiting,
        1,
        "one queue entry, however often polled"
    );

    let release = {
        let breaker = breaker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            breaker.release();
        })
    };
    let start = tokio::time::Instant::now();
    assert_eq!(service.ready().await.unwrap().call(7).await.unwrap(), 7);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(polled_ready.load(Ordering::SeqCst), 1);
    release.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_classifier_decides_which_responses_fail() {
    let breaker = CircuitBreaker::builder().fail_fast().build();
    let layer =
        CircuitBreakerLayer::new(breaker.clone()).classify(|r: &Result<u16, Infallible>| match r {
            Ok(status) if *status >= 500 => Outcome::Failure,
            _ => Outcome::Success,
        });
    let mut service = layer.layer(service_fn(|status: u16| async move {
        Ok::<_, Infallible>(status)
    }));
    assert_eq!(service.ready().await.unwrap().call(200).await.unwrap(), 200);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(service.ready().await.unwrap().call(503).await.unwrap(), 503);
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_breaker_and_a_dropped_clone_frees_its_probe_slot() {
    let breaker = CircuitBreaker::builder()
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(1))
        .fail_fast()
        .try_build()
        .unwrap();
    let failing = Arc::new(AtomicU32::new(1));
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(flaky(failing.clone()));
    let mut first = service.clone();
    first.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(
        breaker.state(),
        State::Open,
        "the clone tripped the shared breaker"
    );

    tokio::time::advance(Duration::from_secs(1)).await;
    let mut holder = service.clone();
    let waker = noop_waker();
    assert!(matches!(
        holder.poll_ready(&mut Context::from_waker(&waker)),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(breaker.metrics().probes_in_flight, 1);
    let mut other = service.clone();
    let rejected = other.ready().await.unwrap_err();
    assert!(rejected.downcast_ref::<Rejected>().is_some());

    drop(holder); // took the slot in poll_ready, never called
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    failing.store(0, Ordering::SeqCst);
    assert_eq!(other.ready().await.unwrap().call(3).await.unwrap(), 3);
    assert_eq!(breaker.state(), State::Closed);
}
