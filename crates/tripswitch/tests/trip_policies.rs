//! When the full breaker trips: consecutive failures, failure rate over count
//! and time windows, slow-call rate, custom policies, and their composition.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Boom, fail, succeed};
use tripswitch::policy::{CallRecord, FailureRate, SlowCallRate, TripPolicy, Window};
use tripswitch::{CircuitBreaker, HalfOpen, State};

fn fail_fast() -> tripswitch::Builder {
    CircuitBreaker::builder()
        .fail_fast()
        .half_open(HalfOpen::probes(1))
}

/// A fail-fast breaker on a failure rate over the last `length` (10
/// buckets), judged from the first call, that only failures close to 100%
/// trip: the tests read its rate.
fn rate_over_the_last(length: Duration) -> tripswitch::Builder {
    CircuitBreaker::builder()
        .failure_rate(FailureRate::new(0.99, Window::last(length)).min_calls(1))
        .fail_fast()
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_trip_after_n_in_a_row_and_successes_reset_the_count() {
    let breaker = fail_fast().consecutive_failures(3).try_build().unwrap();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the success started the count again"
    );
    assert_eq!(breaker.metrics().consecutive_failures, Some(2));
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_count_window_is_judged_as_soon_as_it_holds_the_minimum_of_calls() {
    let breaker = fail_fast()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(100)).min_calls(4))
        .try_build()
        .unwrap();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Closed, "3 calls: below the minimum");
    // The 4th call makes 3 failures out of 4 = 75%: trips long before 100 calls.
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_count_window_forgets_calls_that_slid_out() {
    let breaker = fail_fast()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(4))
        .try_build()
        .unwrap();
    // f s s s -> 25%; then the failure slides out and s f s s is still 25%.
    fail(&breaker).await.unwrap_err();
    for _ in 0..3 {
        succeed(&breaker).await.unwrap();
    }
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Closed);
    let rate = breaker.metrics().failure_rate.unwrap();
    assert!((rate - 0.25).abs() < 1e-9, "rate {rate}");
    // s s f f -> 50%: trips.
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn the_rate_threshold_is_inclusive_and_successes_never_trip() {
    let breaker = fail_fast()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(10)).min_calls(2))
        .try_build()
        .unwrap();
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err(); // 1/2 = 50% >= 50%
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_time_window_counts_only_recent_calls_and_works_below_a_second() {
    let breaker = fail_fast()
        .failure_rate(
            FailureRate::new(0.5, Window::last_in_buckets(Duration::from_millis(400), 4))
                .min_calls(4),
        )
        .try_build()
        .unwrap();
    // Three failures, then they age out of the 400ms window.
    for _ in 0..3 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "below the minimum of 4 calls"
    );
    tokio::time::advance(Duration::from_millis(500)).await;
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Closed, "1 of 4 recent calls failed");
    // Within the window: 3 failures of 6 recent calls (ratio 0.5) trips.
    tokio::time::advance(Duration::from_millis(100)).await;
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_trip_the_breaker_even_when_they_succeed() {
    let breaker = fail_fast()
        .slow_call_rate(
            SlowCallRate::new(Duration::from_millis(100), 0.5, Window::last_calls(10)).min_calls(4),
        )
        .try_build()
        .unwrap();
    let call = |ms: u64| {
        let breaker = &breaker;
        async move {
            breaker
                .execute(|| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok::<_, Boom>(())
                })
                .await
        }
    };
    call(10).await.unwrap();
    call(150).await.unwrap();
    call(10).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    call(200).await.unwrap(); // 2 slow of 4 = 50%
    assert_eq!(breaker.state(), State::Open);
    let metrics = breaker.metrics();
    assert_eq!(metrics.totals.slow, 2);
    assert_eq!(metrics.totals.successes, 4);
    assert!((metrics.slow_call_rate.unwrap() - 0.5).abs() < 1e-9);
}

#[derive(Debug, Default)]
struct EveryThirdCall(AtomicU32);

impl TripPolicy for EveryThirdCall {
    fn record(&self, _: &CallRecord) -> bool {
        self.0.fetch_add(1, Ordering::SeqCst) % 3 == 2
    }
    fn reset(&self) {
        self.0.store(0, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_custom_policy_decides_through_the_public_trait() {
    let breaker = CircuitBreaker::builder()
        .trip_policy(EveryThirdCall::default())
        .fail_fast()
        .build();
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    succeed(&breaker).await.unwrap();
    assert_eq!(
        breaker.state(),
        State::Open,
        "the policy tripped on a success"
    );
}

#[tokio::test(start_paused = true)]
async fn policies_compose_and_any_one_trips_the_breaker() {
    let breaker = fail_fast()
        .consecutive_failures(5)
        .failure_rate(FailureRate::new(0.9, Window::last_calls(10)).min_calls(10))
        .try_build()
        .unwrap();
    for _ in 0..4 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker).await.unwrap_err(); // the consecutive policy trips first
    assert_eq!(breaker.state(), State::Open);
}

/// A consecutive-failures policy next to one window (failsafe's default
/// shape), in either order: a success resets the count and counts in the
/// window, whether or not a failure was counted before it.
#[tokio::test(start_paused = true)]
async fn a_consecutive_count_paired_with_a_window_sees_every_success() {
    let windows = [
        Window::last_calls(100),
        Window::last(Duration::from_secs(60)),
    ];
    for window in windows {
        for consecutive_first in [true, false] {
            let rate = FailureRate::new(0.99, window).min_calls(3);
            let settings = if consecutive_first {
                fail_fast().consecutive_failures(3).failure_rate(rate)
            } else {
                fail_fast().failure_rate(rate).consecutive_failures(3)
            };
            let breaker = settings.try_build().unwrap();
            let case = format!("{window:?}, consecutive first: {consecutive_first}");
            fail(&breaker).await.unwrap_err();
            fail(&breaker).await.unwrap_err();
            succeed(&breaker).await.unwrap(); // resets the count of two
            succeed(&breaker).await.unwrap(); // nothing to reset
            succeed(&breaker).await.unwrap();
            let metrics = breaker.metrics();
            assert_eq!(metrics.consecutive_failures, Some(0), "{case}");
            assert_eq!(metrics.failure_rate, Some(2.0 / 5.0), "{case}");
            fail(&breaker).await.unwrap_err();
            fail(&breaker).await.unwrap_err();
            assert_eq!(breaker.state(), State::Closed, "{case}");
            assert_eq!(breaker.metrics().failure_rate, Some(4.0 / 7.0), "{case}");
            fail(&breaker).await.unwrap_err();
            assert_eq!(breaker.state(), State::Open, "three in a row: {case}");
        }
    }
}

/// The same pair, tripped by the window's rate while failures never come
/// three in a row.
#[tokio::test(start_paused = true)]
async fn a_window_paired_with_a_consecutive_count_trips_on_its_rate() {
    for window in [Window::last_calls(4), Window::last(Duration::from_secs(60))] {
        let breaker = fail_fast()
            .consecutive_failures(3)
            .failure_rate(FailureRate::new(0.5, window).min_calls(4))
            .try_build()
            .unwrap();
        succeed(&breaker).await.unwrap();
        fail(&breaker).await.unwrap_err();
        succeed(&breaker).await.unwrap();
        assert_eq!(breaker.state(), State::Closed, "{window:?}");
        fail(&breaker).await.unwrap_err();
        assert_eq!(breaker.state(), State::Open, "2 of 4 failed: {window:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn windows_start_empty_when_the_breaker_closes_again() {
    let breaker = CircuitBreaker::builder()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(4)).min_calls(2))
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(1))
        .fail_fast()
        .try_build()
        .unwrap();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(Duration::from_secs(1)).await;
    succeed(&breaker).await.unwrap(); // the probe closes it
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(
        breaker.metrics().failure_rate,
        None,
        "the window was cleared"
    );
    fail(&breaker).await.unwrap_err();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "one failure in a fresh window is below the minimum"
    );
}

/// Successes on a time window from several threads at once (each counting
/// in cells of its own, without a locked instruction) are all counted, in
/// the slices they happened in, and leave the window with them.
#[test]
fn a_time_window_counts_every_success_from_many_threads_exactly() {
    use tripswitch::clock::FakeClock;

    let clock = FakeClock::new();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .failure_rate(FailureRate::new(0.9, Window::last(Duration::from_secs(10))).min_calls(1))
        .fail_fast()
        .try_build()
        .expect("valid");
    let run = |calls: u32| {
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    futures::executor::block_on(async {
                        for _ in 0..calls {
                            succeed(&breaker).await.expect("closed");
                        }
                    })
                });
            }
        });
    };
    run(1000);
    clock.advance(Duration::from_secs(3));
    run(500);
    futures::executor::block_on(fail(&breaker)).unwrap_err();
    let rate = breaker.metrics().failure_rate.expect("a rate");
    assert_eq!(
        rate,
        1.0 / 6001.0,
        "4,000 + 2,000 successes and one failure"
    );
    // The first batch leaves the window; the second and the failure stay.
    clock.advance(Duration::from_secs(8));
    let rate = breaker.metrics().failure_rate.expect("a rate");
    assert_eq!(rate, 1.0 / 2001.0);
    assert_eq!(breaker.state(), State::Closed);
}

/// The same on tokio's paused clock, whose readings are instants: there a
/// thread's successes after the first in a slice skip the clock arithmetic
/// (they go to the cell of the span the thread remembers), and the counts
/// must stay exact across slices, threads and windows.
#[test]
fn a_time_window_on_tokios_clock_counts_every_success_from_many_threads_exactly() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let handle = runtime.handle().clone();
    let breaker = runtime.block_on(async {
        rate_over_the_last(Duration::from_secs(10))
            .try_build()
            .expect("valid")
    });
    // A second window on the same threads, so that each thread's memory
    // of its last slice moves between windows.
    let other = runtime.block_on(async {
        rate_over_the_last(Duration::from_secs(4))
            .try_build()
            .expect("valid")
    });
    let run = |calls: u32| {
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    // Inside the runtime's context: tokio's (paused) clock.
                    let _context = handle.enter();
                    futures::executor::block_on(async {
                        for _ in 0..calls {
                            succeed(&breaker).await.expect("closed");
                            succeed(&other).await.expect("closed");
                        }
                    })
                });
            }
        });
    };
    run(1000);
    runtime.block_on(tokio::time::advance(Duration::from_secs(3)));
    run(500);
    runtime.block_on(async {
        fail(&breaker).await.unwrap_err();
        let rate = breaker.metrics().failure_rate.expect("a rate");
        assert_eq!(
            rate,
            1.0 / 6001.0,
            "4,000 + 2,000 successes and one failure"
        );
        // The first batch leaves the window; the second and the failure stay.
        tokio::time::advance(Duration::from_secs(8)).await;
        let rate = breaker.metrics().failure_rate.expect("a rate");
        assert_eq!(rate, 1.0 / 2001.0);
        assert_eq!(breaker.state(), State::Closed);
        // The other window (4 s) kept only the second batch, then nothing.
        fail(&other).await.unwrap_err();
        let rate = other.metrics().failure_rate.expect("a rate");
        assert_eq!(rate, 1.0, "both batches are older than 4 seconds");
    });
}

/// One thread, successes a few milliseconds apart on tokio's paused clock,
/// crossing slice boundaries all the time: the window's count of calls is
/// exactly the number made in its last `length`, slice by slice.
#[tokio::test(start_paused = true)]
async fn time_window_successes_land_in_the_slice_of_their_instant() {
    // 1 s in 10 slices of 100 ms.
    let breaker = rate_over_the_last(Duration::from_secs(1))
        .try_build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let mut made = Vec::new();
    for step in 0..200u64 {
        succeed(&breaker).await.unwrap();
        made.push(start.elapsed());
        // 7, 14, 21, ... ms apart in turn: calls land on, near and across
        // slice boundaries.
        tokio::time::advance(Duration::from_millis(7 * (step % 5 + 1))).await;
    }
    fail(&breaker).await.unwrap_err();
    let now = start.elapsed();
    // The window holds the slices that overlap the last second: the
    // current one and the nine before it.
    let slice = |at: Duration| at.as_millis() / 100;
    let oldest = slice(now).saturating_sub(9);
    let expected = made.iter().filter(|&&at| slice(at) >= oldest).count() as f64;
    let rate = breaker.metrics().failure_rate.expect("a rate");
    assert_eq!(
        rate,
        1.0 / (expected + 1.0),
        "{expected} successes in the window"
    );
}

/// Successes right at and right before a slice boundary, on tokio's paused
/// clock: each counts in the slice its instant belongs to, even when the
/// thread's previous success was in the slice next to it.
#[tokio::test(start_paused = true)]
async fn time_window_successes_at_slice_boundaries_count_in_their_own_slice() {
    // 1 s in 10 slices of 100 ms; slice k is [k * 100 ms, (k + 1) * 100 ms).
    let breaker = rate_over_the_last(Duration::from_secs(1))
        .try_build()
        .unwrap();
    let nanos = Duration::from_nanos;
    succeed(&breaker).await.unwrap(); // t = 0, slice 0
    tokio::time::advance(Duration::from_millis(100) - nanos(1)).await;
    succeed(&breaker).await.unwrap(); // last nanosecond of slice 0
    tokio::time::advance(nanos(1)).await;
    succeed(&breaker).await.unwrap(); // first nanosecond of slice 1
    succeed(&breaker).await.unwrap(); // slice 1 again
    // At 1 s the window is slices 1..=10: slice 0's two successes are out.
    tokio::time::advance(Duration::from_millis(900)).await;
    fail(&breaker).await.unwrap_err();
    let rate = breaker.metrics().failure_rate.expect("a rate");
    assert_eq!(rate, 1.0 / 3.0, "two successes of slice 1 and the failure");
    // One nanosecond before slice 2 begins... then slice 1 leaves too.
    tokio::time::advance(Duration::from_millis(100) - nanos(1)).await;
    assert_eq!(breaker.metrics().failure_rate, Some(1.0 / 3.0));
    tokio::time::advance(nanos(1)).await;
    assert_eq!(breaker.metrics().failure_rate, Some(1.0));
}

/// A reset forgets the window's counts, also those of the slice the
/// thread's successes go straight to.
#[tokio::test(start_paused = true)]
async fn a_reset_forgets_successes_of_the_current_slice() {
    let breaker = rate_over_the_last(Duration::from_secs(10))
        .try_build()
        .unwrap();
    for _ in 0..5 {
        succeed(&breaker).await.unwrap();
    }
    breaker.reset();
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.metrics().failure_rate, Some(0.5));
}

/// A custom policy that forwards to a built-in one and reports its own
/// stats: the built-in's fast path and stats go through the same trait.
#[derive(Debug)]
struct Forwarding {
    inner: tripswitch::policy::ConsecutiveFailures,
    records: AtomicU32,
}

impl TripPolicy for Forwarding {
    fn record(&self, call: &CallRecord) -> bool {
        self.records.fetch_add(1, Ordering::Relaxed);
        self.inner.record(call)
    }
    fn reset(&self) {
        self.inner.reset();
    }
    fn stats(&self, at: Duration) -> tripswitch::policy::PolicyStats {
        self.inner.stats(at)
    }
}

#[tokio::test(start_paused = true)]
async fn built_in_policies_are_trip_policies_like_any_other() {
    use tripswitch::policy::ConsecutiveFailures;
    // A built-in policy goes in through `trip_policy`, with its fast path.
    let breaker = CircuitBreaker::standard()
        .trip_policy(ConsecutiveFailures::new(3).unwrap())
        .build();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.metrics().consecutive_failures, Some(2));
    succeed(&breaker).await.unwrap();
    assert_eq!(
        breaker.metrics().consecutive_failures,
        Some(0),
        "the fast success path reset the count"
    );
    for _ in 0..3 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Open);

    // Its trait methods are public: a wrapper sees every call (it has no
    // fast path of its own) and reports the inner policy's stats.
    let records = std::sync::Arc::new(AtomicU32::new(0));
    let breaker = CircuitBreaker::standard()
        .trip_policy(Forwarding {
            inner: ConsecutiveFailures::new(2).unwrap(),
            records: AtomicU32::new(0),
        })
        .on_event({
            let records = records.clone();
            move |event| {
                if let tripswitch::events::EventKind::Success { .. } = event.kind() {
                    records.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .build();
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.metrics().consecutive_failures, Some(1));
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    drop(records);

    // Without listeners the success fast paths are on: the wrapper still
    // sees every success (fast paths are found by type, not forwarded).
    let wrapper = std::sync::Arc::new(Forwarding {
        inner: ConsecutiveFailures::new(100).unwrap(),
        records: AtomicU32::new(0),
    });
    let breaker = CircuitBreaker::standard()
        .trip_policy(Shared(wrapper.clone()))
        .build();
    for _ in 0..10 {
        succeed(&breaker).await.unwrap();
    }
    fail(&breaker).await.unwrap_err();
    assert_eq!(wrapper.records.load(Ordering::Relaxed), 11);
}

/// A policy behind an `Arc`, so that the test can read it afterwards.
#[derive(Debug)]
struct Shared(std::sync::Arc<Forwarding>);

impl TripPolicy for Shared {
    fn record(&self, call: &CallRecord) -> bool {
        self.0.record(call)
    }
    fn reset(&self) {
        self.0.reset();
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_and_a_consecutive_count_report_their_stats_together() {
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(10)
        .failure_rate(FailureRate::new(0.9, Window::last_calls(4)).min_calls(4))
        .build();
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    let metrics = breaker.metrics();
    assert_eq!(metrics.consecutive_failures, Some(1));
    assert_eq!(metrics.failure_rate, Some(0.5));
}

#[test]
fn two_slow_call_rates_each_judge_by_their_own_threshold() {
    use tripswitch::clock::FakeClock;
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .slow_call_rate(SlowCallRate::new(
            Duration::from_secs(10),
            1.0,
            Window::last_calls(1),
        ))
        .slow_call_rate(SlowCallRate::new(
            Duration::from_millis(10),
            1.0,
            Window::last_calls(1),
        ))
        .try_build()
        .unwrap();
    let permit = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_millis(100));
    permit.success();
    // Slow for the second policy (100 ms > 10 ms), not for the first.
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        breaker.metrics().totals.slow,
        1,
        "slower than the lowest threshold"
    );
}

/// Polly's `Throughput` / Resilience4j's `getNumberOfBufferedCalls`: the
/// number of calls the window holds (ported in spirit from R4j's
/// `CircuitBreakerMetricsTest` buffered-calls checks).
#[tokio::test(start_paused = true)]
async fn metrics_report_the_calls_in_the_window() {
    let breaker = CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.9, Window::last_calls(4)).min_calls(4))
        .build();
    assert_eq!(breaker.metrics().calls_in_window, Some(0));
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.metrics().calls_in_window, Some(2));
    for _ in 0..5 {
        succeed(&breaker).await.unwrap();
    }
    assert_eq!(
        breaker.metrics().calls_in_window,
        Some(4),
        "a full ring of 4"
    );
    let consecutive = CircuitBreaker::standard().build();
    assert_eq!(consecutive.metrics().calls_in_window, None, "no window");
}
