//! What a report costs Redis, which bounds how large a fleet one server
//! keeps up with (issue 15's scale leftover): successes to a closed breaker
//! go as the script's short form, a breaker whose reports confirm its state
//! is not read besides, a short report whose answer was lost is not counted
//! twice, and housekeeping prunes what replicas that are gone left. Each
//! runs against a private `redis-server` on loopback.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{RedisServer, eventually, redis};
use tripswitch::CircuitBreaker;
use tripswitch_redis::{Fleet, FleetEvent, FleetOpenPeriod, FleetPolicy};

#[derive(Debug)]
struct Boom;

const SOON: Duration = Duration::from_secs(5);

async fn fleet(
    server: &RedisServer,
    prefix: &str,
    events: Option<std::sync::mpsc::Sender<FleetEvent>>,
) -> Fleet {
    let mut builder = Fleet::builder(server.url())
        .prefix(prefix)
        .replica_id("a")
        .sync_interval(Duration::from_millis(20))
        .command_timeout(Duration::from_millis(150))
        .policy(FleetPolicy::default().without_failure_rate().quorum(2))
        .open_period(FleetOpenPeriod::fixed(Duration::from_secs(30)));
    if let Some(events) = events {
        let events = std::sync::Mutex::new(events);
        builder = builder.on_event(move |event| {
            let _ = events.lock().unwrap().send(event.clone());
        });
    }
    builder.connect().await.unwrap()
}

async fn breaker(fleet: &Fleet, name: &str) -> CircuitBreaker {
    let local = CircuitBreaker::builder()
        .consecutive_failures(5)
        .fail_fast();
    fleet.breaker(name, local).await.unwrap()
}

async fn succeed(breaker: &CircuitBreaker) {
    assert!(
        breaker
            .execute(|| async { Ok::<(), Boom>(()) })
            .await
            .is_ok()
    );
}

async fn query<T: redis::FromRedisValue>(server: &RedisServer, command: &[&str]) -> T {
    let mut connection = server.connection().await;
    let mut cmd = redis::cmd(command[0]);
    for arg in &command[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut connection).await.unwrap()
}

/// Calls per command since the last `CONFIG RESETSTAT` (script calls included).
async fn calls(server: &RedisServer) -> HashMap<String, u64> {
    let text: String = query(server, &["INFO", "commandstats"]).await;
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

/// [`query`] on a blocking connection (for `eventually`'s conditions).
fn ask<T: redis::FromRedisValue>(server: &RedisServer, command: &[&str]) -> T {
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_connection().unwrap();
    let mut cmd = redis::cmd(command[0]);
    for arg in &command[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut connection).unwrap()
}

/// [`counted`], blocking.
fn counted_now(server: &RedisServer, key: &str) -> u64 {
    let fields: HashMap<String, String> = ask(server, &["HGETALL", key]);
    fields
        .iter()
        .filter(|(field, _)| field.starts_with('w'))
        .filter_map(|(_, slot)| slot.split('|').nth(2)?.parse::<u64>().ok())
        .sum()
}

/// The calls counted in a breaker's window (fields `w<i>` of its hash, each
/// `bucket|epoch|calls|failures`: the layout is in fleet.lua's header).
async fn counted(server: &RedisServer, key: &str) -> u64 {
    let fields: HashMap<String, String> = query(server, &["HGETALL", key]).await;
    fields
        .iter()
        .filter(|(field, _)| field.starts_with('w'))
        .filter_map(|(_, slot)| slot.split('|').nth(2)?.parse::<u64>().ok())
        .sum()
}

/// Successes to a closed breaker are sent in the script's short form (nine
/// arguments; TIME, HMGET and HSET on the server), which the script takes:
/// no full report follows, and every call is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successes_to_a_closed_breaker_take_the_short_form() {
    let Some(server) = redis() else { return };
    let a = fleet(&server, "c-short", None).await;
    let db = breaker(&a, "db").await;
    // The first report of a breaker is a full one (it makes its state).
    succeed(&db).await;
    eventually(SOON, "counted", || {
        counted_now(&server, "c-short:{db}:state") == 1
    })
    .await;
    let _: () = query(&server, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).await;
    let _: () = query(&server, &["CONFIG", "SET", "slowlog-max-len", "10000"]).await;
    let _: () = query(&server, &["SLOWLOG", "RESET"]).await;
    let _: () = query(&server, &["CONFIG", "RESETSTAT"]).await;
    for _ in 0..20 {
        succeed(&db).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let calls = calls(&server).await;
    assert_eq!(counted(&server, "c-short:{db}:state").await, 21);
    let log: Vec<redis::Value> = query(&server, &["SLOWLOG", "GET", "10000"]).await;
    let mut forms: HashMap<String, usize> = HashMap::new();
    for entry in log {
        let redis::Value::Array(fields) = entry else {
            continue;
        };
        let Some(redis::Value::Array(args)) = fields.get(3) else {
            continue;
        };
        let args: Vec<String> = args
            .iter()
            .filter_map(|arg| redis::from_redis_value::<String>(arg.clone()).ok())
            .collect();
        if args
            .first()
            .is_some_and(|name| name.eq_ignore_ascii_case("evalsha"))
        {
            *forms
                .entry(args.get(4).cloned().unwrap_or_default())
                .or_default() += 1;
        }
    }
    let short = forms.get("count").copied().unwrap_or(0);
    assert!(short >= 10, "the reports went in the short form: {forms:?}");
    assert_eq!(forms.len(), 1, "and only in it: {forms:?}");
    let evalsha = calls.get("evalsha").copied().unwrap_or(0);
    assert_eq!(
        calls.get("hset").copied().unwrap_or(0),
        evalsha,
        "each wrote once: {calls:?}"
    );
    assert_eq!(
        calls.get("hmget").copied().unwrap_or(0),
        evalsha,
        "each read once: {calls:?}"
    );
    for costly in ["hgetall", "pexpire", "hincrby", "hdel", "publish"] {
        assert!(!calls.contains_key(costly), "no {costly}: {calls:?}");
    }
}

/// A breaker whose reports confirm its state (the short form's answer says
/// it is as this replica knows it) is not read besides, even when it has
/// calls in only some rounds; an idle one is read every ten rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_whose_reports_confirm_its_state_is_not_read_besides() {
    let Some(server) = redis() else { return };
    let a = fleet(&server, "c-read", None).await;
    let busy = breaker(&a, "busy").await;
    let _idle = breaker(&a, "idle").await;
    succeed(&busy).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _: () = query(&server, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).await;
    let _: () = query(&server, &["CONFIG", "SET", "slowlog-max-len", "10000"]).await;
    let _: () = query(&server, &["SLOWLOG", "RESET"]).await;
    // 1.5 s of rounds every 20 ms (about 75); the busy breaker has calls
    // in about one round of three.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        succeed(&busy).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let log: Vec<redis::Value> = query(&server, &["SLOWLOG", "GET", "10000"]).await;
    let mut reads: HashMap<String, usize> = HashMap::new();
    for entry in log {
        let redis::Value::Array(fields) = entry else {
            continue;
        };
        let Some(redis::Value::Array(args)) = fields.get(3) else {
            continue;
        };
        let args: Vec<String> = args
            .iter()
            .filter_map(|arg| redis::from_redis_value::<String>(arg.clone()).ok())
            .collect();
        if args
            .first()
            .is_some_and(|name| name.eq_ignore_ascii_case("hget"))
        {
            *reads
                .entry(args.get(1).cloned().unwrap_or_default())
                .or_default() += 1;
        }
    }
    assert!(
        reads.get("c-read:{idle}:state").copied().unwrap_or(0) >= 3,
        "the idle breaker is read every ten rounds: {reads:?}"
    );
    assert_eq!(
        reads.get("c-read:{busy}:state"),
        None,
        "the busy one is not: {reads:?}"
    );
}

/// A short report that timed out on the client but ran when Redis woke is
/// not counted again: its retry finds the record of what it added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_report_that_timed_out_but_ran_is_not_counted_twice() {
    let Some(server) = redis() else { return };
    let (events, said) = std::sync::mpsc::channel();
    let a = fleet(&server, "c-twice", Some(events)).await;
    let db = breaker(&a, "db").await;
    succeed(&db).await;
    eventually(SOON, "counted", || {
        counted_now(&server, "c-twice:{db}:state") == 1
    })
    .await;
    server.pause();
    for _ in 0..9 {
        succeed(&db).await;
    }
    let mut seen = Vec::new();
    let mut wait_for = |wanted: fn(&FleetEvent) -> bool, what: &str| {
        let deadline = std::time::Instant::now() + SOON;
        while !seen.iter().any(wanted) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match said.recv_timeout(left) {
                Ok(event) => seen.push(event),
                Err(_) => panic!("{what}: {seen:?}"),
            }
        }
    };
    wait_for(
        |e| matches!(e, FleetEvent::Unreachable { .. }),
        "the short report timed out",
    );
    server.resume();
    wait_for(|e| *e == FleetEvent::Reconnected, "reconnected");
    // Rounds every 20 ms: whatever was in flight landed long before.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        counted(&server, "c-twice:{db}:state").await,
        10,
        "10 calls counted once"
    );
}

/// Housekeeping, once a memory period per breaker: a gone replica's record
/// of reports is deleted, and the hash's TTL is set again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_prunes_what_gone_replicas_left() {
    let Some(server) = redis() else { return };
    let a = fleet(&server, "c-house", None).await;
    let db = breaker(&a, "db").await;
    succeed(&db).await;
    let key = "c-house:{db}:state";
    eventually(SOON, "counted", || counted_now(&server, key) == 1).await;
    // A replica gone long ago (its record from memory period 5), and the
    // next housekeeping due; no TTL meanwhile (as a stray PERSIST leaves it).
    let _: i64 = query(&server, &["HSET", key, "s:ghost", "00|7|0|5", "hk", "1"]).await;
    let _: i64 = query(&server, &["PERSIST", key]).await;
    succeed(&db).await;
    eventually(SOON, "the gone replica's record is deleted", || {
        let ghost: Option<String> = ask(&server, &["HGET", key, "s:ghost"]);
        ghost.is_none()
    })
    .await;
    let ttl: i64 = query(&server, &["PTTL", key]).await;
    assert!(ttl > 0, "the TTL is set again: {ttl}");
    let mine: Option<String> = query(&server, &["HGET", key, "s:a"]).await;
    assert!(mine.is_some(), "the live replica's record stays");
    let next: i64 = query(&server, &["HGET", key, "hk"]).await;
    assert!(next > 1, "the next housekeeping is a memory away: {next}");
}

/// Short reports of several breakers share a script call; a key broken
/// under one of them (another program's write) is that breaker's error
/// alone: the others in the same call are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_key_among_shared_short_reports_is_its_breakers_alone() {
    let Some(server) = redis() else { return };
    let (events, said) = std::sync::mpsc::channel();
    let a = fleet(&server, "c-batch", Some(events)).await;
    let good = breaker(&a, "good").await;
    let bad = breaker(&a, "bad").await;
    succeed(&good).await;
    succeed(&bad).await;
    eventually(SOON, "counted", || {
        counted_now(&server, "c-batch:{good}:state") == 1
            && counted_now(&server, "c-batch:{bad}:state") == 1
    })
    .await;
    let _: () = query(&server, &["SLOWLOG", "RESET"]).await;
    let _: () = query(&server, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).await;
    let _: i64 = query(&server, &["DEL", "c-batch:{bad}:state"]).await;
    let _: () = query(&server, &["SET", "c-batch:{bad}:state", "not a hash"]).await;
    for _ in 0..5 {
        succeed(&good).await;
        succeed(&bad).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    eventually(SOON, "the good breaker's calls are counted", || {
        counted_now(&server, "c-batch:{good}:state") == 6
    })
    .await;
    let failed: Vec<FleetEvent> = said.try_iter().collect();
    assert!(
        failed.iter().any(
            |e| matches!(e, FleetEvent::SyncFailed { breaker, error, .. }
            if &**breaker == "bad" && error.contains("WRONGTYPE"))
        ),
        "the bad one failed, by name: {failed:?}"
    );
    assert!(
        !failed
            .iter()
            .any(|e| matches!(e, FleetEvent::SyncFailed { breaker, .. } if &**breaker == "good")),
        "the good one did not: {failed:?}"
    );
    // Both went in one script call at least once.
    let log: Vec<redis::Value> = query(&server, &["SLOWLOG", "GET", "10000"]).await;
    let shared = log.iter().any(|entry| {
        let redis::Value::Array(fields) = entry else {
            return false;
        };
        let Some(redis::Value::Array(args)) = fields.get(3) else {
            return false;
        };
        let args: Vec<String> = args
            .iter()
            .filter_map(|arg| redis::from_redis_value::<String>(arg.clone()).ok())
            .collect();
        args.first()
            .is_some_and(|name| name.eq_ignore_ascii_case("evalsha"))
            && args.get(2).map(String::as_str) == Some("2")
    });
    assert!(shared, "the two short reports shared a call");
}
