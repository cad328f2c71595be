//! Review 17: the stuck-probe guard (rule 4) on an idle breaker. The bound
//! is there so that "a probe that never returns cannot hold the breaker
//! half-open" (DEFAULT_MAX_HALF_OPEN). With no probe ever let through there
//! is nothing stuck, yet the half-open state times out and reopens, again
//! and again: a breaker whose state is polled (a metrics exporter reading
//! `state()` / `metrics()`) is open most of the time while idle, and a call
//! arriving then is rejected where gobreaker (whose preset this is) would
//! have let it through as the probe.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::{EventKind, TransitionReason};
use tripswitch::{Builder, CircuitBreaker, Preset, State};

#[test]
fn idle_polled_gobreaker_preset_rejects_first_call_after_trip() {
    let clock = FakeClock::new();
    let timeouts = Arc::new(Mutex::new(0));
    let t = timeouts.clone();
    let b = Builder::from_preset(Preset::Gobreaker)
        .clock(clock.clone())
        .consecutive_failures(1)
        .on_event(move |e| {
            if let EventKind::Transition {
                reason: TransitionReason::HalfOpenTimedOut,
                ..
            } = e.kind()
            {
                *t.lock().unwrap() += 1;
            }
        })
        .build();
    b.try_acquire().unwrap().failure(&"down");
    // A poller reads the state every 10 s; no call for 645 s.
    for _ in 0..64 {
        clock.advance(Duration::from_secs(10));
        let _ = b.metrics();
    }
    clock.advance(Duration::from_secs(5)); // t = 645
    let first_call = b.try_acquire();
    assert!(
        first_call.is_ok(),
        "the first call after {:?} of idleness is rejected ({:?}); half-open timed out {} times with no probe ever let through",
        clock_now(&clock),
        first_call.err().map(|r| (r.reason(), r.retry_after())),
        timeouts.lock().unwrap()
    );
    assert_eq!(*timeouts.lock().unwrap(), 0, "no probe was ever stuck");
}

/// With eager transitions (no poller needed): an idle breaker flaps
/// HalfOpen -> Open (HalfOpenTimedOut) every 35 s forever.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn idle_eager_breaker_does_not_flap() {
    let timeouts = Arc::new(Mutex::new(0));
    let t = timeouts.clone();
    let b = CircuitBreaker::standard()
        .consecutive_failures(1)
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition {
                reason: TransitionReason::HalfOpenTimedOut,
                ..
            } = e.kind()
            {
                *t.lock().unwrap() += 1;
            }
        })
        .build();
    b.try_acquire().unwrap().failure(&"down");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        *timeouts.lock().unwrap(),
        0,
        "an idle breaker (no probe ever let through) reopened by the stuck-probe guard; state now {:?}",
        b.state()
    );
    assert_eq!(b.state(), State::HalfOpen);
}

fn clock_now(clock: &FakeClock) -> Duration {
    use tripswitch::clock::Clock;
    clock.now()
}
