//! Review 23: a failure in a breaker whose only policy is a consecutive
//! count takes a short path. Each test runs the same sequence on a breaker
//! on that path ("lone") and on one forced onto the general path by a
//! listener ("general"), and compares what they report.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tripswitch::{CircuitBreaker, Metrics, State};

/// What `on_error` does besides counting itself.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    Nothing,
    Panic,
    /// A failure of its own through the same breaker.
    NestedFailure,
    /// A success of its own through the same breaker.
    NestedSuccess,
    Reset,
    ForceOpen,
    ForceOpenAndResume,
    MetricsOnly,
}

struct Probe {
    breaker: Arc<OnceLock<CircuitBreaker>>,
    errors: Arc<AtomicUsize>,
    action: Arc<Mutex<Action>>,
}

fn make(n: u32, general: bool, seed: bool) -> Probe {
    let breaker: Arc<OnceLock<CircuitBreaker>> = Arc::new(OnceLock::new());
    let errors = Arc::new(AtomicUsize::new(0));
    let action = Arc::new(Mutex::new(Action::Nothing));
    let (b, e, a) = (
        Arc::clone(&breaker),
        Arc::clone(&errors),
        Arc::clone(&action),
    );
    let builder = if seed {
        CircuitBreaker::builder().freeze_for(Duration::from_secs(5))
    } else {
        CircuitBreaker::standard().open_for(Duration::from_secs(5))
    };
    let mut builder = builder.consecutive_failures(n).on_error(move |_| {
        e.fetch_add(1, Ordering::SeqCst);
        let action = *a.lock().unwrap();
        let Some(me) = b.get() else { return };
        match action {
            Action::Nothing => {}
            Action::Panic => panic!("on_error panics"),
            Action::NestedFailure => {
                if let Ok(p) = me.try_acquire() {
                    p.failure(&"nested");
                }
            }
            Action::NestedSuccess => {
                if let Ok(p) = me.try_acquire() {
                    p.success();
                }
            }
            Action::Reset => me.reset(),
            Action::ForceOpen => me.force_open(),
            Action::ForceOpenAndResume => {
                me.force_open();
                me.resume();
            }
            Action::MetricsOnly => me.force_metrics_only(),
        }
    });
    if general {
        builder = builder.on_event(|_| {});
    }
    breaker.set(builder.try_build().unwrap()).ok().unwrap();
    Probe {
        breaker,
        errors,
        action,
    }
}

impl Probe {
    fn b(&self) -> &CircuitBreaker {
        self.breaker.get().unwrap()
    }
    fn set(&self, action: Action) {
        *self.action.lock().unwrap() = action;
    }
    fn errors(&self) -> usize {
        self.errors.load(Ordering::SeqCst)
    }
}

fn key(m: &Metrics) -> impl PartialEq + std::fmt::Debug {
    (
        m.state,
        m.consecutive_failures,
        m.calls_in_window,
        m.totals,
        m.current,
        m.probes_in_flight,
        // Whole seconds: the breakers trip a few microseconds apart in real time.
        m.retry_after.map(|d| d.as_secs_f64().round() as u64),
    )
}

fn same(a: &Probe, b: &Probe, what: &str) {
    let (x, y) = (a.b().metrics(), b.b().metrics());
    assert_eq!(key(&x), key(&y), "metrics: {what}");
    assert_eq!(a.errors(), b.errors(), "on_error calls: {what}");
}

fn pair(n: u32) -> (Probe, Probe) {
    (make(n, false, false), make(n, true, false))
}

fn fail(p: &Probe) -> bool {
    match p.b().try_acquire() {
        Ok(permit) => {
            permit.failure(&"boom");
            true
        }
        Err(_) => false,
    }
}

fn succeed(p: &Probe) -> bool {
    match p.b().try_acquire() {
        Ok(permit) => {
            permit.success();
            true
        }
        Err(_) => false,
    }
}

#[test]
fn trips_exactly_at_the_nth_consecutive_failure() {
    for n in 1..=7u32 {
        let (l, g) = pair(n);
        for p in [&l, &g] {
            // n - 1 failures, a success, n - 1 failures: still closed.
            for _ in 0..n - 1 {
                assert!(fail(p));
            }
            assert_eq!(p.b().metrics().consecutive_failures, Some(n - 1));
            assert!(succeed(p));
            assert_eq!(p.b().metrics().consecutive_failures, Some(0));
            for i in 0..n - 1 {
                assert!(fail(p));
                assert_eq!(p.b().state(), State::Closed, "n = {n}, failure {i}");
            }
            assert!(fail(p), "n = {n}");
            assert_eq!(p.b().state(), State::Open, "n = {n}: the nth failure trips");
            assert_eq!(p.errors(), 2 * n as usize - 1, "n = {n}");
        }
        same(&l, &g, &format!("n = {n}"));
    }
}

#[test]
fn on_error_is_called_once_per_failure_even_when_it_panics() {
    let (l, g) = pair(5);
    for p in [&l, &g] {
        p.set(Action::Panic);
        for _ in 0..4 {
            assert!(fail(p));
        }
        assert_eq!(p.errors(), 4);
        assert_eq!(p.b().metrics().consecutive_failures, Some(4));
        assert_eq!(p.b().state(), State::Closed);
        assert!(fail(p));
        assert_eq!(p.errors(), 5);
        assert_eq!(p.b().state(), State::Open);
    }
    same(&l, &g, "panicking on_error");
}

#[test]
fn on_error_that_reenters_or_moves_the_breaker() {
    let actions = [
        Action::Nothing,
        Action::Panic,
        Action::NestedFailure,
        Action::NestedSuccess,
        Action::Reset,
        Action::ForceOpen,
        Action::ForceOpenAndResume,
        Action::MetricsOnly,
    ];
    for n in [1u32, 2, 3, 5] {
        for action in actions {
            let (l, g) = pair(n);
            for p in [&l, &g] {
                p.set(action);
                for _ in 0..(2 * n + 3) {
                    fail(p);
                    if p.b().state() != State::Closed && p.b().state() != State::MetricsOnly {
                        p.b().resume();
                        p.b().reset();
                    }
                }
            }
            same(&l, &g, &format!("n = {n}, {action:?}"));
        }
    }
}

/// A nested failure from `on_error` brings the count to the threshold:
/// the outer failure then counts in a moved breaker only in the totals.
#[test]
fn nested_failure_trips_and_the_outer_one_is_late() {
    let (l, g) = pair(2);
    for p in [&l, &g] {
        p.set(Action::NestedFailure);
        assert!(fail(p));
        // Outer: on_error (1 call), nested failure (count 1, its on_error
        // skipped as re-entered), then the outer counts: 2, trips.
        assert_eq!(p.b().state(), State::Open);
    }
    same(&l, &g, "nested trip");
}

/// A named manual move of a breaker.
type Move = (&'static str, fn(&CircuitBreaker));

/// Results of runs admitted before a transition count in the totals only.
#[test]
fn late_failures_do_not_count_in_the_new_state() {
    let moves: [Move; 4] = [
        ("reset", |b| b.reset()),
        ("force_open + resume", |b| {
            b.force_open();
            b.resume();
        }),
        ("metrics_only + resume", |b| {
            b.force_metrics_only();
            b.resume();
        }),
        ("disable + resume", |b| {
            b.disable();
            b.resume();
        }),
    ];
    for (name, transition) in moves {
        let (l, g) = pair(3);
        for p in [&l, &g] {
            let b = p.b();
            assert!(fail(p));
            let held: Vec<_> = (0..4).map(|_| b.try_acquire().unwrap()).collect();
            transition(b);
            assert_eq!(b.state(), State::Closed);
            for permit in held {
                permit.failure(&"late");
            }
            let m = b.metrics();
            assert_eq!(m.state, State::Closed, "{name}: late failures do not trip");
            assert_eq!(m.consecutive_failures, Some(0), "{name}");
            assert_eq!(m.current.failures, 0, "{name}");
            assert_eq!(m.totals.failures, 5, "{name}");
            assert_eq!(p.errors(), 5, "{name}: on_error for late failures too");
            // Now three fresh failures trip it.
            assert!(fail(p));
            assert!(fail(p));
            assert_eq!(b.state(), State::Closed, "{name}");
            assert!(fail(p));
            assert_eq!(b.state(), State::Open, "{name}");
        }
        same(&l, &g, name);
    }
}

/// A late failure from a run admitted before a trip, while open and after
/// the breaker closed again through half-open.
#[test]
fn late_failures_across_a_trip_and_a_close() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let (l, g) = pair(2);
        let mut held = Vec::new();
        for p in [&l, &g] {
            let early: Vec<_> = (0..3).map(|_| p.b().try_acquire().unwrap()).collect();
            assert!(fail(p));
            assert!(fail(p));
            assert_eq!(p.b().state(), State::Open);
            held.push(early);
        }
        let mut early_l = held.remove(0);
        let mut early_g = held.remove(0);
        early_l.pop().unwrap().failure(&"late while open");
        early_g.pop().unwrap().failure(&"late while open");
        same(&l, &g, "late failure while open");
        tokio::time::advance(Duration::from_secs(6)).await;
        for p in [&l, &g] {
            for _ in 0..20 {
                if p.b().state() == State::Closed {
                    break;
                }
                if let Ok(permit) = p.b().try_acquire() {
                    permit.success();
                }
            }
            assert_eq!(p.b().state(), State::Closed);
        }
        same(&l, &g, "closed again");
        early_l.pop().unwrap().failure(&"late after close");
        early_g.pop().unwrap().failure(&"late after close");
        for p in [&l, &g] {
            assert_eq!(p.b().metrics().consecutive_failures, Some(0));
            assert_eq!(p.b().metrics().current.failures, 0);
            assert!(fail(p));
            assert_eq!(p.b().state(), State::Closed, "one fresh failure of two");
        }
        early_l.pop().unwrap().failure(&"late");
        early_g.pop().unwrap().failure(&"late");
        same(&l, &g, "end");
    });
}

/// The seed's way (wait mode, retry after the freeze, seed accounting)
/// through `execute`, in paused time.
#[test]
fn execute_with_the_seeds_retry_matches_the_general_path() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        for n in [1u32, 2, 3] {
            let l = make(n, false, true);
            let g = make(n, true, true);
            for p in [&l, &g] {
                let b = p.b();
                let mut fails_left = 2 * n + 1;
                for _ in 0..(4 * n) {
                    let result = b
                        .execute(|| {
                            let fail = fails_left > 0;
                            fails_left = fails_left.saturating_sub(1);
                            async move { if fail { Err("boom") } else { Ok(()) } }
                        })
                        .await;
                    let _ = result;
                }
            }
            same(&l, &g, &format!("seed n = {n}"));
        }
    });
}

/// A random walk over successes, failures, held permits finished late,
/// manual moves, time and `on_error` behaviours.
#[test]
fn random_walk_matches_the_general_path() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let actions = [
            Action::Nothing,
            Action::Nothing,
            Action::Nothing,
            Action::Panic,
            Action::NestedFailure,
            Action::NestedSuccess,
            Action::Reset,
            Action::ForceOpen,
            Action::ForceOpenAndResume,
            Action::MetricsOnly,
        ];
        for n in [1u32, 2, 3, 4, 6] {
            let (l, g) = pair(n);
            let mut held_l = Vec::new();
            let mut held_g = Vec::new();
            for step in 0..3000 {
                let what = format!("n = {n}, step {step}");
                match next() % 100 {
                    0..=39 => {
                        let (a, b) = (l.b().try_acquire(), g.b().try_acquire());
                        assert_eq!(a.is_ok(), b.is_ok(), "{what}");
                        if let (Ok(a), Ok(b)) = (a, b) {
                            a.success();
                            b.success();
                        }
                    }
                    40..=69 => {
                        let (a, b) = (l.b().try_acquire(), g.b().try_acquire());
                        assert_eq!(a.is_ok(), b.is_ok(), "{what}");
                        if let (Ok(a), Ok(b)) = (a, b) {
                            a.failure(&"x");
                            b.failure(&"x");
                        }
                    }
                    70..=76 => {
                        let (a, b) = (l.b().try_acquire(), g.b().try_acquire());
                        assert_eq!(a.is_ok(), b.is_ok(), "{what}");
                        if let (Ok(a), Ok(b)) = (a, b) {
                            held_l.push(a);
                            held_g.push(b);
                        }
                    }
                    77..=84 if !held_l.is_empty() => {
                        let i = (next() as usize) % held_l.len();
                        let (a, b) = (held_l.swap_remove(i), held_g.swap_remove(i));
                        match next() % 4 {
                            0 => {
                                a.success();
                                b.success();
                            }
                            3 => {
                                drop(a);
                                drop(b);
                            }
                            _ => {
                                a.failure(&"held");
                                b.failure(&"held");
                            }
                        }
                    }
                    85..=89 => {
                        let action = actions[(next() as usize) % actions.len()];
                        l.set(action);
                        g.set(action);
                    }
                    90..=91 => {
                        l.b().reset();
                        g.b().reset();
                    }
                    92 => {
                        l.b().force_open();
                        g.b().force_open();
                    }
                    93..=94 => {
                        l.b().resume();
                        g.b().resume();
                    }
                    95 => {
                        l.b().force_metrics_only();
                        g.b().force_metrics_only();
                    }
                    96 => {
                        l.b().disable();
                        g.b().disable();
                    }
                    _ => {
                        tokio::time::advance(Duration::from_millis(next() % 7000)).await;
                    }
                }
                same(&l, &g, &what);
            }
        }
    });
}

/// Failures from several threads at once: every one counted, the count
/// exact, one trip at the threshold.
#[test]
fn concurrent_failures_count_exactly() {
    for general in [false, true] {
        let p = make(8 * 500, general, false);
        let b = p.b().clone();
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let b = b.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..499 {
                        b.try_acquire().unwrap().failure(&"x");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let m = b.metrics();
        assert_eq!(m.consecutive_failures, Some(8 * 499), "general: {general}");
        assert_eq!(m.totals.failures, 8 * 499);
        assert_eq!(p.errors(), 8 * 499);
        assert_eq!(m.state, State::Closed);
        for i in 0..8 {
            b.try_acquire().unwrap().failure(&"x");
            assert_eq!(b.state(), if i == 7 { State::Open } else { State::Closed });
        }
    }
}
