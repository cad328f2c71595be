//! The half-open state as a small window of its own (issue 17, rule 3):
//! gobreaker's `MaxRequests` as a budget for the whole state,
//! Resilience4j's permitted calls judged by rate, pybreaker's success
//! threshold. Today's "first failure reopens" stays the default.

use std::time::Duration;

use tripswitch::RejectReason;
use tripswitch::clock::FakeClock;
use tripswitch::{CircuitBreaker, HalfOpen, State};

const OPEN: Duration = Duration::from_secs(5);

/// A fail-fast breaker with `half_open`, tripped and then half-open.
fn half_open_breaker(clock: &FakeClock, half_open: HalfOpen) -> CircuitBreaker {
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .slow_call_threshold(Duration::from_secs(4))
        .open_for(OPEN)
        .half_open(half_open)
        .try_build()
        .unwrap();
    breaker.try_acquire().unwrap().failure(&"down");
    clock.advance(OPEN);
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker
}

/// Ported from gobreaker's `TestCustomCircuitBreaker` (v2/gobreaker_test.go),
/// its half-open part: MaxRequests = 3; after two successes a third call is
/// in flight, and a fourth is rejected ("over MaxRequests") although only one
/// call runs; the third success closes the breaker.
#[test]
fn a_budget_caps_the_calls_of_the_whole_half_open_state() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(&clock, HalfOpen::probes(3).budget(3));
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::HalfOpen);
    let third = breaker.try_acquire().unwrap();
    let fourth = breaker.try_acquire().unwrap_err();
    assert_eq!(fourth.reason(), RejectReason::HalfOpenFull);
    third.success();
    assert_eq!(breaker.state(), State::Closed);
}

/// Without a budget, `probes(3)` limits concurrency only: the same sequence
/// lets the fourth call through (the control case of the test above).
#[test]
fn without_a_budget_probes_limit_concurrency_only() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(&clock, HalfOpen::probes(3).close_after(4));
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().success();
    let third = breaker.try_acquire().unwrap();
    let fourth = breaker.try_acquire().unwrap();
    third.success();
    fourth.success();
    assert_eq!(breaker.state(), State::Closed);
}

/// A rejection for a spent budget says when to come back: when the
/// half-open state gives up at the latest.
#[test]
fn a_spent_budget_is_rejected_with_a_retry_time() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(
        &clock,
        HalfOpen::probes(2)
            .budget(2)
            .max_duration(Duration::from_secs(10)),
    );
    breaker.try_acquire().unwrap().success();
    let _second = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(3));
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(7)));
}

/// Ported from Resilience4j's `shouldIncreaseCounterOnReleasePermission`
/// and `shouldOnlyPermitFourCallsInHalfOpenState`: four permitted calls,
/// a fifth refused; a permission given back (here a cancelled call, or one
/// that failed with an ignored error) lets one more through.
#[test]
fn a_call_without_a_verdict_gives_its_place_back() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(&clock, HalfOpen::judged_by_rate(4, 0.5));
    let permits: Vec<_> = (0..4).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(breaker.try_acquire().is_err());
    assert!(breaker.try_acquire().is_err());
    let mut permits = permits.into_iter();
    drop(permits.next()); // cancelled
    let fifth = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err());
    permits.next().unwrap().ignored(&"not the service's fault");
    let sixth = breaker.try_acquire().unwrap();
    // Four verdicts decide: S, S, S, S closes.
    for permit in permits.chain([fifth, sixth]) {
        permit.success();
    }
    assert_eq!(breaker.state(), State::Closed);
}

/// Ported from Resilience4j's `shouldTransitionBackToClosedStateWhenFailureIsBelowThreshold`:
/// four permitted calls at 50%: F, S, S, S closes the breaker (25%), where
/// "the first failure reopens" would have opened it.
#[test]
fn one_failure_among_four_closes_a_rate_judged_half_open_state() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(&clock, HalfOpen::judged_by_rate(4, 0.5));
    breaker.try_acquire().unwrap().failure(&"still flaky");
    assert_eq!(breaker.state(), State::HalfOpen);
    for _ in 0..3 {
        breaker.try_acquire().unwrap().success();
    }
    assert_eq!(breaker.state(), State::Closed);
}

/// Ported from Resilience4j's `shouldTransitionBackToOpenStateWhenFailureRateIsAboveThreshold`:
/// F, F, S, F (75%) opens the breaker again, once the fourth call ended.
#[test]
fn a_failure_rate_over_the_threshold_reopens() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(&clock, HalfOpen::judged_by_rate(4, 0.5));
    breaker.try_acquire().unwrap().failure(&"down");
    breaker.try_acquire().unwrap().failure(&"down");
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().failure(&"down");
    assert_eq!(breaker.state(), State::Open);
}

/// Ported from Resilience4j's `shouldTransitionBackToOpenStateWhenSlowCallRateIsAboveThreshold`:
/// three slow calls and a fast one, all successes, reopen at a 50% slow-call rate.
#[test]
fn a_slow_call_rate_over_the_threshold_reopens() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(&clock, HalfOpen::judged_by_rate(4, 0.5).slow_call_rate(0.5));
    for _ in 0..3 {
        let permit = breaker.try_acquire().unwrap();
        clock.advance(Duration::from_secs(5));
        permit.success();
    }
    let fast = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(1));
    fast.success();
    assert_eq!(breaker.state(), State::Open);
}

/// The same slow calls without `slow_call_rate`: the rate judge looks at
/// failures only, and four successes close.
#[test]
fn slow_successes_close_a_rate_judge_without_a_slow_call_rate() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(&clock, HalfOpen::judged_by_rate(4, 0.5));
    for _ in 0..4 {
        let permit = breaker.try_acquire().unwrap();
        clock.advance(Duration::from_secs(5));
        permit.success();
    }
    assert_eq!(breaker.state(), State::Closed);
}

/// Ported from pybreaker's `test_success_threshold_multiple_successes_required`:
/// success_threshold = 3 needs three successes before closing.
#[test]
fn a_success_threshold_needs_that_many_successes() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(&clock, HalfOpen::probes(1).close_after(3));
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

/// Ported from pybreaker's `test_success_threshold_failure_resets_counter`:
/// two successes, then a failure, open the breaker again; the next
/// half-open state starts counting from zero.
#[test]
fn a_failure_before_the_success_threshold_reopens_and_resets_the_count() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(&clock, HalfOpen::probes(1).close_after(3));
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().failure(&"down");
    assert_eq!(breaker.state(), State::Open);
    clock.advance(OPEN * 2);
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::HalfOpen, "the count started again");
}

/// A rate judge's account belongs to one half-open state: a call of the
/// previous one that ends late neither spends nor judges in the next.
#[test]
fn a_late_call_does_not_count_in_the_next_half_open_state() {
    let clock = FakeClock::new();
    let breaker = half_open_breaker(&clock, HalfOpen::judged_by_rate(2, 0.5));
    let late = breaker.try_acquire().unwrap();
    breaker.try_acquire().unwrap().failure(&"down");
    // The half-open state times out: open, then half-open again.
    clock.advance(Duration::from_secs(31));
    assert_eq!(breaker.state(), State::Open);
    clock.advance(OPEN * 4);
    assert_eq!(breaker.state(), State::HalfOpen);
    late.failure(&"late");
    breaker.try_acquire().unwrap().success();
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "one verdict of two so far"
    );
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

/// In wait mode, a call beyond the budget waits for the decision, and is
/// let through when the breaker closes.
#[tokio::test(start_paused = true)]
async fn in_wait_mode_a_call_over_the_budget_waits_for_the_decision() {
    let breaker = std::sync::Arc::new(
        CircuitBreaker::builder()
            .freeze_for(OPEN)
            .retry_after_freeze(false)
            .half_open(HalfOpen::probes(1).budget(1))
            .build(),
    );
    let _ = breaker.execute(|| async { Err::<(), _>("down") }).await;
    tokio::time::sleep(OPEN).await;
    let probe = breaker.acquire().await.unwrap();
    assert!(probe.is_probe());
    let waiting = tokio::spawn({
        let breaker = breaker.clone();
        async move { breaker.execute(|| async { Ok::<_, ()>(7) }).await }
    });
    tokio::task::yield_now().await;
    assert_eq!(breaker.metrics().waiting, 1);
    probe.success();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(waiting.await.unwrap().unwrap(), 7);
}

/// Invalid half-open settings are refused by name.
#[test]
fn invalid_half_open_windows_are_refused_by_name() {
    let refused = |half_open: HalfOpen| {
        CircuitBreaker::standard()
            .half_open(half_open)
            .try_build()
            .unwrap_err()
            .setting()
    };
    assert_eq!(
        refused(HalfOpen::probes(3).budget(2)),
        "half_open.budget",
        "a budget under close_after could never close"
    );
    assert_eq!(refused(HalfOpen::probes(1).budget(0)), "half_open.budget");
    assert_eq!(
        refused(HalfOpen::release_all().budget(3)),
        "half_open.budget"
    );
    assert_eq!(
        refused(HalfOpen::judged_by_rate(4, 1.5)),
        "half_open.failure_rate"
    );
    assert_eq!(
        refused(HalfOpen::judged_by_rate(4, 0.5).slow_call_rate(-0.1)),
        "half_open.slow_call_rate"
    );
    assert_eq!(
        refused(HalfOpen::judged_by_rate(0, 0.5)),
        "half_open.probes"
    );
    // A slow-call rate needs a slow-call threshold to judge by.
    assert_eq!(
        refused(HalfOpen::judged_by_rate(4, 0.5).slow_call_rate(0.5)),
        "half_open.slow_call_rate"
    );
    // `build` never fails: it clamps, and the breaker works.
    let clock = FakeClock::new();
    let clamped = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(OPEN)
        .half_open(HalfOpen::probes(3).budget(1))
        .build();
    clamped.try_acquire().unwrap().failure(&"down");
    clock.advance(OPEN);
    for _ in 0..3 {
        clamped.try_acquire().unwrap().success();
    }
    assert_eq!(clamped.state(), State::Closed);
}

/// Many threads against one half-open state: a budget is never overspent,
/// whatever the interleaving (probes and budget are two atomics' worth of
/// state; the account is taken after the slot, under its lock).
#[test]
fn threads_never_overspend_a_budget() {
    for _ in 0..20 {
        let clock = FakeClock::new();
        let breaker = std::sync::Arc::new(half_open_breaker(
            &clock,
            HalfOpen::probes(2).budget(5).close_after(5),
        ));
        let admitted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let breaker = breaker.clone();
                let admitted = admitted.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..50 {
                        if let Ok(permit) = breaker.try_acquire() {
                            if permit.is_probe() {
                                admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            permit.success();
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(
            admitted.load(std::sync::atomic::Ordering::Relaxed),
            5,
            "exactly the budget: five probes, then closed"
        );
        assert_eq!(breaker.state(), State::Closed);
    }
}

/// A rate judge's calls all at once from many threads: exactly `calls` are
/// let through, and cancelling them all gives every place back.
#[test]
fn threads_get_exactly_the_judged_calls_and_cancelling_refunds_them() {
    let clock = FakeClock::new();
    let breaker = std::sync::Arc::new(half_open_breaker(&clock, HalfOpen::judged_by_rate(8, 0.5)));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let breaker = breaker.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                breaker.try_acquire_owned().ok()
            })
        })
        .collect();
    let permits: Vec<_> = threads
        .into_iter()
        .filter_map(|thread| thread.join().unwrap())
        .collect();
    assert_eq!(permits.len(), 8);
    drop(permits);
    let again: Vec<_> = (0..8)
        .map(|_| breaker.try_acquire_owned().unwrap())
        .collect();
    assert!(breaker.try_acquire().is_err());
    for permit in again {
        permit.success();
    }
    assert_eq!(breaker.state(), State::Closed);
}

/// `budget_limit` tells the budget in force: a rate judge's is its calls.
#[test]
fn budget_limit_reports_the_budget_in_force() {
    assert_eq!(
        HalfOpen::judged_by_rate(4, 0.5).budget(2).budget_limit(),
        Some(4)
    );
    assert_eq!(HalfOpen::probes(3).budget(5).budget_limit(), Some(5));
    assert_eq!(HalfOpen::probes(3).budget_limit(), None);
}
