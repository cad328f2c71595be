//! Review 17: odds and ends of rule 1 (rates judged on every outcome) and
//! rule 2 (reset).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::{EventKind, RateMeasure};
use tripswitch::policy::{FailureRate, SlowCallRate, Window};
use tripswitch::{CircuitBreaker, State};

/// A threshold of 0 trips on any failure; a success that brings the window
/// to min_calls with one failure in it trips (count ring fast path, time
/// window fast path, and with a listener).
#[test]
fn zero_threshold_trips_on_success_reaching_min_calls() {
    for window in [
        Window::last_calls(10),
        Window::last(Duration::from_secs(10)),
    ] {
        for listen in [false, true] {
            let clock = FakeClock::new();
            let mut builder = CircuitBreaker::standard()
                .clock(clock.clone())
                .failure_rate(FailureRate::new(0.0, window).min_calls(3));
            if listen {
                builder = builder.on_event(|_| {});
            }
            let b = builder.build();
            b.try_acquire().unwrap().failure(&"f");
            b.try_acquire().unwrap().success();
            assert_eq!(b.state(), State::Closed);
            b.try_acquire().unwrap().success();
            assert_eq!(b.state(), State::Open, "{window:?} listen={listen}");

            let c = CircuitBreaker::standard()
                .clock(clock.clone())
                .failure_rate(FailureRate::new(0.0, window).min_calls(3))
                .build();
            for _ in 0..20 {
                c.try_acquire().unwrap().success();
            }
            assert_eq!(
                c.state(),
                State::Closed,
                "no failure: a rate of 0 does not trip"
            );
        }
    }
}

/// A slow success trips a slow-call rate (the success is the outcome that
/// changes the verdict), with the event's counts.
#[test]
fn slow_success_trips_slow_rate() {
    let clock = FakeClock::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .slow_call_rate(
            SlowCallRate::new(Duration::from_secs(1), 0.5, Window::last_calls(10)).min_calls(4),
        )
        .on_event(move |e| {
            if let EventKind::RateExceeded {
                measure,
                calls,
                failed_or_slow,
                rate,
                ..
            } = e.kind()
            {
                s.lock()
                    .unwrap()
                    .push((*measure, *calls, *failed_or_slow, *rate));
            }
        })
        .build();
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    for _ in 0..2 {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_secs(2));
        p.success();
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[(RateMeasure::SlowCalls, 4, 2, 0.5)]
    );
}

/// RateExceeded's counts on a bucketed time window.
#[test]
fn rate_exceeded_counts_time_buckets() {
    let clock = FakeClock::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(
            FailureRate::new(0.5, Window::last_in_buckets(Duration::from_secs(10), 10))
                .min_calls(6),
        )
        .on_event(move |e| {
            if let EventKind::RateExceeded {
                calls,
                failed_or_slow,
                rate,
                threshold,
                ..
            } = e.kind()
            {
                s.lock()
                    .unwrap()
                    .push((*calls, *failed_or_slow, *rate, *threshold));
            }
        })
        .build();
    for _ in 0..5 {
        b.try_acquire().unwrap().failure(&"old");
    }
    clock.advance(Duration::from_secs(11)); // those leave the window
    for _ in 0..3 {
        b.try_acquire().unwrap().success();
        clock.advance(Duration::from_millis(500));
    }
    for _ in 0..3 {
        b.try_acquire().unwrap().failure(&"f");
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(seen.lock().unwrap().as_slice(), &[(6, 3, 0.5, 0.5)]);
}

/// reset() while closed clears the consecutive count: F, F, reset, F does
/// not trip a 3-in-a-row policy.
#[test]
fn reset_clears_consecutive_count() {
    let b = CircuitBreaker::standard().consecutive_failures(3).build();
    b.try_acquire().unwrap().failure(&"f");
    b.try_acquire().unwrap().failure(&"f");
    assert_eq!(b.metrics().consecutive_failures, Some(2));
    b.reset();
    assert_eq!(b.metrics().consecutive_failures, Some(0));
    b.try_acquire().unwrap().failure(&"f");
    assert_eq!(b.state(), State::Closed);
}

/// reset() while closed clears a time window too (calls from before do not
/// count), with a listener.
#[test]
fn reset_clears_time_window() {
    let clock = FakeClock::new();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(FailureRate::new(0.5, Window::last(Duration::from_secs(60))).min_calls(4))
        .on_event(|_| {})
        .build();
    for _ in 0..3 {
        b.try_acquire().unwrap().failure(&"f");
    }
    b.reset();
    assert_eq!(b.metrics().calls_in_window, Some(0));
    b.try_acquire().unwrap().failure(&"f");
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().current.failures, 1);
}

/// A permit taken before reset() and succeeding after it: not in the new
/// window (a count ring's success path), not in current.
#[test]
fn reset_then_late_success_not_in_window() {
    let b = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(4))
        .build();
    let late: Vec<_> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
    b.reset();
    for p in late {
        p.success();
    }
    assert_eq!(
        b.metrics().calls_in_window,
        Some(0),
        "late successes do not fill the new window"
    );
    assert_eq!(b.metrics().current.successes, 0);
    b.try_acquire().unwrap().failure(&"f");
    b.try_acquire().unwrap().failure(&"f");
    assert_eq!(
        b.state(),
        State::Closed,
        "2 calls of the new generation, min 4"
    );
}
