//! The HTTP-client preset (`tripswitch::http::client_preset`): fail fast,
//! 5 consecutive failures, open for the upstream's `Retry-After` (1 to 60 s)
//! or 5 s doubling up to 60 s, one probe. Paused tokio time.
#![cfg(all(feature = "http", not(loom)))]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tower::{Layer, Service, ServiceExt, service_fn};
use tripswitch::tower::{CircuitBreakerLayer, UpstreamErrors};
use tripswitch::{CircuitBreaker, RejectReason, Rejected, State};

/// A service answering 503 with `Retry-After: hint` (none when `u64::MAX`).
fn upstream(
    hint: Arc<AtomicU64>,
) -> impl Service<(), Response = http::Response<()>, Error = Infallible, Future: Send> + Clone {
    service_fn(move |()| {
        let hint = hint.load(Ordering::SeqCst);
        async move {
            let mut response = http::Response::builder().status(503);
            if hint != u64::MAX {
                response = response.header("retry-after", hint.to_string());
            }
            Ok::<_, Infallible>(response.body(()).unwrap())
        }
    })
}

#[tokio::test(start_paused = true)]
async fn five_failures_trip_then_rejections_are_immediate() {
    let breaker = tripswitch::http::client_preset().try_build().unwrap();
    let hint = Arc::new(AtomicU64::new(u64::MAX));
    let mut service = CircuitBreakerLayer::new(breaker.clone())
        .classify(UpstreamErrors)
        .layer(upstream(hint));
    for _ in 0..4 {
        service.ready().await.unwrap().call(()).await.unwrap();
        assert_eq!(breaker.state(), State::Closed);
    }
    service.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(breaker.state(), State::Open);
    let start = tokio::time::Instant::now();
    let error = service.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "no wait: fail fast");
    assert_eq!(
        error.downcast_ref::<Rejected>().unwrap().reason(),
        RejectReason::Open
    );
}

fn tripping_breaker() -> CircuitBreaker {
    tripswitch::http::client_preset()
        .consecutive_failures(1)
        .try_build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn without_retry_after_the_open_period_doubles_from_5s_to_60s() {
    let breaker = tripping_breaker();
    let mut service = CircuitBreakerLayer::new(breaker.clone())
        .classify(UpstreamErrors)
        .layer(upstream(Arc::new(AtomicU64::new(u64::MAX))));
    let mut periods = Vec::new();
    for _ in 0..6 {
        service.ready().await.unwrap().call(()).await.unwrap(); // trip, or a failed probe
        let period = breaker.metrics().retry_after.unwrap();
        periods.push(period.as_secs());
        tokio::time::advance(period).await;
    }
    assert_eq!(periods, [5, 10, 20, 40, 60, 60]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_followed_between_1s_and_60s() {
    for (hint, period) in [(0, 1), (7, 7), (60, 60), (3600, 60)] {
        let breaker = tripping_breaker();
        let mut service = CircuitBreakerLayer::new(breaker.clone())
            .classify(UpstreamErrors)
            .layer(upstream(Arc::new(AtomicU64::new(hint))));
        service.ready().await.unwrap().call(()).await.unwrap();
        assert_eq!(
            breaker.metrics().retry_after,
            Some(Duration::from_secs(period)),
            "Retry-After: {hint}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn after_the_open_period_one_probe_at_a_time_with_10s_to_finish() {
    let breaker = tripping_breaker();
    let mut service = CircuitBreakerLayer::new(breaker.clone())
        .classify(UpstreamErrors)
        .layer(upstream(Arc::new(AtomicU64::new(u64::MAX))));
    service.ready().await.unwrap().call(()).await.unwrap(); // trips: open 5 s
    tokio::time::advance(Duration::from_secs(5)).await;
    let probe = breaker.try_acquire().expect("the probe");
    assert_eq!(breaker.state(), State::HalfOpen);
    let second = breaker.try_acquire().unwrap_err();
    assert_eq!(second.reason(), RejectReason::HalfOpenFull);
    // The probe never reports: after 10 s the half-open state gives up on it.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_ne!(breaker.state(), State::HalfOpen, "{:?}", breaker.metrics());
    drop(probe);
}

#[test]
fn retry_after_is_read_in_seconds_only() {
    let headers = |value: &str| {
        let mut headers = http::HeaderMap::new();
        headers.insert("retry-after", value.parse().unwrap());
        headers
    };
    assert_eq!(
        tripswitch::http::retry_after(&headers("120")),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        tripswitch::http::retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
        None
    );
    assert_eq!(tripswitch::http::retry_after(&headers("soon")), None);
    assert_eq!(tripswitch::http::retry_after(&http::HeaderMap::new()), None);
}
