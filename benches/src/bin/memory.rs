//! Memory per breaker, tripswitch against its peers, on the policies of the
//! benchmark cases: `cargo run --release -p tripswitch-benches --bin memory`.
//!
//! What is counted: the breaker value's own size (`size_of` of what the
//! caller keeps) plus every heap byte it owns, measured by a counting global
//! allocator (stats_alloc) as the bytes allocated and not freed between
//! before the build and after 1,000 calls on one thread (so that memory a
//! breaker allocates lazily on first use is counted too). Thread-local
//! memory a library keeps per thread (not per breaker) is not counted.

use std::alloc::System;
use std::mem::size_of_val;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer, Service, ServiceExt};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes a breaker built by `build` and used by `call` owns: its size plus
/// the heap it holds once built, and after 1,000 calls.
fn owned<B>(build: impl FnOnce() -> B, mut call: impl FnMut(&B, u64)) -> (usize, usize) {
    let region = Region::new(GLOBAL);
    let breaker = build();
    let built = region.change();
    for i in 0..1_000 {
        call(&breaker, i);
    }
    let used = region.change();
    let size = size_of_val(&breaker);
    drop(breaker);
    (
        size + built.bytes_allocated - built.bytes_deallocated,
        size + used.bytes_allocated - used.bytes_deallocated,
    )
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

fn main() {
    use tripswitch_benches::{operation, sync_operation};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    // Warm up the thread's own state (thread-locals, stripe claims) so that
    // it is not counted against the first breaker measured.
    let warm = tripswitch_benches::tripswitch_time_window();
    block_on(warm.execute(|| operation(0))).expect("closed");
    let _ = block_on(tripswitch::CircuitBreaker::new().execute(|| operation(0)));

    let tripswitch = |b: &tripswitch::CircuitBreaker, i| {
        let _ = block_on(b.execute(move || operation(i)));
    };
    let rows: Vec<(&str, (usize, usize))> = vec![
        (
            "tripswitch, default (CircuitBreaker::new)",
            owned(tripswitch::CircuitBreaker::new, tripswitch),
        ),
        (
            "tripswitch, consecutive failures (5)",
            owned(tripswitch_benches::tripswitch_consecutive, tripswitch),
        ),
        (
            "tripswitch, count window (100)",
            owned(tripswitch_benches::tripswitch_count_window, tripswitch),
        ),
        (
            "tripswitch, time window (60 s)",
            owned(tripswitch_benches::tripswitch_time_window, tripswitch),
        ),
        (
            "failsafe, consecutive failures (5)",
            owned(
                || {
                    failsafe::Config::new()
                        .failure_policy(failsafe::failure_policy::consecutive_failures(
                            5,
                            failsafe::backoff::constant(std::time::Duration::from_secs(3600)),
                        ))
                        .build()
                },
                |b, i| {
                    let _ = failsafe::CircuitBreaker::call(b, || sync_operation(i));
                },
            ),
        ),
        (
            "failsafe, default (time window)",
            owned(
                || failsafe::Config::new().build(),
                |b, i| {
                    let _ = failsafe::CircuitBreaker::call(b, || sync_operation(i));
                },
            ),
        ),
        (
            "recloser, count window (100)",
            owned(
                || {
                    recloser::Recloser::custom()
                        .error_rate(0.5)
                        .closed_len(100)
                        .build()
                },
                |b, i| {
                    let _ = b.call(|| sync_operation(i));
                },
            ),
        ),
        (
            "tower-resilience, count window (100)",
            owned(
                || {
                    let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
                        .failure_rate_threshold(0.5)
                        .sliding_window_size(100)
                        .minimum_number_of_calls(100)
                        .build()
                        .expect("valid");
                    std::cell::RefCell::new(layer.layer(tower::service_fn(operation)))
                },
                |service, i| {
                    let mut service = service.borrow_mut();
                    let _ = block_on(async {
                        let ready = service.ready().await.map_err(|_| ())?;
                        ready.call(i).await.map_err(|_| ())
                    });
                },
            ),
        ),
    ];
    println!("{:<44} {:>8} {:>12}", "breaker", "built", "after use");
    for (name, (built, used)) in rows {
        println!("{name:<44} {built:>8} {used:>12}");
    }
}
