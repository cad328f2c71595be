//! Exporting a breaker's events through the `metrics` crate (feature `metrics`).
//!
//! Series, each labelled `breaker` (the breaker's name as it was built, so
//! it does not matter whether `name` came before or after `export_metrics`
//! on the builder):
//!
//! - `tripswitch_calls_total{outcome}` (counter): success, failure,
//!   rejected; ignored when the breaker has `ignore_errors` rules (or once
//!   a classifier ignored a call);
//! - `tripswitch_slow_calls_total` (counter): only with a slow-call
//!   threshold or a slow-call-rate policy;
//! - `tripswitch_transitions_total{to}` (counter): open, closed, and
//!   half_open when the breaker probes;
//! - `tripswitch_state{state}` (gauge): 1 for the state the breaker is in, 0
//!   for the others, as Prometheus' conventions want (not one number per
//!   state): closed, open, and half_open when the breaker probes;
//! - `tripswitch_wait_seconds` (histogram): only in wait mode.
//!
//! So a breaker exports every series its configuration can move, at zero
//! from its first event (an alert on `increase(..)` sees the first trip),
//! and none that must stay zero. The manual states (forced_open, disabled,
//! metrics_only) and their transitions appear the first time they are
//! entered.
//!
//! Each has a description (`# HELP`). An unnamed breaker is labelled
//! `unnamed-N` (N counting from 1 in the process), so that two unnamed
//! breakers' series never merge, and a WARN says so once.
//!
//! **Two live breakers with the same name** export into the same series:
//! counters add up and `tripswitch_state` counts the breakers in each state
//! (each breaker adds 1 to its state's gauge and takes it back when it is
//! dropped). This is what a [`Registry`](crate::Registry) needs when it
//! replaces an evicted breaker that calls still hold: the host's series go
//! on without a jump. Anywhere else it is a mistake, so the first time a
//! second breaker exports under a name in use, a WARN names it (once per
//! name in the process).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use metrics::{Counter, Gauge, Histogram, Unit};

use crate::State;
use crate::events::{Event, EventKind};

/// What the breaker's configuration lets happen, decided at build: which
/// series can move, and so are exported from the start.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// The name the breaker was built with.
    pub(crate) name: Option<Arc<str>>,
    /// Calls may wait (wait mode).
    pub(crate) waits: bool,
    /// Calls are timed against a slow-call threshold.
    pub(crate) slow: bool,
    /// `ignore_errors` rules.
    pub(crate) ignores: bool,
    /// The breaker can be half-open: it probes, or a shared store may
    /// hand it the fleet's probes.
    pub(crate) probes: bool,
}

const STATES: [State; 6] = [
    State::Closed,
    State::Open,
    State::HalfOpen,
    State::ForcedOpen,
    State::Disabled,
    State::MetricsOnly,
];

fn index(state: State) -> usize {
    STATES.iter().position(|s| *s == state).unwrap_or(0)
}

/// The metric handles of one breaker, made on its first event. Series the
/// configuration cannot move are made the first time they do move, if
/// ever (a classifier's ignored call, a manual state).
struct Handles {
    success: Counter,
    failure: Counter,
    rejected: Counter,
    ignored: OnceLock<Counter>,
    slow: OnceLock<Counter>,
    wait: OnceLock<Histogram>,
    /// One gauge and one transition counter per state, in the order of `STATES`.
    states: [OnceLock<Gauge>; 6],
    transitions: [OnceLock<Counter>; 6],
    name: Arc<str>,
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
        "1 for the state the circuit breaker is in (closed, open, half_open, forced_open, disabled, metrics_only), 0 for the others; breakers sharing a name add up."
    );
    metrics::describe_histogram!(
        "tripswitch_wait_seconds",
        Unit::Seconds,
        "How long calls waited for the circuit breaker to let them through (wait mode)."
    );
}

impl Handles {
    fn new(shape: &Shape, name: Arc<str>) -> Self {
        describe();
        let calls = |outcome: &'static str| metrics::counter!("tripswitch_calls_total", "breaker" => name.to_string(), "outcome" => outcome);
        let handles = Self {
            success: calls("success"),
            failure: calls("failure"),
            rejected: calls("rejected"),
            ignored: OnceLock::new(),
            slow: OnceLock::new(),
            wait: OnceLock::new(),
            states: Default::default(),
            transitions: Default::default(),
            name,
        };
        if shape.ignores {
            handles.ignored();
        }
        if shape.slow {
            handles.slow();
        }
        if shape.waits {
            handles.wait();
        }
        let mut reachable = vec![State::Closed, State::Open];
        if shape.probes {
            reachable.push(State::HalfOpen);
        }
        for state in reachable {
            handles.state(state);
            handles.transitions(state);
        }
        handles
    }

    fn ignored(&self) -> &Counter {
        self.ignored.get_or_init(|| metrics::counter!("tripswitch_calls_total", "breaker" => self.name.to_string(), "outcome" => "ignored"))
    }

    fn slow(&self) -> &Counter {
        self.slow.get_or_init(
            || metrics::counter!("tripswitch_slow_calls_total", "breaker" => self.name.to_string()),
        )
    }

    fn wait(&self) -> &Histogram {
        self.wait.get_or_init(
            || metrics::histogram!("tripswitch_wait_seconds", "breaker" => self.name.to_string()),
        )
    }

    /// The state's gauge (made at 0 the first time).
    fn state(&self, state: State) -> &Gauge {
        // Making the handle registers the series (at 0, unless a breaker
        // sharing the name holds it already).
        self.states[index(state)].get_or_init(|| metrics::gauge!("tripswitch_state", "breaker" => self.name.to_string(), "state" => state_label(state)))
    }

    fn transitions(&self, to: State) -> &Counter {
        self.transitions[index(to)].get_or_init(|| metrics::counter!("tripswitch_transitions_total", "breaker" => self.name.to_string(), "to" => state_label(to)))
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
fn unnamed_label() -> Arc<str> {
    static UNNAMED: AtomicU64 = AtomicU64::new(0);
    let label = format!("unnamed-{}", UNNAMED.fetch_add(1, Ordering::Relaxed) + 1);
    crate::events::trace(|| {
        tracing::warn!(
            breaker = label.as_str(),
            "tripswitch: a circuit breaker without a name exports its metrics as breaker=\"{label}\"; give it .name(..) for a stable label"
        )
    });
    label.into()
}

/// The breakers exporting under one name now: how many, and how many are
/// in each state (the values of its `tripswitch_state` gauges).
#[derive(Default)]
struct Live {
    breakers: usize,
    in_state: [u32; 6],
    /// The WARN about sharing the name was given (the entry is then kept,
    /// so that it is given once per name).
    warned: bool,
}

/// Every name exported under, with its live breakers. Gauges are set under
/// this lock, so that they always show its counts; it is taken when an
/// exporting breaker makes its handles, changes state or is dropped,
/// never on a call's path.
fn exporting() -> std::sync::MutexGuard<'static, HashMap<Arc<str>, Live>> {
    static NAMES: OnceLock<Mutex<HashMap<Arc<str>, Live>>> = OnceLock::new();
    NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Moves one of `handles.name`'s breakers, whose state for the gauge is
/// `current`, to state `to` (none: it is dropped), and sets the gauges of
/// both states. `starts`: the breaker was not counted yet (its `current`
/// is then closed, and it enters closed).
fn move_breaker(handles: &Handles, current: &AtomicU8, starts: bool, to: Option<State>) {
    let warn = {
        let mut names = exporting();
        let live = names.entry(Arc::clone(&handles.name)).or_default();
        let mut warn = false;
        // Under the lock: the moves of one breaker apply in the order of
        // their swaps, so a count never goes below zero.
        let left = match to {
            Some(to) => current.swap(index(to) as u8, Ordering::Relaxed),
            None => current.load(Ordering::Relaxed),
        };
        let from = (!starts).then(|| STATES[usize::from(left)]);
        if starts {
            live.breakers += 1;
            warn = live.breakers == 2 && !live.warned;
            live.warned |= warn;
        }
        if to.is_none() {
            live.breakers = live.breakers.saturating_sub(1);
        }
        if let Some(from) = from {
            let count = &mut live.in_state[index(from)];
            *count = count.saturating_sub(1);
            handles.state(from).set(f64::from(*count));
        }
        if let Some(to) = to {
            let count = &mut live.in_state[index(to)];
            *count = count.saturating_add(1);
            handles.state(to).set(f64::from(*count));
        }
        if live.breakers == 0 && !live.warned {
            names.remove(&handles.name);
        }
        warn
    };
    if warn {
        crate::events::trace(|| {
            tracing::warn!(
                breaker = &*handles.name,
                "tripswitch: two live circuit breakers export metrics as breaker=\"{}\": their counters add up and tripswitch_state counts both; give each breaker its own name (expected only while a registry replaces an evicted breaker that calls still hold)",
                handles.name
            )
        });
    }
}

/// The exporter of one breaker: its handles, made on the first event.
struct Exporter {
    shape: Shape,
    handles: OnceLock<Handles>,
    /// The state this breaker counts in for `tripswitch_state`; changed
    /// under the [`exporting`] lock.
    current: AtomicU8,
}

impl Exporter {
    fn handles(&self, event: &Event<'_>) -> &Handles {
        self.handles.get_or_init(|| {
            let name = match (&self.shape.name, event.breaker()) {
                (Some(name), _) => Arc::clone(name),
                (None, Some(name)) => Arc::from(name),
                (None, None) => unnamed_label(),
            };
            let handles = Handles::new(&self.shape, name);
            // A breaker is built closed; the first event, if a
            // transition, moves it on from there.
            move_breaker(&handles, &self.current, true, Some(State::Closed));
            handles
        })
    }

    fn on_event(&self, event: &Event<'_>) {
        let handles = self.handles(event);
        match event.kind() {
            EventKind::Success { .. } => handles.success.increment(1),
            EventKind::Failure { .. } => handles.failure.increment(1),
            EventKind::Ignored { .. } => handles.ignored().increment(1),
            EventKind::Rejected { .. } => handles.rejected.increment(1),
            EventKind::Slow { .. } => handles.slow().increment(1),
            EventKind::Waited { waited } => handles.wait().record(waited.as_secs_f64()),
            // The transition that follows is what the exporter counts.
            EventKind::RateExceeded { .. } => {}
            EventKind::Transition { to, .. } => {
                handles.transitions(*to).increment(1);
                // From `current` rather than the event's `from`: events of
                // two transitions may be delivered out of order, and each
                // breaker must count in exactly one state.
                move_breaker(handles, &self.current, false, Some(*to));
            }
        }
    }
}

impl Drop for Exporter {
    /// The breaker is gone: it no longer counts in `tripswitch_state`.
    fn drop(&mut self) {
        if let Some(handles) = self.handles.get() {
            move_breaker(handles, &self.current, false, None);
        }
    }
}

/// The listener behind [`Builder::export_metrics`](crate::Builder::export_metrics),
/// made when the breaker is built, from what its configuration lets happen.
pub(crate) fn listener(shape: Shape) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
    let exporter = Exporter {
        shape,
        handles: OnceLock::new(),
        current: AtomicU8::new(index(State::Closed) as u8),
    };
    move |event| exporter.on_event(event)
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
/// let registry = Registry::new(64, |_: &String| CircuitBreaker::standard().build());
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
