//! OpenTelemetry through the `metrics` and `tracing` bridges (the guide's
//! recipe): tripswitch speaks only to the `metrics` and `tracing` facades,
//! so an OpenTelemetry pipeline gets its series and its logs from whatever
//! bridge is installed there. In a service, with the bridge crates:
//!
//! ```text
//! // metrics -> OpenTelemetry (e.g. metrics-exporter-otel 0.3, opentelemetry_sdk 0.31):
//! let meter = meter_provider.meter("gateway");
//! metrics::set_global_recorder(metrics_exporter_otel::OpenTelemetryRecorder::new(meter))?;
//! // tracing -> OpenTelemetry (tracing-opentelemetry): logs and spans with their fields.
//! tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer)).init();
//! ```
//!
//! To stay runnable without those crates, this example installs two
//! stand-ins with the same shape: a `metrics` recorder that keeps only
//! what OpenTelemetry instruments can take (counters add, gauges are set,
//! histograms record: OpenTelemetry gauges cannot be incremented, and
//! some bridges ignore it silently), and a `tracing` layer that keeps each
//! event's `breaker` field as an attribute. Run it with
//! `cargo run --example opentelemetry --features metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tracing_subscriber::layer::SubscriberExt as _;
use tripswitch::CircuitBreaker;

/// What the stand-in pipeline received: an instrument per name and
/// attributes, with its kind and value.
#[derive(Clone, Default)]
struct Pipeline {
    instruments: Arc<Mutex<BTreeMap<String, (&'static str, f64)>>>,
    /// Operations an OpenTelemetry instrument has no equivalent for.
    unsupported: Arc<AtomicU64>,
    /// `breaker` attributes of the log records.
    log_attributes: Arc<Mutex<Vec<String>>>,
}

/// One instrument of the stand-in recorder.
struct Instrument {
    pipeline: Pipeline,
    id: String,
}

impl Instrument {
    fn update(&self, kind: &'static str, change: impl FnOnce(f64) -> f64) {
        let mut instruments = self.pipeline.instruments.lock().unwrap();
        let entry = instruments.entry(self.id.clone()).or_insert((kind, 0.0));
        entry.1 = change(entry.1);
    }
}

impl metrics::CounterFn for Instrument {
    fn increment(&self, value: u64) {
        self.update("counter (monotonic sum)", |total| total + value as f64);
    }
    fn absolute(&self, _: u64) {
        self.pipeline.unsupported.fetch_add(1, Ordering::Relaxed);
    }
}

impl metrics::GaugeFn for Instrument {
    fn increment(&self, _: f64) {
        self.pipeline.unsupported.fetch_add(1, Ordering::Relaxed);
    }
    fn decrement(&self, _: f64) {
        self.pipeline.unsupported.fetch_add(1, Ordering::Relaxed);
    }
    fn set(&self, value: f64) {
        self.update("gauge", |_| value);
    }
}

impl metrics::HistogramFn for Instrument {
    fn record(&self, value: f64) {
        self.update("histogram (sum of samples)", |sum| sum + value);
    }
}

impl Pipeline {
    fn instrument(&self, key: &Key) -> Arc<Instrument> {
        let attributes: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Instrument {
            pipeline: self.clone(),
            id: format!("{} {{{}}}", key.name(), attributes.join(", ")),
        })
    }
}

impl Recorder for Pipeline {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let instrument = self.instrument(key);
        instrument.update("counter (monotonic sum)", |total| total);
        Counter::from_arc(instrument)
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let instrument = self.instrument(key);
        instrument.update("gauge", |value| value);
        Gauge::from_arc(instrument)
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let instrument = self.instrument(key);
        instrument.update("histogram (sum of samples)", |sum| sum);
        Histogram::from_arc(instrument)
    }
}

/// Keeps the `breaker` field of each `tracing` event, as a log record's
/// attribute.
struct LogBridge(Pipeline);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogBridge {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Breaker(Option<String>);
        impl tracing::field::Visit for Breaker {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "breaker" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "breaker" {
                    self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
                }
            }
        }
        let mut breaker = Breaker(None);
        event.record(&mut breaker);
        if let Some(name) = breaker.0 {
            self.0.log_attributes.lock().unwrap().push(name);
        }
    }
}

/// Some traffic through a breaker that exports its metrics, with both
/// bridges installed (for this thread); what the pipeline received, and
/// the breaker (a dropped breaker leaves `tripswitch_state`).
fn run() -> (Pipeline, CircuitBreaker) {
    let pipeline = Pipeline::default();
    let subscriber = tracing_subscriber::registry().with(LogBridge(pipeline.clone()));
    let _logs = tracing::subscriber::set_default(subscriber);
    let breaker = metrics::with_local_recorder(&pipeline, || {
        let breaker = CircuitBreaker::builder()
            .name("payments")
            .clock(tripswitch::clock::FakeClock::new())
            .consecutive_failures(2)
            .freeze_for(Duration::from_secs(30))
            .fail_fast()
            .export_metrics()
            .try_build()
            .expect("valid settings");
        let call = |ok: bool| {
            futures::executor::block_on(
                breaker.execute(|| async move { if ok { Ok(()) } else { Err("down") } }),
            )
        };
        let _ = call(true);
        let _ = call(false);
        let _ = call(false); // trips: a WARN log record
        let _ = call(true); // rejected
        breaker
    });
    (pipeline, breaker)
}

fn main() {
    let (pipeline, _breaker) = run();
    for (instrument, (kind, value)) in pipeline.instruments.lock().unwrap().iter() {
        println!("{instrument:<70} {kind:<28} {value}");
    }
    println!(
        "log records with a breaker attribute: {:?}",
        pipeline.log_attributes.lock().unwrap()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridges_receive_every_series_and_the_breaker_attribute() {
        let (pipeline, _breaker) = run();
        let instruments = pipeline.instruments.lock().unwrap();
        let value = |id: &str| instruments.get(id).map(|(_, value)| *value);
        assert_eq!(
            value("tripswitch_calls_total {breaker=payments, outcome=failure}"),
            Some(2.0)
        );
        assert_eq!(
            value("tripswitch_calls_total {breaker=payments, outcome=rejected}"),
            Some(1.0)
        );
        assert_eq!(
            value("tripswitch_transitions_total {breaker=payments, to=open}"),
            Some(1.0)
        );
        assert_eq!(
            value("tripswitch_state {breaker=payments, state=open}"),
            Some(1.0)
        );
        assert_eq!(
            value("tripswitch_state {breaker=payments, state=closed}"),
            Some(0.0)
        );
        // Nothing the OpenTelemetry instruments cannot take: gauges are set,
        // never incremented.
        assert_eq!(pipeline.unsupported.load(Ordering::Relaxed), 0);
        // The transition's log record carries the breaker's name.
        assert!(
            pipeline
                .log_attributes
                .lock()
                .unwrap()
                .iter()
                .any(|name| name == "payments")
        );
    }
}
