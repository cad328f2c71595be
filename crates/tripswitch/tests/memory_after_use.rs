//! Memory returns to its idle size once a crowd is gone: waiters that gave
//! up, sleeps that were dropped before their end (on `StdClock`'s timer
//! thread and on `FakeClock`). Measured with a counting global allocator, in
//! a single test so that no other test's allocations are counted.
#![cfg(not(loom))]

use std::alloc::System;
use std::time::Duration;

use futures::FutureExt;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tripswitch::CircuitBreaker;
use tripswitch::clock::{Clock, FakeClock, StdClock};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes live on the heap now. `bytes_allocated` and `bytes_deallocated`
/// already include what reallocations grew or shrank.
fn live_bytes() -> isize {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

/// Some slack for allocations that are not the crowd's: the test harness's
/// own thread, a lazily made thread-local.
const SLACK: isize = 4 * 1024;

#[test]
fn memory_returns_to_idle_once_a_crowd_is_gone() {
    live_bytes_counts_reallocation_once();
    a_crowd_of_waiters_that_gave_up_leaves_nothing();
    std_clock_sleeps_dropped_before_their_end_leave_nothing();
    fake_clock_sleeps_dropped_before_their_end_leave_nothing();
}

/// The measure itself: a vector grown by reallocation is counted once.
fn live_bytes_counts_reallocation_once() {
    let before = live_bytes();
    let mut grown: Vec<u8> = Vec::with_capacity(1);
    for i in 0..100_000 {
        grown.push(i as u8);
    }
    let counted = live_bytes() - before;
    let capacity = grown.capacity() as isize;
    // Other threads of the process may allocate meanwhile (a loaded
    // machine's test harness): a little over is noise; counting the
    // reallocations twice would come to about twice the capacity.
    assert!(
        (capacity..=capacity + SLACK).contains(&counted),
        "a {capacity}-byte vector counted as {counted} bytes"
    );
}

fn a_crowd_of_waiters_that_gave_up_leaves_nothing() {
    for clock in ["fake", "std"] {
        let breaker = match clock {
            "fake" => CircuitBreaker::builder()
                .clock(FakeClock::new())
                .max_wait(Duration::from_secs(3600))
                .build(),
            _ => CircuitBreaker::builder()
                .clock(StdClock::new())
                .max_wait(Duration::from_secs(3600))
                .build(),
        };
        breaker.force_open();
        // One small crowd first, so that lazily made structures exist.
        crowd(&breaker, 10);
        let idle = live_bytes();
        crowd(&breaker, 20_000);
        let after = live_bytes();
        assert!(
            after - idle <= SLACK,
            "{clock} clock: {} bytes kept after 20,000 waiters gave up",
            after - idle
        );
    }
}

/// `n` calls queue on a forced-open breaker (each with an hour-long
/// `max_wait` alarm), then all give up (are dropped), oldest first.
fn crowd(breaker: &CircuitBreaker, n: usize) {
    let mut waiters: Vec<_> = (0..n)
        .map(|_| Box::pin(breaker.execute(|| async { Ok::<_, std::io::Error>(()) })))
        .collect();
    for waiter in &mut waiters {
        assert!(waiter.as_mut().now_or_never().is_none());
    }
    assert_eq!(breaker.metrics().waiting, n);
    drop(waiters);
    assert_eq!(breaker.metrics().waiting, 0);
    // The breaker still works.
    breaker.resume();
    assert!(matches!(
        breaker
            .execute(|| async { Ok::<_, std::io::Error>(()) })
            .now_or_never(),
        Some(Ok(()))
    ));
    breaker.force_open();
}

fn std_clock_sleeps_dropped_before_their_end_leave_nothing() {
    let clock = StdClock::new();
    // The timer thread starts on the first sleep.
    drop(clock.sleep(Duration::from_secs(3600)));
    let idle = live_bytes();
    let sleeps: Vec<_> = (0..1_000)
        .map(|_| clock.sleep(Duration::from_secs(3600)))
        .collect();
    assert!(live_bytes() - idle > 1_000 * 16, "the sleeps take memory");
    drop(sleeps);
    let after = live_bytes();
    assert!(
        after - idle <= SLACK,
        "{} bytes kept after 1,000 hour-long sleeps were dropped",
        after - idle
    );
}

fn fake_clock_sleeps_dropped_before_their_end_leave_nothing() {
    let clock = FakeClock::new();
    let sleeps: Vec<_> = (0..1_000)
        .map(|_| clock.sleep(Duration::from_secs(3600)))
        .collect();
    assert_eq!(clock.pending_sleeps(), 1_000);
    drop(sleeps);
    assert_eq!(clock.pending_sleeps(), 0);
}
