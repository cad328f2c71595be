//! A Rust [`Builder`] from the settings the Python package passes: a dict
//! of plain values (seconds as floats), checked by the Python side first
//! and by `try_build` last.

use std::cell::Cell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tripswitch::clock::StdClock;
use tripswitch::events::{Event, EventKind};
use tripswitch::policy::{FailureRate, SlowCallRate, Window};
use tripswitch::{Backoff, Builder, HalfOpen, Preset};

use crate::bridge::{Signal, lock};

thread_local! {
    /// Set by the breaker's `on_error` hook while a failure is recorded on
    /// this thread: the Python side then calls the Python `on_error`.
    pub(crate) static TOLD: Cell<bool> = const { Cell::new(false) };
}

/// The freeze a Python freeze function is to run: made by the breaker when
/// it trips, taken by the Python call that recorded the failure.
pub(crate) type FreezeSlot = Arc<Mutex<Option<Arc<Signal>>>>;

/// What the core needs besides the builder.
pub(crate) struct Built {
    pub(crate) builder: Builder,
    /// `Some` when the open period is a Python freeze function's.
    pub(crate) freezes: Option<FreezeSlot>,
    /// The listeners' dispatcher, shared with the breaker's event hook.
    pub(crate) listener: Arc<ListenerSlot>,
}

/// The Python dispatcher of a breaker's events, where the breaker's hook
/// (inside the Rust breaker, invisible to Python's garbage collector) and
/// the `Core` object that owns the breaker both reach it. `Core` reports
/// it to the collector (`__traverse__`) and empties it (`__clear__`), so
/// that a listener that refers back to its breaker makes a cycle the
/// collector can break: once cleared, the hook delivers nothing.
#[derive(Default)]
pub(crate) struct ListenerSlot(std::sync::Mutex<Option<Py<PyAny>>>);

impl ListenerSlot {
    /// The dispatcher, if any. Taken out of the lock before it is called:
    /// a call may run the collector, which reads this slot.
    fn get(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let held = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.as_ref().map(|listener| listener.clone_ref(py))
    }

    /// Reports the dispatcher to the collector. `try_lock`: never waits in
    /// the collector (the lock is only held, with the GIL, for a clone).
    pub(crate) fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if let Ok(held) = self.0.try_lock()
            && let Some(listener) = held.as_ref()
        {
            visit.call(listener)?;
        }
        Ok(())
    }

    /// Drops the dispatcher (the collector breaking a cycle).
    pub(crate) fn clear(&self) -> Option<Py<PyAny>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

fn seconds(value: f64, setting: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{setting} must be a finite number of seconds >= 0, not {value}"
        ))
    })
}

fn get<'py, T: FromPyObjectOwned<'py>>(
    config: &Bound<'py, PyDict>,
    key: &str,
) -> PyResult<Option<T>> {
    match config.get_item(key)? {
        Some(value) if !value.is_none() => Ok(Some(value.extract().map_err(Into::into)?)),
        _ => Ok(None),
    }
}

fn window(kind: &str, value: f64) -> PyResult<Window> {
    match kind {
        "calls" => {
            if value < 1.0 || value.fract() != 0.0 || value > f64::from(u32::MAX) {
                return Err(PyValueError::new_err(format!(
                    "a window of calls needs a whole number of calls >= 1, not {value}"
                )));
            }
            // Checked above: a whole number in u32's range.
            Ok(Window::last_calls(value as u32))
        }
        "seconds" => Ok(Window::last(seconds(value, "window")?)),
        other => Err(PyValueError::new_err(format!(
            "unknown window kind {other:?} (\"calls\" or \"seconds\")"
        ))),
    }
}

/// Builds the Rust builder from `config`.
pub(crate) fn builder(config: &Bound<'_, PyDict>) -> PyResult<Built> {
    let preset = match get::<String>(config, "preset")?.as_deref() {
        None | Some("seed") => Preset::Seed,
        Some("standard") => Preset::Standard,
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "unknown preset {other:?} (\"seed\" or \"standard\")"
            )));
        }
    };
    let mut builder = Builder::from_preset(preset)
        .clock(StdClock::new())
        // The Python `on_error` is called by the Python side, with the
        // exception itself; the core only says when.
        .on_error(|_| TOLD.with(|told| told.set(true)));
    if let Some(name) = get::<String>(config, "name")? {
        builder = builder.name(name);
    }
    let mut freezes = None;
    if let Some(open_for) = get::<f64>(config, "open_for")? {
        builder = builder.open_for(seconds(open_for, "open_for")?);
    } else if preset == Preset::Seed || get::<bool>(config, "freeze_function")?.unwrap_or(false) {
        let slot: FreezeSlot = Arc::default();
        let made = Arc::clone(&slot);
        builder = builder.freeze_with(move || {
            let signal = Arc::new(Signal::default());
            let stale = lock(&made).replace(Arc::clone(&signal));
            // A freeze nobody took is over: a new one replaces it.
            if let Some(stale) = stale {
                stale.end();
            }
            signal.future()
        });
        freezes = Some(slot);
    }
    if let Some((initial, max, multiplier, jitter)) =
        get::<(f64, f64, f64, f64)>(config, "backoff")?
    {
        builder = builder.backoff(
            Backoff::exponential(seconds(initial, "backoff")?, seconds(max, "backoff")?)
                .multiplier(multiplier)
                .jitter(jitter),
        );
    }
    if let Some(max) = get::<f64>(config, "max_freeze")? {
        builder = builder.max_freeze(seconds(max, "max_freeze")?);
    }
    if let Some(n) = get::<u32>(config, "consecutive_failures")? {
        builder = builder.consecutive_failures(n);
    }
    if let Some((threshold, kind, size, min_calls)) =
        get::<(f64, String, f64, Option<u32>)>(config, "failure_rate")?
    {
        let mut policy = FailureRate::new(threshold, window(&kind, size)?);
        if let Some(min_calls) = min_calls {
            policy = policy.min_calls(min_calls);
        }
        builder = builder.failure_rate(policy);
    }
    if let Some((slow_after, threshold, kind, size, min_calls)) =
        get::<(f64, f64, String, f64, Option<u32>)>(config, "slow_call_rate")?
    {
        let mut policy = SlowCallRate::new(
            seconds(slow_after, "slow_call_rate.slow_after")?,
            threshold,
            window(&kind, size)?,
        );
        if let Some(min_calls) = min_calls {
            policy = policy.min_calls(min_calls);
        }
        builder = builder.slow_call_rate(policy);
    }
    if let Some(threshold) = get::<f64>(config, "slow_call_threshold")? {
        builder = builder.slow_call_threshold(seconds(threshold, "slow_call_threshold")?);
    }
    if let Some((probes, close_after, max_duration)) =
        get::<(Option<u32>, Option<u32>, Option<f64>)>(config, "half_open")?
    {
        let mut half_open = match probes {
            Some(probes) => HalfOpen::probes(probes),
            None => HalfOpen::release_all(),
        };
        if let Some(successes) = close_after {
            half_open = half_open.close_after(successes);
        }
        if let Some(max) = max_duration {
            half_open = half_open.max_duration(seconds(max, "half_open.max_duration")?);
        }
        builder = builder.half_open(half_open);
    }
    match get::<bool>(config, "fail_fast")? {
        Some(true) => builder = builder.fail_fast(),
        Some(false) => builder = builder.wait_when_open(),
        None => {}
    }
    if let Some(max) = get::<f64>(config, "max_wait")? {
        builder = builder.max_wait(seconds(max, "max_wait")?);
    }
    if let Some(max) = get::<usize>(config, "max_waiters")? {
        builder = builder.max_waiters(max);
    }
    if let Some(retry) = get::<bool>(config, "retry_after_freeze")? {
        builder = builder.retry_after_freeze(retry);
    }
    let slot = Arc::new(ListenerSlot::default());
    if let Some(listener) = config.get_item("listener")?
        && !listener.is_none()
    {
        *slot
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(listener.unbind());
        let hook = Arc::clone(&slot);
        builder = builder.on_event(move |event| deliver(&hook, event));
    }
    Ok(Built {
        builder,
        freezes,
        listener: slot,
    })
}

/// Hands an event to the Python dispatcher (which calls the listeners and
/// logs what they raise): `(kind, breaker, fields)`.
fn deliver(slot: &ListenerSlot, event: &Event<'_>) {
    // `None` while the interpreter shuts down: nobody listens any more.
    let _ = Python::try_attach(|py| {
        // None once the collector cleared it: the breaker is being collected.
        let Some(listener) = slot.get(py) else {
            return;
        };
        let fields = PyDict::new(py);
        let kind = match fill(&fields, event.kind()) {
            Ok(kind) => kind,
            Err(error) => {
                // Reported as unraisable: never `print`, which exits the
                // process on a `SystemExit`.
                error.write_unraisable(py, None);
                return;
            }
        };
        let args = (kind, event.breaker(), fields);
        if let Err(error) = listener.call1(py, args) {
            // The dispatcher catches what listeners raise; this is its own
            // failure. Unraisable: `print` would exit on a `SystemExit`.
            error.write_unraisable(py, None);
        }
    });
}

fn fill(fields: &Bound<'_, PyDict>, kind: &EventKind<'_>) -> PyResult<&'static str> {
    let secs = |d: &Option<Duration>| d.map(|d| d.as_secs_f64());
    Ok(match kind {
        EventKind::Transition { from, to, reason } => {
            fields.set_item("from_state", from.to_string())?;
            fields.set_item("to_state", to.to_string())?;
            fields.set_item("reason", snake(&format!("{reason:?}")))?;
            "transition"
        }
        EventKind::Success { elapsed } => {
            fields.set_item("elapsed", secs(elapsed))?;
            "success"
        }
        EventKind::Failure { error, elapsed } => {
            fields.set_item("error", format!("{error:?}"))?;
            fields.set_item("elapsed", secs(elapsed))?;
            "failure"
        }
        EventKind::Ignored { error } => {
            fields.set_item("error", format!("{error:?}"))?;
            "ignored"
        }
        EventKind::Slow { elapsed, threshold } => {
            fields.set_item("elapsed", elapsed.as_secs_f64())?;
            fields.set_item("threshold", threshold.as_secs_f64())?;
            "slow"
        }
        EventKind::Rejected { reason } => {
            fields.set_item("reason", snake(&format!("{reason:?}")))?;
            "rejected"
        }
        EventKind::Waited { waited } => {
            fields.set_item("elapsed", waited.as_secs_f64())?;
            "waited"
        }
        _ => "other",
    })
}

/// `HalfOpenTimedOut` → `half_open_timed_out`.
pub(crate) fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
