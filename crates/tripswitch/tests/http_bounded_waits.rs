//! HTTP integrations never make a request wait without bound (issue 18
//! point 4): a breaker that would (wait mode without `max_wait`, as the seed
//! preset `CircuitBreaker::new()`) fails fast there, with one WARN; a breaker
//! with `max_wait` keeps its bounded wait. Paused tokio time, except the
//! reqwest case, which needs no clock.
#![cfg(all(feature = "axum", feature = "reqwest", not(loom)))]

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use futures::task::noop_waker;
use tower::{Layer, Service, ServiceExt, service_fn};
use tripswitch::tower::{CircuitBreakerLayer, ServerErrors};
use tripswitch::{CircuitBreaker, RejectReason, Rejected, State};

/// Log lines, captured by a subscriber installed for the current thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn warnings_about_unbounded_waits(&self) -> usize {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter(|line| line.contains("WARN") && line.contains("without bound"))
            .count()
    }
}

fn failing() -> impl Service<u32, Response = u32, Error = &'static str, Future: Send> + Clone {
    service_fn(|_: u32| async { Err::<u32, _>("down") })
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_seed_preset_fails_fast_behind_a_bounded_tower_layer_and_warns_once() {
    let (logs, _guard) = Logs::capture();
    let breaker = CircuitBreaker::new(); // wait mode, 5 s freeze, no max_wait
    let mut service = CircuitBreakerLayer::new(breaker.clone())
        .bound_waits()
        .layer(failing());
    service.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);

    // Without bound_waits poll_ready would be pending for 5 s; here it is
    // ready at once and the call is refused.
    let waker = noop_waker();
    for n in 0..3 {
        assert!(matches!(
            service.poll_ready(&mut Context::from_waker(&waker)),
            Poll::Ready(Ok(()))
        ));
        let error = service.call(n).await.unwrap_err();
        assert_eq!(
            error
                .downcast_ref::<Rejected>()
                .expect("a rejection")
                .reason(),
            RejectReason::Open
        );
    }
    assert_eq!(
        logs.warnings_about_unbounded_waits(),
        1,
        "one WARN, not one per call"
    );

    // Nobody waits on the freeze, and it still ends: calls go through again.
    tokio::time::advance(Duration::from_secs(5)).await;
    let ok = CircuitBreakerLayer::new(breaker.clone())
        .bound_waits()
        .layer(service_fn(|n: u32| async move { Ok::<_, Infallible>(n) }))
        .oneshot(7)
        .await
        .unwrap();
    assert_eq!(ok, 7);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_bounded_wait_is_kept() {
    let breaker = CircuitBreaker::builder()
        .freeze_for(Duration::from_secs(60))
        .max_wait(Duration::from_secs(2))
        .build();
    let mut service = CircuitBreakerLayer::new(breaker.clone())
        .bound_waits()
        .layer(failing());
    service.ready().await.unwrap().call(1).await.unwrap_err();
    let start = tokio::time::Instant::now();
    let error = service.ready().await.unwrap().call(2).await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "waited up to max_wait"
    );
    assert_eq!(
        error.downcast_ref::<Rejected>().unwrap().reason(),
        RejectReason::WaitTimedOut
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_axum_layer_answers_503_at_once_with_the_seed_preset() {
    let (logs, _guard) = Logs::capture();
    let breaker = CircuitBreaker::new();
    let app = Router::new()
        .route("/", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route_layer(tripswitch::axum::layer(breaker.clone()));
    let get_root = || {
        app.clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
    };
    assert_eq!(
        get_root().await.unwrap().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let start = tokio::time::Instant::now();
    assert_eq!(
        get_root().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(logs.warnings_about_unbounded_waits(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn the_reqwest_middleware_fails_fast_with_the_seed_preset() {
    let (logs, _guard) = Logs::capture();
    let app = Router::new().route("/", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let breaker = CircuitBreaker::new();
    let client = tripswitch::reqwest::reqwest_middleware::ClientBuilder::new(
        tripswitch::reqwest::reqwest_middleware::reqwest::Client::new(),
    )
    .with(tripswitch::reqwest::CircuitBreakerMiddleware::new(
        breaker.clone(),
    ))
    .build();
    let url = format!("http://{address}/");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 503);
    assert_eq!(breaker.state(), State::Open);
    // Refused without waiting out the 5 s freeze: no timing assert needed,
    // a waiting call would have been let through (and answered 503) instead.
    let error = client.get(&url).send().await.unwrap_err();
    let rejected = tripswitch::reqwest::rejection(&error).expect("refused, not waited");
    assert_eq!(rejected.reason(), RejectReason::Open);
    assert_eq!(logs.warnings_about_unbounded_waits(), 1);
}

/// The generic tower layer without `bound_waits` keeps the breaker's own
/// mode (a wait, here).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn without_bound_waits_the_tower_layer_waits() {
    let breaker = CircuitBreaker::new();
    let mut service = CircuitBreakerLayer::new(breaker.clone())
        .classify(ServerErrors)
        .layer(service_fn(|_: ()| async {
            Ok::<_, Infallible>(http::Response::builder().status(500).body(()).unwrap())
        }));
    service.ready().await.unwrap().call(()).await.unwrap();
    let waker = noop_waker();
    assert!(
        service
            .poll_ready(&mut Context::from_waker(&waker))
            .is_pending()
    );
}
