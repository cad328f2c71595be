//! Exporting a breaker's events through the `metrics` crate (feature `metrics`).

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram};

use crate::State;
use crate::events::{Event, EventKind};

/// The metric handles of one breaker, made on its first event.
struct Handles {
    success: Counter,
    failure: Counter,
    ignored: Counter,
    rejected: Counter,
    slow: Counter,
    state: Gauge,
    wait: Histogram,
    name: String,
}

impl Handles {
    fn new(name: String) -> Self {
        let calls = |outcome: &'static str| metrics::counter!("tripswitch_calls_total", "breaker" => name.clone(), "outcome" => outcome);
        Self {
            success: calls("success"),
            failure: calls("failure"),
            ignored: calls("ignored"),
            rejected: calls("rejected"),
            slow: metrics::counter!("tripswitch_slow_calls_total", "breaker" => name.clone()),
            state: metrics::gauge!("tripswitch_state", "breaker" => name.clone()),
            wait: metrics::histogram!("tripswitch_wait_seconds", "breaker" => name.clone()),
            name,
        }
    }
}

fn state_value(state: State) -> f64 {
    match state {
        State::Closed => 0.0,
        State::Open => 1.0,
        State::HalfOpen => 2.0,
        State::ForcedOpen => 3.0,
        State::Disabled => 4.0,
        State::MetricsOnly => 5.0,
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

/// The listener behind [`Builder::export_metrics`](crate::Builder::export_metrics).
pub(crate) fn listener(name: Option<Arc<str>>) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
    let handles: OnceLock<Handles> = OnceLock::new();
    move |event| {
        let handles =
            handles.get_or_init(|| Handles::new(name.as_deref().unwrap_or("").to_owned()));
        match event.kind() {
            EventKind::Success { .. } => handles.success.increment(1),
            EventKind::Failure { .. } => handles.failure.increment(1),
            EventKind::Ignored { .. } => handles.ignored.increment(1),
            EventKind::Rejected { .. } => handles.rejected.increment(1),
            EventKind::Slow { .. } => handles.slow.increment(1),
            EventKind::Waited { waited } => handles.wait.record(waited.as_secs_f64()),
            EventKind::Transition { to, .. } => {
                handles.state.set(state_value(*to));
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
