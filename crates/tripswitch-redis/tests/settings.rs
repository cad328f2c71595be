//! Settings refused with clear errors, and a fleet whose Redis was never
//! there (no `redis-server` needed); a strict start against a private one.

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tripswitch::{CircuitBreaker, HalfOpen, State};
use tripswitch_redis::{Fleet, FleetError, FleetEvent, FleetOpenPeriod, FleetPolicy};

/// A loopback address where nothing listens.
fn nowhere() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("redis://127.0.0.1:{port}/")
}

async fn refused(builder: tripswitch_redis::FleetBuilder) -> String {
    let error = builder.connect().await.expect_err("refused");
    assert!(matches!(
        error,
        FleetError::Config { .. } | FleetError::Url(_)
    ));
    error.to_string()
}

#[tokio::test]
async fn invalid_settings_are_refused_with_the_setting_named() {
    let url = nowhere();
    let message = refused(Fleet::builder(&url).policy(FleetPolicy::default().quorum(0))).await;
    assert!(message.contains("`quorum`"), "{message}");
    let message =
        refused(Fleet::builder(&url).policy(FleetPolicy::default().failure_rate(1.5, 10))).await;
    assert!(
        message.contains("`failure_rate`") && message.contains("1.5"),
        "{message}"
    );
    let message = refused(
        Fleet::builder(&url).policy(FleetPolicy::default().window(Duration::from_millis(5))),
    )
    .await;
    assert!(message.contains("`window`"), "{message}");
    let message = refused(Fleet::builder(&url).open_period(FleetOpenPeriod::backoff(
        Duration::from_secs(10),
        2.0,
        Duration::from_secs(1),
    )))
    .await;
    assert!(message.contains("`open_period.max`"), "{message}");
    let message = refused(Fleet::builder(&url).open_period(FleetOpenPeriod::backoff(
        Duration::from_secs(1),
        f64::NAN,
        Duration::from_secs(10),
    )))
    .await;
    assert!(message.contains("`open_period.multiplier`"), "{message}");
    let message = refused(
        Fleet::builder(&url)
            .command_timeout(Duration::from_secs(1))
            .probe_lease(Duration::from_millis(500)),
    )
    .await;
    assert!(message.contains("`probe_lease`"), "{message}");
    let message = refused(Fleet::builder(&url).sync_interval(Duration::ZERO)).await;
    assert!(message.contains("`sync_interval`"), "{message}");
    let message = refused(Fleet::builder(&url).prefix("a\tb")).await;
    assert!(message.contains("`prefix`"), "{message}");
    let message = refused(Fleet::builder("not a url")).await;
    assert!(message.contains("invalid Redis URL"), "{message}");
}

#[tokio::test]
async fn names_must_be_usable_and_unique_per_handle() {
    let fleet = Fleet::builder(nowhere())
        .command_timeout(Duration::from_millis(50))
        .connect()
        .await
        .unwrap();
    let error = fleet
        .breaker("", CircuitBreaker::builder())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`breaker name`"), "{error}");
    let error = fleet
        .breaker("a{b}", CircuitBreaker::builder())
        .await
        .unwrap_err();
    assert!(matches!(error, FleetError::Config { .. }));

    let first = fleet
        .breaker("db", CircuitBreaker::builder())
        .await
        .unwrap();
    let error = fleet
        .breaker("db", CircuitBreaker::builder())
        .await
        .unwrap_err();
    assert!(
        matches!(error, FleetError::DuplicateName(ref name) if name == "db"),
        "{error}"
    );
    // Once the first is gone the name is free again.
    drop(first);
    fleet
        .breaker("db", CircuitBreaker::builder())
        .await
        .unwrap();

    // The breaker's own settings are checked too.
    let error = fleet
        .breaker(
            "bad",
            CircuitBreaker::builder().half_open(HalfOpen::probes(0)),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, FleetError::Breaker(_)), "{error}");
}

#[test]
fn connecting_needs_a_tokio_runtime() {
    let error = pollster(Fleet::builder("redis://127.0.0.1/").connect()).unwrap_err();
    assert!(matches!(error, FleetError::NoRuntime), "{error}");
}

/// Polls a future to completion on this thread with a no-op waker loop.
fn pollster<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[tokio::test]
async fn without_redis_breakers_work_alone_and_say_so() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let started = Instant::now();
    let fleet = Fleet::builder(nowhere())
        .sync_interval(Duration::from_millis(20))
        .command_timeout(Duration::from_millis(50))
        .on_event(move |event| seen.lock().unwrap().push(event.clone()))
        .connect()
        .await
        .unwrap();
    let breaker = fleet
        .breaker(
            "db",
            CircuitBreaker::builder()
                .consecutive_failures(2)
                .half_open(HalfOpen::probes(1))
                .fail_fast(),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "building waits at most for one attempt"
    );
    assert!(!fleet.is_connected());
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, FleetEvent::Unreachable { .. })),
        "said so"
    );
    for _ in 0..100 {
        breaker
            .execute(|| async { Ok::<_, &str>(()) })
            .await
            .unwrap();
    }
    for _ in 0..2 {
        let _ = breaker.execute(|| async { Err::<(), _>("down") }).await;
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "the local breaker still trips"
    );
    // Several reconnection attempts later, still one event.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let unreachable = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, FleetEvent::Unreachable { .. }))
        .count();
    assert_eq!(unreachable, 1, "said once, not at every attempt");
}

/// Issue 15: a strict start fails `connect` with a clear error when Redis
/// is unreachable, refuses the password, or refuses the script; the
/// default start stays degraded, with one event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_start_refuses_an_unusable_redis() {
    let strict = |url: String| {
        Fleet::builder(url)
            .command_timeout(Duration::from_millis(500))
            .require_redis()
    };
    let error = strict(nowhere()).connect().await.unwrap_err();
    assert!(matches!(error, FleetError::Unavailable(_)), "{error}");

    let Some(server) = common::redis_with(&["--requirepass", "secret"]) else {
        return;
    };
    let error = strict(server.url())
        .connect()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("NOAUTH") || error.contains("uthentication"),
        "says why: {error}"
    );
    let good = format!("redis://:secret@127.0.0.1:{}/", server.port);
    let fleet = strict(good).connect().await.unwrap();
    assert!(fleet.replica_id().len() > 1);

    // An ACL that refuses the script.
    let mut admin = redis::Client::open(format!("redis://:secret@127.0.0.1:{}/", server.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "default", "-evalsha"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let refused = format!("redis://:secret@127.0.0.1:{}/", server.port);
    let error = strict(refused.clone())
        .connect()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("evalsha") || error.contains("NOPERM") || error.contains("NoPerm"),
        "{error}"
    );

    // The default start: degraded, one event.
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let fleet = Fleet::builder(server.url())
        .sync_interval(Duration::from_millis(20))
        .on_event(move |event| seen.lock().unwrap().push(event.clone()))
        .connect()
        .await
        .unwrap();
    let _db = fleet
        .breaker("db", CircuitBreaker::builder().fail_fast())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let unreachable = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, FleetEvent::Unreachable { .. }))
        .count();
    assert_eq!(unreachable, 1, "one event for a wrong password");
}

/// Issue 15: by default two programs on one Redis do not share breakers
/// (the prefix names the executable), and replica ids never collide (host
/// name, pid and 64 random bits, not the pid alone, which is 1 in most
/// containers).
#[tokio::test]
async fn defaults_keep_programs_and_replicas_apart() {
    let fleet = || {
        Fleet::builder(nowhere())
            .command_timeout(Duration::from_millis(50))
            .connect()
    };
    let (a, b) = (fleet().await.unwrap(), fleet().await.unwrap());
    assert_ne!(a.replica_id(), b.replica_id());
    let random = a.replica_id().rsplit('-').next().unwrap();
    assert_eq!(random.len(), 16, "64 random bits: {}", a.replica_id());
    let program = std::env::current_exe().unwrap();
    let program = program.file_stem().unwrap().to_string_lossy();
    let shown = format!("{a:?}");
    assert!(
        shown.contains(&format!("\"tripswitch:{program}\"")),
        "the prefix names the program: {shown}"
    );
}
