//! Review 21: attacks on the fail-fast permit path (`try_acquire`'s inlined
//! "reject while open" shortcut, its clock sample, the rejection's event and
//! counts) across open / half-open / closed and the manual states.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tripswitch::clock::FakeClock;
use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, HalfOpen, RejectReason, State};

mod common;
use common::DeafClock;

/// Counts the rejection events a breaker's listener sees.
fn rejection_counter() -> (
    Arc<AtomicUsize>,
    impl Fn(&tripswitch::events::Event<'_>) + Send + Sync,
) {
    let seen = Arc::new(AtomicUsize::new(0));
    let inner = Arc::clone(&seen);
    (seen, move |event: &tripswitch::events::Event<'_>| {
        if let EventKind::Rejected { .. } = event.kind() {
            inner.fetch_add(1, Ordering::SeqCst);
        }
    })
}

fn deaf_breaker(clock: &DeafClock, open: Duration) -> CircuitBreaker {
    CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(open)
        .build()
}

/// On its own thread (a fresh per-thread sample counter), a deaf breaker
/// past its deadline admits a probe through `try_acquire` within 1,025
/// calls, and every call before it is one rejection, counted and told once.
#[test]
fn deaf_try_acquire_admits_within_1025_calls_and_counts_each_rejection_once() {
    std::thread::spawn(|| {
        let clock = DeafClock::default();
        let (seen, listener) = rejection_counter();
        let breaker = CircuitBreaker::standard()
            .clock(clock.clone())
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5))
            .on_event(listener)
            .build();
        breaker.try_acquire().unwrap().failure(&"down");
        // Before the deadline: 3,000 rejections, each with the exact deadline.
        clock.advance(Duration::from_secs(2));
        for i in 0..3_000 {
            let rejected = breaker.try_acquire().expect_err("open");
            assert_eq!(rejected.reason(), RejectReason::Open, "call {i}");
            assert_eq!(rejected.state(), State::Open, "call {i}");
            assert_eq!(
                rejected.retry_after(),
                Some(Duration::from_secs(3)),
                "call {i}"
            );
        }
        assert_eq!(seen.load(Ordering::SeqCst), 3_000);
        clock.advance(Duration::from_secs(3));
        let mut rejected = 0;
        let probe = loop {
            match breaker.try_acquire() {
                Ok(permit) => break permit,
                Err(r) => {
                    assert_eq!(r.retry_after(), Some(Duration::ZERO));
                    rejected += 1;
                    assert!(rejected <= 1_024, "still open after {rejected} rejections");
                }
            }
        };
        assert!(probe.is_probe());
        probe.success();
        assert_eq!(breaker.state(), State::Closed);
        let m = breaker.metrics();
        assert_eq!(m.totals.rejected, 3_000 + rejected);
        assert_eq!(seen.load(Ordering::SeqCst) as u64, 3_000 + rejected);
        assert_eq!(m.totals.successes, 1);
        assert_eq!(m.totals.failures, 1);
    })
    .join()
    .unwrap();
}

/// The same through `execute` (polled once, no runtime needed).
#[test]
fn deaf_execute_admits_within_1025_calls() {
    std::thread::spawn(|| {
        let clock = DeafClock::default();
        let breaker = deaf_breaker(&clock, Duration::from_secs(5));
        let first = breaker
            .execute(|| async { Err::<(), _>("down") })
            .now_or_never()
            .expect("ready");
        assert!(first.unwrap_err().inner().is_some());
        clock.advance(Duration::from_secs(5));
        let mut rejected = 0u64;
        loop {
            match breaker
                .execute(|| async { Ok::<_, &str>(()) })
                .now_or_never()
                .expect("ready")
            {
                Ok(()) => break,
                Err(e) => {
                    assert!(e.is_rejected());
                    rejected += 1;
                    assert!(rejected <= 1_024, "still open after {rejected} rejections");
                }
            }
        }
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.metrics().totals.rejected, rejected);
    })
    .join()
    .unwrap();
}

/// RELIABILITY.md: "A fail-fast breaker leaves Open after its deadline on
/// every path even if no timer ever fires: `execute` and `try_acquire`
/// within 1,025 calls per thread". A thread that calls two such breakers in
/// turn (a handler calling two dead services) draws the per-thread sample
/// alternately for each: every 1,024th draw falls on the same breaker, so
/// the other one never reads the clock and stays open for good.
#[test]
fn deaf_breaker_called_in_turn_with_another_leaves_open() {
    std::thread::spawn(|| {
        let clock = DeafClock::default();
        let short = deaf_breaker(&clock, Duration::from_secs(5));
        let long = deaf_breaker(&clock, Duration::from_secs(3_600));
        short.try_acquire().unwrap().failure(&"down");
        long.try_acquire().unwrap().failure(&"down");
        clock.advance(Duration::from_secs(10));
        // `short`'s period is over, `long`'s is not. 10,000 rounds.
        let mut admitted = false;
        for _ in 0..10_000 {
            if short.try_acquire().is_ok() {
                admitted = true;
                break;
            }
            let _ = long.try_acquire();
        }
        assert!(
            admitted,
            "a breaker whose period ended 5 s ago rejected 10,000 calls in a row \
             (state read afterwards: {:?})",
            short.state()
        );
    })
    .join()
    .unwrap();
}

/// A FakeClock breaker (its alarm fires on `advance`): through several
/// trip / half-open / reopen cycles, `try_acquire` is rejected until each
/// period's end, with the exact `retry_after`, and admitted right at it;
/// a reopened breaker does not inherit the previous period's "due" flag.
#[test]
fn fake_clock_cycles_reject_until_each_deadline_and_admit_at_it() {
    let clock = FakeClock::new();
    let (seen, listener) = rejection_counter();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .on_event(listener)
        .build();
    let mut rejections = 0u64;
    breaker.try_acquire().unwrap().failure(&"down");
    for cycle in 0..6 {
        for step in 0..4u64 {
            // 1,100 calls per step: each thread's sampled rejection falls in.
            for _ in 0..1_100 {
                let r = breaker.try_acquire().expect_err("open");
                assert_eq!(r.reason(), RejectReason::Open);
                assert_eq!(
                    r.retry_after(),
                    Some(Duration::from_secs(10 - 2 * step)),
                    "cycle {cycle} step {step}"
                );
                rejections += 1;
            }
            clock.advance(Duration::from_secs(2));
        }
        // 8 s in: 2 s left.
        assert!(breaker.try_acquire().is_err());
        rejections += 1;
        clock.advance(Duration::from_secs(2));
        let probe = breaker.try_acquire().expect("the period is over");
        assert!(probe.is_probe());
        // One probe at a time.
        let full = breaker.try_acquire().expect_err("half-open, slot taken");
        assert_eq!(full.reason(), RejectReason::HalfOpenFull);
        assert_eq!(full.state(), State::HalfOpen);
        rejections += 1;
        probe.failure(&"still down");
        assert_eq!(breaker.state(), State::Open, "cycle {cycle}");
    }
    let m = breaker.metrics();
    assert_eq!(m.totals.rejected, rejections);
    assert_eq!(seen.load(Ordering::SeqCst) as u64, rejections);
    assert_eq!(m.totals.failures, 7);
}

/// The manual states through `try_acquire` on a fail-fast breaker, from Open:
/// forced open rejects (no retry time) even past the old deadline; disabled
/// admits and records nothing; metrics-only admits, records, never trips;
/// resume closes. Each rejection counted and told once.
#[test]
fn manual_states_through_try_acquire_from_open() {
    let clock = DeafClock::default();
    let (seen, listener) = rejection_counter();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .on_event(listener)
        .build();
    breaker.try_acquire().unwrap().failure(&"down");
    assert!(breaker.try_acquire().is_err());
    breaker.force_open();
    clock.advance(Duration::from_secs(60));
    for _ in 0..2_100 {
        let r = breaker.try_acquire().expect_err("forced open");
        assert_eq!(r.reason(), RejectReason::ForcedOpen);
        assert_eq!(r.state(), State::ForcedOpen);
        assert_eq!(r.retry_after(), None);
    }
    assert_eq!(breaker.metrics().totals.rejected, 2_101);
    breaker.disable();
    let before = breaker.metrics().totals;
    for _ in 0..100 {
        breaker
            .try_acquire()
            .unwrap()
            .failure(&"ignored while disabled");
    }
    assert_eq!(breaker.state(), State::Disabled);
    assert_eq!(breaker.metrics().totals, before);
    breaker.force_metrics_only();
    for _ in 0..50 {
        breaker.try_acquire().unwrap().failure(&"counted");
        breaker.try_acquire().unwrap().success();
    }
    assert_eq!(breaker.state(), State::MetricsOnly);
    let m = breaker.metrics();
    assert_eq!(m.current.failures, 50);
    assert_eq!(m.current.successes, 50);
    assert_eq!(m.totals.failures, 51);
    breaker.resume();
    assert_eq!(breaker.state(), State::Closed);
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().failure(&"trips");
    assert_eq!(breaker.state(), State::Open);
    let r = breaker.try_acquire().unwrap_err();
    assert_eq!(r.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(breaker.metrics().totals.rejected, 2_102);
    assert_eq!(seen.load(Ordering::SeqCst), 2_102);
}

/// Permits taken while closed finish after the breaker tripped, probed and
/// closed again: they count in the totals only, never in the new closed
/// state's window or current counts, and cannot trip it or hold a slot.
#[test]
fn late_permits_across_open_half_open_closed_count_in_totals_only() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .failure_rate(
            tripswitch::policy::FailureRate::new(0.5, tripswitch::policy::Window::last_calls(4))
                .min_calls(2),
        )
        .open_for(Duration::from_secs(1))
        .half_open(HalfOpen::probes(1))
        .build();
    let late: Vec<_> = (0..6).map(|_| breaker.try_acquire().unwrap()).collect();
    breaker.try_acquire().unwrap().failure(&"a");
    breaker.try_acquire().unwrap().failure(&"b");
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(1));
    let probe = breaker.try_acquire().unwrap();
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(breaker.state(), State::Closed);
    let mut late = late.into_iter();
    for _ in 0..3 {
        late.next().unwrap().success();
    }
    for _ in 0..3 {
        late.next().unwrap().failure(&"late");
    }
    let m = breaker.metrics();
    assert_eq!(m.state, State::Closed, "late failures must not trip");
    assert_eq!(m.calls_in_window, Some(0), "{m:?}");
    assert_eq!(m.current.successes, 0, "{m:?}");
    assert_eq!(m.current.failures, 0, "{m:?}");
    assert_eq!(m.totals.successes, 4);
    assert_eq!(m.totals.failures, 5);
    // The window is really clean: two fresh failures are needed to trip.
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().failure(&"c");
    assert_eq!(breaker.state(), State::Closed);
    breaker.try_acquire().unwrap().failure(&"d");
    assert_eq!(breaker.state(), State::Open);
}

/// A permit taken before `reset` (closed to closed, new generation) that
/// succeeds afterwards counts in the totals only, for each one-policy
/// success path (consecutive, count window, time window) and the pairs.
#[test]
fn a_success_after_reset_is_late_on_every_success_path() {
    let clock = FakeClock::new();
    let builders: Vec<(&str, tripswitch::Builder)> = vec![
        (
            "consecutive",
            CircuitBreaker::standard().consecutive_failures(3),
        ),
        (
            "ring",
            CircuitBreaker::standard().failure_rate(tripswitch::policy::FailureRate::new(
                0.5,
                tripswitch::policy::Window::last_calls(10),
            )),
        ),
        (
            "buckets",
            CircuitBreaker::standard().failure_rate(tripswitch::policy::FailureRate::new(
                0.5,
                tripswitch::policy::Window::last(Duration::from_secs(60)),
            )),
        ),
        (
            "consecutive + ring",
            CircuitBreaker::standard()
                .consecutive_failures(3)
                .failure_rate(tripswitch::policy::FailureRate::new(
                    0.5,
                    tripswitch::policy::Window::last_calls(10),
                )),
        ),
        (
            "consecutive + buckets",
            CircuitBreaker::standard()
                .consecutive_failures(3)
                .failure_rate(tripswitch::policy::FailureRate::new(
                    0.5,
                    tripswitch::policy::Window::last(Duration::from_secs(60)),
                )),
        ),
    ];
    for (name, builder) in builders {
        let breaker = builder.clock(clock.clone()).build();
        breaker.try_acquire().unwrap().success();
        let late = breaker.try_acquire().unwrap();
        let late_owned = breaker.try_acquire_owned().unwrap();
        breaker.reset();
        late.success();
        late_owned.success();
        let m = breaker.metrics();
        assert_eq!(m.current.successes, 0, "{name}: {m:?}");
        assert_eq!(m.totals.successes, 3, "{name}: {m:?}");
        if m.calls_in_window.is_some() {
            assert_eq!(m.calls_in_window, Some(0), "{name}: {m:?}");
        }
        breaker.try_acquire().unwrap().success();
        let m = breaker.metrics();
        assert_eq!(m.current.successes, 1, "{name}: {m:?}");
        if m.calls_in_window.is_some() {
            assert_eq!(m.calls_in_window, Some(1), "{name}: {m:?}");
        }
    }
}

/// Many threads (more than the 8 owned stripes) hammer an open fail-fast
/// breaker whose alarm cannot fire: every call is rejected, and the
/// rejection count and the listener's count are exact.
#[test]
fn many_threads_rejections_are_counted_and_told_exactly_once() {
    let clock = FakeClock::new();
    let (seen, listener) = rejection_counter();
    let breaker = Arc::new(
        CircuitBreaker::standard()
            .clock(clock.clone())
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5))
            .on_event(listener)
            .build(),
    );
    breaker.try_acquire().unwrap().failure(&"down");
    let threads = 12;
    let per_thread = 2_500;
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let deadlines = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let breaker = Arc::clone(&breaker);
            let barrier = Arc::clone(&barrier);
            let deadlines = Arc::clone(&deadlines);
            std::thread::spawn(move || {
                barrier.wait();
                let mut retry = std::collections::BTreeSet::new();
                for _ in 0..per_thread {
                    let r = breaker.try_acquire().expect_err("open");
                    retry.insert(r.retry_after());
                }
                deadlines.lock().unwrap().extend(retry);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = (threads * per_thread) as u64;
    assert_eq!(breaker.metrics().totals.rejected, total);
    assert_eq!(seen.load(Ordering::SeqCst) as u64, total);
    let mut d = deadlines.lock().unwrap().clone();
    d.sort();
    d.dedup();
    assert_eq!(d, vec![Some(Duration::from_secs(5))]);
}

/// The same starvation with only one deaf breaker: the other one is a
/// healthy FakeClock breaker whose timer works, open for an hour. Its
/// rejections draw the thread's sample too, every other draw, and take
/// every 1,024th one: the deaf breaker never reads the clock.
#[test]
fn a_live_open_breaker_on_the_same_thread_starves_a_deaf_ones_sample() {
    std::thread::spawn(|| {
        let deaf_clock = DeafClock::default();
        let deaf = deaf_breaker(&deaf_clock, Duration::from_secs(5));
        let live = CircuitBreaker::standard()
            .clock(FakeClock::new())
            .consecutive_failures(1)
            .open_for(Duration::from_secs(3_600))
            .build();
        deaf.try_acquire().unwrap().failure(&"down");
        live.try_acquire().unwrap().failure(&"down");
        deaf_clock.advance(Duration::from_secs(10));
        let admitted = (0..10_000).any(|_| {
            let ok = deaf
                .execute(|| async { Ok::<_, &str>(()) })
                .now_or_never()
                .expect("ready")
                .is_ok();
            let _ = live.try_acquire();
            ok
        });
        assert!(
            admitted,
            "`execute` on a breaker whose period ended 5 s ago was rejected 10,000 times in a row"
        );
    })
    .join()
    .unwrap();
}

/// `retry_after` of a half-open rejection (every slot taken) through
/// `try_acquire`: the time left until the half-open bound.
#[test]
fn half_open_full_rejection_tells_the_time_left_to_the_bound() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::probes(2).max_duration(Duration::from_secs(20)))
        .build();
    breaker.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(5));
    let a = breaker.try_acquire().unwrap();
    let b = breaker.try_acquire().unwrap();
    assert!(a.is_probe() && b.is_probe());
    clock.advance(Duration::from_secs(4));
    for _ in 0..1_100 {
        let r = breaker.try_acquire().unwrap_err();
        assert_eq!(r.reason(), RejectReason::HalfOpenFull);
        assert_eq!(r.retry_after(), Some(Duration::from_secs(16)));
    }
    assert_eq!(breaker.metrics().totals.rejected, 1_100);
    a.success();
    b.success();
}
