//! What a shared store costs: the closed path of a breaker attached to a
//! fleet against the same breaker alone (same executor, same run), and how
//! long a trip takes to reach another replica through a real `redis-server`
//! on loopback.
//!
//! `cargo bench -p tripswitch-redis` (needs `redis-server` on the PATH;
//! without it the fleet cases are skipped with a message).

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tripswitch::{CircuitBreaker, HalfOpen, State};
use tripswitch_redis::{Fleet, FleetOpenPeriod, FleetPolicy};

#[path = "../tests/common/mod.rs"]
mod common;

fn local_settings() -> tripswitch::Builder {
    CircuitBreaker::builder()
        .consecutive_failures(2)
        .half_open(HalfOpen::probes(1))
        .fail_fast()
}

/// Runs `iters` successful calls in one `block_on`, so that the executor's
/// own cost is spread over the batch.
fn closed_calls(
    runtime: &tokio::runtime::Runtime,
    breaker: &CircuitBreaker,
    iters: u64,
) -> Duration {
    let start = Instant::now();
    runtime.block_on(async {
        for _ in 0..iters {
            let result = breaker.execute(|| async { Ok::<u64, ()>(1) }).await;
            black_box(result).ok();
        }
    });
    start.elapsed()
}

async fn replica(url: &str, id: &str, interval: Duration) -> (Fleet, CircuitBreaker) {
    let fleet = Fleet::builder(url)
        .prefix("bench")
        .replica_id(id)
        .sync_interval(interval)
        .policy(FleetPolicy::default().without_failure_rate())
        .open_period(FleetOpenPeriod::fixed(Duration::from_millis(1)))
        .connect()
        .await
        .expect("fleet");
    let breaker = fleet
        .breaker("db", local_settings())
        .await
        .expect("breaker");
    (fleet, breaker)
}

fn shared_store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let local = local_settings().try_build().unwrap();
    let mut group = c.benchmark_group("closed_path");
    group.bench_function("local breaker", |b| {
        b.iter_custom(|iters| closed_calls(&runtime, &local, iters))
    });

    let Some(server) = common::redis() else {
        return;
    };
    let url = server.url();
    let (_fleet_a, attached) = runtime.block_on(replica(&url, "a", Duration::from_millis(100)));
    group.bench_function("fleet breaker (Redis attached)", |b| {
        b.iter_custom(|iters| closed_calls(&runtime, &attached, iters))
    });
    group.finish();

    // Propagation: a trip on replica `a` until replica `b` is open.
    let (a, b) = runtime.block_on(async {
        (
            replica(&url, "p-a", Duration::from_millis(5)).await,
            replica(&url, "p-b", Duration::from_millis(5)).await,
        )
    });
    let mut group = c.benchmark_group("propagation");
    group.sample_size(20);
    group.bench_function("trip to another replica open", |bench| {
        bench.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Start from a closed fleet.
                    while a.1.state() != State::Closed || b.1.state() != State::Closed {
                        let _ = a.1.execute(|| async { Ok::<(), ()>(()) }).await;
                        let _ = b.1.execute(|| async { Ok::<(), ()>(()) }).await;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    let start = Instant::now();
                    let _ = a.1.execute(|| async { Err::<(), ()>(()) }).await;
                    let _ = a.1.execute(|| async { Err::<(), ()>(()) }).await;
                    while b.1.state() != State::Open {
                        tokio::task::yield_now().await;
                    }
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.finish();
    drop(server);
}

criterion_group!(benches, shared_store);
criterion_main!(benches);
