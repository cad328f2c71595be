//! Review 19m: the shared store moved behind the boxed `Hooks`, and the
//! periods a store asks for into the lazily allocated `Cold` block. These
//! attacks drive the fleet seam (`SharedState`, `SharedControl`) with an
//! in-memory store, no Redis.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::TransitionReason;
use tripswitch::shared::SharedState;
use tripswitch::{CircuitBreaker, HalfOpen, State};

type Log = Arc<Mutex<Vec<(State, State, TransitionReason)>>>;

#[derive(Default, Clone)]
struct Store(Log);

impl SharedState for Store {
    fn transitioned(&self, from: State, to: State, reason: TransitionReason) {
        self.0.lock().unwrap().push((from, to, reason));
    }
}

fn with_store(clock: &FakeClock, store: &Store) -> CircuitBreaker {
    CircuitBreaker::standard()
        .name("fleet")
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .shared_state(Arc::new(store.clone()))
        .build()
}

#[test]
fn the_store_hears_every_transition_local_or_shared() {
    let clock = FakeClock::new();
    let store = Store::default();
    let breaker = with_store(&clock, &store);
    let control = breaker.shared_control();
    breaker.try_acquire().unwrap().failure(&"boom");
    clock.advance(Duration::from_secs(10));
    breaker.try_acquire().unwrap().success();
    assert!(control.hold_open(Duration::from_secs(3)));
    assert_eq!(control.retry_after(), Some(Duration::from_secs(3)));
    assert!(control.half_open(Duration::from_secs(1)));
    assert!(control.close());
    use State::*;
    use TransitionReason::*;
    assert_eq!(
        *store.0.lock().unwrap(),
        vec![
            (Closed, Open, Tripped),
            (Open, HalfOpen, OpenPeriodEnded),
            (HalfOpen, Closed, ProbesSucceeded),
            (Closed, Open, Shared),
            (Open, HalfOpen, Shared),
            (HalfOpen, Closed, Shared),
        ]
    );
    assert_eq!(control.counts(), breaker.metrics().totals);
}

#[test]
fn an_idle_lease_that_runs_out_reopens_with_a_store() {
    let clock = FakeClock::new();
    let store = Store::default();
    let breaker = with_store(&clock, &store);
    let control = breaker.shared_control();
    assert!(control.hold_open(Duration::from_secs(60)));
    assert!(control.half_open(Duration::from_secs(2)));
    assert_eq!(breaker.state(), State::HalfOpen);
    clock.advance(Duration::from_secs(2));
    assert_eq!(breaker.state(), State::Open);
}

// Failed before the fix (pre-existing, also at 823e495): `SharedControl` is handed
// out by every breaker (`CircuitBreaker::shared_control`), and its
// `half_open` promises "When the lease runs out undecided, the breaker opens
// again, as with max_duration". Without a store set on the builder,
// `Core::period_elapsed` (core/transitions.rs:96, `settings.shared().is_none()`)
// treats the idle half-open state as its own and renews it by its own
// max_duration (30 s): the lease does not end it.
#[test]
fn an_idle_lease_that_runs_out_reopens_without_a_store_too() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .build();
    let control = breaker.shared_control();
    assert!(control.hold_open(Duration::from_secs(60)));
    assert!(control.half_open(Duration::from_secs(2)));
    clock.advance(Duration::from_secs(2));
    assert_eq!(breaker.state(), State::Open, "the lease ran out undecided");
}

#[test]
fn a_lease_longer_than_max_duration_is_cut_to_it() {
    let clock = FakeClock::new();
    let store = Store::default();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(5)))
        .shared_state(Arc::new(store.clone()))
        .build();
    let control = breaker.shared_control();
    assert!(control.hold_open(Duration::from_secs(1)));
    assert!(control.half_open(Duration::from_secs(600)));
    let probe = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.state(), State::Open);
    drop(probe);
}

#[test]
fn a_panicking_store_is_contained() {
    struct Panics;
    impl SharedState for Panics {
        fn transitioned(&self, _: State, _: State, _: TransitionReason) {
            panic!("review19m: the store panics");
        }
    }
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .shared_state(Arc::new(Panics))
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(1))
    );
    clock.advance(Duration::from_secs(1));
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_control_outliving_its_breaker_does_nothing() {
    let clock = FakeClock::new();
    let store = Store::default();
    let breaker = with_store(&clock, &store);
    let control = breaker.shared_control();
    drop(breaker);
    assert!(!control.is_alive());
    assert!(!control.hold_open(Duration::from_secs(1)));
    assert!(!control.half_open(Duration::from_secs(1)));
    assert!(!control.close());
    assert_eq!(control.state(), None);
    assert_eq!(control.waiting(), 0);
    assert!(store.0.lock().unwrap().is_empty());
}

#[test]
fn shared_orders_racing_from_many_threads_leave_a_consistent_breaker() {
    for _ in 0..50 {
        let clock = FakeClock::new();
        let store = Store::default();
        let breaker = with_store(&clock, &store);
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let control = breaker.shared_control();
                let breaker = breaker.clone();
                std::thread::spawn(move || {
                    for j in 0..200 {
                        match (i + j) % 4 {
                            0 => {
                                control.hold_open(Duration::from_secs(1 + j as u64));
                            }
                            1 => {
                                control.half_open(Duration::from_secs(1));
                            }
                            2 => {
                                control.close();
                            }
                            _ => {
                                if let Ok(permit) = breaker.try_acquire() {
                                    permit.success();
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        // Whatever the interleaving, the fleet closing it closes it, and it
        // works afterwards.
        let control = breaker.shared_control();
        control.close();
        if breaker.state() == State::Open {
            assert!(control.half_open(Duration::from_secs(1)));
            assert!(control.close());
        }
        assert_eq!(breaker.state(), State::Closed);
        breaker.try_acquire().unwrap().success();
        let m = breaker.metrics();
        assert_eq!(m.probes_in_flight, 0);
        assert!(m.current.calls() <= m.totals.calls());
        // (The store's log is not checked for order: two transitions made
        // on two threads may report in either order.)
        assert!(!store.0.lock().unwrap().is_empty());
    }
}
