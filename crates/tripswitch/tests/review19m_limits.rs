//! Review 19m: `max_wait`, `max_waiters`, `max_freeze` and the slow-call
//! threshold are now 8-byte `OptionalU64`s (u64::MAX nanoseconds is "none",
//! values saturate one below it). These attacks drive each setting at 0,
//! at its largest value and around the saturation point, on a `FakeClock`
//! (which can reach the end of its time, u64::MAX nanoseconds).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tripswitch::clock::FakeClock;
use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, HalfOpen, RejectReason, State};

fn open_waiting_breaker(clock: &FakeClock) -> tripswitch::Builder {
    CircuitBreaker::standard()
        .clock(clock.clone())
        .wait_when_open()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .half_open(HalfOpen::release_all())
}

#[test]
fn max_wait_zero_times_out_at_once() {
    let clock = FakeClock::new();
    let breaker = open_waiting_breaker(&clock)
        .max_wait(Duration::ZERO)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let result = breaker.acquire().now_or_never().expect("decided at once");
    assert_eq!(result.unwrap_err().reason(), RejectReason::WaitTimedOut);
    assert_eq!(breaker.metrics().waiting, 0);
    // wait_unfrozen has no limit: still waits.
    assert!(breaker.wait_unfrozen().now_or_never().is_none());
}

#[test]
fn max_wait_duration_max_never_gives_up_before_the_period_ends() {
    let clock = FakeClock::new();
    let breaker = open_waiting_breaker(&clock).max_wait(Duration::MAX).build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let mut waiter = Box::pin(breaker.acquire());
    assert!((&mut waiter).now_or_never().is_none());
    clock.advance(Duration::from_millis(9_999));
    assert!((&mut waiter).now_or_never().is_none());
    clock.advance(Duration::from_millis(1));
    let permit = waiter.now_or_never().expect("released").expect("admitted");
    permit.success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn max_wait_duration_max_on_a_forced_open_breaker_waits_for_years() {
    let clock = FakeClock::new();
    let breaker = open_waiting_breaker(&clock).max_wait(Duration::MAX).build();
    breaker.force_open();
    let mut waiter = Box::pin(breaker.acquire());
    assert!((&mut waiter).now_or_never().is_none());
    clock.advance(Duration::from_secs(500 * 365 * 24 * 3600));
    assert!(
        (&mut waiter).now_or_never().is_none(),
        "gave up after 500 years"
    );
    breaker.resume();
    let permit = waiter.now_or_never().expect("released").expect("admitted");
    permit.success();
}

#[test]
fn max_wait_just_under_the_saturation_point_is_honoured() {
    // A max_wait of exactly u64::MAX - 2 ns is representable and distinct
    // from "none": the call must give up once that much time has passed.
    let clock = FakeClock::new();
    let breaker = open_waiting_breaker(&clock)
        .max_wait(Duration::from_nanos(u64::MAX - 2))
        .build();
    breaker.force_open();
    let mut waiter = Box::pin(breaker.acquire());
    assert!((&mut waiter).now_or_never().is_none());
    clock.advance(Duration::from_nanos(u64::MAX - 3));
    assert!((&mut waiter).now_or_never().is_none());
    clock.advance(Duration::from_nanos(1));
    let result = waiter.now_or_never().expect("gave up");
    assert_eq!(result.unwrap_err().reason(), RejectReason::WaitTimedOut);
}

#[test]
fn max_waiters_zero_refuses_every_call_that_would_wait_but_not_observers() {
    let clock = FakeClock::new();
    let breaker = open_waiting_breaker(&clock).max_waiters(0).build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let result = breaker.acquire().now_or_never().expect("decided at once");
    assert_eq!(result.unwrap_err().reason(), RejectReason::TooManyWaiters);
    let mut observer = Box::pin(breaker.wait_unfrozen());
    assert!((&mut observer).now_or_never().is_none());
    assert_eq!(breaker.metrics().waiting, 1);
    clock.advance(Duration::from_secs(10));
    assert!(observer.now_or_never().is_some());
    assert_eq!(breaker.metrics().waiting, 0);
}

#[test]
fn max_waiters_usize_max_is_no_limit() {
    let clock = FakeClock::new();
    let breaker = open_waiting_breaker(&clock).max_waiters(usize::MAX).build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let mut waiters: Vec<_> = (0..500).map(|_| Box::pin(breaker.acquire())).collect();
    for waiter in &mut waiters {
        assert!(waiter.as_mut().now_or_never().is_none());
    }
    assert_eq!(breaker.metrics().waiting, 500);
    clock.advance(Duration::from_secs(10));
    for waiter in waiters {
        waiter
            .now_or_never()
            .expect("released")
            .expect("admitted")
            .success();
    }
    assert_eq!(breaker.metrics().waiting, 0);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn max_waiters_one_counts_exactly() {
    let clock = FakeClock::new();
    let breaker = open_waiting_breaker(&clock).max_waiters(1).build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let mut first = Box::pin(breaker.acquire());
    assert!((&mut first).now_or_never().is_none());
    let second = breaker.acquire().now_or_never().expect("decided");
    assert_eq!(second.unwrap_err().reason(), RejectReason::TooManyWaiters);
    drop(first);
    let mut third = Box::pin(breaker.acquire());
    assert!(
        (&mut third).now_or_never().is_none(),
        "a freed place is reused"
    );
}

/// The slow events a breaker raised: each one's elapsed time and threshold.
type SlowSeen = Arc<Mutex<Vec<(Duration, Duration)>>>;

fn slow_events(threshold: Duration) -> (CircuitBreaker, FakeClock, SlowSeen) {
    let clock = FakeClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1000)
        .slow_call_threshold(threshold)
        .on_event(move |event| {
            if let EventKind::Slow { elapsed, threshold } = event.kind() {
                seen.lock().unwrap().push((*elapsed, *threshold));
            }
        })
        .build();
    (breaker, clock, events)
}

#[test]
fn slow_call_threshold_zero_marks_every_call_that_takes_any_time() {
    let (breaker, clock, events) = slow_events(Duration::ZERO);
    breaker.try_acquire().unwrap().success(); // took no time: not slower than 0
    let permit = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_nanos(1));
    permit.success();
    assert_eq!(breaker.metrics().totals.slow, 1);
    assert_eq!(
        *events.lock().unwrap(),
        vec![(Duration::from_nanos(1), Duration::ZERO)]
    );
}

#[test]
fn slow_call_threshold_just_under_the_saturation_point_is_exact() {
    let threshold = Duration::from_nanos(u64::MAX - 2);
    let (breaker, clock, events) = slow_events(threshold);
    let permit = breaker.try_acquire().unwrap();
    clock.advance(threshold);
    permit.success();
    assert_eq!(
        breaker.metrics().totals.slow,
        0,
        "not slower than the threshold"
    );
    let permit = breaker.try_acquire().unwrap(); // starts at u64::MAX - 2
    clock.advance(Duration::MAX);
    permit.success(); // took 2 ns
    assert_eq!(breaker.metrics().totals.slow, 0);
    assert!(events.lock().unwrap().is_empty());
}

// Failed before the fix: `slow_call_threshold(Duration::MAX)` is stored as u64::MAX - 1 ns
// (core/settings.rs, `OptionalU64::some` saturates one below "none"), while a
// run on a FakeClock can last u64::MAX ns (the clock saturates at u64::MAX,
// clock/fake.rs). Such a run is then counted slow, and its Slow event reports
// a threshold of u64::MAX - 1 ns instead of the configured Duration::MAX.
// Before 16e4f48 the threshold was an `Option<Duration>` and no run was ever
// "slower than Duration::MAX". The `OptionalU64` doc claims no setting tells
// the saturated value from "longer"; this one does.
#[test]
fn slow_call_threshold_duration_max_marks_no_call_slow() {
    let (breaker, clock, events) = slow_events(Duration::MAX);
    let permit = breaker.try_acquire().unwrap(); // started at 0
    clock.advance(Duration::MAX); // the clock's end: u64::MAX ns
    permit.success(); // took u64::MAX ns < Duration::MAX
    assert_eq!(
        *events.lock().unwrap(),
        vec![],
        "no run is slower than Duration::MAX"
    );
    assert_eq!(breaker.metrics().totals.slow, 0);
}

#[test]
fn max_freeze_zero_ends_an_async_freeze_at_once() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .freeze_with(futures::future::pending::<()>)
        .max_freeze(Duration::ZERO)
        .retry_after_freeze(false)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    assert!(!breaker.is_frozen());
    let permit = breaker
        .acquire()
        .now_or_never()
        .expect("not frozen")
        .unwrap();
    permit.success();
}

#[test]
fn max_freeze_duration_max_keeps_an_async_freeze_until_it_ends() {
    let clock = FakeClock::new();
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .freeze_with(move || {
            let rx = rx.lock().unwrap().take();
            async move {
                if let Some(rx) = rx {
                    let _ = rx.await;
                }
            }
        })
        .max_freeze(Duration::MAX)
        .retry_after_freeze(false)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    assert!(breaker.is_frozen());
    clock.advance(Duration::from_secs(500 * 365 * 24 * 3600));
    assert!(breaker.is_frozen(), "bounded by ~584 years, not 500");
    assert_eq!(breaker.metrics().retry_after, None);
    tx.send(()).unwrap();
    assert!(!breaker.is_frozen());
}

#[test]
fn open_for_duration_max_ends_only_at_the_clocks_end() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::MAX)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let rejected = breaker.try_acquire().unwrap_err();
    // A rejection anchors its deadline in an i64 (core's `ClockAnchor`), so
    // its retry_after saturates at ~292 years, not at the period's ~584.
    assert!(rejected.retry_after().unwrap() > Duration::from_secs(290 * 365 * 24 * 3600));
    clock.advance(Duration::from_secs(500 * 365 * 24 * 3600));
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::MAX);
    // At the end of time every period is over: no panic, at most 8
    // transitions per look, and the breaker answers.
    let _ = breaker.state();
    let _ = breaker.try_acquire().map(|p| p.success());
    let _ = breaker.metrics();
}
