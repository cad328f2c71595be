//! A breaker whose only policy is a consecutive count, with no listener
//! and no timing, records its failures on a short path of its own. It must
//! do exactly what the general path does: the same trips, the same
//! `on_error` calls, the same metrics, also when `on_error` moves the
//! breaker while the failure is recorded. Each scenario runs on such a
//! breaker and on one forced onto the general path by a listener.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tripswitch::{CircuitBreaker, State};

/// What `on_error` does to the breaker it reports for.
#[derive(Clone, Copy, Debug)]
enum OnError {
    Nothing,
    Reset,
    ForceOpen,
    Disable,
}

struct Probe {
    breaker: CircuitBreaker,
    errors: Arc<AtomicUsize>,
}

fn breaker(threshold: u32, on_error: OnError, listener: bool) -> Probe {
    let errors = Arc::new(AtomicUsize::new(0));
    let me: Arc<OnceLock<CircuitBreaker>> = Arc::new(OnceLock::new());
    let mut builder = CircuitBreaker::builder()
        .consecutive_failures(threshold)
        .fail_fast()
        .on_error({
            let errors = Arc::clone(&errors);
            let me = Arc::clone(&me);
            move |_| {
                errors.fetch_add(1, Ordering::Relaxed);
                if let Some(breaker) = me.get() {
                    match on_error {
                        OnError::Nothing => {}
                        OnError::Reset => breaker.reset(),
                        OnError::ForceOpen => breaker.force_open(),
                        OnError::Disable => breaker.disable(),
                    }
                }
            }
        });
    if listener {
        builder = builder.on_event(|_| {});
    }
    let breaker = builder.build();
    assert!(me.set(breaker.clone()).is_ok(), "set once");
    Probe { breaker, errors }
}

/// Everything a caller can see of the breaker after a step.
fn seen(probe: &Probe) -> String {
    let m = probe.breaker.metrics();
    format!(
        "state {:?}, errors {}, totals {:?}/{:?}/{:?}, current {:?}/{:?}, consecutive {:?}",
        m.state,
        probe.errors.load(Ordering::Relaxed),
        m.totals.successes,
        m.totals.failures,
        m.totals.rejected,
        m.current.successes,
        m.current.failures,
        m.consecutive_failures,
    )
}

/// Runs `steps` ('s' success, 'f' failure, 'l' a failure admitted before a
/// reset made while it ran) on both breakers and compares them after
/// every step.
fn same_on_both(threshold: u32, on_error: OnError, steps: &str) -> Vec<String> {
    let short = breaker(threshold, on_error, false);
    let general = breaker(threshold, on_error, true);
    let mut trace = Vec::new();
    for (index, step) in steps.chars().enumerate() {
        let mut results = Vec::new();
        for probe in [&short, &general] {
            let result = match step {
                's' => probe.breaker.try_acquire().map(|p| p.success()).is_ok(),
                'f' => probe
                    .breaker
                    .try_acquire()
                    .map(|p| p.failure(&"down"))
                    .is_ok(),
                'l' => match probe.breaker.try_acquire() {
                    Ok(permit) => {
                        probe.breaker.reset();
                        permit.failure(&"late");
                        true
                    }
                    Err(_) => false,
                },
                _ => unreachable!(),
            };
            results.push(format!("{result} {}", seen(probe)));
        }
        assert_eq!(
            results[0], results[1],
            "step {index} ('{step}') of {steps:?}, threshold {threshold}, on_error {on_error:?}: \
             the short path (left) against the general path (right)"
        );
        trace.push(results.remove(0));
    }
    trace
}

#[test]
fn the_short_path_trips_exactly_as_the_general_path() {
    for threshold in 1..=4 {
        for on_error in [
            OnError::Nothing,
            OnError::Reset,
            OnError::ForceOpen,
            OnError::Disable,
        ] {
            for steps in [
                "ffff", "fsfffs", "sfsfsf", "fffsfff", "flfff", "ffflf", "lllf",
            ] {
                same_on_both(threshold, on_error, steps);
            }
        }
    }
}

#[test]
fn a_failure_trips_at_the_threshold_and_on_error_sees_each_once() {
    let trace = same_on_both(3, OnError::Nothing, "ffsfff");
    assert!(trace[1].contains("state Closed"), "{}", trace[1]);
    assert!(trace[4].contains("state Closed"), "{}", trace[4]);
    assert!(trace[5].contains("state Open"), "{}", trace[5]);
    assert!(trace[5].contains("errors 5"), "{}", trace[5]);
}

/// `on_error` resets the breaker while the failure is recorded: the
/// failure is counted in the totals, not in the new generation's count, so
/// a threshold of one never trips.
#[test]
fn a_reset_from_on_error_keeps_the_failure_out_of_the_new_count() {
    let trace = same_on_both(1, OnError::Reset, "fff");
    for step in &trace {
        assert!(step.contains("state Closed"), "{step}");
        assert!(step.contains("consecutive Some(0)"), "{step}");
    }
    assert!(trace[2].contains("errors 3"), "{}", trace[2]);
}

/// A failure admitted before a reset is a late result: it counts in the
/// totals only.
#[test]
fn a_late_failure_does_not_count_in_the_new_state() {
    let probe = breaker(1, OnError::Nothing, false);
    let permit = probe.breaker.try_acquire().unwrap();
    probe.breaker.reset();
    permit.failure(&"late");
    let m = probe.breaker.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(m.totals.failures, 1);
    assert_eq!(m.current.failures, 0);
    assert_eq!(m.consecutive_failures, Some(0));
    assert_eq!(probe.errors.load(Ordering::Relaxed), 1);
}
