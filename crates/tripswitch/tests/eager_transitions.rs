//! Eager transitions (issue 17, rule 6): a timed period ends on time, with
//! its event, although no call or read comes to look; nothing is spawned.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::EventKind;
use tripswitch::{Builder, CircuitBreaker, HalfOpen, State};

type Seen = Arc<Mutex<Vec<(State, State, Duration)>>>;

fn listening(builder: Builder) -> (Builder, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let builder = builder.on_event(move |event| {
        if let EventKind::Transition { from, to, .. } = *event.kind() {
            sink.lock().unwrap().push((from, to, event.at()));
        }
    });
    (builder, seen)
}

fn transitions(seen: &Seen) -> Vec<(State, State, Duration)> {
    seen.lock().unwrap().clone()
}

/// Ported from Resilience4j's `CircuitBreakerAutoTransitionStateMachineTest`
/// (`testAutoTransition`): with automatic transitions, an open breaker is
/// half-open once its wait duration passed, and its listeners heard so,
/// without a call. Under tokio's paused time, on tokio's timer.
#[tokio::test(start_paused = true)]
async fn an_open_period_ends_on_time_without_a_call() {
    let (builder, seen) = listening(
        CircuitBreaker::standard()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5))
            .eager_transitions(),
    );
    let breaker = builder.build();
    let _ = breaker.execute(|| async { Err::<(), _>("down") }).await;
    let opened_at = transitions(&seen)[0].2;

    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(transitions(&seen).len(), 1, "still open at 4 s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen_now = transitions(&seen);
    assert_eq!(seen_now.len(), 2, "{seen_now:?}");
    assert_eq!(seen_now[1].0, State::Open);
    assert_eq!(seen_now[1].1, State::HalfOpen);
    assert_eq!(seen_now[1].2 - opened_at, Duration::from_secs(5));
    drop(breaker);
}

/// The control case: without `eager_transitions`, nobody looks and nothing
/// is heard (the transition is made, and stamped at 5 s, when a read comes).
#[tokio::test(start_paused = true)]
async fn without_eager_transitions_the_period_ends_when_somebody_looks() {
    let (builder, seen) = listening(
        CircuitBreaker::standard()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5)),
    );
    let breaker = builder.build();
    let _ = breaker.execute(|| async { Err::<(), _>("down") }).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(transitions(&seen).len(), 1);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(transitions(&seen).len(), 2);
}

/// On a fake clock, the period ends within `advance`, and a half-open state
/// that outlives its maximum opens again on time too (Resilience4j's
/// `circuitBreakerTransitionsToOpenAfterWaitDurationInHalfOpenState`).
#[test]
fn a_fake_clock_moves_an_eager_breaker_when_advanced() {
    let clock = FakeClock::new();
    let (builder, seen) = listening(
        CircuitBreaker::standard()
            .clock(clock.clone())
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5))
            .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(2)))
            .eager_transitions(),
    );
    let breaker = builder.build();
    breaker.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        transitions(&seen).last().map(|t| (t.0, t.1, t.2)),
        Some((State::Open, State::HalfOpen, Duration::from_secs(5)))
    );
    // A probe that hangs.
    let stuck = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        transitions(&seen).last().map(|t| (t.0, t.1, t.2)),
        Some((State::HalfOpen, State::Open, Duration::from_secs(7)))
    );
    // And again, with the next (backed-off or not) period.
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        transitions(&seen).last().map(|t| (t.0, t.1)),
        Some((State::Open, State::HalfOpen))
    );
    drop(stuck);
    // Idle, the half-open state stays: nothing to guard against (no probe
    // in flight), and no event every two seconds.
    let before = transitions(&seen).len();
    for _ in 0..10 {
        clock.advance(Duration::from_secs(2));
    }
    assert_eq!(transitions(&seen).len(), before);
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
    drop(breaker);
}

/// A zero open period (`open_for_fn` from a `Retry-After: 0`, say) ends at
/// once with eager transitions: no alarm would ring for it.
#[test]
fn a_zero_open_period_ends_at_once() {
    let clock = FakeClock::new();
    let (builder, seen) = listening(
        CircuitBreaker::standard()
            .clock(clock.clone())
            .consecutive_failures(1)
            .open_for(Duration::ZERO)
            .eager_transitions(),
    );
    let breaker = builder.build();
    breaker.try_acquire().unwrap().failure(&"down");
    assert_eq!(
        transitions(&seen)
            .iter()
            .map(|t| (t.0, t.1))
            .collect::<Vec<_>>(),
        vec![(State::Closed, State::Open), (State::Open, State::HalfOpen)]
    );
}

/// A runtime left idle, then dropped, while an eager alarm is due: the
/// period's backup ring, on tripswitch's timer thread, has moved the
/// breaker on already, so the runtime's shutdown rings nothing that would
/// make a sleep in the dying runtime (a panic, and an abort in a
/// `panic = "abort"` program).
#[test]
fn a_runtime_shutting_down_rings_the_alarm_without_a_panic() {
    let panicked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hook_saw = panicked.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        hook_saw.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!("{info}");
    }));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (builder, seen) = listening(
        CircuitBreaker::standard()
            .consecutive_failures(1)
            .open_for(Duration::from_millis(50))
            .eager_transitions(),
    );
    let breaker = runtime.block_on(async {
        let breaker = builder.build();
        let _ = breaker.execute(|| async { Err::<(), _>("down") }).await;
        breaker
    });
    // The backup ring moves the idle breaker on: wait for it explicitly.
    let started = std::time::Instant::now();
    while transitions(&seen).len() < 2 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(runtime);
    let _ = std::panic::take_hook();
    std::panic::set_hook(previous);
    assert!(!panicked.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(breaker.state(), State::HalfOpen);
    assert!(transitions(&seen).len() >= 2);
}

/// In wait mode too, with nobody waiting: the seed's freeze ends on time.
#[test]
fn a_waiting_breaker_without_waiters_moves_on_time() {
    let clock = FakeClock::new();
    let (builder, seen) = listening(
        CircuitBreaker::builder()
            .clock(clock.clone())
            .freeze_for(Duration::from_secs(5))
            .eager_transitions(),
    );
    let breaker = builder.build();
    breaker.try_acquire().unwrap().failure(&"down");
    assert!(breaker.is_frozen());
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        transitions(&seen).last().copied(),
        Some((State::Open, State::Closed, Duration::from_secs(5)))
    );
}

/// The alarm holds the breaker weakly: a dropped breaker is gone, and its
/// alarm ringing later does nothing.
#[test]
fn an_alarm_does_not_keep_its_breaker_alive() {
    let clock = FakeClock::new();
    let (builder, seen) = listening(
        CircuitBreaker::standard()
            .clock(clock.clone())
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5))
            .eager_transitions(),
    );
    let breaker = builder.build();
    breaker.try_acquire().unwrap().failure(&"down");
    drop(breaker);
    clock.advance(Duration::from_secs(5));
    assert_eq!(transitions(&seen).len(), 1, "only the opening");
    assert_eq!(clock.pending_sleeps(), 0);
}
