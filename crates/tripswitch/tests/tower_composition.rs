//! The guide's composition of the breaker with tower's timeout and retry
//! layers: the timeout inside the breaker (so a hung call is a failure it
//! counts), the retry outside it, retrying failures but never a rejection
//! (so retries stop at the open breaker instead of hammering the service);
//! and what the other orders do, as the guide says: a timeout outside the
//! breaker cancels the call, which counts as nothing, and a retry inside it
//! makes one outcome of all its attempts. Paused tokio time.
#![cfg(all(feature = "tower", not(loom)))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};
use tripswitch::{CircuitBreaker, Rejected, State};

/// Retries a failed call up to `left` more times, never a rejection.
#[derive(Clone)]
struct RetryFailures {
    left: u32,
}

impl<Req: Clone, Res> tower::retry::Policy<Req, Res, BoxError> for RetryFailures {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, BoxError>) -> Option<Self::Future> {
        match result {
            Err(error) if error.downcast_ref::<Rejected>().is_none() && self.left > 0 => {
                self.left -= 1;
                Some(std::future::ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_inside_the_breaker_retry_outside_stops_at_the_open_breaker() {
    let reached = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&reached);
    // A service that hangs.
    let hanging = service_fn(move |_: u32| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<u32, BoxError>(0)
        }
    });
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(3)
        .freeze_for(Duration::from_secs(30))
        .fail_fast()
        .try_build()
        .unwrap();
    let client = ServiceBuilder::new()
        .retry(RetryFailures { left: 10 })
        .layer(tripswitch::tower::CircuitBreakerLayer::new(breaker.clone()))
        .timeout(Duration::from_secs(1))
        .service(hanging);

    let start = tokio::time::Instant::now();
    let error = client.oneshot(1).await.unwrap_err();
    // Three timeouts (failures the breaker counts), then a retry refused by
    // the open breaker, which the policy does not retry.
    assert!(error.downcast_ref::<Rejected>().is_some(), "{error}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        3,
        "10 retries allowed, 3 reached the service"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(breaker.state(), State::Open);
}

/// A service that hangs for an hour, counting the calls that reach it.
fn hanging(
    reached: &Arc<AtomicU32>,
) -> impl tower::Service<u32, Response = u32, Error = BoxError, Future = impl Send> + Clone + Send {
    let counter = Arc::clone(reached);
    service_fn(move |_: u32| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<u32, BoxError>(0)
        }
    })
}

fn three_failures_trip() -> CircuitBreaker {
    CircuitBreaker::builder()
        .consecutive_failures(3)
        .freeze_for(Duration::from_secs(30))
        .fail_fast()
        .try_build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_timeout_outside_the_breaker_cancels_the_call_which_counts_as_nothing() {
    let reached = Arc::new(AtomicU32::new(0));
    let breaker = three_failures_trip();
    let client = ServiceBuilder::new()
        .timeout(Duration::from_secs(1)) // the wrong order
        .layer(tripswitch::tower::CircuitBreakerLayer::new(breaker.clone()))
        .service(hanging(&reached));
    for _ in 0..10 {
        let error = client.clone().oneshot(1).await.unwrap_err();
        assert!(error.is::<tower::timeout::error::Elapsed>(), "{error}");
    }
    // Ten hung calls, and the breaker never saw a failure: it stays closed
    // and keeps sending calls to the hanging service.
    assert_eq!(reached.load(Ordering::SeqCst), 10);
    assert_eq!(breaker.state(), State::Closed);
    let totals = breaker.metrics().totals;
    assert_eq!((totals.failures, totals.cancelled), (0, 10));
}

#[tokio::test(start_paused = true)]
async fn a_retry_inside_the_breaker_makes_one_outcome_of_its_attempts() {
    let reached = Arc::new(AtomicU32::new(0));
    let breaker = three_failures_trip();
    let client = ServiceBuilder::new()
        .layer(tripswitch::tower::CircuitBreakerLayer::new(breaker.clone()))
        .retry(RetryFailures { left: 2 }) // the other order
        .timeout(Duration::from_secs(1))
        .service(hanging(&reached));
    let error = client.clone().oneshot(1).await.unwrap_err();
    assert!(error.is::<tower::timeout::error::Elapsed>(), "{error}");
    // Three attempts reached the service, the breaker counted one failure.
    assert_eq!(reached.load(Ordering::SeqCst), 3);
    assert_eq!(breaker.metrics().totals.failures, 1);
    assert_eq!(breaker.state(), State::Closed);
}

#[cfg(feature = "http")]
#[tokio::test(start_paused = true)]
async fn with_the_http_classifier_a_timeout_inside_the_breaker_is_a_failure() {
    use tripswitch::tower::UpstreamErrors;
    let reached = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&reached);
    let hanging_http = service_fn(move |_: http::Request<()>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, BoxError>(http::Response::new(()))
        }
    });
    let breaker = three_failures_trip();
    let client = ServiceBuilder::new()
        .layer(
            tripswitch::tower::CircuitBreakerLayer::new(breaker.clone()).classify(UpstreamErrors),
        )
        .timeout(Duration::from_secs(2))
        .service(hanging_http);
    for _ in 0..3 {
        let error = client
            .clone()
            .oneshot(http::Request::new(()))
            .await
            .unwrap_err();
        assert!(error.is::<tower::timeout::error::Elapsed>(), "{error}");
    }
    assert_eq!(breaker.state(), State::Open);
    let error = client
        .clone()
        .oneshot(http::Request::new(()))
        .await
        .unwrap_err();
    assert!(error.downcast_ref::<Rejected>().is_some(), "{error}");
    assert_eq!(reached.load(Ordering::SeqCst), 3);
}
