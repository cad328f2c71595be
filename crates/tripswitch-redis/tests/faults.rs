//! Regression tests for the fleet under faults that do not look like an
//! outage: a reconnect, lost or stale or unreadable state, error replies, a
//! report that timed out but ran, a slow first sync. Each runs against a
//! private `redis-server` on loopback.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{RedisServer, eventually, redis};
use tripswitch::{CircuitBreaker, HalfOpen, State};
use tripswitch_redis::{Fleet, FleetEvent, FleetOpenPeriod, FleetPolicy};

#[derive(Debug)]
struct Boom;

const SOON: Duration = Duration::from_secs(5);

fn local_breaker() -> tripswitch::Builder {
    CircuitBreaker::builder()
        .consecutive_failures(2)
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(30))
        .fail_fast()
}

/// One replica: a fleet handle with its own connections, and its events.
struct Replica {
    fleet: Fleet,
    events: Arc<Mutex<Vec<FleetEvent>>>,
}

impl Replica {
    async fn start(server: &RedisServer, prefix: &str, id: &str, policy: FleetPolicy) -> Replica {
        Replica::with(server, prefix, id, policy, |b| b).await
    }

    async fn with(
        server: &RedisServer,
        prefix: &str,
        id: &str,
        policy: FleetPolicy,
        tune: impl FnOnce(tripswitch_redis::FleetBuilder) -> tripswitch_redis::FleetBuilder,
    ) -> Replica {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let builder = Fleet::builder(server.url())
            .prefix(prefix)
            .replica_id(id)
            .sync_interval(Duration::from_millis(20))
            .command_timeout(Duration::from_millis(150))
            .probe_lease(Duration::from_secs(1))
            .policy(policy)
            .open_period(FleetOpenPeriod::fixed(Duration::from_secs(30)))
            .on_event(move |event| seen.lock().unwrap().push(event.clone()));
        let fleet = tune(builder).connect().await.unwrap();
        Replica { fleet, events }
    }

    async fn breaker(&self, name: &str) -> CircuitBreaker {
        self.fleet.breaker(name, local_breaker()).await.unwrap()
    }

    fn count(&self, wanted: impl Fn(&FleetEvent) -> bool) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| wanted(e))
            .count()
    }

    fn saw(&self, wanted: impl Fn(&FleetEvent) -> bool) -> bool {
        self.count(wanted) > 0
    }

    fn events(&self) -> Vec<FleetEvent> {
        self.events.lock().unwrap().clone()
    }
}

async fn fail(breaker: &CircuitBreaker) {
    let _ = breaker.execute(|| async { Err::<(), Boom>(Boom) }).await;
}

async fn succeed(breaker: &CircuitBreaker) -> bool {
    breaker
        .execute(|| async { Ok::<(), Boom>(()) })
        .await
        .is_ok()
}

fn unreachable(e: &FleetEvent) -> bool {
    matches!(e, FleetEvent::Unreachable { .. })
}

async fn query<T: redis::FromRedisValue>(server: &RedisServer, command: &[&str]) -> T {
    let mut connection = server.connection().await;
    let mut cmd = redis::cmd(command[0]);
    for arg in &command[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut connection).await.unwrap()
}

async fn fleet_state(server: &RedisServer, key: &str) -> Option<String> {
    query(server, &["HGET", key, "state"]).await
}

/// Lets several sync intervals (20 ms each) pass, for checks that
/// something did *not* happen.
async fn several_syncs() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// Issue 15, item 1: a reconnect must not write a trip that only this
/// replica made (below the quorum) to the fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_does_not_spread_a_trip_below_the_quorum() {
    let Some(server) = redis() else { return };
    let policy = FleetPolicy::default().quorum(2).without_failure_rate();
    let a = Replica::start(&server, "t-bypass", "a", policy).await;
    let b = Replica::start(&server, "t-bypass", "b", policy).await;
    let a_db = a.breaker("db").await;
    let b_db = b.breaker("db").await;
    fail(&a_db).await;
    fail(&a_db).await;
    assert_eq!(a_db.state(), State::Open, "a trips on its own");
    several_syncs().await;
    assert_eq!(b_db.state(), State::Closed, "one vote of two");

    // Cut every subscription: each replica reconnects.
    let _: i64 = query(&server, &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    eventually(SOON, "a reconnected", || {
        a.saw(|e| *e == FleetEvent::Reconnected)
    })
    .await;
    several_syncs().await;
    assert_eq!(b_db.state(), State::Closed, "b is still closed");
    assert!(succeed(&b_db).await);
    assert_ne!(
        fleet_state(&server, "t-bypass:{db}:state").await.as_deref(),
        Some("open"),
        "the fleet never opened"
    );
}

/// Issue 15, item 2: state lost while every connection stays up (FLUSHALL),
/// or rolled back to an older epoch, is put back by the replicas that knew it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_or_stale_state_is_restored_without_a_disconnect() {
    let Some(server) = redis() else { return };
    let policy = FleetPolicy::default();
    let a = Replica::start(&server, "t-lost", "a", policy).await;
    let b = Replica::start(&server, "t-lost", "b", policy).await;
    let a_db = a.breaker("db").await;
    let b_db = b.breaker("db").await;
    fail(&a_db).await;
    fail(&a_db).await;
    eventually(SOON, "b open", || b_db.state() == State::Open).await;
    let key = "t-lost:{db}:state";
    let epoch: i64 = query(&server, &["HGET", key, "epoch"]).await;

    let _: () = query(&server, &["FLUSHALL"]).await;
    eventually(SOON, "the open period is back on the server", || {
        futures_lite_state(&server, key) == Some("open".to_string())
    })
    .await;
    several_syncs().await;
    assert_eq!(a_db.state(), State::Open);
    assert_eq!(b_db.state(), State::Open, "not closed by the empty server");
    let remaining: i64 = remaining_ms(&server, key).await;
    assert!(
        remaining > 25_000,
        "the fleet's 30 s, not less: {remaining} ms"
    );

    // A restart from an older snapshot: closed, one epoch behind.
    let stale = (epoch - 1).to_string();
    let _: () = query(&server, &["DEL", key]).await;
    let _: i64 = query(
        &server,
        &[
            "HSET", key, "state", "closed", "epoch", &stale, "until", "0",
        ],
    )
    .await;
    eventually(SOON, "the open period is back again", || {
        futures_lite_state(&server, key) == Some("open".to_string())
    })
    .await;
    several_syncs().await;
    assert_eq!(b_db.state(), State::Open, "not closed by the stale state");
    let repaired = |e: &FleetEvent| matches!(e, FleetEvent::StateRepaired { .. });
    assert!(a.count(repaired) + b.count(repaired) >= 2, "said so");
    let fresh = Replica::start(&server, "t-lost", "fresh", policy).await;
    let fresh_db = fresh.breaker("db").await;
    assert_eq!(fresh_db.state(), State::Open, "a new replica starts open");
}

/// Reads the fleet state from a blocking client (usable in `eventually`).
fn futures_lite_state(server: &RedisServer, key: &str) -> Option<String> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_connection().unwrap();
    redis::cmd("HGET")
        .arg(key)
        .arg("state")
        .query(&mut connection)
        .unwrap()
}

async fn remaining_ms(server: &RedisServer, key: &str) -> i64 {
    let until: i64 = query(server, &["HGET", key, "until"]).await;
    let (seconds, micros): (i64, i64) = query(server, &["TIME"]).await;
    until - (seconds * 1000 + micros / 1000)
}

/// Issue 15, item 3: one key of the wrong type is that breaker's problem:
/// the connection stays up and the other breakers keep syncing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broken_key_does_not_cut_off_the_other_breakers() {
    let Some(server) = redis() else { return };
    let policy = FleetPolicy::default();
    let _: () = query(&server, &["SET", "t-wrongtype:{bad}:state", "not a hash"]).await;
    let a = Replica::start(&server, "t-wrongtype", "a", policy).await;
    let b = Replica::start(&server, "t-wrongtype", "b", policy).await;
    let _b_bad = b.breaker("bad").await;
    let b_db = b.breaker("db").await;
    let a_db = a.breaker("db").await;
    several_syncs().await;
    let connections: i64 = stat(&server, "total_connections_received").await;
    fail(&a_db).await;
    fail(&a_db).await;
    eventually(SOON, "b learns of a's trip", || b_db.state() == State::Open).await;
    several_syncs().await;
    let now: i64 = stat(&server, "total_connections_received").await;
    assert_eq!(
        b.count(unreachable),
        0,
        "b never lost Redis: {:?}",
        b.events()
    );
    assert!(
        now - connections <= 1,
        "no reconnections: {}",
        now - connections
    );
    let failed = |e: &FleetEvent| {
        matches!(e, FleetEvent::SyncFailed { breaker, error, .. }
            if &**breaker == "bad" && error.contains("WRONGTYPE"))
    };
    assert_eq!(b.count(failed), 1, "said once: {:?}", b.events());
    assert!(!a.saw(failed), "a has no such breaker");
}

async fn stat(server: &RedisServer, field: &str) -> i64 {
    let info: String = query(server, &["INFO", "stats"]).await;
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Issue 15, item 3: a server that refuses the script (an ACL without
/// EVALSHA) is a persistent refusal: no reconnection storm, no flapping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_script_is_reported_once_without_reconnecting() {
    let Some(server) = redis() else { return };
    let _: () = query(&server, &["ACL", "SETUSER", "default", "-evalsha", "-eval"]).await;
    let a = Replica::start(&server, "t-noperm", "a", FleetPolicy::default()).await;
    let a_db = a.breaker("db").await;
    several_syncs().await;
    let connections: i64 = stat(&server, "total_connections_received").await;
    several_syncs().await;
    let now: i64 = stat(&server, "total_connections_received").await;
    assert!(
        now - connections <= 1,
        "no reconnections: {}",
        now - connections
    );
    assert!(a.count(unreachable) <= 1, "no flapping: {:?}", a.events());
    assert_eq!(a.count(|e| *e == FleetEvent::Reconnected), 0);
    assert!(succeed(&a_db).await, "the breaker works alone");
    let refused = |e: &FleetEvent| {
        matches!(e, FleetEvent::SyncFailed { error, advice, .. }
            if error.contains("NOPERM") && advice.contains("EVALSHA"))
    };
    assert_eq!(
        a.count(refused),
        1,
        "said once, with what to do: {:?}",
        a.events()
    );
    assert!(a.fleet.is_connected(), "the connection is fine");
}

/// Issue 15, item 4: a report that timed out on the client but ran when
/// Redis woke up is not counted again by the retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_that_timed_out_but_ran_is_not_counted_twice() {
    let Some(server) = redis() else { return };
    // A long interval: the only round while Redis is paused is the one the
    // trip starts, so the report in flight holds every call.
    let a = Replica::with(
        &server,
        "t-twice",
        "a",
        FleetPolicy::default().without_failure_rate().quorum(2),
        |b| b.sync_interval(Duration::from_millis(1000)),
    )
    .await;
    let a_db = a.breaker("db").await;
    server.pause();
    for _ in 0..8 {
        assert!(succeed(&a_db).await);
    }
    fail(&a_db).await;
    fail(&a_db).await;
    eventually(SOON, "the report timed out", || a.saw(unreachable)).await;
    server.resume();
    eventually(SOON, "reconnected", || {
        a.saw(|e| *e == FleetEvent::Reconnected)
    })
    .await;
    let counted = || {
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        // The count window: fields `w<i>` of the breaker's hash, each
        // `bucket|epoch|calls|failures` (the layout is in fleet.lua).
        let fields: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg("t-twice:{db}:state")
            .query(&mut connection)
            .unwrap();
        fields
            .iter()
            .filter(|(field, _)| field.starts_with('w'))
            .map(|(_, slot)| {
                slot.split('|')
                    .nth(2)
                    .and_then(|calls| calls.parse::<i64>().ok())
                    .unwrap_or(0)
            })
            .sum::<i64>()
    };
    eventually(SOON, "the calls are counted", || counted() >= 10).await;
    // Two more rounds (one a second), and whatever was in flight, landed.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(counted(), 10, "10 calls counted once");
}

/// Issue 15, item 5: an unreadable state is lost state: overwritten, and the
/// breaker syncs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_state_is_overwritten() {
    let Some(server) = redis() else { return };
    let key = "t-junk:{db}:state";
    let _: i64 = query(&server, &["HSET", key, "state", "banana", "epoch", "1"]).await;
    let a = Replica::start(&server, "t-junk", "a", FleetPolicy::default()).await;
    let b = Replica::start(&server, "t-junk", "b", FleetPolicy::default()).await;
    let a_db = a.breaker("db").await;
    let b_db = b.breaker("db").await;
    fail(&a_db).await;
    fail(&a_db).await;
    eventually(SOON, "b learns of a's trip", || b_db.state() == State::Open).await;
    assert_eq!(fleet_state(&server, key).await.as_deref(), Some("open"));
    assert_eq!(b.count(unreachable), 0, "{:?}", b.events());
    let repaired = |e: &FleetEvent| matches!(e, FleetEvent::StateRepaired { .. });
    assert_eq!(
        a.count(repaired) + b.count(repaired),
        1,
        "said once: {:?} {:?}",
        a.events(),
        b.events()
    );
}

/// Issue 15, item 6: `Fleet::breaker` waits at most the command timeout,
/// even when the sync task is busy with a round on a hung server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_a_breaker_waits_at_most_the_command_timeout() {
    let Some(server) = redis() else { return };
    let limit = Duration::from_secs(1);
    let a = Replica::with(&server, "t-wait", "a", FleetPolicy::default(), |b| {
        b.command_timeout(limit).probe_lease(limit * 5)
    })
    .await;
    let _db = a.breaker("db").await;
    server.pause();
    // A round is now stuck on the hung server.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let started = Instant::now();
    let cache = a.breaker("cache").await;
    let waited = started.elapsed();
    eprintln!("waited {waited:?}");
    server.resume();
    assert!(
        waited < limit + Duration::from_millis(350),
        "waited {waited:?}, the limit is {limit:?}"
    );
    assert!(succeed(&cache).await);
}

/// Issue 15: replicas that run different fleet settings for one breaker (a
/// rollout) judge it by the same settings, the stored ones (the replica's
/// that created the state), and the others are told once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_stored_with_the_state_win_and_a_replica_that_differs_is_told() {
    let Some(server) = redis() else { return };
    let first = FleetPolicy::default().without_failure_rate();
    let a = Replica::start(&server, "t-settings", "a", first).await;
    let a_db = a.breaker("db").await;
    let b = Replica::start(&server, "t-settings", "b", first.quorum(2)).await;
    let b_db = b.breaker("db").await;
    let differs = |e: &FleetEvent| format!("{e:?}").starts_with("SettingsDiffer");
    several_syncs().await;
    // b trips: by the fleet's quorum of 1 (a's), not b's own 2.
    fail(&b_db).await;
    fail(&b_db).await;
    eventually(SOON, "a opens: the stored quorum of 1 applies", || {
        a_db.state() == State::Open
    })
    .await;
    assert_eq!(b.count(differs), 1, "b is told once: {:?}", b.events());
    assert!(!a.saw(differs), "a runs the fleet's settings");
}

/// Issue 15: operators open and close a breaker fleet-wide, from any
/// handle (even one without that breaker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_opens_and_closes_a_breaker_fleet_wide() {
    let Some(server) = redis() else { return };
    let policy = FleetPolicy::default();
    let a = Replica::start(&server, "t-force", "a", policy).await;
    let b = Replica::start(&server, "t-force", "b", policy).await;
    let operator = Replica::start(&server, "t-force", "ops", policy).await;
    let a_db = a.breaker("db").await;
    let b_db = b.breaker("db").await;
    // A period under 1 ms is refused, naming the setting.
    let refused = operator
        .fleet
        .force_open("db", Duration::from_micros(999))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("force_open period") && refused.contains("at least 1 ms"),
        "{refused}"
    );
    operator
        .fleet
        .force_open("db", Duration::from_secs(60))
        .await
        .unwrap();
    eventually(SOON, "both open", || {
        a_db.state() == State::Open && b_db.state() == State::Open
    })
    .await;
    let refused = b_db
        .execute(|| async { Ok::<(), Boom>(()) })
        .await
        .unwrap_err();
    let retry = refused.rejected().unwrap().retry_after().unwrap();
    assert!(
        retry > Duration::from_secs(50),
        "the operator's minute: {retry:?}"
    );

    operator.fleet.force_close("db").await.unwrap();
    eventually(SOON, "both closed", || {
        a_db.state() == State::Closed && b_db.state() == State::Closed
    })
    .await;
    assert!(succeed(&a_db).await && succeed(&b_db).await);
    // The order stored no settings: nobody is told their settings differ.
    let differs = |e: &FleetEvent| matches!(e, FleetEvent::SettingsDiffer { .. });
    assert!(!a.saw(differs) && !b.saw(differs));
}

/// A fleet that closes while a replica is cut off: the replica closes when
/// it is back (it used to stay open for the rest of the fleet's period,
/// having let go of the breaker when it lost Redis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_made_while_a_replica_was_away_reaches_it_when_it_is_back() {
    let Some(server) = redis() else { return };
    let policy = FleetPolicy::default();
    let a = Replica::start(&server, "t-away", "a", policy).await;
    let b = Replica::start(&server, "t-away", "b", policy).await;
    let operator = Replica::start(&server, "t-away", "ops", policy).await;
    let a_db = a.breaker("db").await;
    let b_db = b.breaker("db").await;
    fail(&a_db).await;
    fail(&a_db).await;
    eventually(SOON, "b open", || b_db.state() == State::Open).await;

    // Nobody may subscribe: cut the subscriptions, and they cannot come back.
    let _: () = query(&server, &["ACL", "SETUSER", "default", "-subscribe"]).await;
    let _: i64 = query(&server, &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    eventually(SOON, "b is cut off", || b.saw(unreachable)).await;
    operator.fleet.force_close("db").await.unwrap();
    several_syncs().await;
    assert_eq!(b_db.state(), State::Open, "b cannot know yet");

    let _: () = query(&server, &["ACL", "SETUSER", "default", "+subscribe"]).await;
    eventually(SOON, "b closes once back", || b_db.state() == State::Closed).await;
    eventually(SOON, "a too", || a_db.state() == State::Closed).await;
}
