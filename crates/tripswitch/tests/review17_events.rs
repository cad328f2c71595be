//! Review 17: rates judged on every outcome, RateExceeded, reset generations,
//! listeners that panic or re-enter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::{EventKind, RateMeasure, TransitionReason};
use tripswitch::policy::{FailureRate, SlowCallRate, Window};
use tripswitch::{CircuitBreaker, HalfOpen, State};

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Rate {
        measure: RateMeasure,
        rate: f64,
        threshold: f64,
        calls: u64,
        failed_or_slow: u64,
        at: Duration,
    },
    Transition(State, State, TransitionReason, Duration),
}

fn recorder() -> (
    Arc<Mutex<Vec<Seen>>>,
    impl Fn(&tripswitch::events::Event<'_>) + Send + Sync,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, move |e: &tripswitch::events::Event<'_>| {
        match e.kind() {
            EventKind::RateExceeded {
                measure,
                rate,
                threshold,
                calls,
                failed_or_slow,
            } => s.lock().unwrap().push(Seen::Rate {
                measure: *measure,
                rate: *rate,
                threshold: *threshold,
                calls: *calls,
                failed_or_slow: *failed_or_slow,
                at: e.at(),
            }),
            EventKind::Transition { from, to, reason } => {
                s.lock()
                    .unwrap()
                    .push(Seen::Transition(*from, *to, *reason, e.at()))
            }
            _ => {}
        }
    })
}

/// Rule 1, fast path (no listener, no timing): a success that brings the
/// count window to its minimum with the rate at the threshold trips.
#[test]
fn success_reaching_min_calls_trips_count_window_fast_path() {
    let breaker = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(4))
        .build();
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Open, "F,F,S,S at 50% from 4 calls");
}

/// Same on a time window (Polly's), fast path, FakeClock.
#[test]
fn success_reaching_min_calls_trips_time_window_fast_path() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(FailureRate::new(0.5, Window::last(Duration::from_secs(30))).min_calls(4))
        .build();
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Open);
}

/// Same with the consecutive policy paired with a count window (the
/// "paired" fast path), where the consecutive count is zero at the success.
#[test]
fn success_reaching_min_calls_trips_paired_fast_path() {
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(100)
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(4))
        .build();
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Open);
}

/// Paired, time window, the failures not in a row so the consecutive count
/// is back to zero when the deciding success comes.
#[test]
fn success_reaching_min_calls_trips_paired_time_fast_path() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(100)
        .failure_rate(FailureRate::new(0.5, Window::last(Duration::from_secs(30))).min_calls(6))
        .build();
    for verdict in [true, false, true, false, true] {
        let p = breaker.try_acquire().unwrap();
        if verdict {
            p.failure(&"f")
        } else {
            p.success()
        }
    }
    assert_eq!(breaker.state(), State::Closed);
    breaker.try_acquire().unwrap().success(); // 3 of 6 failed, consecutive count 0
    assert_eq!(breaker.state(), State::Open);
}

/// A time window whose successes have aged out: the next success finds the
/// rate over the threshold and trips (fast path and observed path).
#[test]
fn success_after_old_successes_expire_trips() {
    for listen in [false, true] {
        let clock = FakeClock::new();
        let mut builder = CircuitBreaker::standard()
            .clock(clock.clone())
            .failure_rate(
                FailureRate::new(0.6, Window::last(Duration::from_secs(10))).min_calls(1),
            );
        if listen {
            builder = builder.on_event(|_| {});
        }
        let breaker = builder.build();
        for _ in 0..10 {
            breaker.try_acquire().unwrap().success();
        }
        clock.advance(Duration::from_millis(9_500));
        for _ in 0..10 {
            breaker.try_acquire().unwrap().failure(&"f");
        }
        assert_eq!(breaker.state(), State::Closed, "50% < 60%");
        clock.advance(Duration::from_secs(5)); // the successes leave the window
        breaker.try_acquire().unwrap().success(); // 10 F + 1 S = 91%
        assert_eq!(breaker.state(), State::Open, "listen = {listen}");
    }
}

/// RateExceeded: raised once, before the transition, with rate and counts.
#[test]
fn rate_exceeded_before_transition_with_counts() {
    let clock = FakeClock::new();
    clock.advance(Duration::from_secs(100));
    let (seen, listener) = recorder();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(FailureRate::new(0.5, Window::last_calls(10)).min_calls(4))
        .on_event(listener)
        .build();
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().failure(&"f");
    clock.advance(Duration::from_secs(1));
    breaker.try_acquire().unwrap().failure(&"f");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            Seen::Rate {
                measure: RateMeasure::Failures,
                rate: 0.5,
                threshold: 0.5,
                calls: 4,
                failed_or_slow: 2,
                at: Duration::from_secs(101),
            },
            Seen::Transition(
                State::Closed,
                State::Open,
                TransitionReason::Tripped,
                Duration::from_secs(101)
            ),
        ]
    );
}

/// RateExceeded on the success path (the success reaching min_calls), with
/// a listener: raised, with the counts including that success.
#[test]
fn rate_exceeded_raised_by_success() {
    let (seen, listener) = recorder();
    let breaker = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(10)).min_calls(4))
        .on_event(listener)
        .build();
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Open);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    match &seen[0] {
        Seen::Rate {
            calls,
            failed_or_slow,
            rate,
            ..
        } => {
            assert_eq!((*calls, *failed_or_slow), (4, 2));
            assert_eq!(*rate, 0.5);
        }
        other => panic!("expected RateExceeded first, got {other:?}"),
    }
    assert!(matches!(
        seen[1],
        Seen::Transition(State::Closed, State::Open, TransitionReason::Tripped, _)
    ));
}

/// Both a failure rate and a slow-call rate exceeded by one call: one event
/// each, both before the transition.
#[test]
fn two_rates_two_events() {
    let clock = FakeClock::new();
    let (seen, listener) = recorder();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(FailureRate::new(0.5, Window::last_calls(10)).min_calls(2))
        .slow_call_rate(
            SlowCallRate::new(Duration::from_secs(1), 0.5, Window::last_calls(10)).min_calls(2),
        )
        .on_event(listener)
        .build();
    breaker.try_acquire().unwrap().success();
    let p = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(2));
    p.failure(&"slow and failed");
    let seen = seen.lock().unwrap().clone();
    let measures: Vec<_> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Rate { measure, .. } => Some(*measure),
            _ => None,
        })
        .collect();
    assert_eq!(measures.len(), 2, "{seen:?}");
    assert!(measures.contains(&RateMeasure::Failures));
    assert!(measures.contains(&RateMeasure::SlowCalls));
    assert!(matches!(
        seen.last(),
        Some(Seen::Transition(_, State::Open, _, _))
    ));
}

/// In metrics-only the event is raised once however many outcomes keep the
/// rate over the threshold (successes included).
#[test]
fn rate_exceeded_once_in_metrics_only() {
    let (seen, listener) = recorder();
    let breaker = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(10)).min_calls(2))
        .on_event(listener)
        .build();
    breaker.force_metrics_only();
    seen.lock().unwrap().clear();
    for _ in 0..5 {
        breaker.try_acquire().unwrap().failure(&"f");
        breaker.try_acquire().unwrap().success();
    }
    assert_eq!(breaker.state(), State::MetricsOnly);
    let rates = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| matches!(s, Seen::Rate { .. }))
        .count();
    assert_eq!(rates, 1);
}

/// Rule 2: reset() starts a new generation; a permit from before does not
/// count after it; no Closed -> Closed event.
#[test]
fn reset_starts_new_generation_without_event() {
    let (seen, listener) = recorder();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .on_event(listener)
        .build();
    let old = breaker.try_acquire().unwrap();
    let old2 = breaker.try_acquire().unwrap();
    old2.success();
    breaker.reset();
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    old.failure(&"from before the reset");
    assert_eq!(
        breaker.state(),
        State::Closed,
        "a call from before reset must not trip"
    );
    let m = breaker.metrics();
    assert_eq!(m.current.failures, 0, "late result excluded from current");
    assert_eq!(m.current.successes, 0, "reset starts new counts");
    assert_eq!(m.totals.failures, 1);
    assert_eq!(m.totals.successes, 1);
}

/// reset() while closed also clears the rate windows (calls from before do
/// not count), fast path.
#[test]
fn reset_clears_window_fast_path() {
    let breaker = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(4))
        .build();
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.reset();
    assert_eq!(breaker.metrics().calls_in_window, Some(0));
    breaker.try_acquire().unwrap().failure(&"f");
    assert_eq!(
        breaker.state(),
        State::Closed,
        "only one call in the new generation"
    );
}

/// A listener that panics on RateExceeded and on every transition: the
/// breaker still trips, half-opens, and closes.
#[test]
fn panicking_listener_on_rate_exceeded() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(2))
        .open_for(Duration::from_secs(1))
        .on_event(|e| match e.kind() {
            EventKind::RateExceeded { .. } | EventKind::Transition { .. } => panic!("listener"),
            _ => {}
        })
        .build();
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().failure(&"f");
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(1));
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

/// A listener that calls force_open on RateExceeded: the breaker ends forced
/// open (the trip that follows does not override the manual state).
#[test]
fn reentrant_force_open_on_rate_exceeded() {
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let breaker = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(2))
        .on_event(move |e| {
            if let EventKind::RateExceeded { .. } = e.kind()
                && let Some(b) = s.lock().unwrap().clone()
            {
                b.force_open();
            }
        })
        .build();
    *slot.lock().unwrap() = Some(breaker.clone());
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().failure(&"f");
    assert_eq!(breaker.state(), State::ForcedOpen);
    breaker.resume();
    assert_eq!(breaker.state(), State::Closed);
    *slot.lock().unwrap() = None;
}

/// A listener that calls reset on RateExceeded: the breaker stays closed,
/// and the window is cleared.
#[test]
fn reentrant_reset_on_rate_exceeded() {
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let breaker = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(2))
        .on_event(move |e| {
            if let EventKind::RateExceeded { .. } = e.kind()
                && let Some(b) = s.lock().unwrap().clone()
            {
                b.reset();
            }
        })
        .build();
    *slot.lock().unwrap() = Some(breaker.clone());
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().failure(&"f");
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().calls_in_window, Some(0));
    *slot.lock().unwrap() = None;
}

/// A listener that runs failing calls through its own breaker on
/// RateExceeded (nested recording into the window being judged).
#[test]
fn reentrant_calls_on_rate_exceeded() {
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let breaker = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(2))
        .on_event(move |e| {
            if let EventKind::RateExceeded { .. } = e.kind() {
                let b = s.lock().unwrap().clone();
                if let Some(b) = b {
                    for _ in 0..3 {
                        if let Ok(p) = b.try_acquire() {
                            p.failure(&"nested");
                        }
                    }
                }
            }
        })
        .build();
    *slot.lock().unwrap() = Some(breaker.clone());
    breaker.try_acquire().unwrap().failure(&"f");
    breaker.try_acquire().unwrap().failure(&"f");
    assert!(breaker.state().is_open());
    *slot.lock().unwrap() = None;
}

/// The half-open rate judge's decision: listeners see a ProbeFailed
/// transition (and a panic in one does not wedge the judge).
#[test]
fn panicking_listener_during_rate_judge() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .half_open(HalfOpen::judged_by_rate(2, 0.5))
        .on_event(|_| panic!("every event"))
        .build();
    breaker.try_acquire().unwrap().failure(&"f");
    clock.advance(Duration::from_secs(1));
    let a = breaker.try_acquire().unwrap();
    let b = breaker.try_acquire().unwrap();
    a.success();
    b.success();
    assert_eq!(breaker.state(), State::Closed);
}

// `lazy_transitions_stamped_at_deadline` was replaced by
// `transition_stamps.rs`: the period after a late-noticed transition now runs
// from its stamp (the review's own finding), so the breaker is half-open again.
