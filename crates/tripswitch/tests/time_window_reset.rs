//! A reset empties a time window for the threads that remember their last
//! slice in it too: a thread's successes right after a reset, in the same
//! slice as before it, count in the new window (the short path of a time
//! window on a built-in clock goes straight to the cell a thread remembers;
//! the window renews its id at each reset so that no memory from before it
//! is used after it).

mod common;

use std::sync::Arc;
use std::time::Duration;

use tripswitch::clock::StdClock;
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{CircuitBreaker, State};

/// One time window, no listener, no timing: the one-window success path.
fn on_std_clock() -> CircuitBreaker {
    CircuitBreaker::standard()
        .clock(StdClock::new())
        .failure_rate(FailureRate::new(0.9, Window::last(Duration::from_secs(3_600))).min_calls(1))
        .build()
}

fn succeed(breaker: &CircuitBreaker, times: u64) {
    for _ in 0..times {
        breaker.try_acquire().unwrap().success();
    }
}

#[test]
fn successes_after_a_reset_in_the_same_slice_count_in_the_new_window() {
    let breaker = on_std_clock();
    succeed(&breaker, 50);
    assert_eq!(breaker.metrics().calls_in_window, Some(50));
    for round in 1..=5u64 {
        breaker.reset();
        assert_eq!(breaker.metrics().calls_in_window, Some(0), "round {round}");
        succeed(&breaker, round * 10);
        assert_eq!(
            breaker.metrics().calls_in_window,
            Some(round * 10),
            "round {round}: the successes after the reset, and only they"
        );
    }
    assert_eq!(breaker.metrics().totals.successes, 50 + 150);
}

#[test]
fn the_same_on_tokio_paused_clock_with_time_standing_still() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let breaker = CircuitBreaker::standard()
            .failure_rate(
                FailureRate::new(0.9, Window::last_in_buckets(Duration::from_secs(10), 10))
                    .min_calls(1),
            )
            .build();
        succeed(&breaker, 7);
        breaker.reset();
        succeed(&breaker, 3);
        assert_eq!(breaker.metrics().calls_in_window, Some(3));
        // A failure after the reset is judged with the new window's calls.
        breaker.try_acquire().unwrap().failure(&"down");
        let m = breaker.metrics();
        assert_eq!(m.calls_in_window, Some(4), "{m:?}");
        assert_eq!(m.failure_rate, Some(0.25), "{m:?}");
        assert_eq!(m.state, State::Closed);
        // The slice ends: the window moves on as usual after a reset.
        tokio::time::advance(Duration::from_secs(1)).await;
        succeed(&breaker, 2);
        assert_eq!(breaker.metrics().calls_in_window, Some(6));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breaker.metrics().calls_in_window, Some(0));
    });
}

/// The reset made by another thread, between two of this thread's runs of
/// successes (ordered by the join): this thread's memory of its slice is
/// not used after it.
#[test]
fn a_reset_from_another_thread_is_seen_by_every_threads_memory() {
    let breaker = Arc::new(on_std_clock());
    succeed(&breaker, 20);
    let other = Arc::clone(&breaker);
    std::thread::spawn(move || {
        succeed(&other, 5);
        other.reset();
    })
    .join()
    .unwrap();
    succeed(&breaker, 4);
    assert_eq!(breaker.metrics().calls_in_window, Some(4));
    let other = Arc::clone(&breaker);
    std::thread::spawn(move || succeed(&other, 6))
        .join()
        .unwrap();
    assert_eq!(breaker.metrics().calls_in_window, Some(10));
}

/// Sixteen windows called in turn by one thread (every memory way in use),
/// one of them reset in the middle: only that one forgets its successes.
#[test]
fn a_reset_of_one_window_leaves_the_others_memories_alone() {
    let breakers: Vec<CircuitBreaker> = (0..16).map(|_| on_std_clock()).collect();
    for breaker in &breakers {
        succeed(breaker, 9);
    }
    breakers[5].reset();
    for breaker in &breakers {
        succeed(breaker, 1);
    }
    for (index, breaker) in breakers.iter().enumerate() {
        let expected = if index == 5 { 1 } else { 10 };
        assert_eq!(
            breaker.metrics().calls_in_window,
            Some(expected),
            "window {index}"
        );
    }
}
