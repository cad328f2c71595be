//! Review 21: attacks on the time window's per-thread last-slice memory,
//! which no longer remembers the stripe row (a thread is assumed to keep
//! its counter stripe for life): more threads than stripes, threads that
//! exit and whose stripes are taken by new threads, successes recorded from
//! thread-local destructors while a thread exits, and tokio's paused time
//! across runtimes and threads. Every count must stay exact.

mod common;

use std::cell::RefCell;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use tripswitch::clock::StdClock;
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{CircuitBreaker, OwnedPermit, State};

/// A time-window breaker on a built-in clock (so that the last-slice memory
/// is used), with no listener and no timing (the one-window success path),
/// that never trips on these tests' failure rates.
fn window_breaker(window: Window) -> CircuitBreaker {
    CircuitBreaker::standard()
        .failure_rate(FailureRate::new(0.9, window).min_calls(1))
        .build()
}

fn std_window_breaker(window: Window) -> CircuitBreaker {
    CircuitBreaker::standard()
        .clock(StdClock::new())
        .failure_rate(FailureRate::new(0.9, window).min_calls(1))
        .build()
}

fn assert_counts(breaker: &CircuitBreaker, successes: u64, failures: u64, what: &str) {
    let m = breaker.metrics();
    assert_eq!(m.state, State::Closed, "{what}: {m:?}");
    assert_eq!(
        m.calls_in_window,
        Some(successes + failures),
        "{what}: {m:?}"
    );
    assert_eq!(m.totals.successes, successes, "{what}: {m:?}");
    assert_eq!(m.totals.failures, failures, "{what}: {m:?}");
    assert_eq!(m.current.successes, successes, "{what}: {m:?}");
    let rate = failures as f64 / (successes + failures) as f64;
    let got = m.failure_rate.expect("calls in the window");
    assert!((got - rate).abs() < 1e-9, "{what}: rate {got} != {rate}");
}

/// Sixteen threads at once (eight own a stripe, eight share one) on three
/// time windows (a striped one, a second striped one sharing the threads'
/// memory ways, one with too many buckets to be striped).
#[test]
fn sixteen_threads_on_three_windows_count_exactly() {
    let hour = Duration::from_secs(3_600);
    let breakers = Arc::new([
        std_window_breaker(Window::last(hour)),
        std_window_breaker(Window::last_in_buckets(hour, 64)),
        std_window_breaker(Window::last_in_buckets(hour, 65)),
    ]);
    let threads = 16;
    let per_thread = 1_500u64;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let breakers = Arc::clone(&breakers);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    for b in breakers.iter() {
                        b.try_acquire().unwrap().success();
                    }
                    if i % 500 == t as u64 % 500 {
                        breakers[(i as usize + t) % 3]
                            .try_acquire()
                            .unwrap()
                            .failure(&"x");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let successes = threads as u64 * per_thread;
    let m: Vec<_> = breakers
        .iter()
        .map(|b| b.metrics().totals.failures)
        .collect();
    assert_eq!(m.iter().sum::<u64>(), threads as u64 * 3);
    for (i, b) in breakers.iter().enumerate() {
        assert_counts(b, successes, m[i], &format!("breaker {i}"));
    }
}

/// Ten rounds of six short-lived threads: each round's threads exit, and
/// the next round's take their stripes (rows), while two long-lived threads
/// keep theirs and remember their slices throughout.
#[test]
fn threads_that_exit_hand_their_rows_to_new_threads_without_losing_counts() {
    let hour = Duration::from_secs(3_600);
    let breakers = Arc::new([
        std_window_breaker(Window::last(hour)),
        std_window_breaker(Window::last_in_buckets(hour, 3)),
    ]);
    let rounds = 10;
    let per_round = 6;
    let per_thread = 300u64;
    // Two long-lived threads, stepping once per round.
    let step = Arc::new(Barrier::new(3));
    let long: Vec<_> = (0..2)
        .map(|_| {
            let breakers = Arc::clone(&breakers);
            let step = Arc::clone(&step);
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    step.wait();
                    for _ in 0..per_thread {
                        for b in breakers.iter() {
                            b.try_acquire().unwrap().success();
                        }
                    }
                    step.wait();
                }
            })
        })
        .collect();
    let mut expected = 0u64;
    for round in 0..rounds {
        step.wait();
        let short: Vec<_> = (0..per_round)
            .map(|_| {
                let breakers = Arc::clone(&breakers);
                std::thread::spawn(move || {
                    for _ in 0..per_thread {
                        for b in breakers.iter() {
                            b.try_acquire().unwrap().success();
                        }
                    }
                })
            })
            .collect();
        for h in short {
            h.join().unwrap();
        }
        step.wait();
        expected += (per_round as u64 + 2) * per_thread;
        for (i, b) in breakers.iter().enumerate() {
            let m = b.metrics();
            assert_eq!(
                m.calls_in_window,
                Some(expected),
                "round {round} breaker {i}: {m:?}"
            );
            assert_eq!(m.totals.successes, expected, "round {round} breaker {i}");
        }
    }
    for h in long {
        h.join().unwrap();
    }
}

struct SucceedOnExit(Vec<OwnedPermit>);

impl Drop for SucceedOnExit {
    fn drop(&mut self) {
        for permit in self.0.drain(..) {
            permit.success();
        }
    }
}

thread_local! {
    static ON_EXIT: RefCell<Option<SucceedOnExit>> = const { RefCell::new(None) };
}

/// Successes recorded from a thread-local destructor, while the thread exits
/// (its stripe may already be given back and taken by another thread that
/// counts in the same window at the same time), are counted exactly once.
#[test]
fn successes_from_exiting_threads_count_exactly() {
    let breaker = Arc::new(std_window_breaker(Window::last(Duration::from_secs(3_600))));
    let rounds = 8;
    let per_round = 10;
    let per_thread = 50u64;
    let mut expected = 0;
    for round in 0..rounds {
        let barrier = Arc::new(Barrier::new(per_round));
        let handles: Vec<_> = (0..per_round)
            .map(|t| {
                let breaker = Arc::clone(&breaker);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    // Half the threads count before exiting (so that they
                    // own a stripe, and remember a slice), all count on exit.
                    if t % 2 == 0 {
                        for _ in 0..per_thread {
                            breaker.try_acquire().unwrap().success();
                        }
                    }
                    let permits = (0..per_thread)
                        .map(|_| breaker.try_acquire_owned().unwrap())
                        .collect();
                    ON_EXIT.with(|slot| *slot.borrow_mut() = Some(SucceedOnExit(permits)));
                    barrier.wait();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        expected += per_thread * (per_round as u64 + per_round as u64 / 2);
        let m = breaker.metrics();
        assert_eq!(m.calls_in_window, Some(expected), "round {round}: {m:?}");
        assert_eq!(m.totals.successes, expected, "round {round}: {m:?}");
    }
}

/// Tokio's paused time, several runtimes one after the other on one thread,
/// a breaker on the default clock (tokio's) made in the first: counts in a
/// one-hour window stay exact whichever runtime's paused clock is read.
#[test]
fn paused_time_across_runtimes_on_one_thread_counts_exactly() {
    let rt = common::paused_runtime();
    let breaker = rt.block_on(async { window_breaker(Window::last(Duration::from_secs(3_600))) });
    let mut expected = 0;
    for round in 0..4u64 {
        if round > 0 {
            let rt = common::paused_runtime();
            rt.block_on(async {
                tokio::time::advance(Duration::from_secs(round * 7)).await;
                for _ in 0..100 {
                    breaker.try_acquire().unwrap().success();
                }
            });
        } else {
            rt.block_on(async {
                for _ in 0..100 {
                    breaker.try_acquire().unwrap().success();
                }
            });
        }
        // And outside any runtime (real time).
        for _ in 0..10 {
            breaker.try_acquire().unwrap().success();
        }
        expected += 110;
        let m = breaker.metrics();
        assert_eq!(m.totals.successes, expected, "round {round}");
    }
    // Read inside a paused runtime whose clock is at most a few minutes past
    // the breaker's origin: every success is within the hour.
    let rt = common::paused_runtime();
    let m = rt.block_on(async { breaker.metrics() });
    assert_eq!(m.calls_in_window, Some(expected), "{m:?}");
}

/// Twelve threads inside one paused runtime's context (more threads than
/// stripes), time moved by hand between phases: slices come and go exactly
/// as the window says, whatever each thread remembers of its last slice.
#[test]
fn paused_time_many_threads_slices_expire_exactly() {
    let rt = common::paused_runtime();
    let handle = rt.handle().clone();
    let breaker =
        Arc::new(rt.block_on(async {
            window_breaker(Window::last_in_buckets(Duration::from_secs(10), 10))
        }));
    let threads = 12;
    let phase = |n: u64| {
        let barrier = Arc::new(Barrier::new(threads));
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let breaker = Arc::clone(&breaker);
                let handle = handle.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let _entered = handle.enter();
                    barrier.wait();
                    for _ in 0..n {
                        breaker.try_acquire().unwrap().success();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    };
    let window =
        |rt: &tokio::runtime::Runtime| rt.block_on(async { breaker.metrics() }).calls_in_window;
    // t = 0: slice 1.
    phase(100);
    assert_eq!(window(&rt), Some(1_200));
    rt.block_on(tokio::time::advance(Duration::from_millis(999)));
    // t = 0.999: still slice 1.
    phase(100);
    assert_eq!(window(&rt), Some(2_400));
    rt.block_on(tokio::time::advance(Duration::from_millis(1)));
    // t = 1.0: slice 2.
    phase(50);
    assert_eq!(window(&rt), Some(3_000));
    rt.block_on(tokio::time::advance(Duration::from_secs(9)));
    // t = 10.0: slice 11; the window holds slices 2..=11.
    assert_eq!(window(&rt), Some(600));
    phase(10);
    assert_eq!(window(&rt), Some(720));
    rt.block_on(tokio::time::advance(Duration::from_secs(10)));
    // Twenty seconds later the same cells' buckets come round again: slice
    // 21 reuses slice 11's bucket and each thread's cell for it.
    phase(7);
    assert_eq!(window(&rt), Some(84));
    breaker.reset();
    assert_eq!(window(&rt), Some(0));
    phase(3);
    assert_eq!(window(&rt), Some(36));
    assert_eq!(
        breaker.metrics().totals.successes,
        1_200 * 2 + 600 + 120 + 84 + 36
    );
}
