//! tripswitch against its peers, one criterion run: closed path per policy,
//! rejected path, half-open admission, two threads on one breaker, and the
//! mass wake-up of 10,000 waiting calls against tokio's `Notify`.
//!
//! `cargo bench -p tripswitch-benches` runs it all; BENCHMARKS.md has the results.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tripswitch_benches::{CASES, case, consume};

/// Calls per measured iteration (one `block_on` each).
const BATCH: u64 = 1_000;

fn single_thread(c: &mut Criterion) {
    let mut groups: Vec<&str> = CASES
        .iter()
        .map(|name| name.split('/').next().unwrap())
        .collect();
    groups.dedup();
    for group_name in groups {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(BATCH));
        for name in CASES
            .iter()
            .filter(|n| n.starts_with(&format!("{group_name}/")))
        {
            let mut runner = case(name).expect("known case");
            let label = name.split('/').nth(1).unwrap();
            group.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| runner(BATCH))
            });
        }
        group.finish();
    }
}

/// Two threads hammering one closed breaker: total calls per second.
fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("two-threads");
    group.throughput(Throughput::Elements(2 * BATCH));
    for name in [
        "closed-consecutive/bare",
        "closed-consecutive/tripswitch-seed",
        "closed-consecutive/tripswitch",
        "closed-consecutive/failsafe",
        "closed-count-window/recloser",
        "closed-consecutive/tower-resilience",
        "closed-time-window/tripswitch",
        "closed-time-window/tripswitch-tsc",
        "closed-time-window/failsafe",
    ] {
        let label = match name.split_once('/') {
            Some(("closed-time-window", peer)) => format!("time-window-{peer}"),
            Some((_, peer)) => peer.to_owned(),
            None => name.to_owned(),
        };
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iterations| {
                // One shared breaker; each thread makes `iterations × BATCH` calls.
                let runner = shared_runner(name);
                let barrier = Arc::new(Barrier::new(2));
                let running = Arc::new(AtomicUsize::new(0));
                let threads: Vec<_> = (0..2)
                    .map(|_| {
                        let runner = runner.clone();
                        let barrier = Arc::clone(&barrier);
                        let running = Arc::clone(&running);
                        std::thread::spawn(move || {
                            barrier.wait();
                            // Start the clock only once both threads are
                            // on a CPU: a thread woken late from the barrier
                            // (tens of microseconds on a VM) would otherwise
                            // run its short samples alone, and the figure
                            // would be two single-thread runs, not contention.
                            running.fetch_add(1, Ordering::AcqRel);
                            while running.load(Ordering::Acquire) < 2 {
                                std::hint::spin_loop();
                            }
                            let start = Instant::now();
                            for _ in 0..iterations {
                                runner(BATCH);
                            }
                            start.elapsed()
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .map(|t| t.join().expect("bench thread"))
                    .max()
                    .unwrap_or_default()
            });
        });
    }
    group.finish();
}

/// A runner that can be called from two threads at once on one breaker.
fn shared_runner(name: &'static str) -> Arc<dyn Fn(u64) + Send + Sync> {
    use tripswitch_benches::{operation, tripswitch_consecutive};
    fn calls<F, Fut>(n: u64, call: F)
    where
        F: Fn(u64) -> Fut,
        Fut: std::future::Future,
    {
        futures::executor::block_on(async {
            for i in 0..n {
                consume(&call(i).await);
            }
        });
    }
    match name {
        "closed-consecutive/bare" => Arc::new(|n| calls(n, operation)),
        "closed-consecutive/tripswitch-seed" => {
            let breaker = tripswitch::CircuitBreaker::new();
            Arc::new(move |n| calls(n, |i| breaker.execute(move || operation(i))))
        }
        "closed-consecutive/tripswitch" => {
            let breaker = tripswitch_consecutive();
            Arc::new(move |n| calls(n, |i| breaker.execute(move || operation(i))))
        }
        "closed-time-window/tripswitch" => {
            let breaker = tripswitch_benches::tripswitch_time_window();
            Arc::new(move |n| calls(n, |i| breaker.execute(move || operation(i))))
        }
        "closed-time-window/tripswitch-tsc" => {
            let breaker = tripswitch_benches::tripswitch_time_window_tsc();
            Arc::new(move |n| calls(n, |i| breaker.execute(move || operation(i))))
        }
        "closed-time-window/failsafe" => {
            use failsafe::futures::CircuitBreaker as _;
            let breaker = failsafe::Config::new().build();
            Arc::new(move |n| calls(n, |i| breaker.call(operation(i))))
        }
        "closed-consecutive/failsafe" => {
            use failsafe::futures::CircuitBreaker as _;
            let breaker = failsafe::Config::new()
                .failure_policy(failsafe::failure_policy::consecutive_failures(
                    5,
                    failsafe::backoff::constant(Duration::from_secs(3600)),
                ))
                .build();
            Arc::new(move |n| calls(n, |i| breaker.call(operation(i))))
        }
        "closed-count-window/recloser" => {
            let breaker = recloser::AsyncRecloser::from(
                recloser::Recloser::custom()
                    .error_rate(0.5)
                    .closed_len(100)
                    .build(),
            );
            Arc::new(move |n| calls(n, |i| breaker.call(operation(i))))
        }
        "closed-consecutive/tower-resilience" => {
            use tower::{Layer, Service, ServiceExt};
            let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
                .consecutive_failures(5)
                .build()
                .expect("valid");
            let service = layer.layer(tower::service_fn(operation));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime");
            let runtime = Arc::new(runtime);
            Arc::new(move |n| {
                let _guard = runtime.enter();
                // Clones share the breaker, as a tower service's clones do.
                let mut service = service.clone();
                futures::executor::block_on(async {
                    for i in 0..n {
                        if let Ok(ready) = service.ready().await {
                            consume(&ready.call(i).await);
                        }
                    }
                });
            })
        }
        other => panic!("no shared runner for {other}"),
    }
}

/// 10,000 calls wait on an open breaker; measured: from the end of the freeze
/// until every one of them has run. Against tokio's `Notify::notify_waiters`
/// waking 10,000 waiting tasks, on the same runtime.
fn mass_wake_up(c: &mut Criterion) {
    const WAITERS: usize = 10_000;
    let mut group = c.benchmark_group("wake-10k");
    group.sample_size(20);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");

    group.bench_function("tokio-notify", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                total += runtime.block_on(async {
                    let notify = Arc::new(tokio::sync::Notify::new());
                    let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    let mut tasks = Vec::with_capacity(WAITERS);
                    for _ in 0..WAITERS {
                        let (notify, ready) = (Arc::clone(&notify), Arc::clone(&ready));
                        tasks.push(tokio::spawn(async move {
                            let notified = notify.notified();
                            tokio::pin!(notified);
                            notified.as_mut().enable();
                            ready.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            notified.await;
                        }));
                    }
                    while ready.load(std::sync::atomic::Ordering::Relaxed) < WAITERS {
                        tokio::task::yield_now().await;
                    }
                    let start = Instant::now();
                    notify.notify_waiters();
                    for task in tasks {
                        task.await.expect("task");
                    }
                    start.elapsed()
                });
            }
            total
        });
    });

    group.bench_function("tripswitch", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                total += runtime.block_on(async {
                    let (release, released) = tokio::sync::oneshot::channel::<()>();
                    let released = std::sync::Mutex::new(Some(released));
                    let breaker = Arc::new(
                        tripswitch::CircuitBreaker::builder()
                            .freeze_with(move || {
                                let rx = released.lock().expect("lock").take();
                                async move {
                                    if let Some(rx) = rx {
                                        let _ = rx.await;
                                    }
                                }
                            })
                            .build(),
                    );
                    breaker.acquire().await.expect("closed").failure(&"trip");
                    let mut tasks = Vec::with_capacity(WAITERS);
                    for i in 0..WAITERS as u64 {
                        let breaker = Arc::clone(&breaker);
                        tasks.push(tokio::spawn(async move {
                            black_box(breaker.execute(|| tripswitch_benches::operation(i)).await)
                        }));
                    }
                    while breaker.metrics().waiting < WAITERS {
                        tokio::task::yield_now().await;
                    }
                    let start = Instant::now();
                    release.send(()).expect("release");
                    for task in tasks {
                        task.await.expect("task").expect("released");
                    }
                    start.elapsed()
                });
            }
            total
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = single_thread, two_threads, mass_wake_up
}
criterion_main!(benches);
