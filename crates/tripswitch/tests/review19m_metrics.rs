//! Review 19m: the counts at the last transition, the waiter queue and the
//! rest of the cold state live in one lazily allocated block (`Cold`,
//! allocated through `Lazy` on first use; `metrics()` reads it without
//! allocating). These attacks read `metrics()` before any transition, while
//! the block is allocated by something other than a transition, during a
//! crowd of waiters, after resets, and while many threads trip a fresh
//! breaker at once (the block allocated concurrently).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use futures::FutureExt;
use tripswitch::clock::FakeClock;
use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, HalfOpen, State};

#[test]
fn metrics_of_a_fresh_breaker() {
    let breaker = CircuitBreaker::standard().build();
    let m = breaker.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(m.current, m.totals);
    assert_eq!(m.totals.calls(), 0);
    assert_eq!(m.waiting, 0);
    assert_eq!(m.probes_in_flight, 0);
    assert_eq!(m.retry_after, Some(Duration::ZERO));
    assert_eq!(m.consecutive_failures, Some(0));
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().failure(&"boom");
    let m = breaker.metrics();
    assert_eq!(m.current, m.totals);
    assert_eq!((m.totals.successes, m.totals.failures), (1, 1));
}

#[test]
fn metrics_when_the_cold_block_exists_but_no_transition_happened() {
    // Each of these touches the lazily allocated block while the breaker
    // stays closed in its first state; the counts since that state was
    // entered must still be the totals.
    let clock = FakeClock::new();
    let make = || {
        CircuitBreaker::standard()
            .clock(clock.clone())
            .consecutive_failures(100)
            .build()
    };
    // (a) a shared store's refused order (half-open from closed is refused)
    let a = make();
    a.try_acquire().unwrap().success();
    assert!(!a.shared_control().half_open(Duration::from_secs(1)));
    // (b) an observer that returns at once
    let b = make();
    b.try_acquire().unwrap().success();
    assert!(b.wait_unfrozen().now_or_never().is_some());
    // (c) a close order refused from closed
    let c = make();
    c.try_acquire().unwrap().success();
    assert!(!c.shared_control().close());
    for breaker in [&a, &b, &c] {
        breaker.try_acquire().unwrap().failure(&"boom");
        let m = breaker.metrics();
        assert_eq!(m.state, State::Closed);
        assert_eq!(m.current, m.totals, "{m:?}");
        assert_eq!((m.current.successes, m.current.failures), (1, 1));
    }
}

#[test]
fn metrics_after_transitions_and_resets() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(2)
        .open_for(Duration::from_secs(1))
        .build();
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().failure(&"a");
    let late = breaker.try_acquire().unwrap(); // admitted while closed
    breaker.try_acquire().unwrap().failure(&"b"); // trips
    let m = breaker.metrics();
    assert_eq!(m.state, State::Open);
    assert_eq!(m.current.calls(), 0, "{m:?}");
    assert_eq!(m.totals.failures, 2);
    let _ = breaker.try_acquire().unwrap_err();
    late.success(); // a late result: totals only
    let m = breaker.metrics();
    assert_eq!(m.current.rejected, 1);
    assert_eq!(
        m.current.successes, 0,
        "late result counted in current: {m:?}"
    );
    assert_eq!(m.totals.successes, 2);
    breaker.reset();
    let m = breaker.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(m.current.calls(), 0, "{m:?}");
    assert_eq!(m.totals.calls(), 5);
    assert_eq!(m.consecutive_failures, Some(0));
    breaker.try_acquire().unwrap().success();
    let m = breaker.metrics();
    assert_eq!(m.current.successes, 1);
    assert_eq!(m.totals.successes, 3);
    // A reset from closed is a new generation too: a run admitted before it
    // is late after it.
    let before = breaker.try_acquire().unwrap();
    breaker.reset();
    before.failure(&"late");
    let m = breaker.metrics();
    assert_eq!(m.current.calls(), 0, "{m:?}");
    assert_eq!(m.totals.failures, 3);
}

#[test]
fn metrics_during_a_crowd_of_waiters() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .wait_when_open()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::probes(10))
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let mut crowd: Vec<_> = (0..300).map(|_| Box::pin(breaker.acquire())).collect();
    for waiter in &mut crowd {
        assert!(waiter.as_mut().now_or_never().is_none());
    }
    let m = breaker.metrics();
    assert_eq!(m.waiting, 300);
    assert_eq!(m.state, State::Open);
    assert!(format!("{breaker:?}").contains("waiting: 300"));
    clock.advance(Duration::from_secs(5));
    // Ten probes at a time are let through, the rest wait on.
    let mut admitted = Vec::new();
    let mut still_waiting = Vec::new();
    for mut waiter in crowd {
        match waiter.as_mut().now_or_never() {
            Some(result) => admitted.push(result.unwrap()),
            None => still_waiting.push(waiter),
        }
    }
    let mut crowd = still_waiting;
    assert_eq!(admitted.len(), 10);
    let m = breaker.metrics();
    assert_eq!(m.state, State::HalfOpen);
    assert_eq!(m.probes_in_flight, 10);
    assert_eq!(m.waiting, 290);
    for permit in admitted {
        permit.success();
    }
    assert_eq!(breaker.state(), State::Closed);
    for waiter in crowd.iter_mut() {
        if let Some(result) = waiter.as_mut().now_or_never() {
            result.unwrap().success();
        }
    }
    let m = breaker.metrics();
    assert_eq!(m.waiting, 0);
    assert_eq!(m.totals.successes, 300);
    // Each probe that returned before the tenth handed its slot to the next
    // waiter (a probe of the half-open generation): those nine are late
    // once the breaker closed, in the totals only.
    assert_eq!(m.current.successes, 281, "{m:?}");
}

#[test]
fn many_threads_tripping_fresh_breakers_at_the_same_instant() {
    const THREADS: usize = 8;
    for round in 0..100 {
        let opened = Arc::new(AtomicUsize::new(0));
        let o = Arc::clone(&opened);
        let breaker = CircuitBreaker::standard()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(3600))
            .on_event(move |event| {
                if let EventKind::Transition {
                    to: State::Open, ..
                } = event.kind()
                {
                    o.fetch_add(1, Ordering::SeqCst);
                }
            })
            .build();
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let breaker = breaker.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let permit = breaker.try_acquire().unwrap();
                    barrier.wait();
                    permit.failure(&"boom");
                    let _ = breaker.metrics();
                    let _ = breaker.try_acquire();
                    let _ = breaker.metrics();
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1, "round {round}");
        let m = breaker.metrics();
        assert_eq!(m.state, State::Open);
        assert_eq!(m.totals.failures, THREADS as u64, "round {round}: {m:?}");
        assert_eq!(m.totals.rejected, THREADS as u64, "round {round}: {m:?}");
        assert!(m.current.calls() <= m.totals.calls());
        // (A rejection made while the tripping thread is still inside the
        // transition may land before the state's base: documented race.)
        assert!(m.current.rejected <= THREADS as u64, "round {round}: {m:?}");
        assert!(m.retry_after.unwrap() > Duration::from_secs(3000));
    }
}

#[test]
fn many_threads_waiting_on_a_fresh_breaker_while_it_trips() {
    // Wait mode: the first thread's failure trips the breaker while the
    // others queue (each queuing may be the one that allocates the block).
    const THREADS: usize = 8;
    for _ in 0..50 {
        let clock = FakeClock::new();
        let breaker = CircuitBreaker::standard()
            .clock(clock.clone())
            .wait_when_open()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .half_open(HalfOpen::release_all())
            .build();
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let done = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let breaker = breaker.clone();
                let barrier = Arc::clone(&barrier);
                let done = Arc::clone(&done);
                std::thread::spawn(move || {
                    barrier.wait();
                    if i == 0 {
                        breaker.try_acquire().unwrap().failure(&"boom");
                    } else {
                        let permit = futures::executor::block_on(breaker.acquire()).unwrap();
                        permit.success();
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        barrier.wait();
        // Move time until every thread is through (a thread that came
        // before the trip was admitted at once).
        let start = std::time::Instant::now();
        while done.load(Ordering::SeqCst) < THREADS {
            assert!(start.elapsed() < Duration::from_secs(30), "waiters hang");
            clock.advance(Duration::from_secs(1));
            std::thread::yield_now();
        }
        for handle in handles {
            handle.join().unwrap();
        }
        let m = breaker.metrics();
        assert_eq!(m.waiting, 0);
        assert_eq!(
            m.totals.successes + m.totals.failures,
            THREADS as u64,
            "{m:?}"
        );
    }
}

#[test]
fn metrics_read_concurrently_with_the_first_transition_never_exceed_totals() {
    for _ in 0..50 {
        let breaker = CircuitBreaker::standard()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(3600))
            .build();
        for _ in 0..100 {
            breaker.try_acquire().unwrap().success();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let breaker = breaker.clone();
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut reads = 0u32;
                    while !stop.load(Ordering::SeqCst) || reads < 10 {
                        let m = breaker.metrics();
                        assert!(m.current.successes <= m.totals.successes, "{m:?}");
                        assert!(m.current.calls() <= m.totals.calls(), "{m:?}");
                        assert!(m.totals.successes >= 100);
                        reads += 1;
                    }
                })
            })
            .collect();
        breaker.try_acquire().unwrap().failure(&"boom");
        stop.store(true, Ordering::SeqCst);
        for reader in readers {
            reader.join().unwrap();
        }
        let m = breaker.metrics();
        assert_eq!(m.current.calls(), 0, "{m:?}");
        assert_eq!(m.totals.calls(), 101);
    }
}

#[test]
fn counts_from_more_threads_than_stripes_are_all_kept() {
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(u32::MAX)
        .build();
    let handles: Vec<_> = (0..24)
        .map(|_| {
            let breaker = breaker.clone();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    let permit = breaker.try_acquire().unwrap();
                    if i % 2 == 0 {
                        permit.success();
                    } else {
                        permit.failure(&"boom");
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let m = breaker.metrics();
    assert_eq!(m.totals.successes, 24_000);
    assert_eq!(m.totals.failures, 24_000);
    assert_eq!(m.current, m.totals);
}

#[test]
fn the_boxed_paired_success_path_counts_like_the_general_one() {
    use tripswitch::policy::{FailureRate, Window};
    // A consecutive-failures policy with one count window: the shape whose
    // success path is now boxed. Compared with the same policies in the
    // other order and with a time window (other paths).
    let clock = FakeClock::new();
    let make = |rate_first: bool, window: Window| {
        let rate = FailureRate::new(0.5, window).min_calls(4);
        let builder = CircuitBreaker::standard().clock(clock.clone());
        let builder = if rate_first {
            builder.failure_rate(rate).consecutive_failures(3)
        } else {
            builder.consecutive_failures(3).failure_rate(rate)
        };
        builder.open_for(Duration::from_secs(1)).build()
    };
    let breakers = [
        make(false, Window::last_calls(8)),
        make(true, Window::last_calls(8)),
        make(false, Window::last(Duration::from_secs(60))),
    ];
    // S S F S F F (consecutive 2, rate 3/6 = 50% with 6 >= 4 calls: trips)
    let script = [true, true, false, true, false];
    for breaker in &breakers {
        for ok in script {
            let permit = breaker.try_acquire().unwrap();
            if ok {
                permit.success();
            } else {
                permit.failure(&"boom");
            }
        }
        let m = breaker.metrics();
        assert_eq!(m.consecutive_failures, Some(1), "{m:?}");
        assert_eq!(m.calls_in_window, Some(5), "{m:?}");
        assert_eq!(m.failure_rate, Some(0.4), "{m:?}");
        assert_eq!(m.state, State::Closed);
        breaker.try_acquire().unwrap().failure(&"boom");
        assert_eq!(breaker.metrics().state, State::Open);
    }
    // Consecutive failures trip on their own while the rate stays low.
    for breaker in &breakers {
        breaker.reset();
        for _ in 0..20 {
            breaker.try_acquire().unwrap().success();
        }
        for _ in 0..2 {
            breaker.try_acquire().unwrap().failure(&"boom");
        }
        assert_eq!(breaker.metrics().state, State::Closed);
        breaker.try_acquire().unwrap().failure(&"boom");
        assert_eq!(breaker.metrics().state, State::Open, "three in a row");
    }
}
