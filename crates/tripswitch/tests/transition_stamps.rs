//! Transitions are stamped with when they took effect, not when the breaker
//! noticed them (Polly #481: gauges built on events lagged). Ported from
//! Resilience4j's `shouldTransitionToHalfOpenAfterWaitDuration`
//! (CircuitBreakerStateMachineTest: the clock moves past the wait duration
//! before anyone looks) and Polly's `Flow_Closed_HalfOpen_Open_HalfOpen_Closed`
//! (CircuitStateControllerTests): the break ends at its duration, whoever
//! looks later, and the event says so. `eager_transitions.rs` has the
//! transitions made on time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, HalfOpen, State};

/// Transitions seen by a listener: from, to, and the event's stamp.
type Seen = Arc<Mutex<Vec<(State, State, Duration)>>>;

fn recorded(clock: &FakeClock, half_open: HalfOpen) -> (CircuitBreaker, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .half_open(half_open)
        .on_event(move |event| {
            if let EventKind::Transition { from, to, .. } = event.kind() {
                sink.lock().unwrap().push((*from, *to, event.at()));
            }
        })
        .build();
    (breaker, seen)
}

#[test]
fn the_end_of_an_open_period_is_stamped_at_its_deadline() {
    let clock = FakeClock::new();
    let (breaker, seen) = recorded(&clock, HalfOpen::probes(1));
    clock.advance(Duration::from_secs(1));
    breaker.try_acquire().unwrap().failure(&"down");
    // Nobody looks until a minute later.
    clock.advance(Duration::from_secs(60));
    assert_eq!(breaker.state(), State::HalfOpen);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (State::Closed, State::Open, Duration::from_secs(1)),
            (State::Open, State::HalfOpen, Duration::from_secs(6)),
        ]
    );
}

#[test]
fn a_half_open_timeout_is_stamped_at_its_deadline() {
    let clock = FakeClock::new();
    let (breaker, seen) = recorded(
        &clock,
        HalfOpen::probes(1).max_duration(Duration::from_secs(10)),
    );
    breaker.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(5));
    let _stuck = breaker.try_acquire().expect("the probe");
    clock.advance(Duration::from_secs(100));
    // The periods that follow run from the stamps: open from 15 s, for
    // 5 s, so half-open again from 20 s (found so at 105 s).
    assert_eq!(breaker.state(), State::HalfOpen);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[2..],
        [
            (State::HalfOpen, State::Open, Duration::from_secs(15)),
            (State::Open, State::HalfOpen, Duration::from_secs(20)),
        ]
    );
}

/// An open period that follows a late-noticed transition runs from the
/// transition's stamp, so that the stamps and the periods agree (an
/// adversarial review found 55 s between the stamps of a 5 s period), and a
/// rejection's retry time agrees with them too.
#[test]
fn the_period_after_a_late_noticed_transition_runs_from_its_stamp() {
    let clock = FakeClock::new();
    let (breaker, seen) = recorded(
        &clock,
        HalfOpen::probes(1).max_duration(Duration::from_secs(10)),
    );
    breaker.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(5));
    let _stuck = breaker.try_acquire().expect("the probe");
    // The half-open state times out at 15 s; nobody looks until 17 s.
    clock.advance(Duration::from_secs(12));
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(3)));
    clock.advance(Duration::from_secs(3));
    assert_eq!(breaker.state(), State::HalfOpen);
    let seen = seen.lock().unwrap().clone();
    let stamps: Vec<Duration> = seen.iter().map(|t| t.2).collect();
    assert_eq!(
        stamps,
        [0, 5, 15, 20].map(Duration::from_secs).to_vec(),
        "{seen:?}"
    );
}

#[test]
fn other_transitions_are_stamped_when_they_happen() {
    let clock = FakeClock::new();
    let (breaker, seen) = recorded(&clock, HalfOpen::probes(1));
    clock.advance(Duration::from_secs(3));
    breaker.force_open();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![(State::Closed, State::ForcedOpen, Duration::from_secs(3))]
    );
}
