//! Feature `sentinel`: a fleet that finds its primary through Redis
//! Sentinel follows a failover. A private primary, a replica of it and one
//! sentinel (`redis-sentinel`, from Debian's package of that name), all on
//! loopback.
#![cfg(feature = "sentinel")]

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, redis, redis_with};
use tripswitch::{CircuitBreaker, HalfOpen, State};
use tripswitch_redis::{Fleet, FleetEvent, FleetOpenPeriod, FleetPolicy};

struct Sentinel {
    port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sentinel(primary: u16) -> Option<Sentinel> {
    if Command::new("redis-sentinel")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            std::env::var("TRIPSWITCH_REQUIRE_REDIS").as_deref() != Ok("1"),
            "redis-sentinel is not on the PATH (apt-get install redis-sentinel)"
        );
        eprintln!("SKIPPED: redis-sentinel is not on the PATH");
        return None;
    }
    let port = free_port();
    let dir =
        std::env::temp_dir().join(format!("tripswitch-sentinel-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("sentinel.conf");
    std::fs::write(
        &config,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor main 127.0.0.1 {primary} 1\n\
             sentinel down-after-milliseconds main 1000\n\
             sentinel failover-timeout main 5000\n",
            dir.display()
        ),
    )
    .unwrap();
    let child = Command::new("redis-sentinel")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-sentinel");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "sentinel did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(Sentinel { port, child, dir })
}

async fn ask<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut connection).await
}

async fn primary_port(sentinel: &Sentinel) -> Option<u16> {
    let address: Vec<String> = ask(
        sentinel.port,
        &["SENTINEL", "get-master-addr-by-name", "main"],
    )
    .await
    .ok()?;
    address.get(1)?.parse().ok()
}

/// Waits (polling) for an async condition.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not within 30 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Replica {
    fleet: Fleet,
    breaker: CircuitBreaker,
    events: Arc<Mutex<Vec<FleetEvent>>>,
}

async fn replica(sentinel: &Sentinel, id: &str) -> Replica {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let fleet = Fleet::sentinel([format!("redis://127.0.0.1:{}/", sentinel.port)], "main")
        .prefix("sentinel")
        .replica_id(id)
        .sync_interval(Duration::from_millis(20))
        .command_timeout(Duration::from_secs(2))
        .probe_lease(Duration::from_secs(10))
        .policy(FleetPolicy::default().without_failure_rate())
        .open_period(FleetOpenPeriod::fixed(Duration::from_secs(60)))
        .on_event(move |event| seen.lock().unwrap().push(event.clone()))
        .require_redis()
        .connect()
        .await
        .expect("the primary, through the sentinel");
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
    Replica {
        fleet,
        breaker,
        events,
    }
}

async fn trip(breaker: &CircuitBreaker) {
    for _ in 0..2 {
        let _ = breaker.execute(|| async { Err::<(), &str>("down") }).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_follows_a_sentinel_failover() {
    let Some(primary) = redis() else { return };
    let primary_at = primary.port.to_string();
    let Some(standby) = redis_with(&["--replicaof", "127.0.0.1", &primary_at]) else {
        return;
    };
    let Some(sentinel) = sentinel(primary.port) else {
        return;
    };
    // The standby is in sync and the sentinel knows it.
    until("the standby replicates", || async {
        ask::<String>(standby.port, &["INFO", "replication"])
            .await
            .is_ok_and(|info| info.contains("master_link_status:up"))
    })
    .await;
    until("the sentinel sees the standby", || async {
        ask::<Vec<redis::Value>>(sentinel.port, &["SENTINEL", "replicas", "main"])
            .await
            .is_ok_and(|replicas| !replicas.is_empty())
    })
    .await;

    let a = replica(&sentinel, "a").await;
    let b = replica(&sentinel, "b").await;
    trip(&a.breaker).await;
    eventually(Duration::from_secs(5), "b opens", || {
        b.breaker.state() == State::Open
    })
    .await;

    // Failover: the standby becomes the primary.
    let _: String = ask(sentinel.port, &["SENTINEL", "FAILOVER", "main"])
        .await
        .unwrap();
    until("the standby is the primary", || async {
        primary_port(&sentinel).await == Some(standby.port)
    })
    .await;
    // Until the sentinel turns the old primary into a replica (it notices
    // it within its ten-second INFO period) both accept writes: Sentinel's
    // split brain, not the fleet's. Then it cuts the old one's clients.
    until("the old primary is a replica", || async {
        ask::<redis::Value>(primary.port, &["ROLE"])
            .await
            .is_ok_and(|role| format!("{role:?}").contains("slave"))
    })
    .await;

    // An operator closes the breaker through the new primary; both follow.
    until("closed through the new primary", || async {
        a.fleet.force_close("db").await.is_ok()
    })
    .await;
    eventually(Duration::from_secs(10), "both closed", || {
        a.breaker.state() == State::Closed && b.breaker.state() == State::Closed
    })
    .await;
    // A new trip is written to the new primary and reaches b.
    trip(&a.breaker).await;
    eventually(Duration::from_secs(10), "b opens again", || {
        b.breaker.state() == State::Open
    })
    .await;
    let state: Option<String> = ask(standby.port, &["HGET", "sentinel:{db}:state", "state"])
        .await
        .unwrap();
    assert_eq!(state.as_deref(), Some("open"), "on the new primary");
    // Every fleet connection is on the new primary now.
    let clients: String = ask(standby.port, &["CLIENT", "LIST"]).await.unwrap();
    let fleets = clients
        .lines()
        .filter(|line| !line.contains("name=sentinel") && !line.contains("cmd=client"))
        .count();
    assert!(
        fleets >= 6,
        "two fleets, three connections each:\n{clients}"
    );
    let events = a.events.lock().unwrap().clone();
    eprintln!("a's events over the failover: {events:?}");
    drop(primary);
}
