//! Review 23: time windows whose successes take the thread's last-slice
//! short path (tokio's or std's clock). Each test compares a breaker on the
//! short path ("fast": one failure-rate policy, no listener, no timing) with
//! the same breaker forced onto the general path by a listener ("reference"),
//! or with exact expected counts.

mod common;

use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use tripswitch::clock::StdClock;
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{CircuitBreaker, State};

fn rate(threshold: f64, window: Window, min_calls: u32) -> FailureRate {
    FailureRate::new(threshold, window).min_calls(min_calls)
}

/// On the short path: one rate policy, no listener, no timing.
fn fast(policy: FailureRate) -> CircuitBreaker {
    CircuitBreaker::standard()
        .failure_rate(policy)
        .try_build()
        .unwrap()
}

/// The same, forced onto the general path by a listener.
fn reference(policy: FailureRate) -> CircuitBreaker {
    CircuitBreaker::standard()
        .failure_rate(policy)
        .on_event(|_| {})
        .try_build()
        .unwrap()
}

fn fast_std(policy: FailureRate) -> CircuitBreaker {
    CircuitBreaker::standard()
        .failure_rate(policy)
        .clock(StdClock::new())
        .try_build()
        .unwrap()
}

fn succeed(breaker: &CircuitBreaker) {
    breaker.try_acquire().expect("closed").success();
}

fn fail(breaker: &CircuitBreaker) {
    breaker.try_acquire().expect("closed").failure(&"boom");
}

fn in_window(breaker: &CircuitBreaker) -> u64 {
    breaker.metrics().calls_in_window.unwrap_or(0)
}

fn same(a: &CircuitBreaker, b: &CircuitBreaker, what: &str) {
    let (x, y) = (a.metrics(), b.metrics());
    assert_eq!(x.state, y.state, "state: {what}");
    assert_eq!(
        x.calls_in_window, y.calls_in_window,
        "calls_in_window: {what}"
    );
    assert_eq!(x.failure_rate, y.failure_rate, "failure_rate: {what}");
    assert_eq!(x.totals, y.totals, "totals: {what}");
    assert_eq!(x.current, y.current, "current: {what}");
}

/// Tokio's clock read in a paused runtime moved far ahead, then on the
/// same thread outside any runtime (tokio's `Instant::now()` is then the
/// real time, earlier): the successes made outside are made now and must
/// be in the window now.
#[test]
fn successes_after_a_paused_runtime_are_in_the_window_now() {
    let policy = rate(0.5, Window::last_in_buckets(Duration::from_secs(1), 10), 1);
    let (f, r) = (fast(policy), reference(policy));
    let rt = common::paused_runtime();
    rt.block_on(async {
        tokio::time::advance(Duration::from_millis(60_250)).await;
        succeed(&f);
        succeed(&r);
    });
    drop(rt);
    for _ in 0..5 {
        succeed(&f);
        succeed(&r);
    }
    assert_eq!(in_window(&r), 5, "the reference counts them now");
    assert_eq!(
        in_window(&f),
        5,
        "the short path counted them in the paused runtime's slice"
    );
}

/// The same on a second paused runtime: the rate is judged without the
/// successes made in it, and the breaker trips at 40% < 50%.
#[test]
fn a_second_paused_runtime_does_not_trip_below_the_threshold() {
    let policy = rate(0.5, Window::last_in_buckets(Duration::from_secs(1), 10), 2);
    let (f, r) = (fast(policy), reference(policy));
    let a = common::paused_runtime();
    a.block_on(async {
        tokio::time::advance(Duration::from_millis(60_250)).await;
        succeed(&f);
        succeed(&r);
    });
    drop(a);
    let b = common::paused_runtime();
    b.block_on(async {
        for breaker in [&f, &r] {
            for _ in 0..3 {
                succeed(breaker);
            }
            fail(breaker);
            fail(breaker);
        }
        assert_eq!(r.state(), State::Closed, "2 failures in 5 calls: 40%");
        assert_eq!(in_window(&r), 5);
        assert_eq!(f.state(), State::Closed, "2 failures in 5 calls: 40%");
        assert_eq!(in_window(&f), 5);
    });
}

/// After a paused runtime moved a minute ahead, a second paused runtime on
/// the same thread runs two seconds of its own time: at every step the
/// window must hold the last second's successes.
#[test]
fn successes_in_a_later_runtime_stay_out_of_the_window_for_the_whole_gap() {
    let policy = rate(0.5, Window::last_in_buckets(Duration::from_secs(1), 10), 1);
    let (f, r) = (fast(policy), reference(policy));
    let a = common::paused_runtime();
    a.block_on(async {
        tokio::time::advance(Duration::from_millis(60_250)).await;
        succeed(&f);
        succeed(&r);
    });
    drop(a);
    let b = common::paused_runtime();
    b.block_on(async {
        // One success every 100 ms (one slice each): the window of ten
        // slices holds min(step + 1, 10) of them. (The reference, whose
        // shared bucket still holds the minute-ahead slice, is off by one
        // from step 2 on: a weakness of the shared buckets, older than this
        // change; it is not what this test checks.)
        let mut seen = Vec::new();
        for _ in 0..20u64 {
            succeed(&f);
            succeed(&r);
            seen.push(in_window(&f));
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        let expected: Vec<u64> = (0..20u64).map(|step| (step + 1).min(10)).collect();
        assert_eq!(seen, expected, "fast: calls in the window, step by step");
    });
}

/// One thread enters two paused runtimes in turn (`Handle::enter`), one of
/// them a minute ahead: each success counts at the time it read.
#[test]
fn two_runtimes_entered_in_turn_on_one_thread() {
    let policy = rate(0.5, Window::last_in_buckets(Duration::from_secs(1), 10), 1);
    let (f, r) = (fast(policy), reference(policy));
    let ahead = common::paused_runtime();
    ahead.block_on(tokio::time::advance(Duration::from_millis(60_250)));
    let behind = common::paused_runtime();
    for round in 0..5 {
        {
            let _in = ahead.enter();
            succeed(&f);
            succeed(&r);
            same(&f, &r, &format!("ahead, round {round}"));
        }
        {
            let _in = behind.enter();
            succeed(&f);
            succeed(&r);
            same(&f, &r, &format!("behind, round {round}"));
        }
    }
}

/// Every reset, manual move and transition that resets the window forgets
/// the earlier successes, for a thread that keeps calling in one slice.
#[test]
fn every_reset_forgets_successes_of_a_thread_in_the_same_slice() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        // One bucket of an hour: the slice never changes in this test.
        let policy = rate(
            0.5,
            Window::last_in_buckets(Duration::from_secs(3600), 1),
            1,
        );
        let (f, r) = (fast(policy), reference(policy));
        for (round, breaker) in [&f, &r].into_iter().enumerate() {
            let who = if round == 0 { "fast" } else { "reference" };
            for _ in 0..7 {
                succeed(breaker);
            }
            assert_eq!(in_window(breaker), 7, "{who}");
            breaker.reset();
            assert_eq!(in_window(breaker), 0, "{who} after reset");
            for _ in 0..3 {
                succeed(breaker);
            }
            assert_eq!(in_window(breaker), 3, "{who} after reset and 3 successes");
            breaker.reset();
            breaker.reset();
            succeed(breaker);
            assert_eq!(in_window(breaker), 1, "{who} after two resets");
            breaker.force_open();
            breaker.resume();
            assert_eq!(in_window(breaker), 0, "{who} after force_open + resume");
            succeed(breaker);
            succeed(breaker);
            assert_eq!(in_window(breaker), 2, "{who}");
            breaker.force_metrics_only();
            assert_eq!(in_window(breaker), 0, "{who} metrics-only");
            succeed(breaker);
            assert_eq!(in_window(breaker), 1, "{who} metrics-only success");
            breaker.resume();
            assert_eq!(
                in_window(breaker),
                0,
                "{who} after resume from metrics-only"
            );
            succeed(breaker);
            breaker.disable();
            breaker.resume();
            assert_eq!(in_window(breaker), 0, "{who} after disable + resume");
            for _ in 0..4 {
                succeed(breaker);
            }
            assert_eq!(in_window(breaker), 4, "{who}");
        }
        same(&f, &r, "end");
    });
}

/// Trip, open period, half-open probe, close: the window closed again
/// holds only what came after the close.
#[test]
fn closing_after_a_trip_forgets_the_earlier_successes() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let policy = rate(
            0.5,
            Window::last_in_buckets(Duration::from_secs(3600), 1),
            4,
        );
        let (f, r) = (fast(policy), reference(policy));
        for breaker in [&f, &r] {
            for _ in 0..2 {
                succeed(breaker);
            }
            fail(breaker);
            fail(breaker);
            assert_eq!(breaker.state(), State::Open);
        }
        tokio::time::advance(Duration::from_secs(61)).await;
        for breaker in [&f, &r] {
            // Probes until closed.
            for _ in 0..20 {
                if breaker.state() == State::Closed {
                    break;
                }
                if let Ok(permit) = breaker.try_acquire() {
                    permit.success();
                }
            }
            assert_eq!(breaker.state(), State::Closed);
            assert_eq!(in_window(breaker), 0);
            for _ in 0..3 {
                succeed(breaker);
            }
            assert_eq!(in_window(breaker), 3);
        }
        same(&f, &r, "after close");
    });
}

/// Another thread resets the breaker while this one keeps calling in the
/// same slice (std's clock, an hour-long slice), in lock step.
#[test]
fn a_reset_on_another_thread_is_seen_by_a_thread_in_the_same_slice() {
    let policy = rate(
        0.5,
        Window::last_in_buckets(Duration::from_secs(36_000), 10),
        1,
    );
    let breaker = fast_std(policy);
    let (to_resetter, resets) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel::<()>();
    let other = breaker.clone();
    let (ready_tx, ready) = mpsc::channel::<()>();
    let resetter = std::thread::spawn(move || {
        // Counts in the window too, so that it owns a stripe of its own.
        succeed(&other);
        other.reset();
        ready_tx.send(()).unwrap();
        for () in resets {
            other.reset();
            done_tx.send(()).unwrap();
        }
    });
    ready.recv().unwrap();
    for round in 1..=50u64 {
        for _ in 0..round {
            succeed(&breaker);
        }
        assert_eq!(in_window(&breaker), round, "round {round}");
        to_resetter.send(()).unwrap();
        done.recv().unwrap();
        assert_eq!(in_window(&breaker), 0, "round {round}, after the reset");
    }
    drop(to_resetter);
    resetter.join().unwrap();
}

/// More breakers on one thread than it remembers (16 ways), in turn,
/// with resets of some in between.
#[test]
fn many_breakers_on_one_thread_count_exactly() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let policy = rate(0.5, Window::last_in_buckets(Duration::from_secs(10), 10), 1);
        let breakers: Vec<_> = (0..40).map(|_| fast(policy)).collect();
        let mut expected = vec![0u64; breakers.len()];
        for step in 0..3000usize {
            let i = (step * 7 + step / 13) % breakers.len();
            succeed(&breakers[i]);
            expected[i] += 1;
            if step % 97 == 0 {
                let j = (step / 97 * 11) % breakers.len();
                breakers[j].reset();
                expected[j] = 0;
            }
            if step % 500 == 499 {
                for (k, b) in breakers.iter().enumerate() {
                    assert_eq!(in_window(b), expected[k], "breaker {k} at step {step}");
                }
            }
        }
        // Slices move on: in the next slice the same counts still hold
        // (10 buckets of 1 s), and 10 s later nothing.
        tokio::time::advance(Duration::from_millis(1500)).await;
        for (k, b) in breakers.iter().enumerate() {
            assert_eq!(in_window(b), expected[k], "breaker {k} later");
            succeed(b);
            expected[k] += 1;
            assert_eq!(in_window(b), expected[k], "breaker {k} later, one more");
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        for (k, b) in breakers.iter().enumerate() {
            assert_eq!(in_window(b), 0, "breaker {k} expired");
        }
    });
}

/// Threads that exit and threads that take their stripes, and more live
/// threads than stripes: every success counted once.
#[test]
fn threads_exiting_and_more_threads_than_stripes_count_exactly() {
    let policy = rate(
        0.5,
        Window::last_in_buckets(Duration::from_secs(36_000), 10),
        1,
    );
    let breaker = fast_std(policy);
    let mut expected = 0u64;
    // Waves of threads that exit, each taking the stripes of the last.
    for wave in 0..4u64 {
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let b = breaker.clone();
                std::thread::spawn(move || {
                    for _ in 0..(100 + wave * 10 + t) {
                        succeed(&b);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        expected += (0..6).map(|t| 100 + wave * 10 + t).sum::<u64>();
        assert_eq!(in_window(&breaker), expected, "wave {wave}");
    }
    // Twenty threads alive at once (more than the 8 stripes), interleaved.
    let barrier = Arc::new(Barrier::new(20));
    let handles: Vec<_> = (0..20u64)
        .map(|t| {
            let b = breaker.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..(500 + t) {
                    succeed(&b);
                }
                barrier.wait();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    expected += (0..20u64).map(|t| 500 + t).sum::<u64>();
    assert_eq!(in_window(&breaker), expected, "twenty threads");
    assert_eq!(breaker.metrics().totals.successes, expected);
    // A reset, then new threads in the same slice.
    breaker.reset();
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let b = breaker.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    succeed(&b);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for _ in 0..5 {
        succeed(&breaker);
    }
    assert_eq!(in_window(&breaker), 505);
}

/// Slices expire exactly as paused time moves, at every bucket edge.
#[test]
fn slices_expire_exactly_with_paused_time() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let ms = Duration::from_millis;
        let policy = rate(0.5, Window::last_in_buckets(ms(1000), 10), 1);
        let (f, r) = (fast(policy), reference(policy));
        // One success at the start, one just before the first edge, two
        // at the edge, one just before the next.
        let at = |b: &CircuitBreaker| {
            succeed(b);
        };
        for b in [&f, &r] {
            at(b);
        }
        tokio::time::advance(ms(99)).await;
        for b in [&f, &r] {
            at(b);
        }
        tokio::time::advance(Duration::from_nanos(999_999)).await;
        for b in [&f, &r] {
            at(b);
        }
        tokio::time::advance(Duration::from_nanos(1)).await; // 100 ms exactly
        for b in [&f, &r] {
            at(b);
            at(b);
        }
        tokio::time::advance(Duration::from_nanos(99_999_999)).await; // 199.999999 ms
        for b in [&f, &r] {
            at(b);
        }
        assert_eq!(in_window(&f), 6);
        same(&f, &r, "200 ms");
        tokio::time::advance(Duration::from_nanos(800_000_000)).await; // 999.999999 ms
        assert_eq!(in_window(&f), 6);
        same(&f, &r, "999.999999 ms");
        tokio::time::advance(Duration::from_nanos(1)).await; // 1000 ms: slice 1 leaves
        assert_eq!(in_window(&f), 3);
        same(&f, &r, "1000 ms");
        for b in [&f, &r] {
            at(b);
        }
        tokio::time::advance(Duration::from_nanos(99_999_999)).await; // 1099.999999
        for b in [&f, &r] {
            at(b);
        }
        assert_eq!(in_window(&f), 5);
        tokio::time::advance(Duration::from_nanos(1)).await; // 1100: slice 2 leaves
        assert_eq!(in_window(&f), 2);
        same(&f, &r, "1100 ms");
    });
}

/// Windows at the edges: one bucket, 64 (the most with per-thread cells)
/// and 65, a window of the largest length, a breaker made long ago.
#[test]
fn window_shapes_at_the_edges_count_like_the_general_path() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let shapes = [
            Window::last_in_buckets(Duration::from_secs(1), 1),
            Window::last_in_buckets(Duration::from_millis(640), 64),
            Window::last_in_buckets(Duration::from_millis(650), 65),
            Window::last_in_buckets(Duration::MAX, 1),
            Window::last_in_buckets(Duration::MAX, 64),
            Window::last_in_buckets(Duration::from_nanos(64), 64),
            Window::last_in_buckets(Duration::from_millis(1), 64),
        ];
        for window in shapes {
            let policy = rate(1.0, window, 1);
            let (f, r) = (fast(policy), reference(policy));
            let steps: [u64; 12] = [
                0,
                1,
                3,
                9_999_999,
                10_000_000,
                1_000_000_000,
                86_400_000_000_000,
                // ~ 200 days and a year: slices past 2^40 for the small buckets
                200 * 86_400_000_000_000,
                365 * 86_400_000_000_000,
                1,
                7,
                123_456_789,
            ];
            for (i, step) in steps.iter().enumerate() {
                tokio::time::advance(Duration::from_nanos(*step)).await;
                for b in [&f, &r] {
                    for _ in 0..(i % 3 + 1) {
                        succeed(b);
                    }
                }
                same(&f, &r, &format!("{window:?} step {i}"));
                if i == 6 {
                    f.reset();
                    r.reset();
                    succeed(&f);
                    succeed(&r);
                    same(&f, &r, &format!("{window:?} after reset"));
                }
            }
        }
    });
}

/// A breaker made long before its first call (paused time moved years).
#[test]
fn a_breaker_made_long_ago() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let policy = rate(0.5, Window::last_in_buckets(Duration::from_secs(10), 10), 1);
        let (f, r) = (fast(policy), reference(policy));
        tokio::time::advance(Duration::from_secs(20 * 365 * 86_400)).await;
        for _ in 0..10 {
            succeed(&f);
            succeed(&r);
        }
        same(&f, &r, "20 years later");
        assert_eq!(in_window(&f), 10);
        tokio::time::advance(Duration::from_secs(9)).await;
        succeed(&f);
        succeed(&r);
        assert_eq!(in_window(&f), 11);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(in_window(&f), 1);
        same(&f, &r, "20 years and 10 s later");
    });
}

/// A random walk of successes, failures, time moves and resets, on
/// several window shapes: the short path counts as the general path.
#[test]
fn random_walk_matches_the_general_path() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let shapes = [
            (Window::last_in_buckets(Duration::from_millis(100), 1), 0.5),
            (Window::last_in_buckets(Duration::from_millis(100), 10), 0.3),
            (Window::last_in_buckets(Duration::from_millis(640), 64), 0.4),
            (Window::last_in_buckets(Duration::from_millis(650), 65), 0.4),
            (Window::last(Duration::from_secs(1)), 0.2),
        ];
        for (window, threshold) in shapes {
            let policy = rate(threshold, window, 5);
            let (f, r) = (fast(policy), reference(policy));
            for step in 0..4000 {
                let roll = next() % 100;
                match roll {
                    0..=69 => {
                        let (a, b) = (f.try_acquire(), r.try_acquire());
                        assert_eq!(a.is_ok(), b.is_ok(), "{window:?} step {step}");
                        if let (Ok(a), Ok(b)) = (a, b) {
                            a.success();
                            b.success();
                        }
                    }
                    70..=74 => {
                        let (a, b) = (f.try_acquire(), r.try_acquire());
                        assert_eq!(a.is_ok(), b.is_ok(), "{window:?} step {step}");
                        if let (Ok(a), Ok(b)) = (a, b) {
                            a.failure(&"x");
                            b.failure(&"x");
                        }
                    }
                    75..=94 => {
                        let nanos = match next() % 4 {
                            0 => next() % 1_000,
                            1 => next() % 10_000_000,
                            2 => next() % 100_000_000,
                            _ => next() % 2_000_000_000,
                        };
                        tokio::time::advance(Duration::from_nanos(nanos)).await;
                    }
                    95..=96 => {
                        f.reset();
                        r.reset();
                    }
                    _ => same(&f, &r, &format!("{window:?} step {step}")),
                }
            }
            same(&f, &r, &format!("{window:?} end"));
        }
    });
}

/// A consecutive count paired with a time window, and two time windows:
/// the shapes that share the window's short path, against the general path.
#[test]
fn paired_and_multi_window_shapes_match_the_general_path() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let mut seed = 0xD1B5_4A32_D192_ED03u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        type Make = fn(bool) -> CircuitBreaker;
        let shapes: [(&str, Make); 3] = [
            ("consecutive + time window", |general| {
                let mut b = CircuitBreaker::standard()
                    .consecutive_failures(3)
                    .failure_rate(rate(
                        0.3,
                        Window::last_in_buckets(Duration::from_millis(200), 4),
                        5,
                    ));
                if general {
                    b = b.on_event(|_| {});
                }
                b.try_build().unwrap()
            }),
            ("time window + consecutive", |general| {
                let mut b = CircuitBreaker::standard()
                    .failure_rate(rate(
                        0.3,
                        Window::last_in_buckets(Duration::from_millis(200), 64),
                        5,
                    ))
                    .consecutive_failures(4);
                if general {
                    b = b.on_event(|_| {});
                }
                b.try_build().unwrap()
            }),
            ("two time windows", |general| {
                let mut b = CircuitBreaker::standard()
                    .failure_rate(rate(
                        0.3,
                        Window::last_in_buckets(Duration::from_millis(300), 3),
                        5,
                    ))
                    .failure_rate(rate(
                        0.6,
                        Window::last_in_buckets(Duration::from_millis(100), 1),
                        3,
                    ));
                if general {
                    b = b.on_event(|_| {});
                }
                b.try_build().unwrap()
            }),
        ];
        for (name, make) in shapes {
            let (f, r) = (make(false), make(true));
            for step in 0..4000 {
                let what = format!("{name}, step {step}");
                match next() % 100 {
                    0..=74 => {
                        let (a, b) = (f.try_acquire(), r.try_acquire());
                        assert_eq!(a.is_ok(), b.is_ok(), "{what}");
                        if let (Ok(a), Ok(b)) = (a, b) {
                            a.success();
                            b.success();
                        }
                    }
                    75..=79 => {
                        let (a, b) = (f.try_acquire(), r.try_acquire());
                        assert_eq!(a.is_ok(), b.is_ok(), "{what}");
                        if let (Ok(a), Ok(b)) = (a, b) {
                            a.failure(&"x");
                            b.failure(&"x");
                        }
                    }
                    80..=95 => {
                        let nanos = next() % 120_000_000;
                        tokio::time::advance(Duration::from_nanos(nanos)).await;
                    }
                    96 => {
                        f.reset();
                        r.reset();
                    }
                    _ => {}
                }
                let (x, y) = (f.metrics(), r.metrics());
                assert_eq!(
                    (
                        x.state,
                        x.calls_in_window,
                        x.failure_rate,
                        x.consecutive_failures,
                        x.totals,
                        x.current
                    ),
                    (
                        y.state,
                        y.calls_in_window,
                        y.failure_rate,
                        y.consecutive_failures,
                        y.totals,
                        y.current
                    ),
                    "{what}"
                );
            }
        }
    });
}
