//! The `metrics` export as Prometheus scrapes it (issue 18 points 5 and 6),
//! through the real `metrics-exporter-prometheus` recorder: names, types,
//! a `# HELP` for every metric, the state as a `state` label with 0/1
//! values, no wait series for a fail-fast breaker, labels that do not
//! depend on the builder's call order, and unnamed breakers kept apart.
#![cfg(all(feature = "metrics", not(loom)))]

use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use tripswitch::CircuitBreaker;
use tripswitch::clock::FakeClock;

fn run(breaker: &CircuitBreaker, ok: bool) {
    let _ = futures::executor::block_on(
        breaker.execute(|| async move { if ok { Ok(()) } else { Err("down") } }),
    );
}

fn scrape(recorder: &PrometheusRecorder, traffic: impl FnOnce()) -> String {
    metrics::with_local_recorder(recorder, traffic);
    recorder.handle().render()
}

fn lines_for<'a>(scrape: &'a str, breaker: &str) -> Vec<&'a str> {
    let label = format!("breaker=\"{breaker}\"");
    scrape
        .lines()
        .filter(|line| line.contains(&label))
        .collect()
}

#[test]
fn a_fail_fast_breaker_scrapes_with_help_types_and_a_state_label() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let text = scrape(&recorder, || {
        let breaker = CircuitBreaker::builder()
            .export_metrics() // before .name(): the label is the name all the same
            .name("db")
            .clock(FakeClock::new())
            .freeze_for(Duration::from_secs(1))
            .fail_fast()
            .try_build()
            .unwrap();
        run(&breaker, true);
        run(&breaker, false);
        run(&breaker, true); // rejected
    });

    for (name, kind) in [
        ("tripswitch_calls_total", "counter"),
        ("tripswitch_slow_calls_total", "counter"),
        ("tripswitch_transitions_total", "counter"),
        ("tripswitch_state", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} {kind}:\n{text}"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "HELP for {name}:\n{text}"
        );
    }
    let db = lines_for(&text, "db");
    for expected in [
        r#"tripswitch_calls_total{breaker="db",outcome="success"} 1"#,
        r#"tripswitch_calls_total{breaker="db",outcome="failure"} 1"#,
        r#"tripswitch_calls_total{breaker="db",outcome="rejected"} 1"#,
        r#"tripswitch_transitions_total{breaker="db",to="open"} 1"#,
        r#"tripswitch_state{breaker="db",state="open"} 1"#,
        r#"tripswitch_state{breaker="db",state="closed"} 0"#,
        r#"tripswitch_state{breaker="db",state="half_open"} 0"#,
    ] {
        assert!(db.contains(&expected), "{expected} missing:\n{text}");
    }
    assert!(!text.contains(r#"breaker="""#), "an empty label:\n{text}");
    assert!(
        !text.contains("tripswitch_wait_seconds"),
        "a fail-fast breaker never waits, so it has no wait series:\n{text}"
    );
}

#[test]
fn a_breaker_that_waited_has_a_described_wait_series() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let text = scrape(&recorder, || {
        // A current-thread runtime, so that every event fires on this
        // thread, under the local recorder; paused time, so the wait is 1 s
        // of tokio's clock and no real time.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let breaker = CircuitBreaker::builder()
                .name("queue")
                .freeze_for(Duration::from_secs(1))
                .max_wait(Duration::from_secs(5))
                .retry_after_freeze(false)
                .export_metrics()
                .try_build()
                .unwrap();
            let _ = breaker.execute(|| async { Err::<(), _>("down") }).await;
            let start = tokio::time::Instant::now();
            breaker
                .acquire()
                .await
                .expect("let through after the freeze")
                .success();
            assert_eq!(start.elapsed(), Duration::from_secs(1));
        });
    });
    // The exporter renders histograms as summaries unless told buckets.
    assert!(
        text.contains("# TYPE tripswitch_wait_seconds summary\n"),
        "{text}"
    );
    assert!(text.contains("# HELP tripswitch_wait_seconds "), "{text}");
    assert!(
        text.contains(r#"tripswitch_wait_seconds_count{breaker="queue"} 1"#),
        "{text}"
    );
}

/// Log lines, captured for the current thread.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn unnamed_breakers_get_distinct_labels() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let recorder = PrometheusBuilder::new().build_recorder();
    let text = scrape(&recorder, || {
        for _ in 0..2 {
            let breaker = CircuitBreaker::builder()
                .clock(FakeClock::new())
                .fail_fast()
                .export_metrics()
                .build();
            run(&breaker, true);
        }
    });
    let labels: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("tripswitch_calls_total{") && l.contains("outcome=\"success\""))
        .filter_map(|l| l.split("breaker=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(labels.len(), 2, "two series, not one merged:\n{text}");
    assert!(
        labels.iter().all(|l| l.starts_with("unnamed-")),
        "{labels:?}"
    );
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings = logged
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("without a name"))
        .count();
    assert_eq!(
        warnings, 2,
        "one WARN per unnamed breaker, not per event:\n{logged}"
    );
}

#[test]
fn failure_and_slow_call_rates_are_gauges_read_when_asked() {
    use tripswitch::policy::{FailureRate, SlowCallRate, Window};
    let recorder = PrometheusBuilder::new().build_recorder();
    let text = scrape(&recorder, || {
        let breaker = CircuitBreaker::builder()
            .name("rates")
            .clock(FakeClock::new())
            .failure_rate(FailureRate::new(0.9, Window::last_calls(10)).min_calls(10))
            .slow_call_rate(SlowCallRate::new(
                Duration::from_secs(1),
                0.9,
                Window::last_calls(10),
            ))
            .fail_fast()
            .try_build()
            .unwrap();
        run(&breaker, true);
        run(&breaker, false);
        run(&breaker, true);
        run(&breaker, false);
        tripswitch::record_rates("rates", &breaker.metrics());
        // A breaker without rate policies sets no rate gauge.
        let plain = CircuitBreaker::builder().name("plain").fail_fast().build();
        tripswitch::record_rates("plain", &plain.metrics());
    });
    assert!(
        text.contains("# TYPE tripswitch_failure_rate gauge\n"),
        "{text}"
    );
    assert!(text.contains("# HELP tripswitch_failure_rate "), "{text}");
    assert!(
        text.contains(r#"tripswitch_failure_rate{breaker="rates"} 0.5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tripswitch_slow_call_rate{breaker="rates"} 0"#),
        "{text}"
    );
    assert!(!text.contains(r#"breaker="plain""#), "{text}");
}
