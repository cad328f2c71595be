//! Several replicas (fleet handles with their own connections) in one test
//! process, sharing breakers through a real `redis-server`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, redis};
use tripswitch::{CircuitBreaker, HalfOpen, State};
use tripswitch_redis::{Fleet, FleetEvent, FleetOpenPeriod, FleetPolicy};

#[derive(Debug)]
struct Boom;

const SOON: Duration = Duration::from_secs(3);

/// One replica: its fleet handle, its breaker and what its fleet said.
struct Replica {
    fleet: Fleet,
    breaker: CircuitBreaker,
    events: Arc<Mutex<Vec<FleetEvent>>>,
}

impl Replica {
    fn state(&self) -> State {
        self.breaker.state()
    }

    fn saw(&self, wanted: impl Fn(&FleetEvent) -> bool) -> bool {
        self.events.lock().unwrap().iter().any(wanted)
    }

    async fn fail(&self) {
        let _ = self
            .breaker
            .execute(|| async { Err::<(), Boom>(Boom) })
            .await;
    }

    async fn succeed(&self) -> bool {
        self.breaker
            .execute(|| async { Ok::<(), Boom>(()) })
            .await
            .is_ok()
    }
}

struct Setup {
    url: String,
    prefix: String,
    policy: FleetPolicy,
    period: FleetOpenPeriod,
    lease: Duration,
    local: fn() -> tripswitch::Builder,
}

fn local_breaker() -> tripswitch::Builder {
    CircuitBreaker::builder()
        .consecutive_failures(2)
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(30))
        .fail_fast()
}

impl Setup {
    fn new(url: String, test: &str) -> Setup {
        Setup {
            url,
            prefix: format!("test-{test}"),
            policy: FleetPolicy::default(),
            period: FleetOpenPeriod::fixed(Duration::from_secs(30)),
            lease: Duration::from_secs(1),
            local: local_breaker,
        }
    }

    async fn replica(&self, id: &str) -> Replica {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let fleet = Fleet::builder(self.url.clone())
            .prefix(self.prefix.clone())
            .replica_id(id)
            .sync_interval(Duration::from_millis(20))
            .command_timeout(Duration::from_millis(150))
            .probe_lease(self.lease)
            .policy(self.policy)
            .open_period(self.period)
            .on_event(move |event| seen.lock().unwrap().push(event.clone()))
            .connect()
            .await
            .unwrap();
        let breaker = fleet.breaker("db", (self.local)()).await.unwrap();
        Replica {
            fleet,
            breaker,
            events,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_on_one_replica_freezes_the_others() {
    let Some(server) = redis() else { return };
    let setup = Setup::new(server.url(), "propagation");
    let a = setup.replica("a").await;
    let b = setup.replica("b").await;
    let c = setup.replica("c").await;
    assert!(b.succeed().await && c.succeed().await);

    let tripped = Instant::now();
    a.fail().await;
    a.fail().await;
    assert_eq!(a.state(), State::Open);
    eventually(SOON, "b and c open", || {
        b.state() == State::Open && c.state() == State::Open
    })
    .await;
    eprintln!("trip propagated to two replicas in {:?}", tripped.elapsed());

    // Calls on b are refused without reaching the dependency, with the fleet's deadline.
    let refused = b
        .breaker
        .execute(|| async { Ok::<(), Boom>(()) })
        .await
        .unwrap_err();
    let retry = refused.rejected().unwrap().retry_after().unwrap();
    assert!(
        retry > Duration::from_secs(25),
        "about the fleet's 30 s: {retry:?}"
    );
    assert!(b.saw(|e| matches!(e, FleetEvent::Opened { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_tripping_at_once_give_one_open_period_and_one_backoff_step() {
    let Some(server) = redis() else { return };
    let setup = Setup::new(server.url(), "simultaneous");
    let a = setup.replica("a").await;
    let b = setup.replica("b").await;
    tokio::join!(
        async {
            a.fail().await;
            a.fail().await
        },
        async {
            b.fail().await;
            b.fail().await;
        }
    );
    eventually(SOON, "both open", || {
        a.state() == State::Open && b.state() == State::Open
    })
    .await;
    // Let both trip votes land.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut redis = server.connection().await;
    let (epoch, step): (i64, i64) = redis::cmd("HMGET")
        .arg("test-simultaneous:{db}:state")
        .arg("epoch")
        .arg("step")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!((epoch, step), (1, 1), "one opening, one backoff step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_probes_run_across_the_fleet() {
    let Some(server) = redis() else { return };
    let mut setup = Setup::new(server.url(), "probes");
    setup.period = FleetOpenPeriod::fixed(Duration::from_millis(300));
    let replicas = vec![
        setup.replica("a").await,
        setup.replica("b").await,
        setup.replica("c").await,
    ];
    replicas[0].fail().await;
    replicas[0].fail().await;
    eventually(SOON, "all open", || {
        replicas.iter().all(|r| r.state() == State::Open)
    })
    .await;

    // Every replica keeps calling; a call that starts before any replica is
    // closed again is a probe.
    let probes = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for replica in &replicas {
        let breaker = replica.breaker.clone();
        let (probes, closed, stop) = (probes.clone(), closed.clone(), stop.clone());
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let result = breaker
                    .execute(|| async {
                        if !closed.load(Ordering::Acquire) {
                            probes.fetch_add(1, Ordering::AcqRel);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<(), Boom>(())
                    })
                    .await;
                if result.is_ok() && breaker.state() == State::Closed {
                    closed.store(true, Ordering::Release);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    eventually(
        Duration::from_secs(5),
        "the fleet closed everywhere",
        || replicas.iter().all(|r| r.state() == State::Closed),
    )
    .await;
    stop.store(true, Ordering::Release);
    for caller in callers {
        caller.await.unwrap();
    }
    assert_eq!(probes.load(Ordering::Acquire), 1, "one probe, fleet-wide");
    let granted = replicas
        .iter()
        .filter(|r| r.saw(|e| matches!(e, FleetEvent::ProbesGranted { .. })))
        .count();
    let seen: Vec<_> = replicas
        .iter()
        .map(|r| r.events.lock().unwrap().clone())
        .collect();
    assert_eq!(granted, 1, "one replica held the probes: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_keeps_one_bad_replica_from_tripping_the_fleet() {
    let Some(server) = redis() else { return };
    let mut setup = Setup::new(server.url(), "quorum");
    setup.policy = FleetPolicy::default().quorum(2).without_failure_rate();
    let a = setup.replica("a").await;
    let b = setup.replica("b").await;
    let c = setup.replica("c").await;
    a.fail().await;
    a.fail().await;
    assert_eq!(a.state(), State::Open, "a's own breaker trips");
    // Several syncs later the others are still closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(b.succeed().await && c.succeed().await);
    assert_eq!(c.state(), State::Closed);

    b.fail().await;
    b.fail().await;
    eventually(SOON, "the second vote trips the fleet", || {
        c.state() == State::Open
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_spread_thin_over_replicas_trip_the_fleet_by_rate() {
    let Some(server) = redis() else { return };
    let mut setup = Setup::new(server.url(), "rate");
    setup.policy = FleetPolicy::default().failure_rate(0.5, 20).quorum(2);
    // Locally, no replica sees enough to trip.
    setup.local = || {
        CircuitBreaker::builder()
            .consecutive_failures(1000)
            .half_open(HalfOpen::probes(1))
            .fail_fast()
    };
    let a = setup.replica("a").await;
    let b = setup.replica("b").await;
    let c = setup.replica("c").await;
    for _ in 0..8 {
        a.fail().await;
        b.fail().await;
        assert!(a.succeed().await && b.succeed().await);
    }
    assert_eq!(a.state(), State::Closed);
    assert_eq!(c.state(), State::Closed);
    // 16 failures in 32 calls from two replicas.
    eventually(SOON, "the fleet's rate trips everybody", || {
        a.state() == State::Open && b.state() == State::Open && c.state() == State::Open
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_starts_open() {
    let Some(server) = redis() else { return };
    let setup = Setup::new(server.url(), "restart");
    let a = setup.replica("a").await;
    a.fail().await;
    a.fail().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh = setup.replica("fresh").await;
    assert_eq!(fresh.state(), State::Open, "open as soon as it is built");
    assert!(!fresh.succeed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_test() {
    let Some(mut server) = redis() else { return };
    let setup = Setup::new(server.url(), "killed");
    let a = setup.replica("a").await;
    let b = setup.replica("b").await;
    assert!(a.fleet.is_connected() && b.fleet.is_connected());

    server.kill();
    eventually(SOON, "both say Redis is gone", || {
        a.saw(|e| matches!(e, FleetEvent::Unreachable { .. }))
            && b.saw(|e| matches!(e, FleetEvent::Unreachable { .. }))
    })
    .await;
    assert!(!a.fleet.is_connected());
    // Calls do not wait on a dead Redis, and local breakers still work.
    let started = Instant::now();
    for _ in 0..100 {
        assert!(b.succeed().await);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no call waited on Redis"
    );
    a.fail().await;
    a.fail().await;
    assert_eq!(a.state(), State::Open, "a trips on its own");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b.state(), State::Closed, "nobody can tell b");

    // Redis comes back empty: a puts its open period back and b follows.
    server.start();
    eventually(SOON, "both resynced", || {
        a.saw(|e| *e == FleetEvent::Reconnected) && b.saw(|e| *e == FleetEvent::Reconnected)
    })
    .await;
    eventually(SOON, "b learns of a's trip", || b.state() == State::Open).await;
    let mut redis = server.connection().await;
    let state: Option<String> = redis::cmd("HGET")
        .arg("test-killed:{db}:state")
        .arg("state")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(state.as_deref(), Some("open"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_never_slows_calls() {
    let Some(server) = redis() else { return };
    let setup = Setup::new(server.url(), "slow");
    let a = setup.replica("a").await;
    server.pause();
    let started = Instant::now();
    let mut calls = 0;
    while !a.saw(|e| matches!(e, FleetEvent::Unreachable { .. })) {
        assert!(a.succeed().await);
        calls += 1;
        assert!(started.elapsed() < SOON, "Unreachable within the bound");
        tokio::task::yield_now().await;
    }
    let noticed = started.elapsed();
    eprintln!("{calls} calls went through while Redis hung; noticed after {noticed:?}");
    assert!(calls > 0);
    server.resume();
    eventually(SOON, "reconnected", || {
        a.saw(|e| *e == FleetEvent::Reconnected)
    })
    .await;
    assert!(a.fleet.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_dies_holding_the_probes_loses_them_when_the_lease_runs_out() {
    let Some(server) = redis() else { return };
    let mut setup = Setup::new(server.url(), "lease");
    setup.period = FleetOpenPeriod::fixed(Duration::from_millis(200));
    setup.lease = Duration::from_millis(600);
    let a = setup.replica("a").await;
    let b = setup.replica("b").await;
    a.fail().await;
    a.fail().await;
    eventually(SOON, "b open", || b.state() == State::Open).await;

    // a wants through once the period ends: it gets the probes, and its
    // probe hangs; then a dies (its fleet task stops).
    eventually(SOON, "a holds the probes", || {
        let _ = a.breaker.try_acquire();
        a.saw(|e| matches!(e, FleetEvent::ProbesGranted { .. }))
    })
    .await;
    let hung_probe = a.breaker.try_acquire();
    assert!(hung_probe.is_ok(), "a's probe slot");
    let granted_at = Instant::now();
    drop(a.fleet);

    // b keeps trying; after the lease it takes the probes and closes the fleet.
    eventually(SOON, "b probes and closes", || {
        let breaker = b.breaker.clone();
        tokio::spawn(async move {
            let _ = breaker.execute(|| async { Ok::<(), Boom>(()) }).await;
        });
        b.state() == State::Closed
    })
    .await;
    assert!(
        granted_at.elapsed() >= Duration::from_millis(450),
        "not before a's lease ran out: {:?}",
        granted_at.elapsed()
    );
    assert!(b.saw(|e| matches!(e, FleetEvent::ProbesGranted { .. })));
    drop(hung_probe);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_redis_restart_that_loses_its_data_does_not_lose_the_open_period() {
    let Some(mut server) = redis() else { return };
    let setup = Setup::new(server.url(), "quick-restart");
    let a = setup.replica("a").await;
    let b = setup.replica("b").await;
    a.fail().await;
    a.fail().await;
    eventually(SOON, "b open", || b.state() == State::Open).await;

    // Down and up again at once, empty: the replicas put the open period back.
    server.kill();
    server.start();
    let started = Instant::now();
    let mut redis = server.connection().await;
    loop {
        let state: Option<String> = redis::cmd("HGET")
            .arg("test-quick-restart:{db}:state")
            .arg("state")
            .query_async(&mut redis)
            .await
            .unwrap();
        if state.as_deref() == Some("open") {
            break;
        }
        assert!(started.elapsed() < SOON, "the open period was not restored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Several syncs later nobody was closed by the empty server.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.state(), State::Open);
    assert_eq!(b.state(), State::Open);
    assert!(b.saw(|e| *e == FleetEvent::Reconnected));
}
