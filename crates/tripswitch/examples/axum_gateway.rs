//! The recommended HTTP stack: an axum gateway in front of two upstream
//! services, calling them through reqwest with a breaker per upstream host.
//!
//! - Per-host breakers (`CircuitBreakerMiddleware::per_host` over a
//!   `Registry`), each on the HTTP-client preset: fail fast, trip after 5
//!   consecutive failures (5xx, 429, 408, transport errors), stay open as
//!   long as the upstream's `Retry-After` says, one probe at a time.
//! - A refused call is answered `503 Service Unavailable` with `Retry-After`
//!   (`Rejected` is an axum `IntoResponse`); the upstream is not called.
//! - `/metrics`: the breakers' Prometheus metrics; `/health`: each breaker's
//!   state (`Registry::snapshot`).
//! - Logs through `tracing` (state changes, rejections, the first use of a
//!   breaker that would wait without bound).
//!
//! Run it, then call it while the `orders` upstream goes down 5 s after the
//! start and comes back at 20 s:
//!
//! ```sh
//! cargo run --example axum_gateway --features axum,reqwest,metrics
//! curl -i http://127.0.0.1:3000/orders/1   # 200, then 503s, then 503 + Retry-After from the gateway
//! curl -i http://127.0.0.1:3000/stock/1    # 200 throughout: its own breaker
//! curl http://127.0.0.1:3000/health
//! curl http://127.0.0.1:3000/metrics
//! ```
//!
//! `tests/axum_gateway.rs` runs this gateway over real HTTP.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tripswitch::reqwest::CircuitBreakerMiddleware;
use tripswitch::reqwest::reqwest_middleware::{ClientBuilder, ClientWithMiddleware, reqwest};
use tripswitch::{CircuitBreaker, Registry};

/// Where the gateway sends each route.
#[derive(Debug, Clone)]
pub(crate) struct Upstreams {
    /// Base URL of the orders service, e.g. `http://127.0.0.1:3001`.
    pub(crate) orders: String,
    /// Base URL of the stock service.
    pub(crate) stock: String,
}

#[derive(Clone)]
struct Gateway {
    client: ClientWithMiddleware,
    upstreams: Upstreams,
    breakers: Registry<String>,
    metrics: PrometheusHandle,
}

/// One breaker per upstream `host:port`, made on first use, on the
/// HTTP-client preset and exporting its metrics; the registry names each
/// by its key, so its series are labelled `breaker="host:port"`.
pub(crate) fn breakers() -> Registry<String> {
    Registry::new(64, |_: &String| -> CircuitBreaker {
        tripswitch::http::client_preset()
            .export_metrics()
            .try_build()
            .expect("the preset's settings are valid")
    })
}

/// The gateway's routes, calling `upstreams` through `breakers`. `metrics`
/// renders the process's Prometheus recorder (installed by the caller, once
/// per process).
pub(crate) fn gateway(
    upstreams: Upstreams,
    breakers: Registry<String>,
    metrics: PrometheusHandle,
) -> Router {
    let client = ClientBuilder::new(
        reqwest::Client::builder()
            .timeout(Duration::from_secs(2)) // a hanging upstream is a failure
            .build()
            .expect("a client without TLS settings builds"),
    )
    .with(CircuitBreakerMiddleware::per_host(breakers.clone()))
    .build();
    let state = Gateway {
        client,
        upstreams,
        breakers,
        metrics,
    };
    Router::new()
        .route("/orders/{id}", get(orders))
        .route("/stock/{id}", get(stock))
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

async fn orders(State(gateway): State<Gateway>, Path(id): Path<u32>) -> Response {
    let url = format!("{}/orders/{id}", gateway.upstreams.orders);
    forward(&gateway.client, &url).await
}

async fn stock(State(gateway): State<Gateway>, Path(id): Path<u32>) -> Response {
    let url = format!("{}/stock/{id}", gateway.upstreams.stock);
    forward(&gateway.client, &url).await
}

/// Calls the upstream through the breaker: its answer as it is, `503` with
/// `Retry-After` when the breaker refused, `502` when the upstream could not
/// be reached.
async fn forward(client: &ClientWithMiddleware, url: &str) -> Response {
    match client.get(url).send().await {
        Ok(response) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = response.text().await.unwrap_or_default();
            (status, body).into_response()
        }
        Err(error) => match tripswitch::reqwest::rejection(&error) {
            Some(rejected) => rejected.clone().into_response(),
            None => (
                StatusCode::BAD_GATEWAY,
                format!("upstream unreachable: {error}\n"),
            )
                .into_response(),
        },
    }
}

/// One line per upstream breaker: `host:port state failure-rate`.
async fn health(State(gateway): State<Gateway>) -> String {
    let mut breakers = gateway.breakers.snapshot();
    breakers.sort_by(|a, b| a.key.cmp(&b.key));
    breakers
        .iter()
        .map(|b| {
            format!(
                "{} {:?} consecutive_failures={:?}\n",
                b.key, b.metrics.state, b.metrics.consecutive_failures
            )
        })
        .collect()
}

async fn render_metrics(State(gateway): State<Gateway>) -> String {
    // Rates are read when scraped; counters and states are pushed per event.
    for breaker in gateway.breakers.snapshot() {
        tripswitch::record_rates(&breaker.key, &breaker.metrics);
    }
    gateway.metrics.render()
}

/// A demo upstream: `/orders/{id}` fails with 503 (`Retry-After: 10`)
/// between `down_from` and `down_until` after `start`; `/stock/{id}` always
/// answers.
fn demo_upstream(start: Instant, down_from: Duration, down_until: Duration) -> Router {
    Router::new()
        .route(
            "/orders/{id}",
            get(move |Path(id): Path<u32>| async move {
                let elapsed = start.elapsed();
                if elapsed >= down_from && elapsed < down_until {
                    let headers = [("retry-after", "10")];
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        headers,
                        "orders: overloaded\n",
                    )
                        .into_response()
                } else {
                    format!("order {id}\n").into_response()
                }
            }),
        )
        .route(
            "/stock/{id}",
            get(|Path(id): Path<u32>| async move { format!("stock of {id}: 7\n") }),
        )
}

async fn serve(router: Router, address: &str) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "server stopped");
        }
    });
    Ok(format!("http://{bound}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;

    let start = Instant::now();
    let upstream = demo_upstream(start, Duration::from_secs(5), Duration::from_secs(20));
    let orders = serve(upstream.clone(), "127.0.0.1:0").await?;
    let stock = serve(upstream, "127.0.0.1:0").await?;
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!(
        "gateway on http://{}  (orders upstream {orders}, stock upstream {stock})",
        listener.local_addr()?
    );
    println!(
        "the orders upstream answers 503 from 5 s to 20 s after the start; try /orders/1, /stock/1, /health, /metrics"
    );
    let app = gateway(Upstreams { orders, stock }, breakers(), metrics);
    axum::serve(listener, app).await?;
    Ok(())
}
