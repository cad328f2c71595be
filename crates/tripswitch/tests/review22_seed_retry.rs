//! Review 22: a first run that fails (the out-of-line `poll_failed`), the
//! seed's freeze-wait-retry, classifiers, ignored errors, panics, futures
//! dropped at every await; and the consecutive count's reset by a success.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::FutureExt;
use tripswitch::clock::FakeClock;
use tripswitch::{CircuitBreaker, Error, Outcome, State};

#[derive(Debug, Clone, PartialEq)]
struct Boom(usize);

const FREEZE: Duration = Duration::from_secs(5);

fn seed(clock: &FakeClock) -> CircuitBreaker {
    CircuitBreaker::builder().clock(clock.clone()).build()
}

fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// An operation whose run `n` (from 1) yields once (Pending) when `yields`,
/// then returns `results(n)`.
fn op<R: Fn(usize) -> Result<usize, Boom> + Clone + 'static>(
    calls: &Arc<AtomicUsize>,
    yields: bool,
    results: R,
) -> impl FnMut() -> Pin<Box<dyn Future<Output = Result<usize, Boom>>>> + use<R> {
    let calls = Arc::clone(calls);
    move || {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        let results = results.clone();
        Box::pin(async move {
            if yields {
                let mut yielded = false;
                std::future::poll_fn(|cx| {
                    if yielded {
                        Poll::Ready(())
                    } else {
                        yielded = true;
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                })
                .await;
            }
            results(n)
        })
    }
}

#[test]
fn seed_failure_waits_out_the_freeze_and_retries_once_with_and_without_a_yield() {
    for yields in [false, true] {
        let clock = FakeClock::new();
        let breaker = seed(&clock);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut call = std::pin::pin!(breaker.execute(op(&calls, yields, |n| {
            if n == 1 { Err(Boom(1)) } else { Ok(n) }
        })));
        for _ in 0..3 {
            assert!(poll_once(call.as_mut()).is_pending(), "yields {yields}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(breaker.is_frozen());
        assert_eq!(breaker.metrics().waiting, 1);
        clock.advance(FREEZE);
        let mut result = None;
        for _ in 0..4 {
            if let Poll::Ready(r) = poll_once(call.as_mut()) {
                result = Some(r);
                break;
            }
        }
        assert_eq!(result.expect("ready").unwrap(), 2, "yields {yields}");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(!breaker.is_frozen());
        let metrics = breaker.metrics();
        assert_eq!(metrics.totals.failures, 1);
        assert_eq!(metrics.waiting, 0);
        assert_eq!(metrics.totals.rejected, 0);
    }
}

#[test]
fn seed_retry_that_fails_again_returns_the_second_error() {
    let clock = FakeClock::new();
    let breaker = seed(&clock);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut call = std::pin::pin!(breaker.execute(op(&calls, false, |n| Err(Boom(n)))));
    assert!(poll_once(call.as_mut()).is_pending());
    clock.advance(FREEZE);
    match poll_once(call.as_mut()) {
        Poll::Ready(Err(Error::Inner(Boom(2)))) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(breaker.metrics().waiting, 0);
}

#[test]
fn an_ignored_error_returns_at_once_without_freeze_or_retry() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .ignore_errors(|e: &Boom| e.0 % 2 == 1)
        .build();
    let calls = Arc::new(AtomicUsize::new(0));
    for yields in [false, true] {
        let mut call =
            std::pin::pin!(breaker.execute(op(&calls, yields, |n| Err(Boom(2 * n + 1)))));
        let mut out = None;
        for _ in 0..3 {
            if let Poll::Ready(r) = poll_once(call.as_mut()) {
                out = Some(r);
                break;
            }
        }
        assert!(matches!(out, Some(Err(Error::Inner(Boom(_))))), "{out:?}");
        assert!(!breaker.is_frozen());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let totals = breaker.metrics().totals;
    assert_eq!(totals.ignored, 2);
    assert_eq!(totals.failures, 0);
}

#[test]
fn a_classifier_that_ignores_or_succeeds_an_error_returns_it_at_once() {
    let clock = FakeClock::new();
    let breaker = seed(&clock);
    let calls = Arc::new(AtomicUsize::new(0));
    for (outcome, yields) in [
        (Outcome::Ignored, false),
        (Outcome::Ignored, true),
        (Outcome::Success, false),
    ] {
        let result = futures::executor::block_on(breaker.execute_classified(
            move |_: &Result<usize, Boom>| outcome,
            op(&calls, yields, |n| Err(Boom(n))),
        ));
        assert!(matches!(result, Err(Error::Inner(_))), "{outcome:?}");
        assert!(!breaker.is_frozen(), "{outcome:?}");
    }
    let totals = breaker.metrics().totals;
    assert_eq!(totals.failures, 0);
}

#[test]
fn a_classifier_that_panics_on_the_first_error_counts_a_failure_and_frees_everything() {
    let clock = FakeClock::new();
    // A standard breaker, one failure opens, one probe: a panicking
    // classifier on the probe must give its slot back.
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(FREEZE)
        .clock(clock.clone())
        .build();
    let calls = Arc::new(AtomicUsize::new(0));
    let panicking = |_: &Result<usize, Boom>| -> Outcome { panic!("classifier") };
    let caught = catch_unwind(AssertUnwindSafe(|| {
        breaker
            .execute_classified(panicking, op(&calls, false, |n| Err(Boom(n))))
            .now_or_never()
    }));
    assert!(caught.is_err());
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().totals.failures, 1);
    clock.advance(FREEZE);
    // The probe: classifier panics again after a yield.
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let mut call = std::pin::pin!(
            breaker.execute_classified(panicking, op(&calls, true, |n| Err(Boom(n))))
        );
        for _ in 0..3 {
            let _ = poll_once(call.as_mut());
        }
    }));
    assert!(caught.is_err());
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().totals.failures, 2);
    clock.advance(FREEZE);
    let ok = breaker
        .execute(|| async { Ok::<_, Boom>(7) })
        .now_or_never()
        .unwrap();
    assert_eq!(ok.unwrap(), 7);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_seed_classifier_panicking_on_the_first_error_does_not_leave_a_waiter() {
    let clock = FakeClock::new();
    let breaker = seed(&clock);
    let calls = Arc::new(AtomicUsize::new(0));
    let caught = catch_unwind(AssertUnwindSafe(|| {
        breaker
            .execute_classified(
                |_: &Result<usize, Boom>| -> Outcome { panic!("classifier") },
                op(&calls, false, |n| Err(Boom(n))),
            )
            .now_or_never()
    }));
    assert!(caught.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(breaker.metrics().waiting, 0);
    assert_eq!(breaker.metrics().totals.failures, 1);
    clock.advance(FREEZE);
    assert!(!breaker.is_frozen());
}

#[test]
fn an_ignore_rule_that_panics_counts_a_failure() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .ignore_errors(|_: &Boom| -> bool { panic!("rule") })
        .build();
    let calls = Arc::new(AtomicUsize::new(0));
    let caught = catch_unwind(AssertUnwindSafe(|| {
        breaker
            .execute(op(&calls, true, |n| Err(Boom(n))))
            .now_or_never();
        let mut call = std::pin::pin!(breaker.execute(op(&calls, true, |n| Err(Boom(n)))));
        for _ in 0..3 {
            let _ = poll_once(call.as_mut());
        }
    }));
    assert!(caught.is_err());
    let metrics = breaker.metrics();
    assert_eq!(metrics.waiting, 0);
    assert_eq!(metrics.totals.failures, 1);
    assert_eq!(
        metrics.totals.cancelled, 1,
        "the first call was dropped mid-run"
    );
}

#[test]
fn dropping_the_call_at_each_await_of_the_seed_retry() {
    // Stages: first run pending, waiting for the retry, retry running.
    for drop_at in 0..3 {
        let clock = FakeClock::new();
        let breaker = seed(&clock);
        let calls = Arc::new(AtomicUsize::new(0));
        {
            let mut call = std::pin::pin!(breaker.execute(op(&calls, true, |n| {
                if n == 1 { Err(Boom(1)) } else { Ok(n) }
            })));
            assert!(poll_once(call.as_mut()).is_pending()); // first run yielded
            if drop_at >= 1 {
                assert!(poll_once(call.as_mut()).is_pending()); // failed, waiting
                assert_eq!(breaker.metrics().waiting, 1);
            }
            if drop_at >= 2 {
                clock.advance(FREEZE);
                assert!(poll_once(call.as_mut()).is_pending()); // retry yielded
                assert_eq!(calls.load(Ordering::SeqCst), 2);
            }
        }
        let metrics = breaker.metrics();
        assert_eq!(metrics.waiting, 0, "drop_at {drop_at}");
        assert_eq!(metrics.probes_in_flight, 0);
        let expect_failures = u64::from(drop_at >= 1);
        assert_eq!(
            metrics.totals.failures, expect_failures,
            "drop_at {drop_at}"
        );
        if drop_at == 0 {
            assert_eq!(metrics.totals.cancelled, 1);
        }
        clock.advance(FREEZE);
        let ok = breaker
            .execute(|| async { Ok::<_, Boom>(1) })
            .now_or_never();
        assert!(matches!(ok, Some(Ok(1))), "drop_at {drop_at}: {ok:?}");
    }
}

#[test]
fn on_error_that_panics_or_reenters_does_not_disturb_the_retry() {
    let clock = FakeClock::new();
    let slot: Arc<Mutex<Option<Arc<CircuitBreaker>>>> = Arc::new(Mutex::new(None));
    let seen = Arc::new(AtomicUsize::new(0));
    let breaker = Arc::new({
        let slot = Arc::clone(&slot);
        let seen = Arc::clone(&seen);
        CircuitBreaker::builder()
            .clock(clock.clone())
            .on_error(move |_| {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let again = slot.lock().unwrap().clone();
                if let Some(breaker) = again {
                    // Re-enter: a waiting call polled once and dropped, a
                    // permit, a failing call.
                    let _ = breaker.try_acquire().map(|p| p.failure(&Boom(99)));
                    let _ = breaker
                        .execute(|| async { Err::<(), _>(Boom(98)) })
                        .now_or_never();
                    let _ = breaker.metrics();
                }
                if n.is_multiple_of(2) {
                    panic!("on_error");
                }
            })
            .build()
    });
    *slot.lock().unwrap() = Some(Arc::clone(&breaker));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut call = std::pin::pin!(breaker.execute(op(&calls, false, |n| {
        if n == 1 { Err(Boom(1)) } else { Ok(n) }
    })));
    assert!(poll_once(call.as_mut()).is_pending());
    assert!(seen.load(Ordering::SeqCst) >= 1);
    clock.advance(FREEZE * 4);
    let mut out = None;
    for _ in 0..3 {
        if let Poll::Ready(r) = poll_once(call.as_mut()) {
            out = Some(r);
            break;
        }
    }
    assert_eq!(out.expect("ready").unwrap(), 2);
    *slot.lock().unwrap() = None;
    assert_eq!(breaker.metrics().waiting, 0);
}

#[test]
fn a_success_resets_the_consecutive_count_only_in_its_generation() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(3)
        .open_for(FREEZE)
        .clock(clock.clone())
        .build();
    let fail = |b: &CircuitBreaker| {
        b.execute(|| async { Err::<(), _>(Boom(0)) })
            .now_or_never()
            .unwrap()
            .unwrap_err()
    };
    let succeed = |b: &CircuitBreaker| {
        b.execute(|| async { Ok::<_, Boom>(()) })
            .now_or_never()
            .unwrap()
            .unwrap()
    };
    fail(&breaker);
    fail(&breaker);
    succeed(&breaker);
    assert_eq!(breaker.metrics().consecutive_failures, Some(0));
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Closed);
    // A permit from this generation, held across a trip and a recovery.
    let old = breaker.try_acquire().unwrap();
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
    clock.advance(FREEZE);
    succeed(&breaker); // the probe closes it: a new generation
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.metrics().consecutive_failures, Some(2));
    old.success(); // late: must not reset the new generation's count
    assert_eq!(breaker.metrics().consecutive_failures, Some(2));
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
    // Also through execute: a call started before the trip, finished after.
    clock.advance(FREEZE);
    succeed(&breaker);
    let late_calls = Arc::new(AtomicUsize::new(0));
    let mut late = std::pin::pin!(breaker.execute(op(&late_calls, true, Ok)));
    assert!(poll_once(late.as_mut()).is_pending());
    fail(&breaker);
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
    clock.advance(FREEZE);
    succeed(&breaker);
    fail(&breaker);
    fail(&breaker);
    assert!(matches!(poll_once(late.as_mut()), Poll::Ready(Ok(_))));
    assert_eq!(breaker.metrics().consecutive_failures, Some(2));
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
}
