//! Review 17: attacks on the half-open window (rate judge, budget, probes).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::{EventKind, TransitionReason};
use tripswitch::{CircuitBreaker, HalfOpen, RejectReason, State};

fn fast(clock: &FakeClock, half_open: HalfOpen) -> CircuitBreaker {
    CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(half_open)
        .try_build()
        .expect("valid")
}

fn trip_and_half_open(breaker: &CircuitBreaker, clock: &FakeClock) {
    breaker.try_acquire().expect("closed").failure(&"boom");
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.state(), State::HalfOpen);
}

/// Issue: 4 calls at 50%: F,S,S,S -> Closed.
#[test]
fn resilience4j_f_s_s_s_closes() {
    let clock = FakeClock::new();
    let breaker = fast(&clock, HalfOpen::judged_by_rate(4, 0.5));
    trip_and_half_open(&breaker, &clock);
    let permits: Vec<_> = (0..4)
        .map(|_| breaker.try_acquire().expect("4 permitted"))
        .collect();
    assert!(
        breaker.try_acquire().is_err(),
        "a 5th call is over the window"
    );
    let mut permits = permits.into_iter();
    permits.next().unwrap().failure(&"f");
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "one failure does not reopen"
    );
    for p in permits {
        p.success();
    }
    assert_eq!(breaker.state(), State::Closed);
}

/// 50% is "at least the threshold": F,F,S,S reopens (Resilience4j: >=).
#[test]
fn resilience4j_exactly_threshold_reopens() {
    let clock = FakeClock::new();
    let breaker = fast(&clock, HalfOpen::judged_by_rate(4, 0.5));
    trip_and_half_open(&breaker, &clock);
    let p: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
    let mut p = p.into_iter();
    p.next().unwrap().success();
    p.next().unwrap().success();
    p.next().unwrap().failure(&"f");
    assert_eq!(breaker.state(), State::HalfOpen);
    p.next().unwrap().failure(&"f");
    assert_eq!(breaker.state(), State::Open);
}

/// Thresholds that are not exact in binary: 3 of 10 failing at 0.3, 7 of 10
/// at 0.7, 1 of 3 at 1/3, 2 of 3 at 2/3 must all reopen ("at least").
#[test]
fn rate_judge_inexact_thresholds_reopen_at_equality() {
    for (calls, failing, threshold) in [
        (10u32, 3u32, 0.3f64),
        (10, 7, 0.7),
        (3, 1, 1.0 / 3.0),
        (3, 2, 2.0 / 3.0),
        (10, 1, 0.1),
        (100, 29, 0.29),
        (100, 57, 0.57),
        (7, 3, 3.0 / 7.0),
    ] {
        let clock = FakeClock::new();
        let breaker = fast(&clock, HalfOpen::judged_by_rate(calls, threshold));
        trip_and_half_open(&breaker, &clock);
        let permits: Vec<_> = (0..calls).map(|_| breaker.try_acquire().unwrap()).collect();
        for (i, p) in permits.into_iter().enumerate() {
            if (i as u32) < failing {
                p.failure(&"f");
            } else {
                p.success();
            }
        }
        assert_eq!(
            breaker.state(),
            State::Open,
            "{failing} of {calls} failed at threshold {threshold}: the rate equals the threshold"
        );
    }
}

/// Issue: gobreaker's MaxRequests as a total budget: a 4th call after S,S
/// with a 3rd in flight is rejected.
#[test]
fn gobreaker_budget_rejects_fourth_after_two_successes() {
    let clock = FakeClock::new();
    let breaker = fast(&clock, HalfOpen::probes(3).budget(3));
    trip_and_half_open(&breaker, &clock);
    let a = breaker.try_acquire().unwrap();
    let b = breaker.try_acquire().unwrap();
    let c = breaker.try_acquire().unwrap();
    a.success();
    b.success();
    let rejected = breaker.try_acquire().expect_err("budget spent");
    assert_eq!(rejected.reason(), RejectReason::HalfOpenFull);
    assert_eq!(rejected.state(), State::HalfOpen);
    // Rule 7: a half-open rejection carries a bound (30 s from the half-open start).
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(30)));
    c.success();
    assert_eq!(breaker.state(), State::Closed);
}

/// A cancelled probe (dropped permit) gives its place back to the budget
/// and to the rate window: the judge waits for a replacement call.
#[test]
fn cancelled_probe_refunds_rate_window() {
    let clock = FakeClock::new();
    let breaker = fast(&clock, HalfOpen::judged_by_rate(4, 0.5));
    trip_and_half_open(&breaker, &clock);
    let mut permits: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(breaker.try_acquire().is_err());
    drop(permits.pop()); // cancelled
    let replacement = breaker
        .try_acquire()
        .expect("a cancelled probe gives its place back");
    assert!(replacement.is_probe());
    assert!(breaker.try_acquire().is_err());
    permits.push(replacement);
    let mut it = permits.into_iter();
    it.next().unwrap().failure(&"f");
    it.next().unwrap().ignored(&"ignored"); // no verdict: gives its place back
    assert_eq!(breaker.state(), State::HalfOpen);
    let again = breaker
        .try_acquire()
        .expect("an ignored probe gives its place back");
    it.next().unwrap().success();
    it.next().unwrap().success();
    assert_eq!(breaker.state(), State::HalfOpen, "only 3 verdicts so far");
    again.success();
    assert_eq!(breaker.state(), State::Closed);
}

/// A permit of the previous half-open generation must not be judged in the
/// next one (open -> half-open again).
#[test]
fn stale_probe_is_not_judged_in_next_half_open() {
    let clock = FakeClock::new();
    let breaker = fast(
        &clock,
        HalfOpen::judged_by_rate(2, 0.5).max_duration(Duration::from_secs(10)),
    );
    trip_and_half_open(&breaker, &clock);
    let stale_a = breaker.try_acquire().unwrap();
    let stale_b = breaker.try_acquire().unwrap();
    // The half-open state times out; open again; half-open again.
    clock.advance(Duration::from_secs(10));
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.state(), State::HalfOpen);
    let fresh_a = breaker.try_acquire().expect("fresh window");
    let fresh_b = breaker.try_acquire().expect("fresh window");
    // Late verdicts of the old window: two failures. They must not count.
    stale_a.failure(&"late");
    stale_b.failure(&"late");
    assert_eq!(breaker.state(), State::HalfOpen);
    fresh_a.success();
    fresh_b.success();
    assert_eq!(breaker.state(), State::Closed);
}

/// Many threads race for a budget of 3: no more than 3 permits in one
/// half-open state, whatever the interleaving.
#[test]
fn threads_race_the_budget() {
    for _round in 0..50 {
        let clock = FakeClock::new();
        let breaker = fast(&clock, HalfOpen::probes(3).budget(3));
        trip_and_half_open(&breaker, &clock);
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let admitted = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(Vec::new()));
        std::thread::scope(|s| {
            for _ in 0..threads {
                let barrier = barrier.clone();
                let admitted = admitted.clone();
                let breaker = breaker.clone();
                let held = held.clone();
                s.spawn(move || {
                    barrier.wait();
                    for _ in 0..20 {
                        if let Ok(p) = breaker.try_acquire_owned() {
                            admitted.fetch_add(1, Ordering::SeqCst);
                            held.lock().unwrap().push(p);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.load(Ordering::SeqCst), 3);
        for p in held.lock().unwrap().drain(..) {
            p.success();
        }
        assert_eq!(breaker.state(), State::Closed);
    }
}

/// Many threads race the rate judge: 50 fail, 50 succeed at 0.5 -> exactly
/// one transition, to Open.
#[test]
fn threads_race_the_rate_judge() {
    for round in 0..20 {
        let clock = FakeClock::new();
        let transitions = Arc::new(Mutex::new(Vec::new()));
        let t = transitions.clone();
        let breaker = CircuitBreaker::standard()
            .clock(clock.clone())
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5))
            .half_open(HalfOpen::judged_by_rate(100, 0.5))
            .on_event(move |e| {
                if let EventKind::Transition { from, to, reason } = e.kind() {
                    t.lock().unwrap().push((*from, *to, *reason));
                }
            })
            .build();
        trip_and_half_open(&breaker, &clock);
        transitions.lock().unwrap().clear();
        let permits: Vec<_> = (0..100)
            .map(|_| breaker.try_acquire_owned().unwrap())
            .collect();
        assert!(breaker.try_acquire().is_err());
        let barrier = Arc::new(Barrier::new(4));
        let mut chunks: Vec<Vec<_>> = vec![Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for (i, p) in permits.into_iter().enumerate() {
            chunks[i % 4].push((i, p));
        }
        std::thread::scope(|s| {
            for chunk in chunks {
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    for (i, p) in chunk {
                        if (i + round) % 2 == 0 {
                            p.failure(&"f");
                        } else {
                            p.success();
                        }
                    }
                });
            }
        });
        assert_eq!(breaker.state(), State::Open);
        let t = transitions.lock().unwrap();
        assert_eq!(
            t.as_slice(),
            &[(State::HalfOpen, State::Open, TransitionReason::ProbeFailed)]
        );
    }
}

/// pybreaker's success_threshold: probes(1).close_after(3): three successes
/// in a row, one at a time.
#[test]
fn pybreaker_success_threshold() {
    let clock = FakeClock::new();
    let breaker = fast(&clock, HalfOpen::probes(1).close_after(3));
    trip_and_half_open(&breaker, &clock);
    for i in 0..3 {
        let p = breaker.try_acquire().expect("one at a time");
        assert!(breaker.try_acquire().is_err());
        p.success();
        let expected = if i < 2 {
            State::HalfOpen
        } else {
            State::Closed
        };
        assert_eq!(breaker.state(), expected);
    }
}

/// Budget with a success threshold below it: probes(1).budget(3).close_after(2)
/// -- S, F reopens ("first failure reopens" stays).
#[test]
fn budget_with_first_failure_reopens() {
    let clock = FakeClock::new();
    let breaker = fast(&clock, HalfOpen::probes(1).close_after(2).budget(3));
    trip_and_half_open(&breaker, &clock);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().failure(&"f");
    assert_eq!(breaker.state(), State::Open);
}

/// Budget spent by ignored and cancelled probes must not strand the breaker:
/// each one gives its place back, so after any number of them a real probe
/// still gets through.
#[test]
fn budget_not_spent_by_non_verdicts() {
    let clock = FakeClock::new();
    let breaker = fast(&clock, HalfOpen::probes(1).budget(1));
    trip_and_half_open(&breaker, &clock);
    for _ in 0..100 {
        breaker.try_acquire().unwrap().ignored(&"not a test");
        drop(breaker.try_acquire().unwrap());
    }
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

/// The rate judge with a slow-call rate: F,S,S,S all slow at slow rate 0.5
/// reopens; fast ones close.
#[test]
fn rate_judge_slow_calls() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .slow_call_threshold(Duration::from_secs(1))
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::judged_by_rate(4, 0.5).slow_call_rate(0.5))
        .try_build()
        .unwrap();
    trip_and_half_open(&breaker, &clock);
    let p: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
    clock.advance(Duration::from_secs(2));
    for p in p {
        p.success();
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "100% slow calls at 50% reopens"
    );
}

/// The rate judge's calls are let through all at once (Resilience4j lets
/// permitted calls run concurrently): with 10 calls, 10 permits at a time.
#[test]
fn rate_judge_lets_all_calls_at_once() {
    let clock = FakeClock::new();
    let breaker = fast(&clock, HalfOpen::judged_by_rate(10, 0.5));
    trip_and_half_open(&breaker, &clock);
    let p: Vec<_> = (0..10)
        .map(|_| breaker.try_acquire().expect("all ten"))
        .collect();
    assert_eq!(breaker.metrics().probes_in_flight, 10);
    drop(p);
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    assert_eq!(breaker.state(), State::HalfOpen);
}

/// A half-open state whose budget is spent and whose probes never end must
/// still decide (by max_duration), and the breaker must come back.
#[test]
fn budget_spent_no_verdict_times_out() {
    let clock = FakeClock::new();
    let breaker = fast(&clock, HalfOpen::probes(2).budget(2));
    trip_and_half_open(&breaker, &clock);
    let hung_a = breaker.try_acquire().unwrap();
    let hung_b = breaker.try_acquire().unwrap();
    let r = breaker.try_acquire().unwrap_err();
    assert_eq!(r.retry_after(), Some(Duration::from_secs(30)));
    clock.advance(Duration::from_secs(30));
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.state(), State::HalfOpen);
    // The old probes finally end: they must not change the new window.
    hung_a.failure(&"late");
    hung_b.failure(&"late");
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

/// Retry-after of a half-open rejection shrinks with time and matches the
/// moment the half-open state actually times out.
#[test]
fn half_open_retry_after_matches_timeout() {
    let clock = FakeClock::new();
    let breaker = fast(
        &clock,
        HalfOpen::probes(1).max_duration(Duration::from_secs(20)),
    );
    trip_and_half_open(&breaker, &clock);
    let _probe = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(7));
    let r = breaker.try_acquire().unwrap_err();
    assert_eq!(r.reason(), RejectReason::HalfOpenFull);
    let after = r.retry_after().expect("bounded");
    assert_eq!(after, Duration::from_secs(13));
    clock.advance(after - Duration::from_millis(1));
    assert_eq!(breaker.state(), State::HalfOpen);
    clock.advance(Duration::from_millis(1));
    assert_eq!(breaker.state(), State::Open);
}

/// Entering half-open late (first look long after the open period ended):
/// the half-open bound runs from when it was entered, so the first call after
/// a long quiet spell is a probe, not a rejection.
#[test]
fn late_first_look_still_probes() {
    let clock = FakeClock::new();
    let breaker = fast(&clock, HalfOpen::probes(1));
    breaker.try_acquire().unwrap().failure(&"boom");
    clock.advance(Duration::from_secs(3600));
    let p = breaker
        .try_acquire()
        .expect("first call after an hour is a probe");
    assert!(p.is_probe());
    p.success();
    assert_eq!(breaker.state(), State::Closed);
}
