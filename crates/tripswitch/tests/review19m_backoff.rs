//! Review 19m: the openings count that drives backoff moved into the lazily
//! allocated `Cold` block (core/cold.rs). These attacks count openings over
//! many open / half-open cycles, across closes, resets, half-open timeouts,
//! manual states and a shared store's orders, on a `FakeClock`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::{Backoff, CircuitBreaker, HalfOpen, State};

/// A breaker whose open period records `consecutive_openings` and lasts 1 s.
fn recording(clock: &FakeClock, half_open: HalfOpen) -> (CircuitBreaker, Arc<Mutex<Vec<u32>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .half_open(half_open)
        .open_for_fn(move |trip| {
            s.lock().unwrap().push(trip.consecutive_openings());
            Duration::from_secs(1)
        })
        .build();
    (breaker, seen)
}

#[test]
fn openings_count_up_over_many_failed_probes_and_restart_after_a_close() {
    let clock = FakeClock::new();
    let (breaker, seen) = recording(&clock, HalfOpen::default());
    for round in 0..3 {
        breaker.try_acquire().unwrap().failure(&"trip");
        for _ in 0..1_000 {
            clock.advance(Duration::from_secs(1));
            assert_eq!(breaker.state(), State::HalfOpen);
            breaker.try_acquire().unwrap().failure(&"probe failed");
        }
        clock.advance(Duration::from_secs(1));
        breaker.try_acquire().unwrap().success();
        assert_eq!(breaker.state(), State::Closed, "round {round}");
    }
    let seen = seen.lock().unwrap();
    let expected: Vec<u32> = (0..3).flat_map(|_| 0..=1_000).collect();
    assert_eq!(*seen, expected);
}

#[test]
fn a_half_open_timeout_counts_as_an_opening() {
    let clock = FakeClock::new();
    let (breaker, seen) = recording(
        &clock,
        HalfOpen::probes(1).max_duration(Duration::from_secs(5)),
    );
    breaker.try_acquire().unwrap().failure(&"trip");
    clock.advance(Duration::from_secs(1));
    let hanging = breaker.try_acquire().unwrap(); // a probe that never ends
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.state(), State::Open);
    drop(hanging);
    clock.advance(Duration::from_secs(1));
    breaker.try_acquire().unwrap().failure(&"probe failed");
    assert_eq!(*seen.lock().unwrap(), vec![0, 1, 2]);
}

#[test]
fn reset_and_manual_states_restart_the_count() {
    let clock = FakeClock::new();
    let (breaker, seen) = recording(&clock, HalfOpen::default());
    breaker.try_acquire().unwrap().failure(&"trip");
    clock.advance(Duration::from_secs(1));
    breaker.try_acquire().unwrap().failure(&"probe"); // 1
    breaker.reset();
    breaker.try_acquire().unwrap().failure(&"trip"); // 0 again
    clock.advance(Duration::from_secs(1));
    breaker.try_acquire().unwrap().failure(&"probe"); // 1
    breaker.force_open();
    breaker.resume();
    assert_eq!(breaker.state(), State::Closed);
    breaker.try_acquire().unwrap().failure(&"trip"); // closed again: 0
    breaker.disable();
    breaker.resume();
    breaker.try_acquire().unwrap().failure(&"trip"); // 0
    assert_eq!(*seen.lock().unwrap(), vec![0, 1, 0, 1, 0, 0]);
}

#[test]
fn a_reset_before_any_transition_keeps_the_count_at_zero() {
    let clock = FakeClock::new();
    let (breaker, seen) = recording(&clock, HalfOpen::default());
    breaker.reset(); // allocates the cold block while closed
    breaker.try_acquire().unwrap().failure(&"trip");
    clock.advance(Duration::from_secs(1));
    breaker.try_acquire().unwrap().failure(&"probe");
    assert_eq!(*seen.lock().unwrap(), vec![0, 1]);
}

#[test]
fn exponential_backoff_periods_follow_the_openings() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .backoff(Backoff::exponential(
            Duration::from_secs(1),
            Duration::from_secs(60),
        ))
        .build();
    breaker.try_acquire().unwrap().failure(&"trip");
    let mut periods = Vec::new();
    for _ in 0..9 {
        let rejected = breaker.try_acquire().unwrap_err();
        let period = rejected.retry_after().unwrap();
        periods.push(period.as_secs());
        clock.advance(period);
        breaker.try_acquire().unwrap().failure(&"probe failed");
    }
    assert_eq!(periods, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    // Close, then trip again: back to the first step.
    let period = breaker.try_acquire().unwrap_err().retry_after().unwrap();
    clock.advance(period);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
    breaker.try_acquire().unwrap().failure(&"trip");
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(1))
    );
}

#[test]
fn a_shared_store_moving_the_deadline_is_the_same_opening() {
    let clock = FakeClock::new();
    let (breaker, seen) = recording(&clock, HalfOpen::default());
    let control = breaker.shared_control();
    breaker.try_acquire().unwrap().failure(&"trip"); // 0
    assert!(control.hold_open(Duration::from_secs(3))); // same opening
    assert_eq!(breaker.metrics().retry_after, Some(Duration::from_secs(3)));
    clock.advance(Duration::from_secs(3));
    breaker.try_acquire().unwrap().failure(&"probe"); // 1
    clock.advance(Duration::from_secs(1));
    breaker.try_acquire().unwrap().failure(&"probe"); // 2
    assert_eq!(*seen.lock().unwrap(), vec![0, 1, 2]);
}

#[test]
fn a_shared_store_opening_a_closed_breaker_starts_the_count() {
    let clock = FakeClock::new();
    let (breaker, seen) = recording(&clock, HalfOpen::default());
    let control = breaker.shared_control();
    assert!(control.hold_open(Duration::from_secs(2))); // fresh breaker, Shared
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(2));
    breaker.try_acquire().unwrap().failure(&"probe"); // the second opening: 1
    assert_eq!(*seen.lock().unwrap(), vec![1]);
}

#[test]
fn openings_are_per_breaker() {
    let clock = FakeClock::new();
    let (a, seen_a) = recording(&clock, HalfOpen::default());
    let (b, seen_b) = recording(&clock, HalfOpen::default());
    a.try_acquire().unwrap().failure(&"trip");
    b.try_acquire().unwrap().failure(&"trip");
    for _ in 0..5 {
        clock.advance(Duration::from_secs(1));
        a.try_acquire().unwrap().failure(&"probe");
    }
    clock.advance(Duration::from_secs(1));
    b.try_acquire().unwrap().failure(&"probe");
    assert_eq!(*seen_a.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(*seen_b.lock().unwrap(), vec![0, 1]);
}
