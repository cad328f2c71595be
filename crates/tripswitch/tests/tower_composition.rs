//! The guide's composition of the breaker with tower's timeout and retry
//! layers: the timeout inside the breaker (so a hung call is a failure it
//! counts), the retry outside it, retrying failures but never a rejection
//! (so retries stop at the open breaker instead of hammering the service).
//! Paused tokio time.
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
