//! A `tracing` subscriber that panics on every line (user code the fleet's
//! sync task runs) must not stop the sync task: a trip on one replica still
//! reaches the other, and the fleet's close too. Its own test binary: the
//! subscriber is the process-wide default.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, redis};
use tracing::Subscriber;
use tracing::span::{Attributes, Id, Record};
use tripswitch::{CircuitBreaker, HalfOpen, State};
use tripswitch_redis::{Fleet, FleetEvent, FleetOpenPeriod};

#[derive(Debug)]
struct Boom;

const SOON: Duration = Duration::from_secs(10);

/// Enabled for everything, and panics on every event it is handed.
struct Panics;

impl Subscriber for Panics {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        panic!(
            "subscriber test: a panicking subscriber ({})",
            event.metadata().name()
        );
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

async fn replica(url: &str, id: &str) -> (Fleet, CircuitBreaker, Arc<Mutex<Vec<FleetEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let fleet = Fleet::builder(url.to_string())
        .prefix("test-panicking-subscriber")
        .replica_id(id)
        .sync_interval(Duration::from_millis(20))
        .command_timeout(Duration::from_millis(150))
        .probe_lease(Duration::from_secs(1))
        .open_period(FleetOpenPeriod::fixed(Duration::from_millis(200)))
        .on_event(move |event| seen.lock().unwrap().push(event.clone()))
        .connect()
        .await
        .unwrap();
    let local = CircuitBreaker::builder()
        .consecutive_failures(2)
        .half_open(HalfOpen::probes(1))
        .freeze_for(Duration::from_secs(30))
        .fail_fast();
    let breaker = fleet.breaker("db", local).await.unwrap();
    (fleet, breaker, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_subscriber_does_not_stop_the_fleets_sync() {
    let Some(server) = redis() else { return };
    tracing::subscriber::set_global_default(Panics).expect("the only subscriber of this binary");
    // The panics are contained; keep their messages out of the output.
    std::panic::set_hook(Box::new(|_| {}));
    let (_fleet_a, a, _) = replica(&server.url(), "a").await;
    let (_fleet_b, b, b_events) = replica(&server.url(), "b").await;

    for _ in 0..2 {
        let _ = a.execute(|| async { Err::<(), _>(Boom) }).await;
    }
    assert_eq!(a.state(), State::Open);
    // b learns of the trip from its sync task (which logs it: a panic).
    eventually(SOON, "b open", || b.state() == State::Open).await;
    // Then the fleet's period ends, one replica probes, and the close
    // reaches both: every step a line the subscriber panics on.
    eventually(SOON, "the fleet closes on both replicas", || {
        for breaker in [&a, &b] {
            let breaker = breaker.clone();
            tokio::spawn(async move {
                let _ = breaker.execute(|| async { Ok::<(), Boom>(()) }).await;
            });
        }
        a.state() == State::Closed && b.state() == State::Closed
    })
    .await;
    assert!(
        b_events
            .lock()
            .unwrap()
            .iter()
            .any(|event| matches!(event, FleetEvent::Opened { .. })),
        "b's listener heard the opening"
    );
}
