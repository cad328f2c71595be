//! Review 19m: memory after the repacking. A million transitions on each
//! kind of clock must not grow the heap; reading a breaker that never left
//! its first state must not allocate its lazily allocated block; and the
//! per-breaker figure stays under issue 19's 512 bytes.
//!
//! The heap is measured with stats_alloc as live bytes (allocated minus
//! deallocated). Tests are serialised (one global allocator) and compare
//! with a slack far below what a per-transition leak would add.

use std::alloc::System;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tripswitch::clock::FakeClock;
use tripswitch::{CircuitBreaker, HalfOpen, State};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: Mutex<()> = Mutex::new(());

fn live() -> i64 {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

/// A leak of a single byte per transition would exceed this many times over.
const SLACK: i64 = 64 * 1024;
const TRANSITIONS: usize = 1_000_000;

#[test]
fn a_million_transitions_on_a_fake_clock_do_not_grow_the_heap() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .name("cycles")
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .build();
    let cycle = || {
        breaker.try_acquire().unwrap().failure(&"boom"); // closed -> open
        assert!(breaker.try_acquire().is_err());
        clock.advance(Duration::from_secs(1));
        breaker.try_acquire().unwrap().success(); // -> half-open -> closed
    };
    for _ in 0..1_000 {
        cycle();
    }
    let before = live();
    for _ in 0..TRANSITIONS / 3 {
        cycle();
    }
    let grown = live() - before;
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(clock.pending_sleeps(), 0);
    assert!(
        grown < SLACK,
        "the heap grew by {grown} bytes over a million transitions"
    );
}

#[test]
fn a_million_transitions_on_the_default_clock_outside_a_runtime_do_not_grow_the_heap() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Each opening arms an alarm and a backup ring on the timer thread;
    // each reset must take them off again.
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(3600))
        .build();
    let cycle = || {
        breaker.try_acquire().unwrap().failure(&"boom");
        breaker.reset();
    };
    for _ in 0..1_000 {
        cycle();
    }
    let before = live();
    for _ in 0..TRANSITIONS / 2 {
        cycle();
    }
    let grown = live() - before;
    assert!(
        grown < SLACK,
        "the heap grew by {grown} bytes over a million transitions"
    );
}

#[test]
fn transitions_on_the_default_clock_under_paused_time_do_not_grow_the_heap() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let breaker = CircuitBreaker::standard()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .build();
        for round in 0..2 {
            let before = live();
            for _ in 0..20_000 {
                breaker.try_acquire().unwrap().failure(&"boom");
                tokio::time::advance(Duration::from_secs(1)).await;
                breaker.try_acquire().unwrap().success();
            }
            let grown = live() - before;
            if round == 1 {
                assert!(
                    grown < SLACK,
                    "the heap grew by {grown} bytes over 60,000 transitions"
                );
            }
        }
    });
}

#[test]
fn waiting_crowds_over_many_periods_do_not_grow_the_heap() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .wait_when_open()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .half_open(HalfOpen::release_all())
        .build();
    let cycle = || {
        breaker.try_acquire().unwrap().failure(&"boom");
        let mut crowd: Vec<_> = (0..4).map(|_| Box::pin(breaker.acquire())).collect();
        for waiter in &mut crowd {
            assert!(waiter.as_mut().now_or_never().is_none());
        }
        clock.advance(Duration::from_secs(1));
        for waiter in crowd {
            waiter.now_or_never().unwrap().unwrap().success();
        }
    };
    for _ in 0..1_000 {
        cycle();
    }
    let before = live();
    for _ in 0..50_000 {
        cycle();
    }
    let grown = live() - before;
    assert_eq!(breaker.metrics().waiting, 0);
    assert!(
        grown < SLACK,
        "the heap grew by {grown} bytes over 100,000 transitions"
    );
}

#[test]
fn reading_a_breaker_that_never_left_its_first_state_allocates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let breakers: Vec<_> = (0..1_000)
        .map(|_| CircuitBreaker::standard().build())
        .collect();
    // Warm up the counting stripe of this thread.
    for breaker in &breakers {
        breaker.try_acquire().unwrap().success();
    }
    let before = live();
    for breaker in &breakers {
        let _ = breaker.metrics();
        let _ = breaker.state();
        let _ = breaker.is_frozen();
        assert!(breaker.wait_unfrozen().now_or_never().is_some());
        breaker
            .try_acquire()
            .unwrap()
            .failure(&"counted, not tripping");
        drop(format!("{breaker:?}"));
    }
    let grown = live() - before;
    assert!(
        grown < 1_000,
        "reads of closed breakers allocated {grown} bytes (about {} per breaker)",
        grown / 1_000
    );
}

#[test]
fn a_default_breaker_stays_under_the_issues_512_bytes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const N: i64 = 10_000;
    let before = live();
    let breakers: Vec<_> = (0..N).map(|_| CircuitBreaker::new()).collect();
    let per_breaker = (live() - before - (N * 8)) / N; // minus the Vec's pointers
    assert!(
        per_breaker <= 512,
        "{per_breaker} bytes per default breaker"
    );
    let before = live();
    for breaker in &breakers {
        breaker.try_acquire().unwrap().success();
    }
    let counted = (live() - before) / N;
    assert!(
        counted <= 64,
        "the first count allocated {counted} bytes per breaker"
    );
    drop(breakers);
}
