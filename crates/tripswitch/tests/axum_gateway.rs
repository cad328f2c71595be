//! `examples/axum_gateway.rs` over real HTTP (issue 18 point 13): a flaky
//! upstream on loopback, the example's gateway in front of it, a reqwest
//! client calling the gateway. Real sockets and real time, but no timing
//! assertion: the open period is 30 s (the upstream's `Retry-After`), far
//! longer than the test, and the breaker is closed again by hand.
#![cfg(all(feature = "axum", feature = "reqwest", feature = "metrics", not(loom)))]

#[allow(dead_code)] // its `main` and demo upstream are not used here
#[path = "../examples/axum_gateway.rs"]
mod example;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

struct Upstream {
    url: String,
    failing: Arc<AtomicBool>,
    hits: Arc<AtomicU32>,
}

/// An upstream whose `/orders/{id}` and `/stock/{id}` answer 200, or 503
/// with `Retry-After: 30` while `failing` is set.
async fn upstream() -> Upstream {
    let failing = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicU32::new(0));
    let (f, h) = (Arc::clone(&failing), Arc::clone(&hits));
    let answer = move |Path(id): Path<u32>| {
        let (failing, hits) = (Arc::clone(&f), Arc::clone(&h));
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            if failing.load(Ordering::SeqCst) {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", "30")],
                    "overloaded",
                )
                    .into_response()
            } else {
                format!("item {id}").into_response()
            }
        }
    };
    let app = Router::new()
        .route("/orders/{id}", get(answer.clone()))
        .route("/stock/{id}", get(answer));
    let url = serve(app).await;
    Upstream { url, failing, hits }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: String,
}

async fn call(client: &reqwest_middleware::reqwest::Client, url: String) -> Answer {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body = response.text().await.unwrap();
    Answer {
        status,
        retry_after,
        body,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_guards_each_upstream_answers_503_with_retry_after_and_exports_metrics() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");

    let (orders, stock) = (upstream().await, upstream().await);
    let orders_host = orders.url.trim_start_matches("http://").to_owned();
    let breakers = example::breakers();
    let gateway = serve(example::gateway(
        example::Upstreams {
            orders: orders.url.clone(),
            stock: stock.url.clone(),
        },
        breakers.clone(),
        handle,
    ))
    .await;
    let client = reqwest_middleware::reqwest::Client::new();

    // Healthy: the upstream's answers go through.
    let ok = call(&client, format!("{gateway}/orders/1")).await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "item 1"));

    // The orders upstream fails: its 503s go back as they are until the
    // preset's 5 consecutive failures open that host's breaker.
    orders.failing.store(true, Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(
            call(&client, format!("{gateway}/orders/2")).await.status,
            503
        );
    }
    let hits = orders.hits.load(Ordering::SeqCst);
    assert_eq!(hits, 6);

    // Open: the gateway answers 503 itself, with the upstream's Retry-After
    // as the open period (30 s; a slow machine only makes it shorter), a
    // body naming the breaker, and the upstream is not called.
    for _ in 0..10 {
        let refused = call(&client, format!("{gateway}/orders/3")).await;
        assert_eq!(refused.status, 503);
        let retry_after = refused.retry_after.expect("Retry-After");
        assert!((20..=30).contains(&retry_after), "{retry_after}");
        assert!(
            refused.body.contains(&format!("\"{orders_host}\"")),
            "{}",
            refused.body
        );
    }
    assert_eq!(
        orders.hits.load(Ordering::SeqCst),
        hits,
        "no call reached the upstream"
    );

    // The other upstream has its own breaker.
    let other = call(&client, format!("{gateway}/stock/4")).await;
    assert_eq!((other.status, other.body.as_str()), (200, "item 4"));

    // /health lists both breakers.
    let health = call(&client, format!("{gateway}/health")).await.body;
    assert!(health.contains(&format!("{orders_host} Open")), "{health}");
    let stock_host = stock.url.trim_start_matches("http://");
    assert!(health.contains(&format!("{stock_host} Closed")), "{health}");

    // /metrics: Prometheus text with the orders breaker's counts.
    let scrape = call(&client, format!("{gateway}/metrics")).await.body;
    for expected in [
        format!("tripswitch_calls_total{{breaker=\"{orders_host}\",outcome=\"failure\"}} 5"),
        format!("tripswitch_calls_total{{breaker=\"{orders_host}\",outcome=\"rejected\"}} 10"),
        format!("tripswitch_transitions_total{{breaker=\"{orders_host}\",to=\"open\"}} 1"),
    ] {
        assert!(
            scrape.contains(&expected),
            "{expected} missing from\n{scrape}"
        );
    }

    // Recovered upstream; the breaker is closed by hand (instead of waiting
    // 30 s for the probe): calls go through again.
    orders.failing.store(false, Ordering::SeqCst);
    breakers
        .peek(&orders_host)
        .expect("made on first use")
        .reset();
    let back = call(&client, format!("{gateway}/orders/5")).await;
    assert_eq!((back.status, back.body.as_str()), (200, "item 5"));
}
