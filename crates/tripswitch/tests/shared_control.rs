//! The seam for shared state: what a store is told, and how it steers a breaker.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Boom, fail, succeed};
use tripswitch::events::TransitionReason;
use tripswitch::shared::SharedState;
use tripswitch::{CircuitBreaker, HalfOpen, RejectReason, State};

#[derive(Default)]
struct Store {
    seen: Mutex<Vec<(State, State, TransitionReason)>>,
}

impl SharedState for Store {
    fn transitioned(&self, from: State, to: State, reason: TransitionReason) {
        self.seen.lock().unwrap().push((from, to, reason));
    }
}

impl Store {
    fn take(&self) -> Vec<(State, State, TransitionReason)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn fleet_breaker(store: &Arc<Store>, probes: u32) -> CircuitBreaker {
    CircuitBreaker::builder()
        .consecutive_failures(2)
        .half_open(HalfOpen::probes(probes))
        .freeze_for(Duration::from_secs(10))
        .fail_fast()
        .shared_state(store.clone())
        .try_build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_store_hears_of_local_transitions_with_their_reasons() {
    let store = Arc::new(Store::default());
    let breaker = fleet_breaker(&store, 1);
    let _ = fail(&breaker).await;
    let _ = fail(&breaker).await;
    assert_eq!(
        store.take(),
        vec![(State::Closed, State::Open, TransitionReason::Tripped)]
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    succeed(&breaker).await.unwrap();
    assert_eq!(
        store.take(),
        vec![
            (
                State::Open,
                State::HalfOpen,
                TransitionReason::OpenPeriodEnded
            ),
            (
                State::HalfOpen,
                State::Closed,
                TransitionReason::ProbesSucceeded
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn hold_open_opens_a_closed_breaker_for_the_fleets_period_then_it_goes_on_alone() {
    let store = Arc::new(Store::default());
    let breaker = fleet_breaker(&store, 1);
    let control = breaker.shared_control();
    assert!(control.hold_open(Duration::from_secs(3)));
    assert_eq!(breaker.state(), State::Open);
    let rejected = succeed(&breaker).await.unwrap_err();
    let rejected = rejected.rejected().unwrap();
    assert_eq!(rejected.reason(), RejectReason::Open);
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(
        store.take(),
        vec![(State::Closed, State::Open, TransitionReason::Shared)]
    );

    // The fleet moved the deadline: the same opening, a new deadline.
    assert!(control.hold_open(Duration::from_secs(5)));
    assert_eq!(breaker.metrics().retry_after, Some(Duration::from_secs(5)));
    tokio::time::advance(Duration::from_secs(4)).await;
    assert!(succeed(&breaker).await.is_err(), "still open at 4 s");
    tokio::time::advance(Duration::from_secs(1)).await;
    // Past the fleet's deadline the local breaker half-opens by itself.
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_half_open_lease_admits_the_configured_probes_and_ends_when_it_runs_out() {
    let store = Arc::new(Store::default());
    let breaker = fleet_breaker(&store, 2);
    let control = breaker.shared_control();
    assert!(!control.half_open(Duration::from_secs(1)), "only from open");
    control.hold_open(Duration::from_secs(60));
    assert!(control.half_open(Duration::from_secs(1)));
    assert_eq!(breaker.state(), State::HalfOpen);
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err(), "two probes at most");
    drop((first, second));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(breaker.state(), State::Open, "the lease ran out undecided");
    let seen = store.take();
    assert_eq!(
        seen.last(),
        Some(&(
            State::HalfOpen,
            State::Open,
            TransitionReason::HalfOpenTimedOut
        ))
    );
}

#[tokio::test(start_paused = true)]
async fn close_ends_the_fleets_open_period_and_releases_waiters() {
    let store = Arc::new(Store::default());
    let breaker = CircuitBreaker::builder()
        .freeze_for(Duration::from_secs(60))
        .shared_state(store.clone())
        .build();
    let control = breaker.shared_control();
    control.hold_open(Duration::from_secs(60));
    let waiting = tokio::spawn({
        let breaker = breaker.clone();
        async move { succeed(&breaker).await }
    });
    tokio::time::advance(Duration::from_millis(10)).await;
    assert_eq!(breaker.metrics().waiting, 1);
    assert!(control.close());
    assert_eq!(waiting.await.unwrap().unwrap(), 1);
    assert!(!control.close(), "already closed");
}

#[tokio::test(start_paused = true)]
async fn manual_states_win_over_the_store() {
    let store = Arc::new(Store::default());
    let breaker = fleet_breaker(&store, 1);
    let control = breaker.shared_control();
    breaker.force_open();
    assert!(!control.close());
    assert!(!control.hold_open(Duration::from_secs(1)));
    assert_eq!(breaker.state(), State::ForcedOpen);
    breaker.disable();
    assert!(!control.hold_open(Duration::from_secs(1)));
    assert_eq!(breaker.state(), State::Disabled);
}

#[tokio::test(start_paused = true)]
async fn counts_and_liveness_through_the_control() {
    let store = Arc::new(Store::default());
    let breaker = fleet_breaker(&store, 3);
    let control = breaker.shared_control();
    assert_eq!(control.probe_limit(), Some(3));
    succeed(&breaker).await.unwrap();
    let _ = breaker
        .execute(|| async { Err::<(), Boom>(Boom("x")) })
        .await;
    let counts = control.counts();
    assert_eq!((counts.successes, counts.failures), (1, 1));
    assert!(control.is_alive());
    drop(breaker);
    assert!(!control.is_alive());
    assert!(!control.hold_open(Duration::from_secs(1)));
    assert_eq!(control.state(), None);
    assert_eq!(
        CircuitBreaker::new().shared_control().probe_limit(),
        None,
        "the seed has no half-open state"
    );
}

/// SplitMix64, so that a failing run replays by its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// One seeded run: callers (some dropped at random) while a store opens,
/// half-opens and closes the breaker at random moments. Afterwards the
/// store closes it and the breaker must be usable, with nothing leaked.
async fn steered_run(seed: u64) {
    let mut rng = Rng(seed);
    let ms = Duration::from_millis;
    let store = Arc::new(Store::default());
    let builder = CircuitBreaker::builder()
        .consecutive_failures(2)
        .freeze_for(ms(15))
        .shared_state(store.clone());
    let breaker = match rng.below(3) {
        0 => builder.half_open(HalfOpen::probes(2)).try_build().unwrap(),
        1 => builder
            .half_open(HalfOpen::probes(1))
            .fail_fast()
            .try_build()
            .unwrap(),
        _ => builder.max_wait(ms(40)).try_build().unwrap(),
    };
    let mut tasks = Vec::new();
    for _ in 0..(3 + rng.below(10)) {
        let breaker = breaker.clone();
        let (delay, work, fails) = (rng.below(40), rng.below(15), rng.below(3) == 0);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(ms(delay)).await;
            let _ = breaker
                .execute(|| async move {
                    tokio::time::sleep(ms(work)).await;
                    if fails { Err(Boom("down")) } else { Ok(()) }
                })
                .await;
        }));
    }
    let control = breaker.shared_control();
    for _ in 0..(1 + rng.below(8)) {
        tokio::time::sleep(ms(rng.below(15))).await;
        match rng.below(4) {
            0 => {
                control.hold_open(ms(rng.below(30)));
            }
            1 => {
                control.half_open(ms(1 + rng.below(30)));
            }
            2 => {
                control.close();
            }
            _ => {
                let victim = rng.below(tasks.len() as u64) as usize;
                tasks[victim].abort();
            }
        }
    }
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: a call never finished"));
    }
    control.close();
    let metrics = breaker.metrics();
    assert_eq!(metrics.waiting, 0, "seed {seed}: a queue entry leaked");
    assert_eq!(
        metrics.probes_in_flight, 0,
        "seed {seed}: a probe slot leaked"
    );
    let after = tokio::time::timeout(Duration::from_secs(5), succeed(&breaker))
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: stuck after the store closed it"));
    assert!(
        after.is_ok(),
        "seed {seed}: refused after the store closed it"
    );
    assert_eq!(breaker.state(), State::Closed, "seed {seed}");
}

#[test]
fn random_steering_never_wedges_the_breaker() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    for seed in 0..1_000 {
        runtime.block_on(steered_run(seed));
    }
}
