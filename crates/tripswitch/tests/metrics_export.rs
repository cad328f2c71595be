//! The `metrics` feature: counters by outcome, the state gauge, wait times.
#![cfg(all(feature = "metrics", not(loom)))]

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tripswitch::clock::FakeClock;
use tripswitch::{CircuitBreaker, HalfOpen};

#[test]
fn events_become_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // The breaker is kept until the snapshot: a dropped breaker no longer
    // counts in the state gauge.
    let _breaker = metrics::with_local_recorder(&recorder, || {
        let clock = FakeClock::new();
        let breaker = CircuitBreaker::builder()
            .name("db")
            .clock(clock.clone())
            .half_open(HalfOpen::probes(1))
            .freeze_for(Duration::from_secs(1))
            .fail_fast()
            .export_metrics()
            .try_build()
            .unwrap();
        let run = |ok: bool| {
            futures::executor::block_on(
                breaker.execute(|| async move { if ok { Ok(()) } else { Err("down") } }),
            )
        };
        run(true).unwrap();
        run(false).unwrap_err();
        run(true).unwrap_err(); // rejected
        breaker
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let value = |name: &str, label: Option<(&str, &str)>| {
        snapshot
            .iter()
            .find(|(key, _, _, _)| {
                key.key().name() == name
                    && label.is_none_or(|(k, v)| {
                        key.key().labels().any(|l| l.key() == k && l.value() == v)
                    })
                    && key
                        .key()
                        .labels()
                        .any(|l| l.key() == "breaker" && l.value() == "db")
            })
            .map(|(_, _, _, value)| value)
    };
    assert_eq!(
        value("tripswitch_calls_total", Some(("outcome", "success"))),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        value("tripswitch_calls_total", Some(("outcome", "failure"))),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        value("tripswitch_calls_total", Some(("outcome", "rejected"))),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        value("tripswitch_transitions_total", Some(("to", "open"))),
        Some(&DebugValue::Counter(1))
    );
    let gauge = |state: &str| match value("tripswitch_state", Some(("state", state))) {
        Some(DebugValue::Gauge(g)) => g.into_inner(),
        other => panic!("state {state}: {other:?}"),
    };
    assert_eq!(gauge("open"), 1.0);
    for state in ["closed", "half_open"] {
        assert_eq!(gauge(state), 0.0, "{state}");
    }
    // States the breaker can only enter by hand appear when first entered.
    for state in ["forced_open", "disabled", "metrics_only"] {
        assert_eq!(
            value("tripswitch_state", Some(("state", state))),
            None,
            "{state}"
        );
    }
}
