//! End to end over HTTP: what a breaker adds to a request served by axum
//! and sent by a hyper client on loopback (issue 18 point 14).
//!
//! One axum server has three routes answering `ok`: a bare one, one behind
//! `tripswitch::axum::layer` (closed, fail-fast: the HTTP integration as a
//! user writes it) and one behind tower-resilience-circuitbreaker (closed,
//! its error turned into a 503 by axum's `HandleErrorLayer`, as axum
//! requires). One client sends requests one after another on one
//! kept-alive connection. Rounds are interleaved (a batch per route in
//! turn, the order rotating) so that a slow spell of the host hits all
//! three alike; the figure is each route's median batch, and the overhead
//! the median of the per-round differences with the bare route.
//!
//! `http_overhead [rounds] [requests-per-batch]` (default 41 rounds of 2,000).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Router;
use axum::ServiceExt as _;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tripswitch::CircuitBreaker;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

async fn ok() -> &'static str {
    "ok"
}

async fn serve<S>(service: S) -> String
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, service.into_make_service()).await;
    });
    format!("http://{address}/")
}

/// Sends `n` requests one after another; the time per request.
async fn batch(client: &HttpClient, uri: &hyper::Uri, n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let request = hyper::Request::get(uri.clone())
            .body(Empty::new())
            .expect("request");
        let response = client.request(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.expect("body");
        std::hint::black_box(body.to_bytes());
    }
    start.elapsed() / n
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(41, |a| a.parse().expect("rounds"));
    let per_batch: u32 = args.next().map_or(2_000, |a| a.parse().expect("requests"));

    // One server, one route per case: the cases differ by their layer only,
    // not by their listener, task or connection.
    let breaker = CircuitBreaker::builder()
        .name("bench")
        .consecutive_failures(5)
        .fail_fast()
        .try_build()
        .expect("valid settings");
    let peer_layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .consecutive_failures(5)
        .build()
        .expect("valid tower-resilience config");
    let app = Router::new()
        .route("/none", get(ok))
        .route(
            "/tripswitch",
            get(ok).route_layer(tripswitch::axum::layer(breaker)),
        )
        .route(
            "/tower-resilience",
            get(ok).route_layer((
                axum::error_handling::HandleErrorLayer::new(
                    |_: tower_resilience_circuitbreaker::CircuitBreakerError<Infallible>| async {
                        StatusCode::SERVICE_UNAVAILABLE
                    },
                ),
                peer_layer,
            )),
        );
    let base = serve(app).await;
    let servers = [
        ("no breaker", format!("{base}none")),
        ("tripswitch", format!("{base}tripswitch")),
        ("tower-resilience", format!("{base}tower-resilience")),
    ];
    // One client, one kept-alive connection, shared by the three routes: a
    // connection's placement on the runtime's threads would otherwise weigh
    // more than any breaker.
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build_http();
    let clients: Vec<(HttpClient, hyper::Uri)> = servers
        .iter()
        .map(|(_, url)| (client.clone(), url.parse().expect("uri")))
        .collect();
    // Warm up: connections, allocator, caches.
    for (client, uri) in &clients {
        batch(client, uri, per_batch).await;
    }
    let mut per_request = vec![Vec::new(); servers.len()];
    let mut overhead = vec![Vec::new(); servers.len()];
    for round in 0..rounds {
        let mut times = Vec::new();
        // Rotate the order each round: no server always goes first.
        for k in 0..clients.len() {
            let i = (k + round) % clients.len();
            let (client, uri) = &clients[i];
            times.push((i, batch(client, uri, per_batch).await.as_nanos() as f64));
        }
        times.sort_by_key(|(i, _)| *i);
        for (i, ns) in &times {
            per_request[*i].push(*ns);
            overhead[*i].push(ns - times[0].1);
        }
    }
    println!(
        "{rounds} interleaved rounds of {per_batch} sequential requests per server (loopback, HTTP/1.1 keep-alive)"
    );
    println!(
        "{:<18} {:>14} {:>22}",
        "server", "µs/request", "overhead vs none, ns"
    );
    for (i, (name, _)) in servers.iter().enumerate() {
        let us = median(&mut per_request[i]) / 1000.0;
        let extra = median(&mut overhead[i]);
        println!("{name:<18} {us:>14.2} {extra:>22.0}");
    }
}
