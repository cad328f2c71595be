//! Review 17: eager transitions (alarms), with backoff, re-entrant and
//! panicking listeners, dropped breakers, fake and paused clocks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::{Event, EventKind, TransitionReason};
use tripswitch::{Backoff, CircuitBreaker, HalfOpen, State};

type Log = Arc<
    Mutex<
        Vec<(
            State,
            State,
            TransitionReason,
            Duration,
            tokio::time::Instant,
        )>,
    >,
>;

fn transitions() -> (Log, impl Fn(&Event<'_>) + Send + Sync + 'static) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    (log, move |e: &Event<'_>| {
        if let EventKind::Transition { from, to, reason } = e.kind() {
            l.lock()
                .unwrap()
                .push((*from, *to, *reason, e.at(), tokio::time::Instant::now()));
        }
    })
}

/// The move to half-open fires on time with no call and no read (paused
/// tokio time), stamped at the period's end.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_fires_on_time_tokio() {
    let (log, listener) = transitions();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .eager_transitions()
        .on_event(listener)
        .build();
    let start = tokio::time::Instant::now();
    breaker.try_acquire().unwrap().failure(&"down");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "{log:?}");
    let (from, to, reason, at, wall) = log[1];
    assert_eq!(
        (from, to, reason),
        (
            State::Open,
            State::HalfOpen,
            TransitionReason::OpenPeriodEnded
        )
    );
    assert_eq!(at - log[0].3, Duration::from_secs(5));
    assert_eq!(
        wall - start,
        Duration::from_secs(5),
        "fired when the period ended"
    );
}

/// Eager transitions with a backoff: each open period's end fires on time,
/// the half-open timeout too, and the periods grow.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_with_backoff_and_half_open_timeout() {
    let (log, listener) = transitions();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .backoff(Backoff::exponential(
            Duration::from_secs(1),
            Duration::from_secs(60),
        ))
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(3)))
        .eager_transitions()
        .on_event(listener)
        .build();
    let start = tokio::time::Instant::now();
    breaker.try_acquire().unwrap().failure(&"down");
    // Open 1 s; half-open (a hung probe); times out after 3 s -> open 2 s;
    // half-open; times out after 3 s -> open 4 s; half-open.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _hung = breaker.try_acquire().expect("probe");
    tokio::time::sleep(Duration::from_secs(3)).await; // t=4: timed out
    tokio::time::sleep(Duration::from_secs(2)).await; // t=6: half-open
    let _hung2 = breaker.try_acquire().expect("probe 2");
    tokio::time::sleep(Duration::from_secs(3)).await; // t=9: timed out
    tokio::time::sleep(Duration::from_secs(4)).await; // t=13: half-open
    let log = log.lock().unwrap().clone();
    let got: Vec<_> = log
        .iter()
        .map(|(f, t, _, _, wall)| (*f, *t, (*wall - start).as_secs()))
        .collect();
    assert_eq!(
        got,
        vec![
            (State::Closed, State::Open, 0),
            (State::Open, State::HalfOpen, 1),
            (State::HalfOpen, State::Open, 4),
            (State::Open, State::HalfOpen, 6),
            (State::HalfOpen, State::Open, 9),
            (State::Open, State::HalfOpen, 13),
        ]
    );
    // Stamps agree with the wall.
    for (_, _, _, at, wall) in &log {
        assert_eq!(*at - log[0].3, *wall - log[0].4);
    }
}

/// A listener that, on the eager move to half-open (run inside the timer),
/// runs a failing probe: the breaker reopens from inside the alarm and the
/// next alarm still fires. Over 30 s: half-open at 5, 10, 15, 20, 25, 30.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_listener_reenters_with_failing_probe() {
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let half_opens = Arc::new(AtomicUsize::new(0));
    let h = half_opens.clone();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition {
                to: State::HalfOpen,
                ..
            } = e.kind()
            {
                h.fetch_add(1, Ordering::SeqCst);
                let b = s.lock().unwrap().clone();
                if let Some(b) = b {
                    b.try_acquire().expect("a probe").failure(&"still down");
                }
            }
        })
        .build();
    *slot.lock().unwrap() = Some(breaker.clone());
    breaker.try_acquire().unwrap().failure(&"down");
    tokio::time::sleep(Duration::from_millis(30_500)).await;
    assert_eq!(half_opens.load(Ordering::SeqCst), 6);
    assert_eq!(breaker.state(), State::Open);
    *slot.lock().unwrap() = None;
}

/// A listener that calls reset() on the eager move to half-open: the breaker
/// is closed, and no alarm of the old generations moves it later.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_listener_resets() {
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let (log, listener) = transitions();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(2)))
        .eager_transitions()
        .on_event(listener)
        .on_event(move |e| {
            if let EventKind::Transition {
                to: State::HalfOpen,
                ..
            } = e.kind()
            {
                let b = s.lock().unwrap().clone();
                if let Some(b) = b {
                    b.reset();
                }
            }
        })
        .build();
    *slot.lock().unwrap() = Some(breaker.clone());
    breaker.try_acquire().unwrap().failure(&"down");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(breaker.state(), State::Closed);
    let log = log.lock().unwrap().clone();
    let got: Vec<_> = log.iter().map(|(f, t, _, _, _)| (*f, *t)).collect();
    // Reset from a listener is raised inside the breaker's own callback and
    // not delivered again to the same breaker's listeners (documented).
    assert_eq!(
        got,
        vec![(State::Closed, State::Open), (State::Open, State::HalfOpen)]
    );
    assert!(breaker.try_acquire().is_ok());
    *slot.lock().unwrap() = None;
}

/// A listener that panics on every transition: alarms keep moving the
/// breaker (half-open, then timed out, then half-open again).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_listener_panics() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(5)))
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition { .. } = e.kind() {
                c.fetch_add(1, Ordering::SeqCst);
                panic!("listener");
            }
        })
        .build();
    breaker.try_acquire().unwrap().failure(&"down");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _hung = breaker.try_acquire().unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    // closed->open, open->half, half->open (5 s), open->half (5 s)
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert_eq!(breaker.state(), State::HalfOpen);
}

/// A dropped breaker with an armed alarm: nothing fires for it, no panic,
/// and what it holds (its listeners) is freed, at the latest when the alarm
/// would have rung.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_dropped_breaker_releases_everything() {
    let held = Arc::new(());
    let h = held.clone();
    let fired = Arc::new(AtomicUsize::new(0));
    let f = fired.clone();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .eager_transitions()
        .on_event(move |e| {
            let _ = &h;
            if let EventKind::Transition {
                to: State::HalfOpen,
                ..
            } = e.kind()
            {
                f.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build();
    breaker.try_acquire().unwrap().failure(&"down");
    drop(breaker);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(fired.load(Ordering::SeqCst), 0);
    assert_eq!(
        Arc::strong_count(&held),
        1,
        "the dropped breaker's listener is freed"
    );
}

/// Same with the fake clock (no runtime): the alarm is a fake-clock sleep.
#[test]
fn eager_fake_clock_fires_on_advance_and_reenters() {
    let clock = FakeClock::new();
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let st = stamps.clone();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition { to, .. } = e.kind() {
                st.lock().unwrap().push((*to, e.at()));
                if *to == State::HalfOpen {
                    let b = s.lock().unwrap().clone();
                    if let Some(b) = b {
                        b.try_acquire().expect("probe").failure(&"still down");
                    }
                }
            }
        })
        .build();
    *slot.lock().unwrap() = Some(breaker.clone());
    breaker.try_acquire().unwrap().failure(&"down");
    for _ in 0..3 {
        clock.advance(Duration::from_secs(5));
    }
    let stamps = stamps.lock().unwrap().clone();
    let secs: Vec<_> = stamps.iter().map(|(s, at)| (*s, at.as_secs())).collect();
    // The re-entrant failure's Open transition is not delivered (same
    // breaker's callback); the HalfOpen ones are, each on time.
    let half: Vec<_> = secs.iter().filter(|(s, _)| *s == State::HalfOpen).collect();
    assert_eq!(half.len(), 3, "{secs:?}");
    assert_eq!(
        half.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
        vec![5, 10, 15]
    );
    *slot.lock().unwrap() = None;
}

/// A fake clock advanced in one jump over several periods: the eager
/// transition is stamped at the period's end, not at the jump's end.
#[test]
fn eager_fake_clock_big_jump_stamps_deadline() {
    let clock = FakeClock::new();
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let st = stamps.clone();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition { to, reason, .. } = e.kind() {
                st.lock().unwrap().push((*to, *reason, e.at()));
            }
        })
        .build();
    breaker.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(100));
    let stamps = stamps.lock().unwrap().clone();
    assert_eq!(
        stamps[1],
        (
            State::HalfOpen,
            TransitionReason::OpenPeriodEnded,
            Duration::from_secs(5)
        )
    );
    // Stamps never go backwards.
    for w in stamps.windows(2) {
        assert!(w[0].2 <= w[1].2, "{stamps:?}");
    }
    drop(breaker);
}

/// Eager transitions on the std clock (tripswitch's timer thread), no
/// runtime at all: the move to half-open happens while nobody looks.
#[test]
fn eager_std_clock_timer_thread() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let breaker = CircuitBreaker::standard()
        .clock(tripswitch::clock::StdClock::new())
        .consecutive_failures(1)
        .open_for(Duration::from_millis(50))
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition {
                to: State::HalfOpen,
                ..
            } = e.kind()
            {
                let _ = tx.lock().unwrap().send(std::thread::current().id());
            }
        })
        .build();
    breaker.try_acquire().unwrap().failure(&"down");
    let id = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the alarm moved the breaker with nobody looking");
    assert_ne!(id, std::thread::current().id());
}

/// Eager + wait mode + a budget: a waiting call is let through as a probe
/// when the alarm fires, and calls beyond the budget wait for the decision.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_wait_mode_with_budget() {
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .wait_when_open()
        .half_open(HalfOpen::probes(2).budget(2))
        .eager_transitions()
        .build();
    breaker.try_acquire().unwrap().failure(&"down");
    let ran = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let b = breaker.clone();
        let r = ran.clone();
        tasks.push(tokio::spawn(async move {
            b.execute(|| async {
                r.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, &str>(())
            })
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    assert_eq!(ran.load(Ordering::SeqCst), 2, "two probes, the rest wait");
    for t in tasks {
        t.await.unwrap().expect("every call eventually runs");
    }
    assert_eq!(ran.load(Ordering::SeqCst), 5);
    assert_eq!(breaker.state(), State::Closed);
}

/// Eager transitions armed inside a runtime that is then shut down: no
/// panic, and the breaker still moves on when read later.
#[test]
fn eager_runtime_gone() {
    let clock_origin = std::time::Instant::now();
    let breaker = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let breaker = CircuitBreaker::standard()
                .consecutive_failures(1)
                .open_for(Duration::from_millis(50))
                .eager_transitions()
                .build();
            breaker.try_acquire().unwrap().failure(&"down");
            breaker
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(clock_origin.elapsed() >= Duration::from_millis(100));
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

/// Eager transitions armed inside a short-lived runtime (block_on per
/// request, a common sync-app pattern) that is gone when the period ends:
/// the doc promises the transition and its event "when they end, even if no
/// call or read comes to look".
#[test]
fn eager_event_fires_after_arming_runtime_is_gone() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_millis(100))
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition {
                to: State::HalfOpen,
                ..
            } = e.kind()
            {
                let _ = tx.lock().unwrap().send(());
            }
        })
        .build();
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            breaker.try_acquire().unwrap().failure(&"down");
        });
    }
    let fired = rx.recv_timeout(Duration::from_secs(3));
    assert!(
        fired.is_ok(),
        "no HalfOpen event 3 s after a 100 ms open period (nobody read the breaker)"
    );
}

/// Same with a runtime that stays alive but is idle (nobody drives it).
#[test]
fn eager_event_fires_when_arming_runtime_is_idle() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_millis(100))
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition {
                to: State::HalfOpen,
                ..
            } = e.kind()
            {
                let _ = tx.lock().unwrap().send(());
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
    let fired = rx.recv_timeout(Duration::from_secs(3));
    drop(rt);
    assert!(
        fired.is_ok(),
        "no HalfOpen event 3 s after a 100 ms open period (nobody read the breaker)"
    );
}

/// A zero-length open period with eager transitions: the move to half-open
/// is due at once; its event must come without anyone looking.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_zero_open_period() {
    let (log, listener) = transitions();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::ZERO)
        .eager_transitions()
        .on_event(listener)
        .try_build()
        .expect("a zero open period is accepted");
    breaker.try_acquire().unwrap().failure(&"down");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tos: Vec<_> = log.lock().unwrap().iter().map(|e| e.1).collect();
    assert_eq!(
        tos,
        vec![State::Open, State::HalfOpen],
        "nobody read the breaker"
    );
    drop(breaker);
}

/// A listener that drops the last handle of its breaker from inside the
/// eager transition (run in tokio's timer): nothing breaks, the runtime
/// keeps working.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_listener_drops_last_handle() {
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition {
                to: State::HalfOpen,
                ..
            } = e.kind()
            {
                let last = s.lock().unwrap().take();
                drop(last);
                d.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build();
    breaker.try_acquire().unwrap().failure(&"down");
    *slot.lock().unwrap() = Some(breaker);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(60)).await;
}

/// A listener that forces the breaker open on the eager move to half-open:
/// the half-open bound's alarm (armed for that state) must not move the
/// forced-open breaker later.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_listener_force_opens_on_half_open() {
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let (log, listener) = transitions();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(2)))
        .eager_transitions()
        .on_event(listener)
        .on_event(move |e| {
            if let EventKind::Transition {
                to: State::HalfOpen,
                ..
            } = e.kind()
            {
                let b = s.lock().unwrap().clone();
                if let Some(b) = b {
                    b.force_open();
                }
            }
        })
        .build();
    *slot.lock().unwrap() = Some(breaker.clone());
    breaker.try_acquire().unwrap().failure(&"down");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(breaker.state(), State::ForcedOpen);
    let tos: Vec<_> = log.lock().unwrap().iter().map(|e| e.1).collect();
    assert_eq!(tos, vec![State::Open, State::HalfOpen]);
    breaker.resume();
    assert_eq!(breaker.state(), State::Closed);
    *slot.lock().unwrap() = None;
}

/// A listener that resets the breaker when the half-open state times out
/// (eagerly): closed, and the reopened period's alarm does not move it.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn eager_listener_resets_on_half_open_timeout() {
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(2)))
        .eager_transitions()
        .on_event(move |e| {
            if let EventKind::Transition {
                reason: TransitionReason::HalfOpenTimedOut,
                ..
            } = e.kind()
            {
                let b = s.lock().unwrap().clone();
                if let Some(b) = b {
                    b.reset();
                }
            }
        })
        .build();
    *slot.lock().unwrap() = Some(breaker.clone());
    breaker.try_acquire().unwrap().failure(&"down");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let hung = breaker.try_acquire().unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(breaker.state(), State::Closed);
    hung.failure(&"late");
    assert_eq!(
        breaker.state(),
        State::Closed,
        "a late probe verdict does not trip"
    );
    *slot.lock().unwrap() = None;
}
