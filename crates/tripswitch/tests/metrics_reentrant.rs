//! The exported state follows transitions made inside the breaker's own
//! callbacks (found by an adversarial review: the exporter, a listener,
//! was skipped by the re-entrancy guard along with the user's listeners).
#![cfg(all(feature = "metrics", feature = "tokio"))]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use tripswitch::clock::FakeClock;
use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, State};

#[derive(Debug)]
struct Boom;

fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new().build_recorder()
}

fn series<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&format!("breaker=\"{name}\"")))
        .collect()
}

fn value(text: &str, metric: &str, name: &str, extra: &str) -> Option<f64> {
    text.lines()
        .filter(|l| {
            l.starts_with(metric) && l.contains(&format!("breaker=\"{name}\"")) && l.contains(extra)
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .next()
}

/// queued calls waiting" — i.e. it is supported. export_metrics: "1 for the
/// current state, 0 for the others".
#[test]
fn state_gauge_follows_listener_force_open() {
    let rec = recorder();
    metrics::with_local_recorder(&rec, || {
        let clock = FakeClock::new();
        let cell: Arc<OnceLock<CircuitBreaker>> = Arc::new(OnceLock::new());
        let c2 = cell.clone();
        let b = CircuitBreaker::standard()
            .name("reentrant-x4")
            .clock(clock.clone())
            .consecutive_failures(1)
            .export_metrics()
            .on_event(move |e| {
                if let EventKind::Transition {
                    to: State::Closed, ..
                } = e.kind()
                {
                    c2.get().unwrap().force_open();
                }
            })
            .build();
        cell.set(b.clone()).unwrap();
        b.try_acquire().unwrap().failure(&Boom);
        clock.advance(Duration::from_secs(5));
        b.try_acquire().unwrap().success(); // probe -> Closed -> listener forces open
        assert_eq!(b.state(), State::ForcedOpen);
        let text = rec.handle().render();
        assert_eq!(
            value(
                &text,
                "tripswitch_state",
                "reentrant-x4",
                "state=\"forced_open\""
            ),
            Some(1.0),
            "gauge does not show forced_open:\n{}",
            series(&text, "reentrant-x4").join("\n")
        );
        assert_eq!(
            value(
                &text,
                "tripswitch_state",
                "reentrant-x4",
                "state=\"closed\""
            ),
            Some(0.0)
        );
    });
}

/// Same with the seed's on_error forcing the breaker open.
#[test]
fn state_gauge_follows_on_error_force_open() {
    let rec = recorder();
    metrics::with_local_recorder(&rec, || {
        let cell: Arc<OnceLock<CircuitBreaker>> = Arc::new(OnceLock::new());
        let c2 = cell.clone();
        let b = CircuitBreaker::standard()
            .name("onerror-x5")
            .consecutive_failures(100)
            .export_metrics()
            .on_error(move |_| c2.get().unwrap().force_open())
            .build();
        cell.set(b.clone()).unwrap();
        b.try_acquire().unwrap().failure(&Boom);
        assert_eq!(b.state(), State::ForcedOpen);
        let text = rec.handle().render();
        assert_eq!(
            value(
                &text,
                "tripswitch_state",
                "onerror-x5",
                "state=\"forced_open\""
            ),
            Some(1.0),
            "gauge:\n{}",
            series(&text, "onerror-x5").join("\n")
        );
    });
}
