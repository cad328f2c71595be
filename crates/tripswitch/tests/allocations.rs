//! Heap use: no allocation per call on the closed, rejected and half-open
//! paths, no memory growth with the number of state changes, and the heap
//! each configuration owns. Measured with a counting global allocator, in a
//! single test so that no other test's allocations are counted.

use std::alloc::System;
use std::time::Duration;

use futures::executor::block_on;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tripswitch::clock::FakeClock;
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{CircuitBreaker, HalfOpen, State};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CALLS: u64 = 10_000;

/// Allocations made by `CALLS` calls of `f`, after a warm-up: the fewest of
/// three rounds. The allocator counts every thread of the process, and on a
/// loaded machine the test harness's own thread was seen to allocate a few
/// times during a round; an allocation per call shows in every round.
fn allocations_per_run(mut f: impl FnMut(u64)) -> usize {
    for i in 0..100 {
        f(i);
    }
    (0..3)
        .map(|_| {
            let region = Region::new(GLOBAL);
            for i in 0..CALLS {
                f(i);
            }
            region.change().allocations
        })
        .min()
        .unwrap_or(0)
}

fn live_bytes() -> isize {
    let stats = GLOBAL.stats();
    // `bytes_allocated` and `bytes_deallocated` already include what
    // reallocations grew or shrank; `bytes_reallocated` is the same again.
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

#[test]
fn heap_use_per_call_and_per_state_change() {
    // ----- closed path
    let seed = CircuitBreaker::builder().clock(FakeClock::new()).build();
    let closed = allocations_per_run(|i| {
        let _ = block_on(seed.execute(|| async move { Ok::<_, ()>(i) }));
    });
    assert_eq!(closed, 0, "closed path, seed preset");

    let windowed = CircuitBreaker::builder()
        .clock(FakeClock::new())
        .failure_rate(FailureRate::new(0.5, Window::last_calls(100)))
        .slow_call_threshold(Duration::from_secs(1))
        .try_build()
        .unwrap();
    let closed_window = allocations_per_run(|i| {
        let _ =
            block_on(windowed.execute(|| async move { if i % 7 == 0 { Err(()) } else { Ok(i) } }));
    });
    assert_eq!(closed_window, 0, "closed path, count window with failures");

    // ----- rejected path
    let clock = FakeClock::new();
    let open = CircuitBreaker::builder()
        .clock(clock.clone())
        .freeze_for(Duration::from_secs(3600))
        .fail_fast()
        .build();
    let _ = block_on(open.execute(|| async { Err::<(), _>("trip") }));
    assert_eq!(open.state(), State::Open);
    let rejected = allocations_per_run(|i| {
        let result = block_on(open.execute(|| async move { Ok::<_, ()>(i) }));
        assert!(result.unwrap_err().is_rejected());
    });
    assert_eq!(rejected, 0, "rejected path");

    // ----- half-open path
    let half_open = CircuitBreaker::builder()
        .clock(clock.clone())
        .half_open(HalfOpen::probes(1).close_after(u32::MAX))
        .freeze_for(Duration::from_secs(1))
        .fail_fast()
        .try_build()
        .unwrap();
    let _ = block_on(half_open.execute(|| async { Err::<(), _>("trip") }));
    clock.advance(Duration::from_secs(1));
    assert_eq!(half_open.state(), State::HalfOpen);
    let probes = allocations_per_run(|i| {
        block_on(half_open.execute(|| async move { Ok::<_, ()>(i) })).unwrap();
    });
    assert_eq!(probes, 0, "half-open admission");
    assert_eq!(half_open.state(), State::HalfOpen);

    // ----- no growth with the number of state changes
    let clock = FakeClock::new();
    let cycling = CircuitBreaker::builder()
        .clock(clock.clone())
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_millis(1))
        .fail_fast()
        .try_build()
        .unwrap();
    let cycle = || {
        let _ = block_on(cycling.execute(|| async { Err::<(), _>("down") }));
        clock.advance(Duration::from_millis(1));
        block_on(cycling.execute(|| async { Ok::<_, ()>(()) })).unwrap();
    };
    for _ in 0..1_000 {
        cycle();
    }
    assert_eq!(cycling.state(), State::Closed);
    let after_a_thousand = live_bytes();
    for _ in 0..1_000_000 - 1_000 {
        cycle();
    }
    let after_a_million = live_bytes();
    assert_eq!(
        after_a_million, after_a_thousand,
        "live bytes after a million open/close cycles equal those after the first thousand"
    );

    on_tokio_clock();
    sizes_of_breakers();
}

/// The same paths on the default clock (tokio's, paused), with the
/// configurations whose calls do more: a time window (a clock read and a
/// per-thread cell per success), a named breaker's rejections (the name is
/// shared, not copied), and permits.
fn on_tokio_clock() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let timed = CircuitBreaker::builder()
            .failure_rate(FailureRate::new(0.5, Window::last(Duration::from_secs(60))))
            .fail_fast()
            .try_build()
            .unwrap();
        let closed = allocations_per_run(|i| {
            let _ =
                block_on(timed.execute(|| async move { if i % 5 == 0 { Err(()) } else { Ok(i) } }));
        });
        assert_eq!(closed, 0, "closed path, time window, tokio clock");

        let named = CircuitBreaker::builder()
            .name("inventory")
            .freeze_for(Duration::from_secs(3600))
            .fail_fast()
            .build();
        let _ = named.execute(|| async { Err::<(), _>("trip") }).await;
        assert_eq!(named.state(), State::Open);
        let rejected = allocations_per_run(|i| {
            let result = block_on(named.execute(|| async move { Ok::<_, ()>(i) }));
            let rejected = result.unwrap_err().rejected().cloned().expect("rejected");
            assert_eq!(rejected.name(), Some("inventory"));
            assert!(rejected.retry_after().is_some());
        });
        assert_eq!(rejected, 0, "rejected path, named breaker, tokio clock");

        let half_open = CircuitBreaker::builder()
            .half_open(HalfOpen::probes(1).close_after(u32::MAX))
            .freeze_for(Duration::from_secs(1))
            .fail_fast()
            .try_build()
            .unwrap();
        let _ = half_open.execute(|| async { Err::<(), _>("trip") }).await;
        tokio::time::advance(Duration::from_secs(2)).await;
        let probes = allocations_per_run(|i| {
            block_on(half_open.execute(|| async move { Ok::<_, ()>(i) })).unwrap();
        });
        assert_eq!(probes, 0, "half-open admission, tokio clock");
        assert_eq!(half_open.state(), State::HalfOpen);

        let permits = CircuitBreaker::builder()
            .consecutive_failures(3)
            .try_build()
            .unwrap();
        let permitted = allocations_per_run(|_| permits.try_acquire().unwrap().success());
        assert_eq!(permitted, 0, "permits");
    });
}

/// Heap bytes a breaker built by `build` owns.
fn heap_of(build: impl FnOnce() -> CircuitBreaker) -> usize {
    let region = Region::new(GLOBAL);
    let breaker = build();
    let stats = region.change();
    drop(breaker);
    stats.bytes_allocated - stats.bytes_deallocated
}

/// Reports the heap a breaker owns per configuration (run with `--nocapture`).
fn sizes_of_breakers() {
    let seed = heap_of(CircuitBreaker::new);
    let window = |calls| {
        heap_of(move || {
            CircuitBreaker::builder()
                .failure_rate(FailureRate::new(0.5, Window::last_calls(calls)).min_calls(1))
                .try_build()
                .unwrap()
        })
    };
    let (small, large) = (window(64), window(64 * 1024));
    let time = heap_of(|| {
        CircuitBreaker::builder()
            .failure_rate(FailureRate::new(0.5, Window::last(Duration::from_secs(60))))
            .try_build()
            .unwrap()
    });
    println!(
        "size_of::<CircuitBreaker>() = {} bytes",
        std::mem::size_of::<CircuitBreaker>()
    );
    println!("heap, seed preset: {seed} bytes");
    println!("heap, count window of 64 calls: {small} bytes");
    println!("heap, count window of 65,536 calls: {large} bytes");
    println!("heap, time window of 10 buckets: {time} bytes");
    // Two bit rings (failed, slow): 2 bits a call, not a byte.
    let per_call_bits = (large - small) as f64 * 8.0 / (64.0 * 1024.0 - 64.0);
    println!("count window: {per_call_bits:.2} bits a call");
    assert!(per_call_bits <= 2.1, "{per_call_bits} bits a call");
}
