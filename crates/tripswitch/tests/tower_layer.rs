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

    // Decided in poll_ready, answered by call (tower's load-shed shape):
    // poll_ready does not fail, so a Buffer or a balancer keeps the service.
    let rejected: BoxError = service.ready().await.unwrap().call(9).await.unwrap_err();
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
            breaker.resume();
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
    let rejected = other.ready().await.unwrap().call(2).await.unwrap_err();
    assert!(rejected.downcast_ref::<Rejected>().is_some());

    drop(holder); // took the slot in poll_ready, never called
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    failing.store(0, Ordering::SeqCst);
    assert_eq!(other.ready().await.unwrap().call(3).await.unwrap(), 3);
    assert_eq!(breaker.state(), State::Closed);
}

/// A service that counts the calls that reach it.
#[derive(Debug, Clone, Default)]
struct Counting(Arc<AtomicU32>);

impl Service<u32> for Counting {
    type Response = u32;
    type Error = Infallible;
    type Future = std::future::Ready<Result<u32, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, n: u32) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(n))
    }
}

/// tower's contract: `call` only after `poll_ready` said ready. Breaking it
/// must not run the inner service behind the breaker's back (it used to, and
/// recorded nothing); like tower's own middleware, the service panics.
#[tokio::test(start_paused = true)]
async fn call_without_poll_ready_panics_instead_of_bypassing_the_breaker() {
    let breaker = CircuitBreaker::builder().fail_fast().build();
    breaker.force_open();
    let reached = Counting::default();
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(reached.clone());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(service.call(1));
    }));
    let panic = outcome.expect_err("call without poll_ready must panic");
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(
        message.contains("poll_ready must be called first"),
        "{message}"
    );
    assert_eq!(
        reached.0.load(Ordering::SeqCst),
        0,
        "the open breaker was bypassed"
    );

    // A second call on a clone that is still waiting breaks the contract too.
    let waiting_breaker = CircuitBreaker::builder()
        .freeze_for(Duration::from_secs(1))
        .try_build()
        .unwrap();
    waiting_breaker.force_open();
    let mut waiting = CircuitBreakerLayer::new(waiting_breaker).layer(reached.clone());
    let waker = noop_waker();
    assert!(
        waiting
            .poll_ready(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(waiting.call(2));
    }));
    assert!(outcome.is_err(), "call while still waiting must panic");
    assert_eq!(reached.0.load(Ordering::SeqCst), 0);
}

/// A permit is used once: a second `call` after one `poll_ready` panics
/// rather than running unguarded.
#[tokio::test(start_paused = true)]
async fn one_poll_ready_admits_one_call() {
    let breaker = CircuitBreaker::builder().fail_fast().build();
    let reached = Counting::default();
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(reached.clone());
    assert_eq!(service.ready().await.unwrap().call(1).await.unwrap(), 1);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(service.call(2));
    }));
    assert!(outcome.is_err());
    assert_eq!(reached.0.load(Ordering::SeqCst), 1);
    assert_eq!(breaker.metrics().totals.successes, 1);
}

/// `reject_with` answers a refused call with a response, keeps the inner
/// service's error type, and never runs the inner service.
#[tokio::test(start_paused = true)]
async fn reject_with_answers_a_rejection_with_a_response() {
    let breaker = CircuitBreaker::builder()
        .name("answers")
        .fail_fast()
        .build();
    let reached = Counting::default();
    let layer = CircuitBreakerLayer::new(breaker.clone())
        .reject_with(|rejected: Rejected| 1000 + rejected.name().map_or(0, |n| n.len() as u32));
    let mut service = layer.layer(reached.clone());
    let answer: Result<u32, Infallible> = service.ready().await.unwrap().call(5).await;
    assert_eq!(answer.unwrap(), 5);
    breaker.force_open();
    let answer: Result<u32, Infallible> = service.ready().await.unwrap().call(6).await;
    assert_eq!(
        answer.unwrap(),
        1007,
        "the response built from the rejection"
    );
    assert_eq!(reached.0.load(Ordering::SeqCst), 1);
}

fn assert_send_sync<T: Send + Sync>(_: &T) {}

/// The service is `Send + Sync` (axum's `Router::layer` requires it), also
/// while a clone is queued in wait mode.
#[tokio::test(start_paused = true)]
async fn the_service_is_send_and_sync() {
    let breaker = CircuitBreaker::builder()
        .freeze_for(Duration::from_secs(1))
        .try_build()
        .unwrap();
    let service = CircuitBreakerLayer::new(breaker).layer(Counting::default());
    assert_send_sync(&service);
    assert_send_sync(&service.clone().oneshot(1));
}

/// `UpstreamErrors` counts 5xx, 429 and 408 responses and records them as
/// `FailedResponse`s, whose `Retry-After` the HTTP-client preset follows;
/// `per_host` keys breakers `host:port` (the scheme's default port).
#[cfg(feature = "http")]
#[tokio::test(start_paused = true)]
async fn upstream_errors_carry_retry_after_to_the_open_period_per_host() {
    use tripswitch::Registry;
    use tripswitch::tower::{KeyedCircuitBreakerLayer, UpstreamErrors};

    let registry = Registry::new(8, |host: &String| {
        tripswitch::http::client_preset()
            .name(host.as_str())
            .consecutive_failures(1)
            .try_build()
            .unwrap()
    });
    let upstream = service_fn(|request: http::Request<()>| async move {
        let status: u16 = request.uri().path()[1..].parse().unwrap();
        let response = http::Response::builder()
            .status(status)
            .header("retry-after", "17")
            .body(())
            .unwrap();
        Ok::<_, Infallible>(response)
    });
    let mut service = KeyedCircuitBreakerLayer::per_host(registry.clone())
        .classify(UpstreamErrors)
        .layer(upstream);
    let get = |uri: &str| http::Request::get(uri).body(()).unwrap();

    for (uri, key, fails) in [
        ("http://ok.example/404", "ok.example:80", false),
        ("https://busy.example/429", "busy.example:443", true),
        ("http://slow.example:8080/408", "slow.example:8080", true),
        ("http://down.example/503", "down.example:80", true),
    ] {
        let response = service.ready().await.unwrap().call(get(uri)).await.unwrap();
        assert_eq!(
            response.status().as_u16().to_string(),
            &uri[uri.rfind('/').unwrap() + 1..]
        );
        let breaker = registry.peek(&key.to_string()).expect(key);
        assert_eq!(breaker.state() == State::Open, fails, "{uri}");
        if fails {
            assert_eq!(
                breaker.metrics().retry_after,
                Some(Duration::from_secs(17)),
                "{uri}"
            );
        }
    }
    let rejected = service
        .ready()
        .await
        .unwrap()
        .call(get("http://down.example:80/200"))
        .await
        .unwrap_err();
    assert!(
        rejected.downcast_ref::<Rejected>().is_some(),
        "the same host's breaker"
    );
}
