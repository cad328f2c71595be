//! The reqwest-middleware integration against a real local server.
#![cfg(all(feature = "reqwest", not(loom)))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use reqwest_middleware::ClientBuilder;
use tripswitch::reqwest::CircuitBreakerMiddleware;
use tripswitch::{CircuitBreaker, Registry, Rejected, State};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_guards_a_reqwest_client_per_host() {
    let hits = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new().route(
        "/",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::SERVICE_UNAVAILABLE, "overloaded") }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let registry = Registry::new(16, |host: &String| {
        CircuitBreaker::builder()
            .name(host.as_str())
            .consecutive_failures(2)
            .freeze_for(Duration::from_secs(60))
            .fail_fast()
            .try_build()
            .unwrap()
    });
    let client = ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(CircuitBreakerMiddleware::per_host(registry.clone()))
        .build();
    let url = format!("http://{address}/");
    for _ in 0..2 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 503);
    }
    let error = client.get(&url).send().await.unwrap_err();
    match error {
        reqwest_middleware::Error::Middleware(error) => {
            assert!(error.downcast_ref::<Rejected>().is_some(), "{error}");
        }
        other => panic!("expected a rejection, got {other}"),
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "the rejected call did not reach the server"
    );
    assert_eq!(registry.get(&address.to_string()).state(), State::Open);
}

/// A local server answering every request with `status` and, if given, a
/// `Retry-After` header; counts the requests that reach it.
async fn serve_status(
    status: u16,
    retry_after: Option<u64>,
) -> (std::net::SocketAddr, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new().route(
        "/",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut response = axum::response::Response::new(axum::body::Body::from("x"));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", seconds.to_string().parse().unwrap());
                }
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, hits)
}

fn one_failure_trips(host: &String) -> CircuitBreaker {
    // `&String`: the registry's factory takes a reference to its key type.
    #![allow(clippy::ptr_arg)]
    tripswitch::http::client_preset()
        .name(host.as_str())
        .consecutive_failures(1)
        .try_build()
        .unwrap()
}

/// 429 and 408 are failures, like 5xx; other 4xx are the caller's and count
/// as successes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_classifier_counts_429_408_and_5xx() {
    for (status, fails) in [
        (429, true),
        (408, true),
        (500, true),
        (404, false),
        (200, false),
    ] {
        let (address, _) = serve_status(status, None).await;
        let registry = Registry::new(4, one_failure_trips);
        let client = ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
            .with(CircuitBreakerMiddleware::per_host(registry.clone()))
            .build();
        client
            .get(format!("http://{address}/"))
            .send()
            .await
            .unwrap();
        let breaker = registry
            .peek(&address.to_string())
            .expect("keyed host:port");
        let expected = if fails { State::Open } else { State::Closed };
        assert_eq!(breaker.state(), expected, "status {status}");
    }
}

/// The upstream's `Retry-After` on a 429 reaches the open period (through
/// the recorded `FailedResponse` and the HTTP-client preset), and the
/// rejection that follows is found with `rejection()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstreams_retry_after_sets_the_open_period() {
    let (address, hits) = serve_status(429, Some(40)).await;
    let registry = Registry::new(4, one_failure_trips);
    let client = ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(CircuitBreakerMiddleware::per_host(registry.clone()))
        .build();
    let url = format!("http://{address}/");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 429);
    let breaker = registry.get(&address.to_string());
    assert_eq!(breaker.state(), State::Open);
    let retry_after = breaker.metrics().retry_after.expect("a known end");
    // 40 s from the trip (the preset's 5 s otherwise); a slow machine only
    // makes it shorter.
    assert!(
        retry_after > Duration::from_secs(30) && retry_after <= Duration::from_secs(40),
        "{retry_after:?}"
    );
    let error = client.get(&url).send().await.unwrap_err();
    let rejected = tripswitch::reqwest::rejection(&error).expect("a rejection");
    assert_eq!(rejected.name(), Some(address.to_string().as_str()));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

/// A custom classifier replaces the default one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_classifier_decides() {
    let (address, _) = serve_status(404, None).await;
    let registry = Registry::new(4, one_failure_trips);
    let client = ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(
            CircuitBreakerMiddleware::per_host(registry.clone()).classify(|result| match result {
                Ok(response) if response.status() == 404 => tripswitch::Outcome::Failure,
                _ => tripswitch::Outcome::Success,
            }),
        )
        .build();
    client
        .get(format!("http://{address}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        registry.peek(&address.to_string()).unwrap().state(),
        State::Open
    );
}

/// The tower layer's `per_host` and the reqwest middleware key a host alike.
#[test]
fn per_host_keys_match_between_tower_and_reqwest() {
    for (url, key) in [
        ("http://a.example/x", "a.example:80"),
        ("https://a.example/x", "a.example:443"),
        ("http://a.example:8080/x", "a.example:8080"),
        ("http://127.0.0.1:9/", "127.0.0.1:9"),
    ] {
        let uri: axum::http::Uri = url.parse().unwrap();
        assert_eq!(
            tripswitch::http::host_key(&uri).as_deref(),
            Some(key),
            "{url}"
        );
    }
}
