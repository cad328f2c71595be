//! The end-to-end HTTP cases (issue 18 point 14): one axum route answering
//! `ok` at `/ok`, bare or behind a closed breaker, served on loopback and
//! called by a hyper client over one kept-alive HTTP/1.1 connection. The
//! routes differ by their layer only: same path, same handler, same body.

use std::convert::Infallible;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tripswitch::CircuitBreaker;

/// The cases, in the order they are reported. `identity-layer` is no
/// breaker but the least any route layer costs in axum: `route_layer` with
/// tower's `Identity`, which still wraps the route in a boxed service of
/// its own, cloned per request.
pub const HTTP_CASES: [&str; 4] = ["none", "identity-layer", "tripswitch", "tower-resilience"];

/// A hyper client that keeps one connection per server.
pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

async fn ok() -> &'static str {
    "ok"
}

/// The route of a case: bare (`none`), behind `tripswitch::axum::layer`
/// (closed, fail-fast: the HTTP integration as a user writes it), or behind
/// tower-resilience-circuitbreaker (closed, its error turned into a 503 by
/// axum's `HandleErrorLayer`, as axum requires). Both breakers trip after
/// five consecutive failures and see none.
pub fn router(case: &str) -> Option<Router> {
    let route = match case {
        "none" => get(ok),
        "identity-layer" => get(ok).route_layer(tower::layer::util::Identity::new()),
        "tripswitch" => {
            let breaker = CircuitBreaker::builder()
                .name("bench")
                .consecutive_failures(5)
                .fail_fast()
                .try_build()
                .expect("valid settings");
            get(ok).route_layer(tripswitch::axum::layer(breaker))
        }
        "tower-resilience" => {
            let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
                .consecutive_failures(5)
                .build()
                .expect("valid tower-resilience config");
            get(ok).route_layer((
                axum::error_handling::HandleErrorLayer::new(
                    |_: tower_resilience_circuitbreaker::CircuitBreakerError<Infallible>| async {
                        StatusCode::SERVICE_UNAVAILABLE
                    },
                ),
                layer,
            ))
        }
        _ => return None,
    };
    Some(Router::new().route("/ok", route))
}

/// Serves `router` on a loopback port (a task on the current runtime);
/// the URI of its `/ok`.
pub async fn serve(router: Router) -> hyper::Uri {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}/ok").parse().expect("uri")
}

/// A client keeping one idle connection per server.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build_http()
}

/// Sends `n` requests one after another, reading each body.
pub async fn send(client: &HttpClient, uri: &hyper::Uri, n: u64) {
    for _ in 0..n {
        let request = hyper::Request::get(uri.clone())
            .body(Empty::new())
            .expect("request");
        let response = client.request(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.expect("body");
        std::hint::black_box(body.to_bytes());
    }
}
