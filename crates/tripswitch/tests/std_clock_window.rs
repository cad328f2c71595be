//! A breaker on `std`'s clock keeps real time inside a tokio runtime whose
//! time is paused: its time window follows the real clock, not tokio's, on
//! the window's short path (the thread's last slice) as on its long way.

use std::time::Duration;

use tripswitch::CircuitBreaker;
use tripswitch::clock::StdClock;
use tripswitch::policy::{FailureRate, Window};

#[tokio::test(start_paused = true)]
async fn a_std_clock_window_ignores_tokio_paused_time() {
    let breaker = CircuitBreaker::standard()
        .clock(StdClock::new())
        .failure_rate(
            FailureRate::new(0.9, Window::last_in_buckets(Duration::from_secs(60), 10))
                .min_calls(1),
        )
        .build();
    for _ in 0..3 {
        breaker.try_acquire().unwrap().success();
    }
    // An hour of tokio's time: nothing for `std`'s clock.
    tokio::time::advance(Duration::from_secs(3_600)).await;
    for _ in 0..4 {
        breaker.try_acquire().unwrap().success();
    }
    let m = breaker.metrics();
    assert_eq!(m.calls_in_window, Some(7), "{m:?}");
    breaker.try_acquire().unwrap().failure(&"down");
    let m = breaker.metrics();
    assert_eq!(m.calls_in_window, Some(8), "{m:?}");
    assert_eq!(m.failure_rate, Some(1.0 / 8.0), "{m:?}");
}
