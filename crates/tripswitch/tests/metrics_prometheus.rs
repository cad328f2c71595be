//! The `metrics` export as Prometheus scrapes it (issue 18 points 5 and 6),
//! through the real `metrics-exporter-prometheus` recorder: names, types,
//! a `# HELP` for every metric, the state as a `state` label with 0/1
//! values, exactly the series a breaker's configuration can move (no wait
//! series for a fail-fast breaker, no slow-call counter without a
//! threshold), labels that do not depend on the builder's call order, a
//! registry's breakers named by their keys, unnamed breakers kept apart,
//! and two breakers sharing a name adding up, with a WARN.
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

/// The scrape after `traffic`, while the breakers it returns are alive (a
/// dropped breaker no longer counts in `tripswitch_state`).
fn scrape<T>(recorder: &PrometheusRecorder, traffic: impl FnOnce() -> T) -> String {
    let alive = metrics::with_local_recorder(recorder, traffic);
    let text = recorder.handle().render();
    drop(alive);
    text
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
            .half_open(tripswitch::HalfOpen::probes(1))
            .fail_fast()
            .try_build()
            .unwrap();
        run(&breaker, true);
        run(&breaker, false);
        run(&breaker, true); // rejected
        breaker
    });

    for (name, kind) in [
        ("tripswitch_calls_total", "counter"),
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

/// The series of one breaker in a scrape: each line's name and labels
/// (without the value) mapped to its value. A summary's quantile lines are
/// left out; its `_sum` and `_count` stand for it.
fn series(scrape: &str, breaker: &str) -> std::collections::BTreeMap<String, String> {
    lines_for(scrape, breaker)
        .into_iter()
        .filter(|line| !line.contains("quantile="))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.to_owned()))
        })
        .collect()
}

fn expect_series(scrape: &str, breaker: &str, expected: &[(&str, &str)]) {
    let got = series(scrape, breaker);
    let want: std::collections::BTreeMap<String, String> = expected
        .iter()
        .map(|(series, value)| {
            let series = series.replace("{", &format!("{{breaker=\"{breaker}\","));
            let series = series.replace(",}", "}");
            (series, (*value).to_owned())
        })
        .collect();
    assert_eq!(got, want, "the series of {breaker}:\n{scrape}");
}

#[test]
fn each_breaker_exports_the_series_its_configuration_can_move_and_no_other() {
    use tripswitch::HalfOpen;
    let recorder = PrometheusBuilder::new().build_recorder();
    let text = scrape(&recorder, || {
        // The standard preset: fail fast, one probe at a time: 9 series.
        let fast = CircuitBreaker::standard()
            .name("fast")
            .clock(FakeClock::new())
            .export_metrics()
            .build();
        run(&fast, true);
        // Wait mode (bounded), probes: the wait histogram too.
        let waiting = CircuitBreaker::standard()
            .name("waiting")
            .clock(FakeClock::new())
            .wait_when_open()
            .max_wait(Duration::from_secs(1))
            .export_metrics()
            .build();
        run(&waiting, true);
        // The seed preset: waits, never half-open (it releases everybody).
        let seed = CircuitBreaker::builder()
            .name("seed")
            .clock(FakeClock::new())
            .export_metrics()
            .build();
        run(&seed, true);
        // A slow-call threshold and ignored errors: their counters too.
        let measured = CircuitBreaker::builder()
            .name("measured")
            .clock(FakeClock::new())
            .half_open(HalfOpen::probes(1))
            .slow_call_threshold(Duration::from_secs(1))
            .ignore_errors(|_: &&str| false)
            .fail_fast()
            .export_metrics()
            .try_build()
            .unwrap();
        run(&measured, true);
        [fast, waiting, seed, measured]
    });
    let calls = [
        ("tripswitch_calls_total{outcome=\"success\",}", "1"),
        ("tripswitch_calls_total{outcome=\"failure\",}", "0"),
        ("tripswitch_calls_total{outcome=\"rejected\",}", "0"),
    ];
    let closed_and_open = [
        ("tripswitch_transitions_total{to=\"closed\",}", "0"),
        ("tripswitch_transitions_total{to=\"open\",}", "0"),
        ("tripswitch_state{state=\"closed\",}", "1"),
        ("tripswitch_state{state=\"open\",}", "0"),
    ];
    let half_open = [
        ("tripswitch_transitions_total{to=\"half_open\",}", "0"),
        ("tripswitch_state{state=\"half_open\",}", "0"),
    ];
    let wait = [
        ("tripswitch_wait_seconds_sum{}", "0"),
        ("tripswitch_wait_seconds_count{}", "0"),
    ];
    let fast: Vec<_> = [&calls[..], &closed_and_open, &half_open].concat();
    assert_eq!(fast.len(), 9);
    expect_series(&text, "fast", &fast);
    expect_series(
        &text,
        "waiting",
        &[&calls[..], &closed_and_open, &half_open, &wait].concat(),
    );
    expect_series(
        &text,
        "seed",
        &[&calls[..], &closed_and_open, &wait].concat(),
    );
    expect_series(
        &text,
        "measured",
        &[
            &calls[..],
            &closed_and_open,
            &half_open,
            &[
                ("tripswitch_calls_total{outcome=\"ignored\",}", "0"),
                ("tripswitch_slow_calls_total{}", "0"),
            ],
        ]
        .concat(),
    );
    // Every metric exported has its type and description.
    for (name, kind) in [
        ("tripswitch_calls_total", "counter"),
        ("tripswitch_slow_calls_total", "counter"),
        ("tripswitch_transitions_total", "counter"),
        ("tripswitch_state", "gauge"),
        ("tripswitch_wait_seconds", "summary"),
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
}

#[test]
fn manual_states_appear_when_first_entered() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let text = scrape(&recorder, || {
        let breaker = CircuitBreaker::builder()
            .name("manual")
            .clock(FakeClock::new())
            .fail_fast()
            .export_metrics()
            .build();
        run(&breaker, true);
        breaker.force_open();
        breaker.resume();
        breaker
    });
    let manual = series(&text, "manual");
    assert_eq!(
        manual.get(r#"tripswitch_state{breaker="manual",state="forced_open"}"#),
        Some(&"0".to_owned()),
        "{text}"
    );
    assert_eq!(
        manual.get(r#"tripswitch_transitions_total{breaker="manual",to="forced_open"}"#),
        Some(&"1".to_owned()),
        "{text}"
    );
    assert_eq!(
        manual.get(r#"tripswitch_state{breaker="manual",state="closed"}"#),
        Some(&"1".to_owned()),
        "{text}"
    );
    assert!(
        !manual
            .keys()
            .any(|k| k.contains("disabled") || k.contains("metrics_only")),
        "states never entered are not exported:\n{text}"
    );
}

#[test]
fn the_label_is_the_built_name_whatever_the_order_on_the_builder() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let text = scrape(&recorder, || {
        let before = CircuitBreaker::builder()
            .export_metrics()
            .name("named-after")
            .fail_fast()
            .build();
        let after = CircuitBreaker::builder()
            .name("named-before")
            .export_metrics()
            .fail_fast()
            .build();
        run(&before, true);
        run(&after, true);
        [before, after]
    });
    for name in ["named-after", "named-before"] {
        assert!(
            text.contains(&format!(
                "tripswitch_calls_total{{breaker=\"{name}\",outcome=\"success\"}} 1"
            )),
            "{name}:\n{text}"
        );
    }
    assert!(!text.contains(r#"breaker="""#), "{text}");
    assert!(!text.contains("unnamed-"), "{text}");
}

#[test]
fn a_registry_names_its_breakers_by_key_unless_the_factory_does() {
    use tripswitch::Registry;
    let recorder = PrometheusBuilder::new().build_recorder();
    let text = scrape(&recorder, || {
        let by_key = Registry::new(8, |_: &String| {
            CircuitBreaker::builder()
                .fail_fast()
                .export_metrics()
                .build()
        });
        let named = Registry::new(8, |key: &String| {
            CircuitBreaker::builder()
                .name(format!("api {key}"))
                .fail_fast()
                .export_metrics()
                .build()
        });
        run(&by_key.get(&"orders:443".to_string()), true);
        run(&by_key.get(&"stock:443".to_string()), false);
        run(&named.get(&"users:443".to_string()), true);
        (by_key, named)
    });
    assert!(
        text.contains(r#"tripswitch_calls_total{breaker="orders:443",outcome="success"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tripswitch_calls_total{breaker="stock:443",outcome="failure"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tripswitch_calls_total{breaker="api users:443",outcome="success"} 1"#),
        "{text}"
    );
    assert!(!text.contains("unnamed-"), "{text}");
}

#[test]
fn two_live_breakers_with_one_name_add_up_with_one_warning() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let recorder = PrometheusBuilder::new().build_recorder();
    let build = || {
        CircuitBreaker::builder()
            .name("twice")
            .clock(FakeClock::new())
            .fail_fast()
            .export_metrics()
            .build()
    };
    let (both, one_left) = metrics::with_local_recorder(&recorder, || {
        let first = build();
        let second = build();
        let third = build();
        run(&first, true);
        run(&second, false); // the second trips
        run(&third, true);
        let both = recorder.handle().render();
        drop(second);
        drop(third);
        (both, recorder.handle().render())
    });
    let twice = series(&both, "twice");
    let value = |map: &std::collections::BTreeMap<String, String>, series: &str| {
        map.get(&series.replace("{", "{breaker=\"twice\","))
            .cloned()
    };
    assert_eq!(
        value(&twice, r#"tripswitch_calls_total{outcome="success"}"#).as_deref(),
        Some("2"),
        "counters add up:\n{both}"
    );
    assert_eq!(
        value(&twice, r#"tripswitch_state{state="closed"}"#).as_deref(),
        Some("2"),
        "{both}"
    );
    assert_eq!(
        value(&twice, r#"tripswitch_state{state="open"}"#).as_deref(),
        Some("1"),
        "{both}"
    );
    // Dropped breakers take their state with them.
    let left = series(&one_left, "twice");
    assert_eq!(
        value(&left, r#"tripswitch_state{state="closed"}"#).as_deref(),
        Some("1"),
        "{one_left}"
    );
    assert_eq!(
        value(&left, r#"tripswitch_state{state="open"}"#).as_deref(),
        Some("0"),
        "{one_left}"
    );
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings = logged
        .lines()
        .filter(|l| {
            l.contains("WARN") && l.contains("two live circuit breakers") && l.contains("twice")
        })
        .count();
    assert_eq!(warnings, 1, "one WARN per name:\n{logged}");
}
