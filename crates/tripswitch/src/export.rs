//! Exporting a breaker's events through the `metrics` crate (feature `metrics`).
//!
//! Series, each labelled `breaker` (the breaker's name, taken from its
//! events, so it does not matter whether `name` came before or after
//! `export_metrics` on the builder):
//!
//! - `tripswitch_calls_total{outcome}` (counter): success, failure, ignored, rejected;
//! - `tripswitch_slow_calls_total` (counter);
//! - `tripswitch_transitions_total{to}` (counter);
//! - `tripswitch_state{state}` (gauge): 1 for the state the breaker is in, 0
//!   for the others, as Prometheus' conventions want (not one number per
//!   state);
//! - `tripswitch_wait_seconds` (histogram): only once a call has waited, so
//!   a fail-fast breaker has no always-empty series.
//!
//! Each has a description (`# HELP`). An unnamed breaker is labelled
//! `unnamed-N` (N counting from 1 in the process), so that two unnamed
//! breakers' series never merge, and a WARN says so once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Unit};

use crate::State;
use crate::events::{Event, EventKind};

const STATES: [State; 6] = [
    State::Closed,
    State::Open,
    State::HalfOpen,
    State::ForcedOpen,
    State::Disabled,
    State::MetricsOnly,
];

/// The metric handles of one breaker, made on its first event.
struct Handles {
    success: Counter,
    failure: Counter,
    ignored: Counter,
    rejected: Counter,
    slow: Counter,
    /// One gauge per state, in the order of `STATES`.
    states: [Gauge; 6],
    /// Made on the first wait.
    wait: OnceLock<Histogram>,
    name: String,
}

fn describe() {
    metrics::describe_counter!(
        "tripswitch_calls_total",
        Unit::Count,
        "Calls through the circuit breaker, by outcome: success, failure, ignored (an error the breaker was told to ignore) or rejected (refused without running)."
    );
    metrics::describe_counter!(
        "tripswitch_slow_calls_total",
        Unit::Count,
        "Calls that took longer than the breaker's slow-call threshold."
    );
    metrics::describe_counter!(
        "tripswitch_transitions_total",
        Unit::Count,
        "State changes of the circuit breaker, by the state entered."
    );
    metrics::describe_gauge!(
        "tripswitch_state",
        "1 for the state the circuit breaker is in (closed, open, half_open, forced_open, disabled, metrics_only), 0 for the others."
    );
    metrics::describe_histogram!(
        "tripswitch_wait_seconds",
        Unit::Seconds,
        "How long calls waited for the circuit breaker to let them through (wait mode)."
    );
}

impl Handles {
    fn new(name: String) -> Self {
        describe();
        let calls = |outcome: &'static str| metrics::counter!("tripswitch_calls_total", "breaker" => name.clone(), "outcome" => outcome);
        let state = |state: State| metrics::gauge!("tripswitch_state", "breaker" => name.clone(), "state" => state_label(state));
        let handles = Self {
            success: calls("success"),
            failure: calls("failure"),
            ignored: calls("ignored"),
            rejected: calls("rejected"),
            slow: metrics::counter!("tripswitch_slow_calls_total", "breaker" => name.clone()),
            states: STATES.map(state),
            wait: OnceLock::new(),
            name,
        };
        // A breaker starts closed; a transition event corrects this at once.
        handles.set_state(State::Closed);
        handles
    }

    fn set_state(&self, current: State) {
        for (state, gauge) in STATES.iter().zip(&self.states) {
            gauge.set(if *state == current { 1.0 } else { 0.0 });
        }
    }
}

fn state_label(state: State) -> &'static str {
    match state {
        State::Closed => "closed",
        State::Open => "open",
        State::HalfOpen => "half_open",
        State::ForcedOpen => "forced_open",
        State::Disabled => "disabled",
        State::MetricsOnly => "metrics_only",
    }
}

/// The label of an unnamed breaker: `unnamed-N`, N unique in the process.
fn unnamed_label() -> String {
    static UNNAMED: AtomicU64 = AtomicU64::new(0);
    let label = format!("unnamed-{}", UNNAMED.fetch_add(1, Ordering::Relaxed) + 1);
    tracing::warn!(
        breaker = label.as_str(),
        "tripswitch: a circuit breaker without a name exports its metrics as breaker=\"{label}\"; give it .name(..) for a stable label"
    );
    label
}

/// The listener behind [`Builder::export_metrics`](crate::Builder::export_metrics).
/// The name the builder had when `export_metrics` was called is only a
/// fallback: the label is the name the events carry.
pub(crate) fn listener(name: Option<Arc<str>>) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
    let handles: OnceLock<Handles> = OnceLock::new();
    move |event| {
        let handles = handles.get_or_init(|| {
            Handles::new(match event.breaker().or(name.as_deref()) {
                Some(name) => name.to_owned(),
                None => unnamed_label(),
            })
        });
        match event.kind() {
            EventKind::Success { .. } => handles.success.increment(1),
            EventKind::Failure { .. } => handles.failure.increment(1),
            EventKind::Ignored { .. } => handles.ignored.increment(1),
            EventKind::Rejected { .. } => handles.rejected.increment(1),
            EventKind::Slow { .. } => handles.slow.increment(1),
            EventKind::Waited { waited } => handles
                .wait
                .get_or_init(|| {
                    metrics::histogram!("tripswitch_wait_seconds", "breaker" => handles.name.clone())
                })
                .record(waited.as_secs_f64()),
            EventKind::Transition { to, .. } => {
                handles.set_state(*to);
                metrics::counter!(
                    "tripswitch_transitions_total",
                    "breaker" => handles.name.clone(),
                    "to" => state_label(*to)
                )
                .increment(1);
            }
        }
    }
}

/// Sets the rate gauges of a breaker from a snapshot of its metrics:
/// `tripswitch_failure_rate{breaker}` and `tripswitch_slow_call_rate{breaker}`
/// (from 0 to 1, over the first failure-rate and slow-call-rate policies'
/// windows; a rate the breaker does not have, or whose window is empty, is
/// not set). Rates change with every call, so they are read when asked, not
/// pushed per event: call it where the metrics are rendered, e.g. for each
/// breaker of [`Registry::snapshot`](crate::Registry::snapshot) in a
/// `/metrics` handler, as `examples/axum_gateway.rs` does.
///
/// ```
/// use tripswitch::{CircuitBreaker, Registry};
///
/// let registry = Registry::new(64, |host: &String| {
///     CircuitBreaker::standard().name(host.as_str()).build()
/// });
/// registry.get(&"api:443".to_string());
/// for breaker in registry.snapshot() {
///     tripswitch::record_rates(breaker.name.as_deref().unwrap_or(&breaker.key), &breaker.metrics);
/// }
/// ```
pub fn record_rates(breaker: &str, metrics: &crate::Metrics) {
    metrics::describe_gauge!(
        "tripswitch_failure_rate",
        "Failures among the calls of the circuit breaker's failure-rate window, from 0 to 1."
    );
    metrics::describe_gauge!(
        "tripswitch_slow_call_rate",
        "Slow calls among the calls of the circuit breaker's slow-call-rate window, from 0 to 1."
    );
    if let Some(rate) = metrics.failure_rate {
        metrics::gauge!("tripswitch_failure_rate", "breaker" => breaker.to_owned()).set(rate);
    }
    if let Some(rate) = metrics.slow_call_rate {
        metrics::gauge!("tripswitch_slow_call_rate", "breaker" => breaker.to_owned()).set(rate);
    }
}
