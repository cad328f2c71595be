//! What counts as a failure: ignored errors, Ok values that are failures,
//! cancellation, panics, and full accounting outside the seed preset.

mod common;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Boom, Recorder, fail, succeed};
use futures::FutureExt;
use tripswitch::{CircuitBreaker, Error, HalfOpen, Outcome, State};

#[derive(Debug, PartialEq)]
enum DbError {
    NotFound,
    Timeout,
}

#[tokio::test(start_paused = true)]
async fn ignored_errors_are_neither_success_nor_failure() {
    let recorder = Recorder::default();
    let breaker = CircuitBreaker::builder()
        .ignore_errors(|e: &DbError| *e == DbError::NotFound)
        .consecutive_failures(2)
        .fail_fast()
        .on_event(recorder.listener())
        .try_build()
        .unwrap();
    let timeout = || async { Err::<(), _>(DbError::Timeout) };
    let not_found = || async { Err::<(), _>(DbError::NotFound) };
    breaker.execute(timeout).await.unwrap_err();
    // An ignored error neither resets nor extends the run of failures.
    assert_eq!(
        breaker.execute(not_found).await,
        Err(Error::Inner(DbError::NotFound))
    );
    assert_eq!(breaker.metrics().consecutive_failures, Some(1));
    breaker.execute(timeout).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    let totals = breaker.metrics().totals;
    assert_eq!((totals.failures, totals.ignored), (2, 1));
    assert_eq!(recorder.count("ignored"), 1);
}

#[tokio::test(start_paused = true)]
async fn an_ignored_probe_frees_its_half_open_slot() {
    let breaker = CircuitBreaker::builder()
        .ignore_errors(|e: &DbError| *e == DbError::NotFound)
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(1))
        .fail_fast()
        .try_build()
        .unwrap();
    breaker
        .execute(|| async { Err::<(), _>(DbError::Timeout) })
        .await
        .unwrap_err();
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker
        .execute(|| async { Err::<(), _>(DbError::NotFound) })
        .await
        .unwrap_err();
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    // The slot is free for the next probe, which closes the breaker.
    breaker
        .execute(|| async { Ok::<_, DbError>(()) })
        .await
        .unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_ok_value_can_count_as_a_failure() {
    let breaker = CircuitBreaker::builder().fail_fast().build();
    let is_5xx = |r: &Result<u16, Boom>| match r {
        Ok(status) if *status >= 500 => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    };
    assert_eq!(
        breaker
            .execute_classified(is_5xx, || async { Ok(200) })
            .await,
        Ok(200)
    );
    assert_eq!(breaker.state(), State::Closed);
    // The caller still gets its 503; the breaker counts a failure and opens.
    assert_eq!(
        breaker
            .execute_classified(is_5xx, || async { Ok(503) })
            .await,
        Ok(503)
    );
    assert_eq!(breaker.state(), State::Open);
    let rejected = breaker
        .execute_classified(is_5xx, || async { Ok(200) })
        .await;
    assert!(rejected.unwrap_err().is_rejected());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_records_nothing_and_gives_back_its_probe_slot() {
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .half_open(HalfOpen::probes(1))
            .freeze_for(Duration::from_secs(1))
            .fail_fast()
            .try_build()
            .unwrap(),
    );
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(1)).await;
    let hanging = breaker.execute(|| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Boom>(0)
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(10), hanging)
            .await
            .is_err()
    );
    let metrics = breaker.metrics();
    assert_eq!(metrics.state, State::HalfOpen);
    assert_eq!(
        metrics.probes_in_flight, 0,
        "the dropped probe freed its slot at once"
    );
    assert_eq!(metrics.totals.cancelled, 1);
    assert_eq!(metrics.totals.failures, 1);
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_failure_and_still_reaches_the_caller() {
    let recorder = Recorder::default();
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(1)
        .fail_fast()
        .on_event(recorder.listener())
        .try_build()
        .unwrap();
    let outcome = AssertUnwindSafe(breaker.execute(|| async {
        panic!("kaboom");
        #[allow(unreachable_code)]
        Ok::<(), Boom>(())
    }))
    .catch_unwind()
    .await;
    assert!(outcome.is_err());
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(recorder.count("failure"), 1);
}

#[tokio::test(start_paused = true)]
async fn outside_the_seed_preset_released_calls_are_counted_and_trip_again() {
    // Release-all after the freeze, like the seed, but with full accounting:
    // a still-broken service re-trips on the released herd.
    let trips = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&trips);
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .half_open(HalfOpen::release_all())
            .freeze_for(Duration::from_secs(1))
            .on_event(move |e| {
                if let tripswitch::events::EventKind::Transition {
                    to: State::Open, ..
                } = e.kind()
                {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            })
            .try_build()
            .unwrap(),
    );
    fail(&breaker).await.unwrap_err();
    assert_eq!(trips.load(Ordering::SeqCst), 1);
    let mut herd = Vec::new();
    for _ in 0..3 {
        let breaker = Arc::clone(&breaker);
        herd.push(tokio::spawn(async move { fail(&breaker).await }));
    }
    tokio::time::sleep(Duration::from_millis(1001)).await;
    tokio::task::yield_now().await;
    assert!(
        trips.load(Ordering::SeqCst) >= 2,
        "the released herd re-tripped the breaker"
    );
    breaker.reset();
    for call in herd {
        call.await.unwrap().unwrap_err();
    }
}

#[tokio::test(start_paused = true)]
async fn the_seed_retry_can_be_turned_on_outside_the_preset_and_counts_there() {
    let runs = AtomicU32::new(0);
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(1)
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(1))
        .retry_after_freeze(true)
        .try_build()
        .unwrap();
    let result = breaker
        .execute(|| {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            async move { if run == 0 { Err(Boom("once")) } else { Ok(run) } }
        })
        .await;
    assert_eq!(result, Ok(1));
    // The retry was the half-open probe, and its success closed the breaker.
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().totals.successes, 1);
}

#[tokio::test(start_paused = true)]
async fn the_seed_retry_can_be_turned_off() {
    let runs = AtomicU32::new(0);
    let breaker = CircuitBreaker::builder().retry_after_freeze(false).build();
    let result = breaker
        .execute(|| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Boom("no retry")) }
        })
        .await;
    assert_eq!(result, Err(Error::Inner(Boom("no retry"))));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(breaker.is_frozen());
}

/// A named classifier: the crate's one `Classify` trait.
#[cfg(feature = "tower")]
#[derive(Clone, Copy)]
struct FiveHundreds;

#[cfg(feature = "tower")]
impl<E> tripswitch::Classify<u16, E> for FiveHundreds {
    fn classify(&self, result: &Result<u16, E>) -> Outcome {
        match result {
            Ok(status) if *status >= 500 => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

#[cfg(feature = "tower")]
#[tokio::test(start_paused = true)]
async fn one_classify_trait_serves_execute_classified_and_the_tower_layer() {
    use tower::{Service, ServiceExt};
    // execute_classified takes it...
    let breaker = CircuitBreaker::standard().consecutive_failures(1).build();
    let answer = breaker
        .execute_classified(FiveHundreds, || async { Ok::<u16, Boom>(503) })
        .await;
    assert_eq!(answer, Ok(503));
    assert_eq!(breaker.state(), State::Open);

    // ... and so does the tower layer, the same value.
    let breaker = CircuitBreaker::standard().consecutive_failures(1).build();
    let mut service = tower::ServiceBuilder::new()
        .layer(tripswitch::tower::CircuitBreakerLayer::new(breaker.clone()).classify(FiveHundreds))
        .service(tower::service_fn(|status: u16| async move {
            Ok::<u16, std::io::Error>(status)
        }));
    let answer = service.ready().await.unwrap().call(502).await.unwrap();
    assert_eq!(answer, 502);
    assert_eq!(breaker.state(), State::Open);
}
