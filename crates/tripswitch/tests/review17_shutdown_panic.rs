//! Review 17: "No setting and no calling context (no runtime, a runtime
//! shutting down, a clock at its extremes) makes the library panic." A
//! panic caught inside the library still runs the panic hook, and aborts
//! the process in a `panic = "abort"` build.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, State};

/// Eager transitions: the runtime that armed the open period's alarm shuts
/// down after the period ended; its shutdown rings the alarm, the breaker
/// moves to half-open from inside the shutdown and arms the half-open
/// bound's alarm on tokio's timer, which panics ("A Tokio 1.x context was
/// found, but it is being shutdown"). No panic may be raised at all.
#[test]
fn runtime_shutdown_with_eager_alarm_raises_no_panic() {
    let panics = Arc::new(AtomicUsize::new(0));
    let p = panics.clone();
    let me = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == me {
            p.fetch_add(1, Ordering::SeqCst);
            eprintln!("panic raised on the test thread: {info}");
        }
    }));
    let half_open = Arc::new(Mutex::new(false));
    let h = half_open.clone();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_millis(50))
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition {
                to: State::HalfOpen,
                ..
            } = e.kind()
            {
                *h.lock().unwrap() = true;
            }
        })
        .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        breaker.try_acquire().unwrap().failure(&"down");
    });
    // The period's backup ring (tripswitch's timer thread) moves the idle
    // breaker on; wait for it (explicitly, however busy the machine), then
    // drop the runtime.
    let started = std::time::Instant::now();
    while !*half_open.lock().unwrap() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(rt);
    let _ = std::panic::take_hook();
    std::panic::set_hook(previous);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "a panic was raised (and caught) inside tripswitch while the runtime shut down"
    );
}

// Reproduction under `panic = "abort"` (a binary outside the workspace,
// `[profile.dev] panic = "abort"`, depending on this crate by path):
//
//     let breaker = CircuitBreaker::standard().consecutive_failures(1)
//         .open_for(Duration::from_millis(50)).eager_transitions().build();
//     let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//     rt.block_on(async { breaker.try_acquire().unwrap().failure(&"down"); });
//     std::thread::sleep(Duration::from_millis(200));
//     drop(rt); // never returns: the process aborts (exit 134)
//
// The panic: tokio's `TimerEntry::poll_elapsed` ("A Tokio 1.x context was
// found, but it is being shutdown"), from `Core::arm_alarm`
// (core/freeze.rs:129, inside its catch_unwind), from `Core::entered`
// (half-open bound's alarm), `end_open`, `refresh`, `PeriodDue::wake_by_ref`,
// called by tokio's `time::Driver::shutdown` ringing the open period's alarm.
