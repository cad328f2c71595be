//! Review 19m: the exporter's `breaker` label after the name moved into what
//! rejections carry (feature `metrics`).
#![cfg(feature = "metrics")]

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tripswitch::CircuitBreaker;
use tripswitch::clock::FakeClock;

fn breaker_labels(f: impl FnOnce()) -> Vec<(String, String, DebugValue)> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, f);
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let breaker = key
                .labels()
                .find(|l| l.key() == "breaker")
                .map(|l| l.value().to_owned())
                .unwrap_or_default();
            (key.name().to_owned(), breaker, value)
        })
        .collect()
}

#[test]
fn exported_series_carry_the_name_or_an_unnamed_label() {
    let clock = FakeClock::new();
    let series = breaker_labels(|| {
        let named = CircuitBreaker::standard()
            .name("payments")
            .clock(clock.clone())
            .consecutive_failures(1)
            .open_for(Duration::from_secs(1))
            .export_metrics()
            .build();
        let unnamed = CircuitBreaker::standard()
            .clock(clock.clone())
            .export_metrics()
            .build();
        named.try_acquire().unwrap().failure(&"boom");
        let _ = named.try_acquire().unwrap_err();
        unnamed.try_acquire().unwrap().success();
    });
    let payments: Vec<_> = series.iter().filter(|s| s.1 == "payments").collect();
    assert!(
        payments
            .iter()
            .any(|s| s.0 == "tripswitch_calls_total" && matches!(s.2, DebugValue::Counter(1))),
        "{series:?}"
    );
    assert!(
        payments
            .iter()
            .any(|s| s.0 == "tripswitch_transitions_total")
    );
    let unnamed: Vec<_> = series
        .iter()
        .filter(|s| s.1.starts_with("unnamed-"))
        .collect();
    assert!(!unnamed.is_empty(), "{series:?}");
    assert!(series.iter().all(|s| !s.1.is_empty()), "{series:?}");
}
