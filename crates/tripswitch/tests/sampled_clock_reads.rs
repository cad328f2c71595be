//! The clock sample of fail-fast rejections is per breaker and thread
//! (RELIABILITY.md, "never stuck"): a breaker open past its deadline whose
//! timer never fires leaves Open within 1,025 of its own rejections on a
//! thread, however many other open breakers the thread calls in between,
//! and whether or not the thread is the one that counted first on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tripswitch::CircuitBreaker;
use tripswitch::clock::{Clock, Sleep};

mod common;
use common::DeafClock;

fn tripped(clock: &DeafClock, open: Duration) -> CircuitBreaker {
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(open)
        .build();
    breaker.try_acquire().expect("closed").failure(&"down");
    breaker
}

/// Calls `breakers` in turn, round after round: how many rounds until
/// `breakers[0]` (the only one past its deadline) admits a call, at most
/// `rounds`.
fn rounds_until_the_first_admits(breakers: &[CircuitBreaker], rounds: usize) -> Option<usize> {
    (1..=rounds).find(|_| {
        let admitted = breakers[0].try_acquire().is_ok();
        for other in &breakers[1..] {
            assert!(other.try_acquire().is_err(), "still open");
        }
        admitted
    })
}

/// A set of breakers: the first past its deadline, the others an hour
/// from theirs, every one tripped (and so first counted) on `trip_on`.
fn breakers(clock: &DeafClock, count: usize) -> Vec<CircuitBreaker> {
    let mut all = vec![tripped(clock, Duration::from_secs(5))];
    all.extend((1..count).map(|_| tripped(clock, Duration::from_secs(3_600))));
    clock.advance(Duration::from_secs(10));
    all
}

#[test]
fn on_the_thread_that_counted_first_two_breakers_in_turn_both_sample() {
    std::thread::spawn(|| {
        let clock = DeafClock::default();
        let all = breakers(&clock, 2);
        let rounds = rounds_until_the_first_admits(&all, 1_025);
        assert!(rounds.is_some(), "the first breaker never read the clock");
    })
    .join()
    .unwrap();
}

#[test]
fn on_another_thread_two_breakers_in_turn_both_sample() {
    let clock = DeafClock::default();
    // Tripped here: this thread owns their first stripes; the calls come
    // from another thread, which counts elsewhere.
    let all = breakers(&clock, 2);
    std::thread::spawn(move || {
        let rounds = rounds_until_the_first_admits(&all, 1_025);
        assert!(rounds.is_some(), "the first breaker never read the clock");
    })
    .join()
    .unwrap();
}

#[test]
fn on_another_thread_many_breakers_in_turn_all_sample() {
    // More breakers than the other thread's table has ways: breakers that
    // share a way read the clock on every rejection instead.
    for count in [3, 17, 40] {
        let clock = DeafClock::default();
        let all = breakers(&clock, count);
        std::thread::spawn(move || {
            let rounds = rounds_until_the_first_admits(&all, 1_025);
            assert!(
                rounds.is_some(),
                "{count} breakers: the first never read the clock"
            );
        })
        .join()
        .unwrap();
    }
}

#[test]
fn on_the_thread_that_counted_first_many_breakers_in_turn_all_sample() {
    for count in [3, 17, 40] {
        std::thread::spawn(move || {
            let clock = DeafClock::default();
            let all = breakers(&clock, count);
            let rounds = rounds_until_the_first_admits(&all, 1_025);
            assert!(
                rounds.is_some(),
                "{count} breakers: the first never read the clock"
            );
        })
        .join()
        .unwrap();
    }
}

/// The sample stays rare: a thread's rejections of one breaker read the
/// clock once in 1,024, on either path.
#[test]
fn one_rejection_in_1024_reads_the_clock_on_either_path() {
    #[derive(Debug, Clone, Default)]
    struct CountingDeafClock(Arc<AtomicU64>);
    impl Clock for CountingDeafClock {
        fn now(&self) -> Duration {
            self.0.fetch_add(1, Ordering::SeqCst);
            Duration::ZERO
        }
        fn sleep(&self, _: Duration) -> Sleep {
            Box::pin(std::future::pending())
        }
    }
    let clock = CountingDeafClock::default();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(3_600))
        .build();
    breaker.try_acquire().expect("closed").failure(&"down");
    fn reads(clock: &CountingDeafClock, breaker: &CircuitBreaker) -> u64 {
        let before = clock.0.load(Ordering::SeqCst);
        for _ in 0..10_240 {
            assert!(breaker.try_acquire().is_err());
        }
        clock.0.load(Ordering::SeqCst) - before
    }
    let here = reads(&clock, &breaker);
    let elsewhere = std::thread::spawn(move || reads(&clock, &breaker))
        .join()
        .unwrap();
    // Each sampled rejection reads the clock once on the full path (and
    // perhaps once more for its deadline): 10 samples in 10,240.
    assert!((10..=20).contains(&here), "owner thread: {here} reads");
    assert!(
        (10..=20).contains(&elsewhere),
        "other thread: {elsewhere} reads"
    );
}
