//! `Metrics::current` counts the runs admitted in the current state only: a
//! late result (a run that started before the last transition and ended
//! after it) counts in `totals`, never in `current`. Issue 17, rule 5.

use tripswitch::{CircuitBreaker, State};

/// Ported from gobreaker's `TestGeneration` (v2/gobreaker_test.go): a
/// request of the previous generation has no effect on the counts of the
/// new one. Here the late run succeeds, on the success fast path (a
/// consecutive-failures breaker without listeners).
#[test]
fn a_late_success_is_not_counted_in_the_new_state() {
    let breaker = CircuitBreaker::standard().consecutive_failures(2).build();
    let late = breaker.try_acquire().unwrap();
    breaker.try_acquire().unwrap().failure(&"down");
    breaker.try_acquire().unwrap().failure(&"down");
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().current.calls(), 0);

    late.success();
    let metrics = breaker.metrics();
    assert_eq!(metrics.current.successes, 0, "{metrics:?}");
    assert_eq!(metrics.current.calls(), 0);
    assert_eq!(metrics.totals.successes, 1);
    assert_eq!(metrics.totals.failures, 2);
}

/// The same with a late failure ("today a late failure after a trip shows in
/// `current`"), through the general recording path.
#[test]
fn a_late_failure_is_not_counted_in_the_new_state() {
    let breaker = CircuitBreaker::standard().consecutive_failures(1).build();
    let late = breaker.try_acquire().unwrap();
    breaker.try_acquire().unwrap().failure(&"down");
    assert_eq!(breaker.state(), State::Open);
    // One rejection in the open state counts there.
    assert!(breaker.try_acquire().is_err());

    late.failure(&"late");
    let metrics = breaker.metrics();
    assert_eq!(metrics.current.failures, 0, "{metrics:?}");
    assert_eq!(metrics.current.rejected, 1);
    assert_eq!(metrics.totals.failures, 2);
}

/// A slow late run: neither its outcome nor its slowness is counted in the
/// new state.
#[test]
fn a_late_slow_failure_leaves_no_trace_in_the_new_state() {
    let clock = tripswitch::clock::FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .slow_call_rate(tripswitch::policy::SlowCallRate::new(
            std::time::Duration::from_secs(1),
            1.0,
            tripswitch::policy::Window::last_calls(100),
        ))
        .build();
    let late = breaker.try_acquire().unwrap();
    breaker.try_acquire().unwrap().failure(&"down");
    assert_eq!(breaker.state(), State::Open);
    clock.advance(std::time::Duration::from_secs(2));
    late.failure(&"late and slow");
    let metrics = breaker.metrics();
    assert_eq!(metrics.current.failures, 0, "{metrics:?}");
    assert_eq!(metrics.current.slow, 0);
    assert_eq!(metrics.totals.slow, 1);
}

/// Runs admitted in the current state are counted there, late or not in
/// finishing (the control case: the generation check is not over-eager).
#[test]
fn a_run_of_the_current_state_counts_in_it() {
    let breaker = CircuitBreaker::standard().consecutive_failures(3).build();
    let slow_to_finish = breaker.try_acquire().unwrap();
    breaker.try_acquire().unwrap().failure(&"down");
    slow_to_finish.success();
    let metrics = breaker.metrics();
    assert_eq!(metrics.current.successes, 1);
    assert_eq!(metrics.current.failures, 1);
}
