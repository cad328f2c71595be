//! Review 17: transitions stamped with when they took effect (rule 6), the
//! periods that follow them, and odds and ends of the half-open settings.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::{Event, EventKind, TransitionReason};
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{CircuitBreaker, HalfOpen, State};

type Log = Arc<Mutex<Vec<(State, State, TransitionReason, Duration)>>>;

fn log() -> (Log, impl Fn(&Event<'_>) + Send + Sync + 'static) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    (log, move |e: &Event<'_>| {
        if let EventKind::Transition { from, to, reason } = e.kind() {
            l.lock().unwrap().push((*from, *to, *reason, e.at()));
        }
    })
}

/// A half-open state that timed out while nobody looked is stamped as
/// having reopened at its deadline. The open period that follows must then
/// run from that stamp: the next move to half-open comes `open_for` after
/// the reopening's stamp, as it does with eager transitions (a caller
/// arriving long after is a probe, not rejected for another open period).
#[test]
fn lazy_half_open_timeout_reopen_period_runs_from_its_stamp() {
    let clock = FakeClock::new();
    let (log, listener) = log();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(10)))
        .on_event(listener)
        .build();
    b.try_acquire().unwrap().failure(&"down"); // open at 0
    clock.advance(Duration::from_secs(5));
    let _hung = b.try_acquire().expect("probe at 5 s"); // half-open at 5, bound 15
    clock.advance(Duration::from_secs(60)); // t = 65: nobody looked since 5
    let call = b.try_acquire();
    let log = log.lock().unwrap().clone();
    let reopened = log
        .iter()
        .find(|(f, t, r, _)| {
            (*f, *t, *r)
                == (
                    State::HalfOpen,
                    State::Open,
                    TransitionReason::HalfOpenTimedOut,
                )
        })
        .copied()
        .expect("timed out");
    assert_eq!(
        reopened.3,
        Duration::from_secs(15),
        "stamped at the half-open deadline"
    );
    // The reopening took effect at 15 s: its 5 s open period ended at 20 s,
    // long before this call at 65 s.
    assert!(
        call.is_ok(),
        "reopened at 15 s (stamp) for 5 s, yet a call at 65 s is rejected: {:?}; transitions {log:?}",
        call.err()
    );
}

/// Same, read through the stamps alone: the time between the Open stamp and
/// the next HalfOpen stamp is the open period.
#[test]
fn lazy_stamps_open_period_length() {
    let clock = FakeClock::new();
    let (log, listener) = log();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(10)))
        .on_event(listener)
        .build();
    b.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(5));
    let _hung = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(60));
    let _ = b.state(); // notices the timeout at 65
    clock.advance(Duration::from_secs(60));
    let _ = b.state(); // notices the end of the open period
    let log = log.lock().unwrap().clone();
    let at = |from: State, to: State, nth: usize| {
        log.iter()
            .filter(|(f, t, _, _)| (*f, *t) == (from, to))
            .nth(nth)
            .map(|e| e.3)
            .unwrap_or_else(|| panic!("{from}->{to} #{nth} in {log:?}"))
    };
    let reopened = at(State::HalfOpen, State::Open, 0);
    let half_again = at(State::Open, State::HalfOpen, 1);
    assert_eq!(
        half_again - reopened,
        Duration::from_secs(5),
        "the open period between the stamps is open_for: {log:?}"
    );
}

/// The half-open bound between stamps: the move to half-open noticed late
/// is stamped at the open period's end; the timeout comes max_duration
/// after that stamp.
#[test]
fn lazy_stamps_half_open_length() {
    let clock = FakeClock::new();
    let (log, listener) = log();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(10)))
        .on_event(listener)
        .build();
    b.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(8));
    let _hung = b.try_acquire().unwrap(); // half-open noticed at 8, stamped 5
    clock.advance(Duration::from_secs(100));
    let _ = b.state();
    let log = log.lock().unwrap().clone();
    let half = log.iter().find(|e| e.1 == State::HalfOpen).unwrap().3;
    let timeout = log
        .iter()
        .find(|e| e.2 == TransitionReason::HalfOpenTimedOut)
        .unwrap()
        .3;
    assert_eq!(half, Duration::from_secs(5));
    assert_eq!(
        timeout - half,
        Duration::from_secs(10),
        "half-open lasted max_duration between its stamps: {log:?}"
    );
}

/// budget_limit() says "the most calls one half-open state lets through in
/// all": for judged_by_rate with a budget set, the breaker lets `calls`
/// through "whatever is set here", so the accessor must not report the
/// ignored value.
#[test]
fn budget_limit_reports_the_effective_budget() {
    let half_open = HalfOpen::judged_by_rate(4, 0.5).budget(2);
    let clock = FakeClock::new();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .half_open(half_open)
        .try_build()
        .expect("accepted");
    b.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(5));
    let admitted: Vec<_> = std::iter::from_fn(|| b.try_acquire().ok())
        .take(10)
        .collect();
    assert_eq!(admitted.len(), 4);
    assert_eq!(
        half_open.budget_limit(),
        Some(admitted.len() as u32),
        "budget_limit() = the most calls one half-open state lets through"
    );
}

/// RateExceeded is raised again after the window is cleared (the breaker
/// closed again): once per trip cycle.
#[test]
fn rate_exceeded_once_per_cycle() {
    let clock = FakeClock::new();
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(2))
        .on_event(move |e| {
            if let EventKind::RateExceeded { .. } = e.kind() {
                *c.lock().unwrap() += 1;
            }
        })
        .build();
    for cycle in 1..=3 {
        b.try_acquire().unwrap().failure(&"f");
        b.try_acquire().unwrap().failure(&"f");
        assert_eq!(b.state(), State::Open);
        clock.advance(Duration::from_secs(5));
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), State::Closed);
        assert_eq!(*count.lock().unwrap(), cycle);
    }
    // Metrics-only, then resume: the window is cleared by the change of mode.
    b.force_metrics_only();
    b.try_acquire().unwrap().failure(&"f");
    b.try_acquire().unwrap().failure(&"f");
    assert_eq!(*count.lock().unwrap(), 4);
    b.resume();
    b.try_acquire().unwrap().failure(&"f");
    b.try_acquire().unwrap().failure(&"f");
    assert_eq!(*count.lock().unwrap(), 5);
    assert_eq!(b.state(), State::Open);
}

/// reset() from half-open with probes in flight: their verdicts do not
/// count in the closed state, nor in a later half-open state's budget.
#[test]
fn reset_from_half_open_voids_probes() {
    let clock = FakeClock::new();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .half_open(HalfOpen::probes(1).budget(1))
        .build();
    b.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(5));
    let old = b.try_acquire().unwrap();
    assert!(old.is_probe());
    b.reset();
    assert_eq!(b.state(), State::Closed);
    b.try_acquire().unwrap().failure(&"down again");
    clock.advance(Duration::from_secs(5));
    let fresh = b.try_acquire().expect("new half-open state, new budget");
    drop(old); // refund of the old generation: must not give this one a 2nd place
    assert!(b.try_acquire().is_err(), "budget 1 in this half-open state");
    fresh.success();
    assert_eq!(b.state(), State::Closed);
}

/// force_open() while open with eager transitions: the open period's alarm
/// must not move a forced-open breaker.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_alarm_respects_force_open() {
    let (log, listener) = log();
    let b = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .eager_transitions()
        .on_event(listener)
        .build();
    b.try_acquire().unwrap().failure(&"down");
    b.force_open();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(b.state(), State::ForcedOpen);
    let tos: Vec<_> = log.lock().unwrap().iter().map(|e| e.1).collect();
    assert_eq!(tos, vec![State::Open, State::ForcedOpen]);
    b.resume();
    assert_eq!(b.state(), State::Closed);
}
