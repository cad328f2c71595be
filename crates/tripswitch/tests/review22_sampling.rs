//! Review 22: the fail-fast clock sample, per breaker and thread.
//!
//! A deaf clock (its sleeps never complete) means the open period's timer
//! never fires: only sampled rejections (and `state`/`metrics`, which these
//! tests avoid inside the measured loops) can notice the deadline. The
//! promise (RELIABILITY.md): `execute` and `try_acquire` leave Open within
//! 1,025 of that breaker's rejections on a thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use tripswitch::clock::{Clock, FakeClock, Sleep};
use tripswitch::{CircuitBreaker, State};

const BOUND: usize = 1025;
const OPEN_FOR: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct DeafClock {
    nanos: AtomicU64,
}

impl DeafClock {
    fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

struct Never;
impl Future for Never {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Clock for DeafClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
    fn sleep(&self, _: Duration) -> Sleep {
        Box::pin(Never)
    }
}

fn deaf_breaker(clock: &Arc<DeafClock>) -> CircuitBreaker {
    CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(OPEN_FOR)
        .clock(Arc::clone(clock))
        .build()
}

/// One call through `execute`, polled once: `Some(true)` admitted (ran),
/// `Some(false)` rejected.
fn call(breaker: &CircuitBreaker, fail: bool) -> bool {
    let result = breaker
        .execute(|| async move { if fail { Err("boom") } else { Ok(()) } })
        .now_or_never()
        .expect("a fail-fast call never waits");
    match result {
        Ok(()) => true,
        Err(error) => !error.is_rejected(),
    }
}

fn trip(breaker: &CircuitBreaker) {
    assert!(call(breaker, true), "the tripping call runs");
}

/// Rejections (through `execute` when `permits` is false, `try_acquire`
/// otherwise) until the breaker lets a call in; panics past the bound.
fn rejections_until_admitted(breaker: &CircuitBreaker, permits: bool) -> usize {
    for rejected in 0..=BOUND + 5 {
        let admitted = if permits {
            match breaker.try_acquire() {
                Ok(permit) => {
                    permit.success();
                    true
                }
                Err(_) => false,
            }
        } else {
            call(breaker, false)
        };
        if admitted {
            return rejected;
        }
    }
    panic!(
        "still open after {} rejections past the deadline",
        BOUND + 5
    );
}

/// Rejections while open and before the deadline, `n` of them.
fn reject_before_deadline(breaker: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        assert!(!call(breaker, false));
    }
}

#[test]
fn owner_thread_leaves_open_within_the_bound_at_every_offset_of_its_stripe_count() {
    // The owner's sample is the stripe's rejection count modulo 1024: walk
    // the count's offset around the sample point before the deadline passes.
    for offset in [0usize, 1, 2, 511, 1021, 1022, 1023, 1024, 1025, 2046, 2047] {
        let clock = Arc::new(DeafClock::default());
        let breaker = deaf_breaker(&clock);
        trip(&breaker);
        reject_before_deadline(&breaker, offset);
        clock.advance(OPEN_FOR * 2);
        let n = rejections_until_admitted(&breaker, offset % 2 == 0);
        assert!(
            n <= BOUND,
            "offset {offset}: {n} rejections after the deadline"
        );
        assert_eq!(breaker.state(), State::Closed, "offset {offset}");
        let totals = breaker.metrics().totals;
        assert_eq!(totals.rejected, (offset + n) as u64, "offset {offset}");
        assert_eq!(totals.failures, 1);
        assert_eq!(totals.successes, 1);
    }
}

#[test]
fn count_moved_by_forced_and_half_open_rejections_keeps_the_bound() {
    // Rejections from other paths (forced open, half-open full) land on the
    // same stripe, leaving the count at any offset when the breaker opens.
    for extra in [1usize, 3, 1022, 1023, 1024, 1500] {
        let clock = Arc::new(DeafClock::default());
        let breaker = deaf_breaker(&clock);
        breaker.force_open();
        for _ in 0..extra {
            assert!(breaker.try_acquire().is_err());
        }
        breaker.reset();
        assert_eq!(breaker.state(), State::Closed);
        trip(&breaker);
        clock.advance(OPEN_FOR * 2);
        // Half-open full: hold the probe, reject some more.
        let n = rejections_until_admitted_holding(&breaker, extra % 7);
        assert!(n <= BOUND, "extra {extra}: {n}");
        // Trip again and check again: second open period.
        let before = breaker.metrics().totals.rejected;
        trip(&breaker);
        reject_before_deadline(&breaker, extra % 1024);
        clock.advance(OPEN_FOR * 2);
        let n = rejections_until_admitted(&breaker, false);
        assert!(n <= BOUND, "extra {extra}, second period: {n}");
        assert_eq!(
            breaker.metrics().totals.rejected,
            before + (extra % 1024 + n) as u64
        );
    }
}

/// Like [`rejections_until_admitted`], but the admitted probe is held while
/// `half_open_rejections` more calls are refused (half-open full), then
/// succeeds.
fn rejections_until_admitted_holding(
    breaker: &CircuitBreaker,
    half_open_rejections: usize,
) -> usize {
    for rejected in 0..=BOUND + 5 {
        if let Ok(permit) = breaker.try_acquire() {
            for _ in 0..half_open_rejections {
                assert!(breaker.try_acquire().is_err());
            }
            permit.success();
            return rejected;
        }
    }
    panic!("still open");
}

#[test]
fn many_open_breakers_in_turn_each_leave_open_on_a_fresh_thread_and_the_owner() {
    for count in [2usize, 16, 17, 33] {
        let clock = Arc::new(DeafClock::default());
        let breakers: Vec<_> = (0..count).map(|_| deaf_breaker(&clock)).collect();
        // Tripped on this thread: this thread owns their first stripes.
        for breaker in &breakers {
            trip(breaker);
        }
        // Some rejections on this thread before the deadline.
        for (i, breaker) in breakers.iter().enumerate() {
            reject_before_deadline(breaker, i * 37 % 1024);
        }
        let clock2 = Arc::clone(&clock);
        let breakers = Arc::new(breakers);
        let other = Arc::clone(&breakers);
        // Another thread (not the owner) calls them in turn after the deadline.
        std::thread::spawn(move || {
            // Count something first so that this thread has a stripe.
            let warm = CircuitBreaker::standard().build();
            assert!(call(&warm, false));
            clock2.advance(OPEN_FOR * 2);
            let mut left = vec![None; other.len()];
            for round in 0..=BOUND + 1 {
                for (i, breaker) in other.iter().enumerate() {
                    if left[i].is_none() && call(breaker, false) {
                        left[i] = Some(round);
                    }
                }
                if left.iter().all(Option::is_some) {
                    break;
                }
            }
            for (i, round) in left.iter().enumerate() {
                let round =
                    round.unwrap_or_else(|| panic!("breaker {i} of {} still open", other.len()));
                assert!(round <= BOUND);
            }
        })
        .join()
        .unwrap();
        // And again on the owner thread after a second trip each.
        for breaker in breakers.iter() {
            trip(breaker);
        }
        clock.advance(OPEN_FOR * 2);
        let mut left = vec![None; breakers.len()];
        for round in 0..=BOUND + 1 {
            for (i, breaker) in breakers.iter().enumerate() {
                if left[i].is_none() && call(breaker, false) {
                    left[i] = Some(round);
                }
            }
            if left.iter().all(Option::is_some) {
                break;
            }
        }
        for (i, round) in left.iter().enumerate() {
            let round = round.unwrap_or_else(|| panic!("owner: breaker {i} of {count} still open"));
            assert!(round <= BOUND);
        }
    }
}

#[test]
fn breakers_reborn_at_the_same_address_on_a_calling_thread_keep_the_bound() {
    // A thread that is not the breakers' first counter calls them; they are
    // dropped and new ones made (the allocator tends to reuse addresses)
    // while its per-thread table remembers the old counts.
    let (to_worker, from_main) =
        std::sync::mpsc::channel::<Option<(Arc<CircuitBreaker>, Arc<DeafClock>, usize)>>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<usize>();
    let worker = std::thread::spawn(move || {
        let warm = CircuitBreaker::standard().build();
        assert!(call(&warm, false));
        while let Ok(Some((breaker, clock, before))) = from_main.recv() {
            reject_before_deadline(&breaker, before);
            clock.advance(OPEN_FOR * 2);
            let n = rejections_until_admitted(&breaker, before % 2 == 1);
            drop(breaker);
            done_tx.send(n).unwrap();
        }
    });
    for round in 0..24usize {
        let clock = Arc::new(DeafClock::default());
        let breaker = Arc::new(deaf_breaker(&clock));
        trip(&breaker);
        let before = [1000usize, 1022, 1023, 5, 0, 700][round % 6];
        to_worker
            .send(Some((Arc::clone(&breaker), clock, before)))
            .unwrap();
        let n = done_rx.recv().unwrap();
        assert!(n <= BOUND, "round {round}: {n}");
        assert_eq!(breaker.metrics().totals.rejected, (before + n) as u64);
        drop(breaker);
    }
    to_worker.send(None).unwrap();
    worker.join().unwrap();
}

#[test]
fn rejection_totals_are_exact_across_many_threads() {
    // Twelve threads (more than the eight owned stripes, so some share)
    // reject on one open breaker by every path: execute's short path, its
    // full path after a sample, try_acquire, and, while forced open, the
    // forced rejection.
    let clock = FakeClock::new();
    let breaker = Arc::new(
        CircuitBreaker::standard()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(3600))
            .clock(clock.clone())
            .build(),
    );
    trip(&breaker);
    const THREADS: usize = 12;
    const CALLS: usize = 5000;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let breaker = Arc::clone(&breaker);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut rejected = 0u64;
                for i in 0..CALLS {
                    let refused = if (i + t) % 3 == 0 {
                        breaker.try_acquire().is_err()
                    } else {
                        !call(&breaker, false)
                    };
                    assert!(refused);
                    rejected += 1;
                }
                rejected
            })
        })
        .collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (THREADS * CALLS) as u64);
    let totals = breaker.metrics().totals;
    assert_eq!(totals.rejected, sum);
    assert_eq!(totals.failures, 1);
    assert_eq!(totals.successes, 0);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_new_owner_of_the_first_stripe_keeps_the_bound() {
    // The thread that counted first exits after many rejections; later
    // threads (one of which may take over its stripe index and so the
    // breaker's first stripe, with its count) still leave Open in time.
    let clock = Arc::new(DeafClock::default());
    let breaker = Arc::new(deaf_breaker(&clock));
    {
        let breaker = Arc::clone(&breaker);
        std::thread::spawn(move || {
            trip(&breaker);
            reject_before_deadline(&breaker, 1023);
        })
        .join()
        .unwrap();
    }
    for round in 0..6usize {
        let b = Arc::clone(&breaker);
        let c = Arc::clone(&clock);
        let n = std::thread::spawn(move || {
            if round > 0 {
                trip(&b);
            }
            reject_before_deadline(&b, round * 300);
            c.advance(OPEN_FOR * 2);
            rejections_until_admitted(&b, round % 2 == 0)
        })
        .join()
        .unwrap();
        assert!(n <= BOUND, "round {round}: {n}");
    }
}
