//! Listeners and metrics snapshots.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Boom, Recorder, fail, succeed};
use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, HalfOpen, State};

#[tokio::test(start_paused = true)]
async fn every_kind_of_event_is_reported_with_the_breaker_name_and_time() {
    let recorder = Recorder::default();
    let names = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&names);
    let breaker = CircuitBreaker::builder()
        .name("db")
        .ignore_errors(|e: &Boom| e.0 == "ignore me")
        .slow_call_threshold(Duration::from_millis(100))
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(1))
        .fail_fast()
        .on_event(recorder.listener())
        .on_event(move |e| {
            sink.lock()
                .unwrap()
                .push((e.breaker().map(String::from), e.at()))
        })
        .try_build()
        .unwrap();
    succeed(&breaker).await.unwrap();
    breaker
        .execute(|| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok::<_, Boom>(())
        })
        .await
        .unwrap();
    breaker
        .execute(|| async { Err::<(), _>(Boom("ignore me")) })
        .await
        .unwrap_err();
    fail(&breaker).await.unwrap_err();
    succeed(&breaker).await.unwrap_err();
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            "success",
            "success",
            "slow",
            "ignored Boom(\"ignore me\")",
            "failure Boom(\"down\")",
            "closed->open",
            "rejected Open",
        ]
    );
    let names = names.lock().unwrap();
    assert!(names.iter().all(|(name, _)| name.as_deref() == Some("db")));
    assert_eq!(
        names[1].1,
        Duration::from_millis(150),
        "events carry the clock time"
    );
}

#[tokio::test(start_paused = true)]
async fn listeners_see_the_new_state_already_published() {
    let observed = Arc::new(Mutex::new(Vec::new()));
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::new(Mutex::new(None));
    let (sink, reader) = (Arc::clone(&observed), Arc::clone(&slot));
    let breaker = CircuitBreaker::builder()
        .fail_fast()
        .on_event(move |e| {
            if let EventKind::Transition { to, .. } = e.kind()
                && let Some(b) = reader.lock().unwrap().as_ref()
            {
                sink.lock().unwrap().push((*to, b.metrics().state));
            }
        })
        .build();
    *slot.lock().unwrap() = Some(breaker.clone());
    fail(&breaker).await.unwrap_err();
    assert_eq!(*observed.lock().unwrap(), vec![(State::Open, State::Open)]);
    slot.lock().unwrap().take();
}

#[tokio::test(start_paused = true)]
async fn a_panicking_listener_does_not_wedge_the_breaker() {
    let breaker = CircuitBreaker::builder()
        .on_event(|_| panic!("listener bug"))
        .freeze_for(Duration::from_millis(10))
        .fail_fast()
        .build();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(Duration::from_millis(10)).await;
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn metrics_report_state_counts_and_time_left() {
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(2)
        .freeze_for(Duration::from_secs(10))
        .fail_fast()
        .try_build()
        .unwrap();
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    let m = breaker.metrics();
    assert_eq!((m.state, m.consecutive_failures), (State::Closed, Some(1)));
    assert_eq!((m.totals.successes, m.totals.failures), (1, 1));
    assert_eq!(m.retry_after, Some(Duration::ZERO));
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(4)).await;
    succeed(&breaker).await.unwrap_err();
    let m = breaker.metrics();
    assert_eq!(m.state, State::Open);
    assert_eq!(m.retry_after, Some(Duration::from_secs(6)));
    assert_eq!(m.current.rejected, 1, "counts since the breaker opened");
    assert_eq!(m.current.failures, 0);
    assert_eq!(m.totals.calls(), 4);
}
