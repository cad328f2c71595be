//! The `metrics` feature: the last sync's time, reachability, and each
//! breaker's sync errors, exported against a real `redis-server`.
#![cfg(feature = "metrics")]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{eventually, redis};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// One snapshot (the debugging recorder drains values as it reads them:
/// a gauge reads 0 unless set since the last snapshot, a counter the
/// increments since then).
type Snap = Vec<(String, Vec<(String, String)>, f64)>;

fn snap(snapshotter: &Snapshotter) -> Snap {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels = key
                .key()
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(_) => f64::NAN,
            };
            (key.key().name().to_string(), labels, value)
        })
        .collect()
}
use tripswitch::CircuitBreaker;
use tripswitch_redis::Fleet;

fn value(snap: &Snap, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    snap.iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| *value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleets_health_is_exported() {
    let Some(server) = redis() else { return };
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let mut admin = server.connection().await;
    let _: () = redis::cmd("SET")
        .arg("t-metrics:{bad}:state")
        .arg("not a hash")
        .query_async(&mut admin)
        .await
        .unwrap();
    let fleet = Fleet::builder(server.url())
        .prefix("t-metrics")
        .replica_id("m")
        .sync_interval(Duration::from_millis(20))
        .connect()
        .await
        .unwrap();
    let _bad = fleet
        .breaker("bad", CircuitBreaker::builder().fail_fast())
        .await
        .unwrap();
    let replica = [("replica", "m")];
    let soon = Duration::from_secs(5);
    let mut last = None;
    eventually(soon, "connected and synced", || {
        let snap = snap(&snapshotter);
        last = value(&snap, "tripswitch_fleet_last_sync_seconds", &replica);
        value(&snap, "tripswitch_fleet_connected", &replica) == Some(1.0)
            && last.is_some_and(|t| t > 0.0)
    })
    .await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = last.unwrap();
    assert!((now - last).abs() < 5.0, "a recent time: {last} vs {now}");
    let bad = [("replica", "m"), ("breaker", "bad")];
    let mut errors = 0.0;
    eventually(soon, "the bad breaker's error is exported", || {
        let snap = snap(&snapshotter);
        errors += value(
            &snap,
            "tripswitch_fleet_sync_errors_total",
            &[("breaker", "bad"), ("code", "WRONGTYPE")],
        )
        .unwrap_or(0.0);
        value(&snap, "tripswitch_fleet_sync_failing", &bad) == Some(1.0) && errors >= 1.0
    })
    .await;

    // The key is fixed: the breaker syncs again.
    let _: () = redis::cmd("DEL")
        .arg("t-metrics:{bad}:state")
        .query_async(&mut admin)
        .await
        .unwrap();
    // (The recorder drains: a later snapshot holds only what happened since.)
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = snap(&snapshotter);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let since = snap(&snapshotter);
    assert_eq!(
        value(&since, "tripswitch_fleet_sync_errors_total", &bad).unwrap_or(0.0),
        0.0,
        "no error since the key was fixed"
    );
    assert_eq!(
        value(&since, "tripswitch_fleet_connected", &replica),
        Some(1.0)
    );
}
