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
use tripswitch_benches::{CASES, SHARED_CASES, case, shared_case};

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
    for &name in SHARED_CASES {
        let label = match name.split_once('/') {
            Some(("closed-time-window", peer)) => format!("time-window-{peer}"),
            Some((_, peer)) => peer.to_owned(),
            None => name.to_owned(),
        };
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iterations| {
                // One shared breaker; each thread makes `iterations × BATCH` calls.
                let runner = shared_case(name).expect("known shared case");
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

    // The same, each waiting task also holding a tokio sleep of its own
    // (as a waiting call holds its alarm, so that it never depends on
    // another task being run to see its period end): the floor of a wake-up
    // with that guarantee, built on `Notify`.
    group.bench_function("tokio-notify-with-own-alarm", |b| {
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
                            let alarm = tokio::time::sleep(Duration::from_secs(300));
                            tokio::pin!(alarm);
                            ready.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tokio::select! {
                                () = notified => {}
                                () = alarm => {}
                            }
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
