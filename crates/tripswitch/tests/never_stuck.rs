//! Never stuck, never crashed: regression tests for the holes an independent
//! attack found in the core (a probe slot lost to a panicking closure, a
//! freeze timer owned by one runtime, a fail-fast breaker that never left
//! Open, unbounded re-entrancy, panics inside the library, surprises).
#![cfg(not(loom))]

mod common;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::{Boom, DeafClock, Recorder};
use futures::FutureExt;
use tripswitch::clock::{Clock, FakeClock, StdClock};
use tripswitch::events::TransitionReason;
use tripswitch::{CircuitBreaker, Error, HalfOpen, Registry, RejectReason, State};

/// Tests that panic on purpose, and those that count panics, run one at a
/// time: a panic hook is process-wide, so it would count another test's
/// deliberate panic (seen once with both cores saturated).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static PANICKY: Mutex<()> = Mutex::new(());
    PANICKY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts the panics raised anywhere in the process while it runs `f`
/// (caught ones too: a panic hook sees every panic).
fn panics_during(f: impl FnOnce()) -> usize {
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let _one_at_a_time = one_at_a_time();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {
        PANICS.fetch_add(1, Ordering::SeqCst);
    }));
    let before = PANICS.load(Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(f));
    let after = PANICS.load(Ordering::SeqCst);
    std::panic::set_hook(previous);
    assert!(result.is_ok(), "the code under test panicked");
    after - before
}

/// Runs `f` on a thread of its own and fails if it has not returned within
/// `limit` (a deadlock, or a wait that never ends).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(limit)
        .expect("did not finish: stuck or deadlocked")
}

// ----- 1. a panicking operation closure --------------------------------------

#[test]
fn a_closure_that_panics_before_its_future_gives_the_probe_slot_back() {
    let _one_at_a_time = one_at_a_time();
    let clock = FakeClock::new();
    let recorder = Recorder::default();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .consecutive_failures(1)
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(1))
        .on_event(recorder.listener())
        .fail_fast()
        .try_build()
        .unwrap();
    let _ = common::fail(&breaker).now_or_never();
    clock.advance(Duration::from_secs(1));
    assert_eq!(breaker.state(), State::HalfOpen);

    let panicked = catch_unwind(AssertUnwindSafe(|| {
        breaker
            .execute(|| -> std::future::Ready<Result<(), Boom>> { panic!("closure failed") })
            .now_or_never()
    }));
    assert!(panicked.is_err(), "the panic reaches the caller");
    let metrics = breaker.metrics();
    assert_eq!(metrics.probes_in_flight, 0, "no slot is left held");
    // The panic was the probe's failure: open again, then a new probe.
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        recorder.reasons().last(),
        Some(&TransitionReason::ProbeFailed)
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        breaker
            .execute(|| async { Ok::<_, Boom>(7) })
            .now_or_never(),
        Some(Ok(7))
    );
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_closure_that_panics_counts_as_one_failure_while_closed() {
    let _one_at_a_time = one_at_a_time();
    let breaker = CircuitBreaker::builder()
        .clock(FakeClock::new())
        .consecutive_failures(2)
        .fail_fast()
        .try_build()
        .unwrap();
    for _ in 0..2 {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            breaker
                .execute(|| -> std::future::Ready<Result<(), Boom>> { panic!("closure failed") })
                .now_or_never()
        }));
    }
    assert_eq!(breaker.metrics().totals.failures, 2);
    assert_eq!(breaker.state(), State::Open);
}

// ----- 2. timed periods belong to no runtime ----------------------------------

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// The seed breaker trips on runtime A, whose call is dropped and which then
/// sits idle; a call waiting on runtime B is let through at the deadline.
#[test]
fn a_waiter_on_another_runtime_is_released_at_the_deadline_while_the_first_runtime_idles() {
    let freeze = Duration::from_millis(100);
    let breaker = Arc::new(CircuitBreaker::builder().freeze_for(freeze).build());
    let a = current_thread();
    let tripped = Instant::now();
    let _ = a.block_on(async {
        tokio::time::timeout(Duration::from_millis(10), common::fail(&breaker)).await
    });
    assert!(breaker.is_frozen());
    // A stays alive and idle (nobody drives it) for the whole test.
    let waiter = Arc::clone(&breaker);
    let released = within(Duration::from_secs(20), move || {
        current_thread().block_on(async { common::succeed(&waiter).await })
    });
    assert_eq!(released, Ok(1));
    assert!(
        tripped.elapsed() >= freeze,
        "not released before the deadline"
    );
    drop(a);
}

/// Dropping the runtime the breaker tripped on neither panics nor ends the
/// open period early: the waiter on B waits until the deadline.
#[test]
fn dropping_the_tripping_runtime_does_not_end_the_period_early() {
    let freeze = Duration::from_millis(400);
    let breaker = Arc::new(CircuitBreaker::builder().freeze_for(freeze).build());
    let tripped = Instant::now();
    let panics = panics_during(|| {
        let a = current_thread();
        let _ = a.block_on(async {
            tokio::time::timeout(Duration::from_millis(10), common::fail(&breaker)).await
        });
        drop(a);
        let waiter = Arc::clone(&breaker);
        let released = within(Duration::from_secs(20), move || {
            current_thread().block_on(async { common::succeed(&waiter).await })
        });
        assert_eq!(released, Ok(1));
    });
    assert!(
        tripped.elapsed() >= freeze,
        "the open period ended {:?} after the trip, before its {freeze:?}",
        tripped.elapsed()
    );
    assert_eq!(panics, 0, "nothing panicked, not even inside tokio");
}

/// A waiting call first polled on runtime A (alive and idle), then moved to
/// another executor or runtime: its alarm is made again where it now runs.
/// (Found by an adversarial review: the alarm stayed on A's timer.)
#[test]
fn a_waiter_moved_off_an_idle_runtime_is_released_at_the_deadline() {
    for target in ["futures executor", "another runtime"] {
        let freeze = Duration::from_millis(300);
        let breaker = CircuitBreaker::builder().freeze_for(freeze).build();
        let tripped = Instant::now();
        let _ = common::fail(&breaker).now_or_never();
        let a = current_thread();
        let moved = breaker.clone();
        let mut waiter = Box::pin(async move { common::succeed(&moved).await });
        a.block_on(async { assert!(futures::poll!(&mut waiter).is_pending()) });
        let released = within(Duration::from_secs(20), move || match target {
            "futures executor" => futures::executor::block_on(waiter),
            _ => current_thread().block_on(waiter),
        });
        assert_eq!(released, Ok(1), "{target}");
        assert!(
            tripped.elapsed() >= freeze,
            "{target}: not before the deadline"
        );
        drop(a);
    }
}

/// A call waiting on a thread that entered a tokio runtime it does not drive
/// (its alarm lands on that runtime's timer) still leaves at the deadline:
/// tokio alarms have a second one on the process-wide timer thread.
#[test]
fn a_waiter_on_an_entered_but_idle_runtime_is_released_at_the_deadline() {
    let freeze = Duration::from_millis(300);
    let breaker = CircuitBreaker::builder().freeze_for(freeze).build();
    let tripped = Instant::now();
    let _ = common::fail(&breaker).now_or_never();
    let released = within(Duration::from_secs(20), move || {
        let runtime = current_thread();
        let _entered = runtime.enter();
        futures::executor::block_on(common::succeed(&breaker))
    });
    assert_eq!(released, Ok(1));
    assert!(tripped.elapsed() >= freeze);
}

/// A waiting call polled on a runtime that is then dropped, and finished
/// elsewhere: no panic at all, not even a caught one (under
/// `panic = "abort"` a caught panic is a dead process).
#[test]
fn a_waiter_outliving_its_runtime_finishes_without_any_panic() {
    let panics = panics_during(|| {
        let breaker = CircuitBreaker::builder()
            .freeze_for(Duration::from_millis(200))
            .build();
        let _ = common::fail(&breaker).now_or_never();
        let a = current_thread();
        let moved = breaker.clone();
        let mut waiter = Box::pin(async move { common::succeed(&moved).await });
        a.block_on(async { assert!(futures::poll!(&mut waiter).is_pending()) });
        drop(a);
        let released = within(Duration::from_secs(20), move || {
            futures::executor::block_on(waiter)
        });
        assert_eq!(released, Ok(1));
    });
    assert_eq!(panics, 0);
}

/// Waiters whose clock never fires a shared timer still leave at the
/// deadline: each has an alarm of its own (here every sleep but the
/// waiters' own never ends, so only the waiter's own clock read releases it).
#[test]
fn every_waiter_polls_its_own_alarm() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .freeze_for(Duration::from_secs(5))
        .build();
    let _ = common::fail(&breaker).now_or_never();
    let mut waiters: Vec<_> = (0..3)
        .map(|_| Box::pin(common::succeed(&breaker)))
        .collect();
    for waiter in &mut waiters {
        assert!(waiter.as_mut().now_or_never().is_none());
    }
    assert_eq!(
        clock.pending_sleeps(),
        3,
        "one alarm per waiter, no shared timer"
    );
    clock.advance(Duration::from_secs(5));
    for waiter in waiters {
        assert_eq!(waiter.now_or_never(), Some(Ok(1)));
    }
}

/// An async freeze whose future is never woken ends at `max_freeze`.
#[tokio::test(start_paused = true)]
async fn an_async_freeze_is_bounded_by_max_freeze() {
    let breaker = CircuitBreaker::builder()
        .freeze_with(std::future::pending::<()>)
        .max_freeze(Duration::from_secs(30))
        .build();
    let start = tokio::time::Instant::now();
    let result = breaker
        .execute(|| {
            let first = start.elapsed().is_zero();
            async move { if first { Err(Boom("down")) } else { Ok(2) } }
        })
        .await;
    assert_eq!(
        result,
        Ok(2),
        "the seed's retry ran after the bounded freeze"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert!(!breaker.is_frozen());
}

#[test]
fn the_default_max_freeze_is_five_minutes() {
    assert_eq!(tripswitch::DEFAULT_MAX_FREEZE, Duration::from_secs(300));
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::builder()
        .clock(clock.clone())
        .freeze_with(std::future::pending::<()>)
        .build();
    let _ = common::fail(&breaker).now_or_never();
    assert!(breaker.is_frozen());
    clock.advance(Duration::from_secs(299));
    assert!(breaker.is_frozen());
    clock.advance(Duration::from_secs(1));
    assert!(!breaker.is_frozen());
}

// ----- 3. a fail-fast breaker leaves Open with no timer -------------------------

fn silent_fail_fast(clock: &DeafClock) -> CircuitBreaker {
    CircuitBreaker::builder()
        .clock(clock.clone())
        .consecutive_failures(1)
        .freeze_for(Duration::from_millis(50))
        .half_open(HalfOpen::probes(1))
        .fail_fast()
        .try_build()
        .unwrap()
}

/// The bound on calls: one rejection in 1,024 per thread reads the clock.
const CALLS_BOUND: usize = 1_025;

#[test]
fn execute_leaves_open_within_a_bounded_number_of_calls_when_no_timer_fires() {
    let clock = DeafClock::default();
    let breaker = silent_fail_fast(&clock);
    let _ = common::fail(&breaker).now_or_never();
    clock.advance(Duration::from_millis(150));
    let admitted = (0..CALLS_BOUND).position(|_| {
        matches!(
            breaker
                .execute(|| async { Ok::<_, Boom>(()) })
                .now_or_never(),
            Some(Ok(()))
        )
    });
    assert!(admitted.is_some(), "every call was rejected");
}

#[test]
fn try_acquire_leaves_open_within_a_bounded_number_of_calls_when_no_timer_fires() {
    let clock = DeafClock::default();
    let breaker = silent_fail_fast(&clock);
    let _ = common::fail(&breaker).now_or_never();
    clock.advance(Duration::from_millis(150));
    let permit = (0..CALLS_BOUND).find_map(|_| breaker.try_acquire_owned().ok());
    permit.expect("every permit was refused").success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn acquire_leaves_open_at_once_after_the_deadline_when_no_timer_fires() {
    let clock = DeafClock::default();
    let breaker = silent_fail_fast(&clock);
    let _ = common::fail(&breaker).now_or_never();
    clock.advance(Duration::from_millis(150));
    let permit = breaker.acquire().now_or_never().expect("ready at once");
    permit.expect("admitted").success();
}

#[cfg(feature = "tower")]
#[test]
fn the_tower_layer_leaves_open_at_once_after_the_deadline_when_no_timer_fires() {
    use tower::{Layer, Service, ServiceExt};
    let clock = DeafClock::default();
    let breaker = silent_fail_fast(&clock);
    let _ = common::fail(&breaker).now_or_never();
    clock.advance(Duration::from_millis(150));
    let inner = tower::service_fn(|n: u32| async move { Ok::<_, String>(n) });
    let mut service = tripswitch::tower::CircuitBreakerLayer::new(breaker.clone()).layer(inner);
    let answer = async { service.ready().await?.call(5).await }
        .now_or_never()
        .expect("ready at once");
    assert_eq!(answer.unwrap(), 5);
    assert_eq!(breaker.state(), State::Closed);
}

#[cfg(feature = "reqwest")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reqwest_middleware_leaves_open_at_once_after_the_deadline_when_no_timer_fires() {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "fine" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let clock = DeafClock::default();
    let breaker = silent_fail_fast(&clock);
    let _ = common::fail(&breaker).await;
    clock.advance(Duration::from_millis(150));
    let client = reqwest_middleware::ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(tripswitch::reqwest::CircuitBreakerMiddleware::new(
            breaker.clone(),
        ))
        .build();
    let response = client.get(format!("http://{address}/")).send().await;
    assert_eq!(response.expect("admitted").status(), 200);
    assert_eq!(breaker.state(), State::Closed);
    server.abort();
}

/// The repro: sync code calling `block_on` per call on a
/// current-thread runtime, which never runs its timers because every
/// rejection completes on its first poll.
#[test]
fn block_on_per_call_recovers_after_the_deadline() {
    let rt = current_thread();
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(1)
        .freeze_for(Duration::from_millis(50))
        .fail_fast()
        .try_build()
        .unwrap();
    let _ = rt.block_on(common::fail(&breaker));
    std::thread::sleep(Duration::from_millis(150));
    let admitted = (0..CALLS_BOUND).any(|_| rt.block_on(common::succeed(&breaker)).is_ok());
    assert!(admitted, "every call was rejected after the deadline");
}

// ----- 5. re-entrant callbacks ---------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_freeze_function_that_waits_on_its_own_breaker_neither_recurses_nor_hangs() {
    static BREAKER: OnceLock<CircuitBreaker> = OnceLock::new();
    let breaker = BREAKER.get_or_init(|| {
        CircuitBreaker::builder()
            .freeze_with(|| async {
                let own = BREAKER.get().expect("built");
                let _ = tokio::time::timeout(Duration::from_secs(1), own.wait_unfrozen()).await;
            })
            .build()
    });
    let start = tokio::time::Instant::now();
    let mut first = true;
    let result = breaker
        .execute(|| {
            let fail = std::mem::take(&mut first);
            async move { if fail { Err(Boom("down")) } else { Ok(3) } }
        })
        .await;
    assert_eq!(result, Ok(3));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "the freeze's own timeout ended it"
    );
}

/// Every callback calls back into its own breaker (state, metrics, manual
/// control, even a call): nothing deadlocks, recurses without bound or panics.
#[test]
fn every_callback_may_call_back_into_its_breaker() {
    static BREAKER: OnceLock<CircuitBreaker> = OnceLock::new();
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    fn poke() {
        if let Some(breaker) = BREAKER.get() {
            CALLS.fetch_add(1, Ordering::SeqCst);
            let _ = breaker.state();
            let _ = breaker.metrics();
            let _ = breaker.is_frozen();
            let _ = breaker.try_acquire().map(|permit| permit.success());
        }
    }
    let panics = panics_during(|| {
        within(Duration::from_secs(20), || {
            let clock = FakeClock::new();
            let breaker = BREAKER.get_or_init(|| {
                CircuitBreaker::builder()
                    .clock(clock.clone())
                    .consecutive_failures(1)
                    .half_open(HalfOpen::probes(1))
                    .open_for_fn(|_| {
                        poke();
                        Duration::from_secs(1)
                    })
                    .on_error(|_| poke())
                    .on_event(|_| poke())
                    .fail_fast()
                    .try_build()
                    .unwrap()
            });
            for round in 0..3 {
                let _ = breaker
                    .execute_classified(
                        |_: &Result<(), Boom>| {
                            poke();
                            tripswitch::Outcome::Failure
                        },
                        || async { Err::<(), _>(Boom("down")) },
                    )
                    .now_or_never();
                clock.advance(Duration::from_secs(1));
                let _ = common::succeed(breaker).now_or_never();
                breaker.force_open();
                breaker.reset();
                assert!(CALLS.load(Ordering::SeqCst) > round);
            }
        });
    });
    assert_eq!(panics, 0);
}

// ----- 6. no panic inside the library --------------------------------------------

#[test]
fn std_clock_with_the_longest_max_wait_does_not_panic() {
    let panics = panics_during(|| {
        let breaker = CircuitBreaker::builder()
            .clock(StdClock::new())
            .max_wait(Duration::MAX)
            .build();
        breaker.force_open();
        let mut waiter = Box::pin(common::succeed(&breaker));
        assert!(waiter.as_mut().now_or_never().is_none());
        breaker.resume();
        assert_eq!(waiter.now_or_never(), Some(Ok(1)));
    });
    assert_eq!(panics, 0);
}

#[test]
fn a_default_clock_breaker_used_outside_any_runtime_does_not_panic() {
    let panics = panics_during(|| {
        // Fail fast (its alarm), wait mode (a waiter's alarm) and max_wait.
        let fail_fast = CircuitBreaker::builder()
            .consecutive_failures(1)
            .fail_fast()
            .try_build()
            .unwrap();
        let _ = futures::executor::block_on(common::fail(&fail_fast));
        assert_eq!(fail_fast.state(), State::Open);
        let waiting = CircuitBreaker::builder()
            .max_wait(Duration::from_millis(20))
            .freeze_for(Duration::from_secs(60))
            .build();
        let _ = common::fail(&waiting).now_or_never();
        let timed_out = futures::executor::block_on(common::succeed(&waiting));
        assert!(
            matches!(timed_out, Err(Error::Rejected(ref r)) if r.reason() == RejectReason::WaitTimedOut),
            "{timed_out:?}"
        );
    });
    assert_eq!(panics, 0);
}

#[test]
fn settings_at_their_extremes_do_not_panic() {
    let panics = panics_during(|| {
        let clock = FakeClock::new();
        let breaker = CircuitBreaker::builder()
            .clock(clock.clone())
            .freeze_for(Duration::MAX)
            .half_open(HalfOpen::probes(1).max_duration(Duration::MAX))
            .max_wait(Duration::MAX)
            .fail_fast()
            .try_build()
            .unwrap();
        let _ = common::fail(&breaker).now_or_never();
        let rejected = common::succeed(&breaker).now_or_never();
        assert!(matches!(rejected, Some(Err(Error::Rejected(_)))));
        assert!(
            breaker.metrics().retry_after.is_some(),
            "a deadline, far away"
        );
        // The end of time: every deadline has passed, so every period is
        // over as soon as it starts; each look at the breaker still returns.
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        let _ = breaker.state();
        let _ = common::succeed(&breaker).now_or_never();
        let _ = breaker.try_acquire().map(|permit| permit.success());
    });
    assert_eq!(panics, 0);
}

// ----- 8. a registry factory may use its registry ----------------------------------

#[test]
fn a_registry_factory_may_use_its_own_registry() {
    within(Duration::from_secs(20), || {
        let registry: Arc<OnceLock<Registry<u32>>> = Arc::new(OnceLock::new());
        let inside = Arc::clone(&registry);
        let made = registry.get_or_init(|| {
            Registry::new(4, move |key: &u32| {
                let own = inside.get().expect("built");
                let _ = own.len();
                if *key > 0 {
                    // A breaker for another key, made from inside the factory.
                    let _ = own.get(&(key - 1));
                }
                CircuitBreaker::builder().name(format!("k{key}")).build()
            })
        });
        let _ = made.get(&3);
        assert_eq!(made.len(), 4);
    });
}

// ----- 9. surprises removed -----------------------------------------------------------

/// `force_open` from a listener on the transition to Closed keeps the
/// queued calls waiting: they are not let in on the old generation.
#[test]
fn force_open_from_a_listener_on_closing_keeps_the_queue_waiting() {
    static BREAKER: OnceLock<CircuitBreaker> = OnceLock::new();
    static FORCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let clock = FakeClock::new();
    let breaker = BREAKER.get_or_init(|| {
        CircuitBreaker::builder()
            .clock(clock.clone())
            .freeze_for(Duration::from_secs(1))
            .on_event(|event| {
                if let tripswitch::events::EventKind::Transition {
                    to: State::Closed, ..
                } = event.kind()
                    && let Some(own) = BREAKER.get()
                    && !FORCED.swap(true, Ordering::SeqCst)
                {
                    own.force_open();
                }
            })
            .build()
    });
    let _ = common::fail(breaker).now_or_never();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut waiters: Vec<Pin<Box<dyn Future<Output = _>>>> = (0..4)
        .map(|_| {
            let ran = Arc::clone(&ran);
            Box::pin(breaker.execute(move || {
                ran.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, Boom>(()) }
            })) as Pin<Box<dyn Future<Output = _>>>
        })
        .collect();
    for waiter in &mut waiters {
        assert!(waiter.as_mut().now_or_never().is_none());
    }
    clock.advance(Duration::from_secs(1));
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    for waiter in &mut waiters {
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(breaker.state(), State::ForcedOpen);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no queued call ran");
    breaker.resume();
    for waiter in &mut waiters {
        assert!(matches!(waiter.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    }
    assert_eq!(ran.load(Ordering::SeqCst), 4);
}

#[test]
fn an_observer_does_not_count_against_max_waiters() {
    let breaker = CircuitBreaker::builder()
        .clock(FakeClock::new())
        .max_waiters(1)
        .build();
    breaker.force_open();
    let mut observer = Box::pin(breaker.wait_unfrozen());
    assert!(observer.as_mut().now_or_never().is_none());
    let mut call = Box::pin(common::succeed(&breaker));
    assert!(
        call.as_mut().now_or_never().is_none(),
        "the call waits: the observer is not a call"
    );
    let mut second = Box::pin(common::succeed(&breaker));
    assert!(matches!(
        second.as_mut().now_or_never(),
        Some(Err(Error::Rejected(r))) if r.reason() == RejectReason::TooManyWaiters
    ));
    breaker.resume();
    assert!(observer.now_or_never().is_some());
    assert_eq!(call.now_or_never(), Some(Ok(1)));
}

#[test]
fn fake_clock_saturates_instead_of_wrapping() {
    let clock = FakeClock::new();
    clock.advance(Duration::from_secs(10));
    clock.advance(Duration::MAX);
    assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
    clock.advance(Duration::from_secs(1));
    assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
}
