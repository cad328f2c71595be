//! Many breakers per replica, several replicas, through a relay that adds a
//! round trip: registration cost, sync rounds, Redis load and trip
//! propagation. CI runs a small fleet; the issue's figure (5,000 breakers ×
//! 10 replicas) is the ignored test:
//!
//! ```text
//! cargo test --release -p tripswitch-redis --test scale -- --ignored --nocapture
//! ```
//!
//! Settings for either: `TRIPSWITCH_SCALE_BREAKERS`, `_REPLICAS`,
//! `_ACTIVE` (the share of breakers with calls in every interval, 0 to 1),
//! `_RTT_US` (the added round trip), `_SECONDS` (steady state), `_TRIPS`
//! (trips timed for propagation, 40).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::redis;
use common::relay::relay;
use tripswitch::{CircuitBreaker, State};
use tripswitch_redis::{Fleet, FleetEvent, FleetOpenPeriod, FleetPolicy};

struct Shape {
    breakers: usize,
    replicas: usize,
    active: f64,
    rtt: Duration,
    seconds: u64,
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(format!("TRIPSWITCH_SCALE_{name}"))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Shape {
    fn from_env(breakers: usize, replicas: usize, active: f64, seconds: u64) -> Shape {
        Shape {
            breakers: setting("BREAKERS", breakers),
            replicas: setting("REPLICAS", replicas),
            active: setting("ACTIVE", active),
            rtt: Duration::from_micros(setting("RTT_US", 1000)),
            seconds: setting("SECONDS", seconds),
        }
    }
}

async fn query<T: redis::FromRedisValue>(
    connection: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> T {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(connection).await.unwrap()
}

/// A number from an `INFO` section: `field:value` or `field:...name=value`.
async fn info(
    connection: &mut redis::aio::MultiplexedConnection,
    section: &str,
    field: &str,
    name: Option<&str>,
) -> f64 {
    let text: String = query(connection, &["INFO", section]).await;
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or("0");
    let value = match name {
        Some(name) => line
            .split(',')
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .unwrap_or("0"),
        None => line,
    };
    value.trim().parse().unwrap_or(0.0)
}

/// Per command: (calls, µs) from `INFO commandstats` (inside scripts included).
async fn commandstats(
    connection: &mut redis::aio::MultiplexedConnection,
) -> std::collections::BTreeMap<String, (f64, f64)> {
    let text: String = query(connection, &["INFO", "commandstats"]).await;
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| {
                rest.split(',')
                    .find_map(|part| part.strip_prefix(&format!("{key}=")))
                    .and_then(|value| value.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            Some((name.to_string(), (field("calls"), field("usec"))))
        })
        .collect()
}

/// This process's CPU time (user + system), from /proc.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

struct Measured {
    register_calls_per_breaker: f64,
    max_sync_age: Duration,
    propagation: Vec<Duration>,
}

async fn run(shape: Shape) -> Measured {
    let server = redis().expect("redis-server");
    let port = relay(server.port, shape.rtt / 2);
    let url = format!("redis://127.0.0.1:{port}/");
    let mut admin = server.connection().await;
    let sync = Duration::from_millis(100);
    eprintln!(
        "scale: {} breakers x {} replicas, {:.0}% active per interval, {:?} added round trip",
        shape.breakers,
        shape.replicas,
        shape.active * 100.0,
        shape.rtt
    );

    // Lost links (a pipeline unanswered within the command timeout), over
    // every replica: a saturated Redis shows here first.
    let outages = Arc::new(AtomicU64::new(0));
    // Registration.
    let before = info(&mut admin, "commandstats", "cmdstat_evalsha", Some("calls")).await;
    let started = Instant::now();
    let mut replicas = Vec::new();
    for r in 0..shape.replicas {
        let fleet = Fleet::builder(url.clone())
            .prefix("scale")
            .replica_id(format!("r{r}"))
            .sync_interval(sync)
            .policy(FleetPolicy::default().without_failure_rate())
            .open_period(FleetOpenPeriod::fixed(Duration::from_secs(600)))
            .on_event({
                let outages = outages.clone();
                move |event| {
                    if matches!(event, FleetEvent::Unreachable { .. }) {
                        outages.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .connect()
            .await
            .unwrap();
        // Registered concurrently, as a service attaching its breakers at
        // start-up would: the sync task syncs whatever arrived together.
        let mut joins = tokio::task::JoinSet::new();
        for k in 0..shape.breakers {
            let fleet = fleet.clone();
            joins.spawn(async move {
                let local = CircuitBreaker::builder()
                    .consecutive_failures(2)
                    .fail_fast();
                (k, fleet.breaker(&format!("b{k}"), local).await.unwrap())
            });
        }
        let mut breakers: Vec<Option<CircuitBreaker>> = vec![None; shape.breakers];
        while let Some(joined) = joins.join_next().await {
            let (k, breaker) = joined.unwrap();
            breakers[k] = Some(breaker);
        }
        let breakers: Vec<CircuitBreaker> = breakers.into_iter().map(Option::unwrap).collect();
        replicas.push((fleet, Arc::new(breakers)));
    }
    let registered = started.elapsed();
    let after = info(&mut admin, "commandstats", "cmdstat_evalsha", Some("calls")).await;
    let total = (shape.breakers * shape.replicas) as f64;
    // Rounds also ran meanwhile (every breaker is new, so due): an upper bound.
    let register_calls_per_breaker = (after - before) / total;
    eprintln!(
        "registration: {:?} for {} breakers ({:.1} ms each), {:.2} script calls per breaker (rounds included)",
        registered,
        total,
        registered.as_secs_f64() * 1000.0 / total,
        register_calls_per_breaker
    );

    // Steady state: calls on the active share of breakers at every interval.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let mut drivers = Vec::new();
    let active = ((shape.breakers as f64) * shape.active).round() as usize;
    for (r, (_, breakers)) in replicas.iter().enumerate() {
        let (breakers, stop, calls) = (breakers.clone(), stop.clone(), calls.clone());
        drivers.push(tokio::spawn(async move {
            let mut offset = r * 7;
            while !stop.load(Ordering::Acquire) {
                for i in 0..active {
                    let breaker = &breakers[(offset + i) % breakers.len()];
                    let _ = breaker.execute(|| async { Ok::<(), ()>(()) }).await;
                }
                calls.fetch_add(active as u64, Ordering::Relaxed);
                offset += active;
                tokio::time::sleep(sync).await;
            }
        }));
    }
    // Let the rounds settle, then measure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let commands0 = info(&mut admin, "stats", "total_commands_processed", None).await;
    let evalsha0 = info(&mut admin, "commandstats", "cmdstat_evalsha", Some("calls")).await;
    let redis_cpu0 = info(&mut admin, "cpu", "used_cpu_sys", None).await
        + info(&mut admin, "cpu", "used_cpu_user", None).await;
    let cpu0 = process_cpu();
    let stats0 = commandstats(&mut admin).await;
    let outages0 = outages.load(Ordering::Relaxed);
    let calls0 = calls.load(Ordering::Relaxed);
    let measuring = Instant::now();
    let mut max_sync_age = Duration::ZERO;
    let mut max_round = Duration::ZERO;
    let mut largest_round = 0;
    while measuring.elapsed() < Duration::from_secs(shape.seconds) {
        for (fleet, _) in &replicas {
            if let Some(status) = fleet.sync_status() {
                max_sync_age = max_sync_age.max(status.age);
                max_round = max_round.max(status.took);
                largest_round = largest_round.max(status.breakers);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = measuring.elapsed().as_secs_f64();
    let commands = info(&mut admin, "stats", "total_commands_processed", None).await - commands0;
    let evalsha =
        info(&mut admin, "commandstats", "cmdstat_evalsha", Some("calls")).await - evalsha0;
    let redis_cpu = info(&mut admin, "cpu", "used_cpu_sys", None).await
        + info(&mut admin, "cpu", "used_cpu_user", None).await
        - redis_cpu0;
    let cpu = process_cpu() - cpu0;
    let stats = commandstats(&mut admin).await;
    let mut spent: Vec<String> = stats
        .iter()
        .map(|(name, (calls, usec))| {
            let (calls0, usec0) = stats0.get(name).copied().unwrap_or_default();
            (name, calls - calls0, usec - usec0)
        })
        .filter(|(_, calls, _)| *calls > 0.0)
        .map(|(name, calls, usec)| {
            format!(
                "{name} {:.0}/s {:.1} us each",
                calls / seconds,
                usec / calls
            )
        })
        .collect();
    spent.sort();
    let driven = calls.load(Ordering::Relaxed) - calls0;
    let lost = outages.load(Ordering::Relaxed) - outages0;
    eprintln!(
        "steady state over {seconds:.1} s: Redis {:.0} commands/s ({:.0} script calls/s), Redis CPU {:.0}% of a core; \
         test process CPU {:.1}% of a core per replica (driving {:.0} calls/s in all); \
         largest round {largest_round} breakers, slowest round {max_round:?}, oldest last sync {max_sync_age:?}, \
         {lost} links lost",
        commands / seconds,
        evalsha / seconds,
        redis_cpu / seconds * 100.0,
        cpu.as_secs_f64() / seconds * 100.0 / shape.replicas as f64,
        driven as f64 / seconds,
    );

    // Propagation: a trip on replica 0 until every other replica is open.
    let trips = setting("TRIPS", 40).min(shape.breakers);
    let mut propagation = Vec::new();
    for t in 0..trips {
        let k = shape.breakers - 1 - t;
        let tripping = replicas[0].1[k].clone();
        let others: Vec<CircuitBreaker> = replicas[1..].iter().map(|(_, b)| b[k].clone()).collect();
        let _ = tripping.execute(|| async { Err::<(), ()>(()) }).await;
        let _ = tripping.execute(|| async { Err::<(), ()>(()) }).await;
        let tripped = Instant::now();
        let times = tokio::task::spawn_blocking(move || {
            let mut times = vec![None; others.len()];
            while times.iter().any(Option::is_none) {
                for (i, other) in others.iter().enumerate() {
                    if times[i].is_none() && other.state() == State::Open {
                        times[i] = Some(tripped.elapsed());
                    }
                }
                if tripped.elapsed() > Duration::from_secs(30) {
                    // Not propagated: counted as 30 s (check() fails on it).
                    for time in times.iter_mut().filter(|time| time.is_none()) {
                        *time = Some(tripped.elapsed());
                    }
                    break;
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            times
        })
        .await
        .unwrap();
        propagation.extend(times.into_iter().flatten());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    propagation.sort();
    eprintln!(
        "commands (EVALSHA's time includes the commands it calls): {}",
        spent.join(", ")
    );
    eprintln!(
        "propagation of {trips} trips to {} replicas: p50 {:?}, p99 {:?}, max {:?}",
        shape.replicas - 1,
        percentile(&propagation, 0.5),
        percentile(&propagation, 0.99),
        propagation.last().copied().unwrap_or_default()
    );
    stop.store(true, Ordering::Release);
    for driver in drivers {
        driver.await.unwrap();
    }
    Measured {
        register_calls_per_breaker,
        max_sync_age,
        propagation,
    }
}

/// `slack`: how many times the documented bound a measurement may take.
/// CI's debug build shares two cores with the rest of the workspace's
/// tests, so it allows twice the bound (a regression to the old design
/// gave seconds); the release run of the full test allows none.
fn check(measured: &Measured, slack: u32) {
    // Registering syncs the new breaker alone (plus the rounds that ran
    // meanwhile, at most one read per breaker each).
    assert!(
        measured.register_calls_per_breaker < 20.0,
        "registration is O(1) per breaker: {:.1} script calls each",
        measured.register_calls_per_breaker
    );
    // The documented bounds: sync_interval + command_timeout (350 ms).
    let bound = Duration::from_millis(350) * slack;
    assert!(
        measured.max_sync_age < bound,
        "every replica synced within the bound: oldest {:?}",
        measured.max_sync_age
    );
    let p99 = percentile(&measured.propagation, 0.99);
    assert!(p99 < bound, "propagation p99 {p99:?} within the bound");
}

/// CI's version: small enough for two shared cores, through the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_hundred_breakers_per_replica_over_a_slower_link() {
    if redis().is_none() {
        return;
    }
    let measured = run(Shape::from_env(300, 3, 1.0, 2)).await;
    check(&measured, 2);
}

/// The issue's figure: 5,000 breakers on each of 10 replicas, 10 % of them
/// active in every interval (about 50,000 reports a second, which one
/// Redis keeps up with at about half a core here: see BENCHMARKS.md;
/// `TRIPSWITCH_SCALE_ACTIVE=0.2` shows it saturate).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "minutes of full load; run with --release -- --ignored --nocapture (see the file's header)"]
async fn five_thousand_breakers_on_ten_replicas() {
    let measured = run(Shape::from_env(5000, 10, 0.1, 5)).await;
    check(&measured, 1);
}
