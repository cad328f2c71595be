//! loom models of the concurrent transitions: two threads racing to trip, to
//! take and release half-open slots (by success, failure and drop), and to
//! force or reset the breaker. Run with:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p tripswitch --test loom --release
//! ```
#![cfg(loom)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use loom::thread;
use tripswitch::clock::FakeClock;
use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, HalfOpen, State};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    // Building and tripping a breaker is many atomic steps before the race starts.
    builder.max_branches = 100_000;
    builder.check(f);
}

/// Counts transitions into `State::Open`.
fn counting_opens() -> (
    Arc<Mutex<u32>>,
    impl Fn(&tripswitch::events::Event<'_>) + Send + Sync,
) {
    let opens = Arc::new(Mutex::new(0));
    let sink = Arc::clone(&opens);
    (opens, move |e: &tripswitch::events::Event<'_>| {
        if let EventKind::Transition {
            to: State::Open, ..
        } = e.kind()
        {
            *sink.lock().unwrap() += 1;
        }
    })
}

#[test]
fn two_failures_racing_trip_the_breaker_once() {
    model(|| {
        let (opens, listener) = counting_opens();
        let breaker = CircuitBreaker::builder()
            .clock(FakeClock::new())
            .consecutive_failures(2)
            .freeze_for(Duration::from_secs(60))
            .fail_fast()
            .on_event(listener)
            .try_build()
            .unwrap();
        let other = breaker.clone();
        let t = thread::spawn(move || other.try_acquire().map(|p| p.failure(&"a")).is_ok());
        let here = breaker.try_acquire().map(|p| p.failure(&"b")).is_ok();
        let there = t.join().unwrap();
        assert!(here && there);
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(
            *opens.lock().unwrap(),
            1,
            "one open period for the two failures"
        );
        let totals = breaker.metrics().totals;
        assert_eq!(totals.failures, 2, "no failure lost or counted twice");
    });
}

fn half_open(probes: u32) -> (CircuitBreaker, FakeClock) {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .half_open(HalfOpen::probes(probes).close_after(2))
        .freeze_for(Duration::from_secs(1))
        .fail_fast()
        .try_build()
        .unwrap();
    breaker.force_open();
    breaker.reset();
    breaker.try_acquire().unwrap().failure(&"trip");
    clock.advance(Duration::from_secs(1));
    assert_eq!(breaker.state(), State::HalfOpen);
    (breaker, clock)
}

#[test]
fn never_more_probes_than_configured() {
    model(|| {
        let (breaker, _clock) = half_open(1);
        let other = breaker.clone();
        let t = thread::spawn(move || {
            let permit = other.try_acquire();
            let got = permit.is_ok();
            drop(permit);
            got
        });
        let here = breaker.try_acquire();
        let in_flight = breaker.metrics().probes_in_flight;
        assert!(in_flight <= 1, "{in_flight} probes in flight");
        let here_ok = here.is_ok();
        drop(here);
        let there_ok = t.join().unwrap();
        assert!(here_ok || there_ok, "one of the two got the slot");
        assert_eq!(
            breaker.metrics().probes_in_flight,
            0,
            "dropped probes free their slots"
        );
        assert_eq!(breaker.state(), State::HalfOpen);
    });
}

#[test]
fn probe_success_and_failure_racing_leave_one_decision() {
    model(|| {
        let (breaker, _clock) = half_open(2);
        let a = breaker.try_acquire_owned().unwrap();
        let b = breaker.try_acquire_owned().unwrap();
        let t = thread::spawn(move || a.success());
        b.failure(&"still down");
        t.join().unwrap();
        // The failure reopens; whichever came first, the breaker ends open
        // (close_after is 2, so one success cannot close it), with no slot held.
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker.metrics().probes_in_flight, 0);
    });
}

#[test]
fn force_and_reset_racing_with_a_call() {
    model(|| {
        let breaker = CircuitBreaker::builder()
            .clock(FakeClock::new())
            .fail_fast()
            .build();
        let other = breaker.clone();
        let t = thread::spawn(move || {
            other.force_open();
            other.reset();
        });
        let outcome = breaker.try_acquire().map(|p| p.success());
        t.join().unwrap();
        assert_eq!(breaker.state(), State::Closed);
        let totals = breaker.metrics().totals;
        assert_eq!(
            totals.successes + totals.rejected,
            1,
            "{outcome:?}: the call is counted once"
        );
    });
}

#[test]
fn a_waiting_call_is_woken_when_the_breaker_is_released() {
    model(|| {
        let breaker = CircuitBreaker::builder().clock(FakeClock::new()).build();
        breaker.force_open();
        let other = breaker.clone();
        // If the release could slip between the waiter's check and its
        // queueing, this thread would sleep forever and loom would report
        // the deadlock.
        let waiter = thread::spawn(move || {
            loom::future::block_on(other.acquire())
                .map(|p| p.success())
                .is_ok()
        });
        breaker.resume();
        assert!(waiter.join().unwrap());
        assert_eq!(breaker.metrics().waiting, 0);
    });
}

#[test]
fn a_waiting_call_is_woken_when_a_probe_slot_frees() {
    model(|| {
        let clock = FakeClock::new();
        let breaker = CircuitBreaker::builder()
            .clock(clock.clone())
            .half_open(HalfOpen::probes(1).close_after(2))
            .freeze_for(Duration::from_secs(1))
            .try_build()
            .unwrap();
        breaker.try_acquire().unwrap().failure(&"trip");
        clock.advance(Duration::from_secs(1));
        let probe = breaker.try_acquire_owned().unwrap();
        let other = breaker.clone();
        let waiter = thread::spawn(move || {
            loom::future::block_on(other.acquire())
                .map(|p| p.is_probe())
                .unwrap_or(false)
        });
        // The probe is dropped without a verdict: its slot goes to the waiter.
        drop(probe);
        assert!(waiter.join().unwrap(), "the waiter got the freed slot");
        assert_eq!(breaker.metrics().probes_in_flight, 0);
    });
}

/// A time window's per-thread success cell moving to a new slice while
/// another thread reads it: the reader never pairs a count with the wrong
/// slice (the new slice never shows the old slice's count).
#[test]
fn a_success_cell_is_read_consistently_while_it_moves_to_a_new_slice() {
    use tripswitch::__loom::StripedSuccesses;
    model(|| {
        let cells = Arc::new(StripedSuccesses::new(2, 1).expect("2 buckets"));
        let writer = {
            let cells = Arc::clone(&cells);
            thread::spawn(move || {
                assert!(cells.add(0, 1, 1));
                assert!(cells.add(0, 1, 1));
                assert!(cells.add(0, 3, 1));
            })
        };
        // (A yield before each read: loom 0.7 explores the writer running
        // first only from an explicit yield, because the writer starts with
        // loads, which do not conflict with the reader's.)
        thread::yield_now();
        let old = cells.count(1, 1);
        thread::yield_now();
        let new = cells.count(3, 1);
        assert!(old <= 2, "slice 1 read {old}");
        assert!(
            new <= 1,
            "slice 3 read {new}: the old slice's count leaked into it"
        );
        writer.join().unwrap();
        assert_eq!(cells.count(1, 1), 0);
        assert_eq!(cells.count(3, 1), 1);
    });
}

/// The production counting path, end to end: a thread records a success
/// on a time window through the breaker's fast path (in its own totals
/// stripe and window cell, with plain loads and stores) while the main
/// thread records a success and a failure; every count is seen exactly once.
#[test]
fn successes_on_a_time_window_are_counted_exactly_by_their_own_stripes() {
    use tripswitch::policy::{FailureRate, Window};
    model(|| {
        let clock = FakeClock::new();
        let breaker = CircuitBreaker::standard()
            .clock(clock.clone())
            .failure_rate(FailureRate::new(0.9, Window::last(Duration::from_secs(10))).min_calls(3))
            .build();
        let other = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.try_acquire().unwrap().success())
        };
        breaker.try_acquire().unwrap().success();
        breaker.try_acquire().unwrap().failure(&"down");
        other.join().unwrap();
        let metrics = breaker.metrics();
        assert_eq!(metrics.totals.successes, 2);
        assert_eq!(metrics.totals.failures, 1);
        assert_eq!(metrics.state, State::Closed, "1 in 3 failed");
        assert_eq!(metrics.failure_rate, Some(1.0 / 3.0));
    });
}
