//! `EventKind::RateExceeded`: a rate policy over its threshold says so, with
//! the rate and the window's counts (Resilience4j's FailureRateExceeded and
//! SlowCallRateExceeded events). Issue 17, rule 5.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::{EventKind, RateMeasure};
use tripswitch::policy::{FailureRate, SlowCallRate, Window};
use tripswitch::{CircuitBreaker, State};

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Exceeded {
        measure: RateMeasure,
        rate: f64,
        threshold: f64,
        calls: u64,
        failed_or_slow: u64,
    },
    Transition(State, State),
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Resilience4j's set-up in `CircuitBreakerStateMachineTest`: 50% failures
/// or 50% slow calls (slower than 4 s) over a 20 s window, judged from 5 calls.
fn r4j_breaker(clock: &FakeClock, window: Duration) -> (tripswitch::Builder, Log) {
    let log: Log = Arc::default();
    let sink = log.clone();
    let builder = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(FailureRate::new(0.5, Window::last(window)).min_calls(5))
        .slow_call_rate(
            SlowCallRate::new(Duration::from_secs(4), 0.5, Window::last(window)).min_calls(5),
        )
        .on_event(move |event| match *event.kind() {
            EventKind::RateExceeded {
                measure,
                rate,
                threshold,
                calls,
                failed_or_slow,
            } => sink.lock().unwrap().push(Seen::Exceeded {
                measure,
                rate,
                threshold,
                calls,
                failed_or_slow,
            }),
            EventKind::Transition { from, to, .. } => {
                sink.lock().unwrap().push(Seen::Transition(from, to))
            }
            _ => {}
        });
    (builder, log)
}

fn exceeded(log: &Log, measure: RateMeasure) -> Vec<Seen> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|seen| matches!(seen, Seen::Exceeded { measure: m, .. } if *m == measure))
        .cloned()
        .collect()
}

/// Ported from Resilience4j's `shouldRecordMetricsInMetricsOnlyState`: in
/// the metrics-only state, F, F, F, S, S raises one FailureRateExceeded
/// (60% over 5 calls), no transition, and a further failure raises none.
#[test]
fn metrics_only_raises_the_failure_rate_event_once() {
    let clock = FakeClock::new();
    let (builder, log) = r4j_breaker(&clock, Duration::from_secs(20));
    let breaker = builder.build();
    breaker.force_metrics_only();
    log.lock().unwrap().clear();

    for _ in 0..3 {
        breaker.try_acquire().unwrap().failure(&"boom");
    }
    assert!(exceeded(&log, RateMeasure::Failures).is_empty());
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().success();
    assert_eq!(
        exceeded(&log, RateMeasure::Failures),
        vec![Seen::Exceeded {
            measure: RateMeasure::Failures,
            rate: 0.6,
            threshold: 0.5,
            calls: 5,
            failed_or_slow: 3,
        }]
    );
    assert_eq!(breaker.state(), State::MetricsOnly);
    assert_eq!(breaker.metrics().calls_in_window, Some(5));

    breaker.try_acquire().unwrap().failure(&"boom");
    assert_eq!(exceeded(&log, RateMeasure::Failures).len(), 1);
    assert!(
        !log.lock()
            .unwrap()
            .iter()
            .any(|seen| matches!(seen, Seen::Transition(..)))
    );
}

/// Ported from Resilience4j's `shouldPublishEachEventOnceInMetricOnlyState`:
/// five slow failures raise each rate's event exactly once.
#[test]
fn metrics_only_raises_each_rate_event_once() {
    let clock = FakeClock::new();
    // Resilience4j's test hands durations to the breaker without moving its
    // clock; here the clock moves 5 s a call, so the window is longer.
    let (builder, log) = r4j_breaker(&clock, Duration::from_secs(100));
    let breaker = builder.build();
    breaker.force_metrics_only();
    for _ in 0..5 {
        let permit = breaker.try_acquire().unwrap();
        clock.advance(Duration::from_secs(5));
        permit.failure(&"slow and failed");
    }
    assert_eq!(exceeded(&log, RateMeasure::Failures).len(), 1);
    let slow = exceeded(&log, RateMeasure::SlowCalls);
    assert_eq!(
        slow,
        vec![Seen::Exceeded {
            measure: RateMeasure::SlowCalls,
            rate: 1.0,
            threshold: 0.5,
            calls: 5,
            failed_or_slow: 5,
        }]
    );
}

/// Ported from Resilience4j's `shouldOpenAfterFailureRateThresholdExceeded`
/// (its event checks): in the closed state the event comes just before the
/// transition it causes, once; after the breaker closes again, the next
/// excess raises it again.
#[test]
fn the_event_precedes_the_opening_and_is_raised_again_after_closing() {
    let clock = FakeClock::new();
    let (builder, log) = r4j_breaker(&clock, Duration::from_secs(20));
    let breaker = builder.open_for(Duration::from_secs(5)).build();
    for _ in 0..4 {
        breaker.try_acquire().unwrap().success();
    }
    breaker.try_acquire().unwrap().failure(&"boom");
    assert_eq!(breaker.state(), State::Closed, "1 of 5 is under 50%");
    for _ in 0..3 {
        breaker.try_acquire().unwrap().failure(&"boom");
    }
    assert_eq!(breaker.state(), State::Open);
    let seen = log.lock().unwrap().clone();
    let exceeded_at = seen
        .iter()
        .position(|s| matches!(s, Seen::Exceeded { .. }))
        .expect("the rate event");
    assert_eq!(
        seen[exceeded_at],
        Seen::Exceeded {
            measure: RateMeasure::Failures,
            rate: 0.5,
            threshold: 0.5,
            calls: 8,
            failed_or_slow: 4,
        }
    );
    assert_eq!(
        seen[exceeded_at + 1],
        Seen::Transition(State::Closed, State::Open)
    );
    assert_eq!(exceeded(&log, RateMeasure::Failures).len(), 1);

    // Probe, close, and trip again: a second event.
    clock.advance(Duration::from_secs(5));
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
    for _ in 0..5 {
        if let Ok(permit) = breaker.try_acquire() {
            permit.failure(&"boom");
        }
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(exceeded(&log, RateMeasure::Failures).len(), 2);
}

/// A success that makes the window judgeable raises the event too (the rate
/// is judged on successes, issue 17's first defect): F, F, F, then S, S.
#[test]
fn a_success_that_trips_the_breaker_raises_the_event() {
    let log: Arc<Mutex<Vec<(f64, u64)>>> = Arc::default();
    let sink = log.clone();
    let breaker = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(5)).min_calls(5))
        .on_event(move |event| {
            if let EventKind::RateExceeded { rate, calls, .. } = *event.kind() {
                sink.lock().unwrap().push((rate, calls));
            }
        })
        .build();
    for _ in 0..3 {
        breaker.try_acquire().unwrap().failure(&"boom");
    }
    breaker.try_acquire().unwrap().success();
    assert!(log.lock().unwrap().is_empty());
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(*log.lock().unwrap(), vec![(0.6, 5)]);
}
