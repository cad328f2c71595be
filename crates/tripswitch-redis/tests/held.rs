//! What held in issue 15's adversarial review, kept so: ten replicas that
//! trip at once give one opening and one backoff step; one probe fleet-wide
//! across five replicas; calls never wait on a Redis in `DEBUG SLEEP`;
//! `SCRIPT FLUSH` is harmless; every key has a TTL.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{RedisServer, eventually, redis};
use tripswitch::{CircuitBreaker, HalfOpen, State};
use tripswitch_redis::{Fleet, FleetOpenPeriod, FleetPolicy};

const SOON: Duration = Duration::from_secs(5);

async fn replica(
    server: &RedisServer,
    prefix: &str,
    id: &str,
    period: Duration,
) -> (Fleet, CircuitBreaker) {
    let fleet = Fleet::builder(server.url())
        .prefix(prefix)
        .replica_id(id)
        .sync_interval(Duration::from_millis(20))
        .command_timeout(Duration::from_millis(250))
        .probe_lease(Duration::from_secs(2))
        .policy(FleetPolicy::default().without_failure_rate())
        .open_period(FleetOpenPeriod::fixed(period))
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
    (fleet, breaker)
}

async fn fail(breaker: &CircuitBreaker) {
    let _ = breaker.execute(|| async { Err::<(), &str>("down") }).await;
}

async fn query<T: redis::FromRedisValue>(server: &RedisServer, args: &[&str]) -> T {
    let mut connection = server.connection().await;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut connection).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_replicas_tripping_at_once_give_one_opening_and_one_backoff_step() {
    let Some(server) = redis() else { return };
    let mut replicas = Vec::new();
    for r in 0..10 {
        replicas.push(replica(&server, "h-ten", &format!("r{r}"), Duration::from_secs(30)).await);
    }
    let trips: Vec<_> = replicas
        .iter()
        .map(|(_, breaker)| {
            let breaker = breaker.clone();
            tokio::spawn(async move {
                fail(&breaker).await;
                fail(&breaker).await;
            })
        })
        .collect();
    for trip in trips {
        trip.await.unwrap();
    }
    eventually(SOON, "all open", || {
        replicas.iter().all(|(_, b)| b.state() == State::Open)
    })
    .await;
    // Every vote has landed (each replica's round after its trip).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (epoch, step): (i64, i64) = {
        let mut connection = server.connection().await;
        redis::cmd("HMGET")
            .arg("h-ten:{db}:state")
            .arg("epoch")
            .arg("step")
            .query_async(&mut connection)
            .await
            .unwrap()
    };
    assert_eq!((epoch, step), (1, 1), "one opening, one backoff step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_probe_fleet_wide_across_five_replicas() {
    let Some(server) = redis() else { return };
    let mut replicas = Vec::new();
    for r in 0..5 {
        replicas.push(
            replica(
                &server,
                "h-probe",
                &format!("r{r}"),
                Duration::from_millis(300),
            )
            .await,
        );
    }
    fail(&replicas[0].1).await;
    fail(&replicas[0].1).await;
    eventually(SOON, "all open", || {
        replicas.iter().all(|(_, b)| b.state() == State::Open)
    })
    .await;
    let probes = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for (_, breaker) in &replicas {
        let breaker = breaker.clone();
        let (probes, closed, stop) = (probes.clone(), closed.clone(), stop.clone());
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let result = breaker
                    .execute(|| async {
                        if !closed.load(Ordering::Acquire) {
                            probes.fetch_add(1, Ordering::AcqRel);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<(), &str>(())
                    })
                    .await;
                if result.is_ok() && breaker.state() == State::Closed {
                    closed.store(true, Ordering::Release);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    eventually(Duration::from_secs(10), "closed everywhere", || {
        replicas.iter().all(|(_, b)| b.state() == State::Closed)
    })
    .await;
    stop.store(true, Ordering::Release);
    for caller in callers {
        caller.await.unwrap();
    }
    assert_eq!(probes.load(Ordering::Acquire), 1, "one probe, fleet-wide");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_never_wait_on_a_redis_in_debug_sleep() {
    let Some(server) = redis() else { return };
    let (_fleet, breaker) = replica(&server, "h-sleep", "a", Duration::from_secs(30)).await;
    // Redis sleeps a second with every connection's commands queued.
    let sleeper = {
        let url = server.url();
        tokio::spawn(async move {
            let client = redis::Client::open(url).unwrap();
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            let _: redis::RedisResult<()> = redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(1)
                .query_async(&mut connection)
                .await;
        })
    };
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut calls = 0;
    while started.elapsed() < Duration::from_millis(1200) {
        let call = Instant::now();
        assert!(
            breaker
                .execute(|| async { Ok::<(), &str>(()) })
                .await
                .is_ok()
        );
        slowest = slowest.max(call.elapsed());
        calls += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    sleeper.await.unwrap();
    eprintln!("{calls} calls during DEBUG SLEEP 1, the slowest {slowest:?}");
    assert!(
        slowest < Duration::from_millis(100),
        "slowest call {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_flush_is_harmless_and_every_key_has_a_ttl() {
    let Some(server) = redis() else { return };
    let (_a, a) = replica(&server, "h-flush", "a", Duration::from_secs(30)).await;
    let (_b, b) = replica(&server, "h-flush", "b", Duration::from_secs(30)).await;
    let _: () = query(&server, &["SCRIPT", "FLUSH"]).await;
    assert!(b.execute(|| async { Ok::<(), &str>(()) }).await.is_ok());
    fail(&a).await;
    fail(&a).await;
    eventually(SOON, "b opens after SCRIPT FLUSH", || {
        b.state() == State::Open
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let keys: Vec<String> = query(&server, &["KEYS", "h-flush*"]).await;
    assert!(!keys.is_empty());
    for key in keys {
        let ttl: i64 = query(&server, &["PTTL", &key]).await;
        assert!(ttl > 0, "{key} has a TTL: {ttl}");
    }
}
