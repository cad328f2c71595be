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
