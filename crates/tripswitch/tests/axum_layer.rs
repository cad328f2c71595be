//! The `axum` feature: a breaker on axum routes and routers (the layer's
//! error type is the route's `Infallible`, so `Router::layer` and
//! `route_layer` accept it), refused calls answered `503` with `Retry-After`
//! in whole seconds rounded up and a body naming the breaker. Driven through
//! the router as a tower service, on tokio's paused clock.
#![cfg(all(feature = "axum", not(loom)))]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tripswitch::tower::{CircuitBreakerLayer, KeyedCircuitBreakerLayer, ServerErrors};
use tripswitch::{CircuitBreaker, HalfOpen, Registry, Rejected, State};

/// A route that answers 500 while `failing` is set, counting the calls that
/// reach it.
fn handler(failing: Arc<AtomicU32>, hits: Arc<AtomicU32>) -> axum::routing::MethodRouter {
    get(move || {
        let (failing, hits) = (Arc::clone(&failing), Arc::clone(&hits));
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            if failing.load(Ordering::SeqCst) != 0 {
                (StatusCode::INTERNAL_SERVER_ERROR, "broken")
            } else {
                (StatusCode::OK, "fine")
            }
        }
    })
}

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::builder()
        .name(name)
        .consecutive_failures(1)
        .freeze_for(Duration::from_millis(1500))
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .try_build()
        .unwrap()
}

async fn get_path(app: &Router, path: &str) -> (StatusCode, Option<String>, String) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        retry_after,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// Compiles only if every layer below is accepted by `Router::layer` and
/// `Router::route_layer` (which need a `Send + Sync` service whose error
/// converts into `Infallible`).
#[test]
fn the_layers_go_on_axum_routes_and_routers() {
    let b = CircuitBreaker::builder().fail_fast().build();
    let _: Router = Router::new()
        .route("/a", get(|| async { "a" }))
        .route_layer(tripswitch::axum::layer(b.clone()))
        .route(
            "/b",
            get(|| async { "b" }).layer(tripswitch::axum::layer(b.clone())),
        )
        .layer(tripswitch::axum::layer(b.clone()))
        // The generic tower layer with one's own response.
        .layer(
            CircuitBreakerLayer::new(b.clone())
                .classify(ServerErrors)
                .reject_with(|rejected: Rejected| {
                    (StatusCode::TOO_MANY_REQUESTS, rejected.to_string()).into_response()
                }),
        )
        // A breaker per path, from a registry.
        .layer(
            KeyedCircuitBreakerLayer::new(
                Registry::new(16, |_: &String| {
                    CircuitBreaker::builder().fail_fast().build()
                }),
                |request: &Request<Body>| request.uri().path().to_owned(),
            )
            .classify(ServerErrors)
            .reject_with(Rejected::into_response),
        );
}

#[tokio::test(start_paused = true)]
async fn a_refused_call_is_a_503_with_retry_after_rounded_up_and_the_breaker_named() {
    let (failing, hits) = (Arc::new(AtomicU32::new(1)), Arc::new(AtomicU32::new(0)));
    let orders = breaker("orders");
    let app = Router::new()
        .route("/orders", handler(failing.clone(), hits.clone()))
        .route_layer(tripswitch::axum::layer(orders.clone()));

    // A 500 is a failure: the breaker opens, and the 500 goes back as it is.
    let (status, retry_after, _) = get_path(&app, "/orders").await;
    assert_eq!(
        (status, retry_after),
        (StatusCode::INTERNAL_SERVER_ERROR, None)
    );
    assert_eq!(orders.state(), State::Open);

    // 1.3 s left: Retry-After is 2 (rounded up, never promising too early).
    tokio::time::advance(Duration::from_millis(200)).await;
    let (status, retry_after, body) = get_path(&app, "/orders").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("2"));
    assert!(body.contains("\"orders\""), "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the handler did not run");

    // Exactly 1 s left: Retry-After is 1, not 2.
    tokio::time::advance(Duration::from_millis(300)).await;
    let (_, retry_after, _) = get_path(&app, "/orders").await;
    assert_eq!(retry_after.as_deref(), Some("1"));

    // The probe succeeds once the backend is back: closed, 200.
    failing.store(0, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(1)).await;
    let (status, _, body) = get_path(&app, "/orders").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "fine"));
    assert_eq!(orders.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn without_a_known_end_there_is_no_retry_after() {
    let hits = Arc::new(AtomicU32::new(0));
    let held = breaker("held");
    held.force_open();
    let app = Router::new()
        .route("/", handler(Arc::new(AtomicU32::new(0)), hits.clone()))
        .route_layer(tripswitch::axum::layer(held.clone()));
    let rejected = held.try_acquire().unwrap_err();
    let (status, retry_after, body) = get_path(&app, "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.is_some(), rejected.retry_after().is_some());
    assert_eq!(body, format!("{rejected}\n"));
    let request = Request::get("/").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

/// Each route has its own breaker: one route's outage does not refuse the
/// other's calls.
#[tokio::test(start_paused = true)]
async fn per_route_breakers_are_independent() {
    let (failing, hits) = (Arc::new(AtomicU32::new(1)), Arc::new(AtomicU32::new(0)));
    let app = Router::new()
        .route(
            "/down",
            handler(failing.clone(), hits.clone()).layer(tripswitch::axum::layer(breaker("down"))),
        )
        .route(
            "/up",
            handler(Arc::new(AtomicU32::new(0)), hits.clone())
                .layer(tripswitch::axum::layer(breaker("up"))),
        );
    assert_eq!(
        get_path(&app, "/down").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        get_path(&app, "/down").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get_path(&app, "/up").await.0, StatusCode::OK);
}

/// `Rejected` is an `IntoResponse`: a handler calling a backend through a
/// breaker returns the rejection as it is.
#[tokio::test(start_paused = true)]
async fn a_handler_returns_the_rejection_itself() {
    let backend = breaker("backend");
    backend.force_open();
    let app = Router::new().route(
        "/",
        get(move || {
            let backend = backend.clone();
            async move {
                match backend
                    .execute(|| async { Ok::<_, Infallible>("answer") })
                    .await
                {
                    Ok(answer) => answer.into_response(),
                    Err(error) => match error.rejected() {
                        Some(rejected) => rejected.clone().into_response(),
                        None => StatusCode::BAD_GATEWAY.into_response(),
                    },
                }
            }
        }),
    );
    let (status, _, body) = get_path(&app, "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("\"backend\""), "{body}");
}
