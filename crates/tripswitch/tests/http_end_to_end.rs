//! The tower layer over real HTTP: an axum server on 127.0.0.1 whose failure
//! mode the test switches (healthy, 503s, hangs, refused connections), and a
//! hyper client going through the breaker. Real sockets and real time (the
//! periods are a few hundred milliseconds).
#![cfg(all(feature = "tower", feature = "http", not(loom)))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tripswitch::tower::{BoxError, CircuitBreakerLayer, KeyedCircuitBreakerLayer, ServerErrors};
use tripswitch::{CircuitBreaker, HalfOpen, Registry, RejectReason, Rejected, State};

const HEALTHY: u8 = 0;
const UNAVAILABLE: u8 = 1;
const HANGING: u8 = 2;

struct Server {
    address: std::net::SocketAddr,
    mode: Arc<AtomicU8>,
    hits: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_server() -> Server {
    let mode = Arc::new(AtomicU8::new(HEALTHY));
    let hits = Arc::new(AtomicU32::new(0));
    let (m, h) = (Arc::clone(&mode), Arc::clone(&hits));
    let app = Router::new().route(
        "/",
        get(move || {
            let (mode, hits) = (Arc::clone(&m), Arc::clone(&h));
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                match mode.load(Ordering::SeqCst) {
                    HEALTHY => (StatusCode::OK, "ok"),
                    UNAVAILABLE => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
                    _ => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        (StatusCode::OK, "late")
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        address,
        mode,
        hits,
        task,
    }
}

type Request = hyper::Request<Empty<Bytes>>;

fn request(server: &Server) -> Request {
    request_to(server.address)
}

fn request_to(address: std::net::SocketAddr) -> Request {
    hyper::Request::get(format!("http://{address}/"))
        .body(Empty::new())
        .unwrap()
}

/// An HTTP client behind the breaker, with a timeout under it (a hanging
/// server becomes a failure).
type Stack = tripswitch::tower::CircuitBreakerService<
    tower::timeout::Timeout<
        Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    >,
    ServerErrors,
>;

fn client(breaker: CircuitBreaker) -> Stack {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker).classify(ServerErrors))
        .timeout(Duration::from_millis(300))
        .service(client)
}

/// Sends one request through the breaker-guarded client: the response's
/// status, or the error (a rejection, a timeout, a refused connection).
async fn send<S>(client: &mut S, request: Request) -> Result<u16, BoxError>
where
    S: Service<Request, Response = hyper::Response<hyper::body::Incoming>, Error = BoxError>,
{
    let response = client.ready().await?.call(request).await?;
    Ok(response.status().as_u16())
}

fn is_rejection(error: &BoxError) -> bool {
    error.downcast_ref::<Rejected>().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_over_real_http_opens_on_a_503_storm_probes_and_closes() {
    let server = start_server().await;
    let breaker = CircuitBreaker::builder()
        .name("http-backend")
        .consecutive_failures(3)
        .freeze_for(Duration::from_millis(300))
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .try_build()
        .unwrap();
    let mut svc = client(breaker.clone());

    // Healthy.
    for _ in 0..5 {
        assert_eq!(send(&mut svc, request(&server)).await.unwrap(), 200);
    }
    assert_eq!(breaker.state(), State::Closed);

    // A 503 storm: three 503s (returned to the caller as responses) open it.
    server.mode.store(UNAVAILABLE, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(send(&mut svc, request(&server)).await.unwrap(), 503);
    }
    assert_eq!(breaker.state(), State::Open);
    let hits_when_open = server.hits.load(Ordering::SeqCst);
    for _ in 0..20 {
        // Ready at once: `call` answers with the rejection.
        let error = send(&mut svc, request(&server))
            .await
            .expect_err("rejected");
        assert!(is_rejection(&error), "{error}");
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        hits_when_open,
        "no request reached the server while open"
    );

    // Still down when the probe goes out: open again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(send(&mut svc, request(&server)).await.unwrap(), 503);
    assert_eq!(breaker.state(), State::Open);

    // Recovered: the next probe closes it.
    server.mode.store(HEALTHY, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(send(&mut svc, request(&server)).await.unwrap(), 200);
    assert_eq!(breaker.state(), State::Closed);

    // Hanging: timeouts are failures.
    server.mode.store(HANGING, Ordering::SeqCst);
    for _ in 0..3 {
        let error = send(&mut svc, request(&server)).await.unwrap_err();
        assert!(!is_rejection(&error));
    }
    assert_eq!(breaker.state(), State::Open);
    server.mode.store(HEALTHY, Ordering::SeqCst);

    // Refused connections: the server is gone.
    tokio::time::sleep(Duration::from_millis(350)).await;
    breaker.reset();
    let address = server.address;
    server.task.abort();
    let _ = server.task.await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A new client: no pooled connection to the dead server.
    let mut fresh = client(breaker.clone());
    for _ in 0..3 {
        let error = send(&mut fresh, request_to(address)).await.unwrap_err();
        assert!(!is_rejection(&error), "{error}");
    }
    assert_eq!(breaker.state(), State::Open);
    let error = send(&mut fresh, request_to(address))
        .await
        .expect_err("rejected");
    assert_eq!(
        error.downcast_ref::<Rejected>().unwrap().reason(),
        RejectReason::Open
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_wait_mode_callers_wait_out_the_storm_over_real_http() {
    let server = start_server().await;
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(2)
        .freeze_for(Duration::from_millis(300))
        .half_open(HalfOpen::probes(1))
        .try_build()
        .unwrap();
    let client = client(breaker.clone());

    server.mode.store(UNAVAILABLE, Ordering::SeqCst);
    for _ in 0..2 {
        let mut client = client.clone();
        assert_eq!(send(&mut client, request(&server)).await.unwrap(), 503);
    }
    assert_eq!(breaker.state(), State::Open);
    // The service recovers while the callers wait.
    server.mode.store(HEALTHY, Ordering::SeqCst);
    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..5 {
        let mut client = client.clone();
        let uri = request(&server);
        callers.push(tokio::spawn(async move {
            let response = client.ready().await.unwrap().call(uri).await.unwrap();
            response.status()
        }));
    }
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 200);
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "the callers waited ({waited:?})"
    );
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_per_host_keeps_healthy_hosts_flowing() {
    let (up, down) = (start_server().await, start_server().await);
    down.mode.store(UNAVAILABLE, Ordering::SeqCst);
    let registry = Registry::new(16, |host: &String| {
        CircuitBreaker::builder()
            .name(host.as_str())
            .consecutive_failures(2)
            .freeze_for(Duration::from_secs(60))
            .fail_fast()
            .try_build()
            .unwrap()
    });
    let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut client = ServiceBuilder::new()
        .layer(
            KeyedCircuitBreakerLayer::new(registry.clone(), |r: &Request| {
                KeyedCircuitBreakerLayer::authority(r)
            })
            .classify(ServerErrors),
        )
        .service(http);
    for _ in 0..2 {
        assert_eq!(send(&mut client, request(&down)).await.unwrap(), 503);
    }
    let rejected = client
        .ready()
        .await
        .unwrap()
        .call(request(&down))
        .await
        .unwrap_err();
    assert!(is_rejection(&rejected));
    for _ in 0..3 {
        let response = client
            .ready()
            .await
            .unwrap()
            .call(request(&up))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the healthy host is not affected");
    }
    assert_eq!(registry.len(), 2);
    assert!(registry.get(&down.address.to_string()).is_frozen());
    assert!(!registry.get(&up.address.to_string()).is_frozen());
}
