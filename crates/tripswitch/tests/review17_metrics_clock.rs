//! Review 17: metrics current vs totals, calls in window, clocks at their
//! extremes and clocks whose timers never fire.

use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{Backoff, CircuitBreaker, HalfOpen, RejectReason, State};

mod common;
use common::DeafClock;

#[test]
fn current_excludes_late_results_totals_include_them() {
    let clock = FakeClock::new();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .build();
    let late_ok = b.try_acquire().unwrap();
    let late_fail = b.try_acquire().unwrap();
    let late_cancel = b.try_acquire().unwrap();
    let late_ignored = b.try_acquire().unwrap();
    b.try_acquire().unwrap().failure(&"trip");
    assert_eq!(b.state(), State::Open);
    let _ = b.try_acquire().unwrap_err();
    let _ = b.try_acquire().unwrap_err();
    late_ok.success();
    late_fail.failure(&"late");
    drop(late_cancel);
    late_ignored.ignored(&"late");
    let m = b.metrics();
    assert_eq!(m.totals.successes, 1);
    assert_eq!(m.totals.failures, 2);
    assert_eq!(m.totals.cancelled, 1);
    assert_eq!(m.totals.ignored, 1);
    assert_eq!(m.totals.rejected, 2);
    assert_eq!(m.current.successes, 0);
    assert_eq!(m.current.failures, 0);
    assert_eq!(m.current.cancelled, 0);
    assert_eq!(m.current.ignored, 0);
    assert_eq!(m.current.rejected, 2, "rejections of the open state");
    clock.advance(Duration::from_secs(5));
    let m = b.metrics();
    assert_eq!(m.state, State::HalfOpen);
    assert_eq!(m.current, tripswitch::Counts::default());
}

// `current_excludes_late_results_under_races` was dropped: a result that ends
// while another thread makes the transition may land on either side (the
// check and the count are not one atomic step; `Metrics::current` says so).

#[test]
fn calls_in_window_follows_time() {
    let clock = FakeClock::new();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(FailureRate::new(0.5, Window::last(Duration::from_secs(30))).min_calls(100))
        .build();
    for _ in 0..5 {
        b.try_acquire().unwrap().success();
    }
    b.try_acquire().unwrap().failure(&"f");
    let m = b.metrics();
    assert_eq!(m.calls_in_window, Some(6));
    assert!((m.failure_rate.unwrap() - 1.0 / 6.0).abs() < 1e-9);
    clock.advance(Duration::from_secs(31));
    let m = b.metrics();
    assert_eq!(m.calls_in_window, Some(0), "the calls left the window");
    assert_eq!(m.failure_rate, None, "an empty window has no rate");
}

#[test]
fn calls_in_window_buckets_and_counts() {
    let clock = FakeClock::new();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(
            FailureRate::new(0.5, Window::last_in_buckets(Duration::from_secs(10), 10))
                .min_calls(20),
        )
        .build();
    for _ in 0..7 {
        b.try_acquire().unwrap().success();
    }
    assert_eq!(b.metrics().calls_in_window, Some(7));
    clock.advance(Duration::from_secs(11));
    assert_eq!(b.metrics().calls_in_window, Some(0));

    let c = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(4))
        .build();
    for _ in 0..10 {
        c.try_acquire().unwrap().success();
    }
    assert_eq!(
        c.metrics().calls_in_window,
        Some(4),
        "a count window holds its size"
    );
    let d = CircuitBreaker::standard().build();
    assert_eq!(d.metrics().calls_in_window, None);
}

/// Fail-fast, no eager transitions, a clock whose timers never fire: a
/// half-open state with a hung probe must still time out through
/// rejections alone, and the breaker come back.
#[test]
fn half_open_times_out_on_rejections_alone_when_timers_never_fire() {
    let clock = DeafClock::default();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(10)))
        .build();
    b.try_acquire().unwrap().failure(&"f");
    clock.advance(Duration::from_secs(5));
    // Bounded, so that a broken promise fails instead of hanging: one
    // rejection in 1,024 reads the clock, so 5,000 are plenty.
    let _hung = (0..5_000)
        .find_map(|_| b.try_acquire().ok())
        .expect("a sampled rejection notices the end of the open period");
    clock.advance(Duration::from_secs(10));
    // Past the half-open bound: rejections alone must notice it (the state
    // goes Open), then notice the end of the next open period.
    let mut reasons = Vec::new();
    let mut admitted = false;
    for _ in 0..5_000 {
        match b.try_acquire() {
            Ok(_) => {
                admitted = true;
                break;
            }
            Err(r) => {
                if reasons.last() != Some(&r.reason()) {
                    reasons.push(r.reason());
                    if r.reason() == RejectReason::Open {
                        clock.advance(Duration::from_secs(5));
                    }
                }
            }
        }
    }
    assert!(reasons.contains(&RejectReason::Open), "{reasons:?}");
    assert!(admitted, "a probe after the next open period: {reasons:?}");
}

/// Clocks at their extremes: nothing panics, and retry_after saturates.
#[test]
fn clock_extremes_do_not_panic() {
    let clock = FakeClock::new();
    clock.advance(Duration::MAX);
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::judged_by_rate(2, 0.5).max_duration(Duration::MAX))
        .eager_transitions()
        .on_event(|e| {
            let _ = e.at();
        })
        .build();
    b.try_acquire().unwrap().failure(&"f");
    let _ = b.state();
    let _ = b.metrics();
    if let Err(r) = b.try_acquire() {
        let _ = r.retry_after();
        let _ = r.to_string();
    }
    clock.advance(Duration::MAX);
    let _ = b.state();

    let clock = FakeClock::new();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .backoff(Backoff::exponential(Duration::MAX, Duration::MAX).jitter(1.0))
        .half_open(
            HalfOpen::probes(u32::MAX)
                .budget(u32::MAX)
                .close_after(u32::MAX),
        )
        .eager_transitions()
        .build();
    b.try_acquire().unwrap().failure(&"f");
    let r = b.try_acquire().unwrap_err();
    assert!(r.retry_after().unwrap_or(Duration::MAX) > Duration::from_secs(1_000_000));
    clock.advance(Duration::from_secs(1));
    clock.advance(Duration::MAX);
    let _ = b.state();
    let _ = b.try_acquire();
}

/// Under tokio's paused clock: eager transitions with huge periods.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn tokio_huge_periods_eager() {
    let b = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::MAX)
        .half_open(HalfOpen::probes(1).max_duration(Duration::MAX))
        .eager_transitions()
        .build();
    b.try_acquire().unwrap().failure(&"f");
    tokio::time::sleep(Duration::from_secs(86_400 * 365)).await;
    assert_eq!(b.state(), State::Open);
    let r = b.try_acquire().unwrap_err();
    assert!(r.retry_after().unwrap() > Duration::from_secs(86_400 * 365 * 100));
    b.reset();
    assert_eq!(b.state(), State::Closed);
}

/// metrics().retry_after while half-open: the doc says None (unknown).
#[test]
fn metrics_retry_after_half_open() {
    let clock = FakeClock::new();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .build();
    b.try_acquire().unwrap().failure(&"f");
    assert_eq!(b.metrics().retry_after, Some(Duration::from_secs(5)));
    clock.advance(Duration::from_secs(5));
    let m = b.metrics();
    assert_eq!(m.state, State::HalfOpen);
    assert_eq!(m.retry_after, None);
    assert_eq!(m.probes_in_flight, 0);
}
