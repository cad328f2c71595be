//! Review 19m: attacks on the repacked clock (`ClockReader` only for the
//! built-in clocks, sleeps made by `ClockReader::sleep`, custom and TSC
//! clocks carried by rejections through `ClockReader::as_custom`).
//!
//! Public API only. Timing: paused tokio time or a hand-moved clock; where a
//! real clock must run, periods are tens of milliseconds and every wait is
//! bounded by a generous timeout, so that a busy machine only makes a test
//! slower, never wrong.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tripswitch::clock::{Clock, FakeClock, Sleep, TokioClock};
use tripswitch::{CircuitBreaker, HalfOpen, RejectReason, State};

/// Runs `f` on a thread and fails the test if it has not finished within
/// `limit` (so that a hang shows up as a failure, not as a stuck run).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("the breaker did not let the call through in time (hang)")
}

/// A real-time clock whose `sleep` panics every time.
#[derive(Debug)]
struct PanickySleep {
    origin: Instant,
}

impl Clock for PanickySleep {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&self, _: Duration) -> Sleep {
        panic!("review19m: this clock cannot sleep");
    }
}

/// A real-time clock whose sleeps panic when polled.
#[derive(Debug)]
struct PanickyPoll {
    origin: Instant,
}

impl Clock for PanickyPoll {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&self, _: Duration) -> Sleep {
        Box::pin(async { panic!("review19m: this sleep panics when polled") })
    }
}

#[test]
fn a_custom_clock_whose_sleep_panics_still_releases_a_waiting_call() {
    let breaker = CircuitBreaker::builder()
        .clock(PanickySleep {
            origin: Instant::now(),
        })
        .freeze_for(Duration::from_millis(40))
        .retry_after_freeze(false)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    assert!(breaker.is_frozen());
    let b = breaker.clone();
    let admitted = within(Duration::from_secs(20), move || {
        futures::executor::block_on(async { b.acquire().await.map(|p| p.success()).is_ok() })
    });
    assert!(admitted);
    assert!(!breaker.is_frozen());
}

#[test]
fn a_custom_clock_whose_sleep_panics_when_polled_still_releases_a_waiting_call() {
    let breaker = CircuitBreaker::builder()
        .clock(PanickyPoll {
            origin: Instant::now(),
        })
        .freeze_for(Duration::from_millis(40))
        .retry_after_freeze(false)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let b = breaker.clone();
    let admitted = within(Duration::from_secs(20), move || {
        futures::executor::block_on(async { b.acquire().await.map(|p| p.success()).is_ok() })
    });
    assert!(admitted);
}

#[test]
fn a_fail_fast_breaker_on_a_clock_that_cannot_sleep_still_leaves_open() {
    let breaker = CircuitBreaker::standard()
        .clock(PanickySleep {
            origin: Instant::now(),
        })
        .consecutive_failures(1)
        // Long enough that a loaded machine (the clock's panic is printed,
        // with its backtrace) still sees the open state before it ends.
        .open_for(Duration::from_secs(1))
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    assert_eq!(breaker.state(), State::Open);
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.reason(), RejectReason::Open);
    assert!(rejected.retry_after().unwrap() <= Duration::from_secs(1));
    // Real time: wait until the period is over, however slow the machine.
    let start = Instant::now();
    while breaker.state() == State::Open {
        assert!(start.elapsed() < Duration::from_secs(20), "stuck open");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

/// A clock set by hand that may go backwards (which the trait forbids; the
/// breaker must still not panic or stick).
#[derive(Debug, Clone, Default)]
struct Settable(Arc<AtomicU64>);

impl Settable {
    fn set(&self, at: Duration) {
        self.0.store(at.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for Settable {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
    fn sleep(&self, _: Duration) -> Sleep {
        Box::pin(futures::future::pending())
    }
}

#[test]
fn a_clock_that_goes_backwards_neither_panics_nor_sticks() {
    let clock = Settable::default();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let breaker = CircuitBreaker::standard()
        .name("backwards")
        .clock(clock.clone())
        .consecutive_failures(1)
        .slow_call_threshold(Duration::from_millis(1))
        .open_for(Duration::from_secs(30))
        .on_event(move |event| {
            if let tripswitch::events::EventKind::Slow { elapsed, .. } = event.kind() {
                seen.lock().unwrap().push(*elapsed);
            }
        })
        .build();
    clock.set(Duration::from_secs(10));
    let permit = breaker.try_acquire().unwrap();
    clock.set(Duration::from_secs(5)); // backwards while the call runs
    permit.success();
    assert!(
        events.lock().unwrap().is_empty(),
        "a negative run is not slow"
    );
    assert_eq!(breaker.metrics().totals.slow, 0);

    clock.set(Duration::from_secs(10));
    breaker.try_acquire().unwrap().failure(&"boom");
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(30)));
    clock.set(Duration::ZERO); // backwards again
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.state(), State::Open);
    let _ = rejected.retry_after();
    let _ = format!("{rejected} {rejected:?} {:?}", breaker.metrics());
    clock.set(Duration::from_secs(40));
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

#[cfg(feature = "quanta")]
mod tsc {
    use super::*;
    use tripswitch::clock::TscClock;

    #[test]
    fn a_tsc_clock_rejection_carries_its_retry_after() {
        let breaker = CircuitBreaker::standard()
            .name("tsc")
            .clock(TscClock::new())
            .consecutive_failures(1)
            .open_for(Duration::from_secs(30))
            .build();
        breaker.try_acquire().unwrap().failure(&"boom");
        let rejected = breaker.try_acquire().unwrap_err();
        let first = rejected.retry_after().expect("a timed period has an end");
        assert!(first <= Duration::from_secs(30), "{first:?}");
        assert!(first > Duration::from_secs(20), "{first:?}");
        std::thread::sleep(Duration::from_millis(20));
        let later = rejected.retry_after().unwrap();
        assert!(
            later < first,
            "asking later gives less: {first:?} then {later:?}"
        );
        // A second rejection of the same period has the same deadline.
        let again = breaker.try_acquire().unwrap_err();
        assert_eq!(again, rejected);
        let metrics = breaker.metrics().retry_after.unwrap();
        let diff = metrics.abs_diff(again.retry_after().unwrap());
        assert!(diff < Duration::from_secs(1), "{diff:?}");
        let text = rejected.to_string();
        assert!(
            text.starts_with(
                "circuit breaker \"tsc\" rejected the call: it is open; calls are let through again in "
            ),
            "{text}"
        );
        assert_eq!(rejected.name(), Some("tsc"));
    }

    #[test]
    fn an_unnamed_tsc_clock_rejection_still_has_its_retry_after() {
        let breaker = CircuitBreaker::standard()
            .clock(TscClock::new())
            .consecutive_failures(1)
            .open_for(Duration::from_secs(30))
            .build();
        breaker.try_acquire().unwrap().failure(&"boom");
        let rejected = breaker.try_acquire().unwrap_err();
        assert_eq!(rejected.name(), None);
        let after = rejected.retry_after().unwrap();
        assert!(after > Duration::from_secs(20) && after <= Duration::from_secs(30));
    }

    #[test]
    fn a_tsc_clock_breaker_waits_outside_any_runtime() {
        let breaker = CircuitBreaker::builder()
            .clock(TscClock::new())
            .freeze_for(Duration::from_millis(30))
            .retry_after_freeze(false)
            .build();
        breaker.try_acquire().unwrap().failure(&"boom");
        let b = breaker.clone();
        let started = Instant::now();
        let admitted = within(Duration::from_secs(20), move || {
            futures::executor::block_on(async { b.acquire().await.map(|p| p.success()).is_ok() })
        });
        assert!(admitted);
        assert!(started.elapsed() >= Duration::from_millis(25));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tsc_clock_breaker_waits_on_a_tokio_runtime() {
        let breaker = CircuitBreaker::builder()
            .clock(TscClock::new())
            .freeze_for(Duration::from_millis(30))
            .retry_after_freeze(false)
            .build();
        breaker.try_acquire().unwrap().failure(&"boom");
        let permit = tokio::time::timeout(Duration::from_secs(20), breaker.acquire())
            .await
            .expect("released")
            .expect("admitted");
        permit.success();
    }
}

#[test]
fn the_default_clock_outside_any_runtime_waits_and_trips_without_panicking() {
    // Seed preset: the failing call waits out the freeze and runs again.
    let breaker = CircuitBreaker::builder()
        .name("no-runtime")
        .freeze_for(Duration::from_millis(30))
        .build();
    let b = breaker.clone();
    let (result, runs, took) = within(Duration::from_secs(20), move || {
        let runs = AtomicU64::new(0);
        let started = Instant::now();
        let result = futures::executor::block_on(b.execute(|| {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 0 {
                    Err("first run fails")
                } else {
                    Ok(run)
                }
            }
        }));
        (result, runs.load(Ordering::SeqCst), started.elapsed())
    });
    assert_eq!(result.unwrap(), 1);
    assert_eq!(runs, 2);
    assert!(took >= Duration::from_millis(25), "{took:?}");
    assert!(!breaker.is_frozen());
}

#[test]
fn the_default_clock_outside_any_runtime_fails_fast_and_recovers() {
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        // Long enough that a loaded machine still finds it open right after.
        .open_for(Duration::from_secs(1))
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let rejected = breaker.try_acquire().unwrap_err();
    let after = rejected.retry_after().unwrap();
    assert!(
        after <= Duration::from_secs(1) && after > Duration::ZERO,
        "{after:?}"
    );
    let start = Instant::now();
    while breaker.state() == State::Open {
        assert!(start.elapsed() < Duration::from_secs(20), "stuck open");
        std::thread::sleep(Duration::from_millis(5));
    }
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn paused_time_rejections_read_exact_retry_after() {
    let breaker = CircuitBreaker::standard()
        .name("paused")
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(10)));
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(6)));
    assert_eq!(
        breaker.metrics().retry_after,
        Some(Duration::from_secs(6)),
        "metrics agree with the rejection"
    );
    assert_eq!(
        rejected.to_string(),
        "circuit breaker \"paused\" rejected the call: it is open; calls are let through again in 6s"
    );
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(rejected.retry_after(), Some(Duration::ZERO));
    assert_eq!(breaker.state(), State::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn an_explicit_tokio_clock_and_a_wrapped_one_agree_with_the_default() {
    let default = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .build();
    let explicit = CircuitBreaker::standard()
        .clock(TokioClock::new())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .build();
    // An `Arc<TokioClock>` is not recognised as built in: it goes through
    // the trait object (a custom clock), and must behave the same.
    let wrapped = CircuitBreaker::standard()
        .clock(Arc::new(TokioClock::new()))
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .build();
    for breaker in [&default, &explicit, &wrapped] {
        breaker.try_acquire().unwrap().failure(&"boom");
    }
    tokio::time::advance(Duration::from_secs(3)).await;
    for breaker in [&default, &explicit, &wrapped] {
        let rejected = breaker.try_acquire().unwrap_err();
        assert_eq!(rejected.retry_after(), Some(Duration::from_secs(7)));
    }
    tokio::time::advance(Duration::from_secs(7)).await;
    for breaker in [&default, &explicit, &wrapped] {
        assert_eq!(breaker.state(), State::HalfOpen);
    }
}

#[tokio::test(start_paused = true)]
async fn paused_time_releases_a_waiting_call_at_the_deadline_not_before() {
    let breaker = CircuitBreaker::standard()
        .wait_when_open()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let start = tokio::time::Instant::now();
    let b = breaker.clone();
    let waiter = tokio::spawn(async move {
        let permit = b.acquire_owned().await.expect("admitted");
        let waited = start.elapsed();
        permit.success();
        waited
    });
    tokio::time::sleep(Duration::from_millis(9_900)).await;
    assert!(!waiter.is_finished());
    assert_eq!(breaker.metrics().waiting, 1);
    let waited = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("released")
        .unwrap();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_millis(10_100),
        "{waited:?}"
    );
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_breaker_tripped_on_one_paused_runtime_releases_waiters_on_another() {
    let breaker = CircuitBreaker::builder()
        .freeze_for(Duration::from_secs(10))
        .retry_after_freeze(false)
        .build();
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    first.block_on(async {
        breaker.try_acquire().unwrap().failure(&"boom");
        tokio::time::advance(Duration::from_secs(2)).await;
    });
    drop(first);
    assert!(
        breaker.is_frozen(),
        "outside the runtimes, real time has not reached the deadline"
    );
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let b = breaker.clone();
    let admitted = within(Duration::from_secs(30), move || {
        second.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), b.acquire())
                .await
                .map(|r| r.map(|p| p.success()).is_ok())
        })
    });
    assert_eq!(admitted, Ok(true));
}

#[test]
fn a_fake_clock_breaker_used_from_two_runtimes_and_none() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .freeze_for(Duration::from_secs(5))
        .retry_after_freeze(false)
        .half_open(HalfOpen::release_all())
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let mut waiter = Box::pin(breaker.acquire());
    assert!((&mut waiter).now_or_never().is_none());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(
            tokio::time::timeout(Duration::from_millis(1), &mut waiter)
                .await
                .is_err()
        );
    });
    drop(rt);
    clock.advance(Duration::from_secs(5));
    let permit = waiter.now_or_never().expect("released").expect("admitted");
    permit.success();
}

/// What [`transitions`] records: each transition's new state and stamp.
type Seen = Arc<Mutex<Vec<(State, Duration)>>>;

/// Transitions seen by a listener, with their stamps.
fn transitions() -> (
    Seen,
    impl Fn(&tripswitch::events::Event<'_>) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    (seen, move |event: &tripswitch::events::Event<'_>| {
        if let tripswitch::events::EventKind::Transition { to, .. } = event.kind() {
            s.lock().unwrap().push((*to, event.at()));
        }
    })
}

#[tokio::test(start_paused = true)]
async fn eager_transitions_on_the_default_clock_under_paused_time() {
    let (seen, listener) = transitions();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .eager_transitions()
        .on_event(listener)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let opened_at = seen.lock().unwrap()[0].1;
    tokio::time::sleep(Duration::from_secs(11)).await;
    // Nobody looked at the breaker: its alarm moved it.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].0, State::HalfOpen);
    assert_eq!(seen[1].1 - opened_at, Duration::from_secs(10));
}

#[test]
fn eager_transitions_on_a_fake_clock_need_no_look() {
    let clock = FakeClock::new();
    let (seen, listener) = transitions();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .eager_transitions()
        .on_event(listener)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    clock.advance(Duration::from_secs(10));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (State::Open, Duration::ZERO),
            (State::HalfOpen, Duration::from_secs(10))
        ]
    );
    drop(breaker);
}

#[test]
fn eager_transitions_on_the_default_clock_outside_any_runtime() {
    let (seen, listener) = transitions();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_millis(30))
        .eager_transitions()
        .on_event(listener)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let start = Instant::now();
    while seen.lock().unwrap().len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no eager transition"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(seen.lock().unwrap()[1].0, State::HalfOpen);
    drop(breaker);
}

#[cfg(feature = "quanta")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_transitions_on_a_tsc_clock() {
    let (seen, listener) = transitions();
    let breaker = CircuitBreaker::standard()
        .clock(tripswitch::clock::TscClock::new())
        .consecutive_failures(1)
        .open_for(Duration::from_millis(30))
        .eager_transitions()
        .on_event(listener)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let start = Instant::now();
    while seen.lock().unwrap().len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no eager transition"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen.lock().unwrap()[1].0, State::HalfOpen);
    drop(breaker);
}
