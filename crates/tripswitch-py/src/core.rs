//! The breaker as Python sees it underneath `tripswitch.CircuitBreaker`:
//! synchronous admission and recording, and waits bridged to asyncio.

use std::fmt;
use std::sync::{Arc, OnceLock};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tripswitch::{CircuitBreaker, Counts, OwnedPermit, Rejected};

use crate::bridge::{Output, Pending, Signal, Task, Waiter, lock};
use crate::config::{self, FreezeSlot, ListenerSlot, TOLD, snake};

/// `tripswitch.CircuitOpenError`, registered by the package at import.
static OPEN_ERROR: OnceLock<Py<PyAny>> = OnceLock::new();

/// Registers the Python classes the extension raises.
#[pyfunction]
pub(crate) fn _register(open_error: Bound<'_, PyAny>) {
    let _ = OPEN_ERROR.set(open_error.unbind());
}

/// The `CircuitOpenError` for a refused call.
fn open_error(py: Python<'_>, rejected: &Rejected) -> PyErr {
    let Some(class) = OPEN_ERROR.get() else {
        return PyRuntimeError::new_err(rejected.to_string());
    };
    let args = (
        rejected.to_string(),
        rejected.name(),
        rejected.retry_after().map(|d| d.as_secs_f64()),
        rejected.state().to_string(),
        snake(&format!("{:?}", rejected.reason())),
    );
    match class.call1(py, args) {
        Ok(error) => PyErr::from_value(error.into_bound(py)),
        Err(error) => error,
    }
}

/// A Python exception as the breaker sees it: its `repr`.
struct PyException(String);

impl fmt::Debug for PyException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn seen(exception: &Bound<'_, PyAny>) -> PyException {
    PyException(
        exception
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "<exception>".to_string()),
    )
}

/// The Rust breaker behind a `tripswitch.CircuitBreaker`.
#[pyclass(frozen, module = "tripswitch._native", name = "Core")]
pub(crate) struct Core {
    breaker: CircuitBreaker,
    /// The freeze a Python freeze function is to run (seed mode).
    freezes: Option<FreezeSlot>,
    fails_fast: bool,
    /// The listeners' dispatcher the breaker's event hook calls; reported
    /// to Python's garbage collector from here (see [`ListenerSlot`]).
    listener: Arc<ListenerSlot>,
}

impl Core {
    pub(crate) fn new(
        breaker: CircuitBreaker,
        freezes: Option<FreezeSlot>,
        listener: Arc<ListenerSlot>,
    ) -> Self {
        let fails_fast = breaker.__fails_fast();
        Self {
            breaker,
            freezes,
            fails_fast,
            listener,
        }
    }
}

fn permit_output(granted: Result<OwnedPermit, Rejected>) -> Output {
    Box::new(move |py| match granted {
        Ok(permit) => Ok(Py::new(py, Permit { run: Some(permit) })?.into_any()),
        Err(rejected) => Err(open_error(py, &rejected)),
    })
}

#[pymethods]
impl Core {
    /// A breaker from the package's settings dict.
    #[new]
    fn py_new(config: &Bound<'_, PyDict>) -> PyResult<Self> {
        let built = config::builder(config)?;
        let breaker = built
            .builder
            .try_build()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self::new(breaker, built.freezes, built.listener))
    }

    /// The Python objects the breaker keeps (its listeners' dispatcher), for
    /// the garbage collector: a listener that refers back to its breaker is
    /// a cycle it can collect.
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        self.listener.traverse(&visit)
    }

    /// Breaks the cycle: the breaker delivers no more events.
    fn __clear__(&self) {
        drop(self.listener.clear());
    }

    /// Admission now: a permit, `None` when the call must wait (wait mode),
    /// or `CircuitOpenError` (fail-fast mode).
    #[inline]
    fn admit(&self, py: Python<'_>) -> PyResult<Option<Permit>> {
        if let Some(permit) = self.breaker.__admit_if_closed() {
            return Ok(Some(Permit { run: Some(permit) }));
        }
        if self.fails_fast {
            return match self.breaker.try_acquire_owned() {
                Ok(permit) => Ok(Some(Permit { run: Some(permit) })),
                Err(rejected) => Err(open_error(py, &rejected)),
            };
        }
        Ok(None)
    }

    /// Admission on the closed path as a plain token (no object made), or
    /// `None`: then ask `admit`.
    #[inline]
    fn admit_token(&self) -> Option<u64> {
        self.breaker.__admit_closed_token()
    }

    /// Records the success of a call admitted with a token.
    #[inline]
    fn succeed(&self, token: u64) {
        self.breaker.__succeed_token(token);
    }

    /// The permit of a call admitted with a token, to record anything but a success.
    fn permit_for(&self, token: u64) -> Permit {
        Permit {
            run: Some(self.breaker.__permit_for_token(token)),
        }
    }

    /// A call waiting for a permit, polled by the waiting coroutine.
    fn waiter(&self) -> Waiter {
        let acquire = self.breaker.acquire_owned();
        Waiter::new(Box::pin(async move { permit_output(acquire.await) }))
    }

    /// Waits on `event_loop` until the breaker is not frozen: `None` at
    /// once, or an asyncio future of `None`.
    fn wait_unfrozen(&self, py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let breaker = self.breaker.clone();
        let pending: Pending = Box::pin(async move {
            breaker.wait_unfrozen().await;
            Box::new(|py: Python<'_>| Ok(py.None())) as Output
        });
        Task::start(py, event_loop, pending).map(|r| r.unwrap_or_else(|f| f))
    }

    /// The freeze the last trip started, for the Python freeze function to
    /// run, if nobody took it yet.
    fn take_freeze(&self) -> Option<Freeze> {
        let signal = lock(self.freezes.as_ref()?).take()?;
        Some(Freeze {
            signal,
            breaker: self.breaker.clone(),
        })
    }

    /// Whether the breaker is frozen (open, or forced open).
    fn is_frozen(&self) -> bool {
        self.breaker.is_frozen()
    }

    /// The state's name: closed, open, half-open, forced open, disabled, metrics-only.
    fn state(&self) -> String {
        self.breaker.state().to_string()
    }

    /// The breaker's name.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.breaker.name()
    }

    /// Whether calls are refused while open.
    #[getter]
    fn fails_fast(&self) -> bool {
        self.fails_fast
    }

    /// Whether a call that tripped the breaker runs once more after the freeze.
    #[getter]
    fn retries_after_freeze(&self) -> bool {
        self.breaker.__retries_after_freeze()
    }

    /// Whether the open period is the Python freeze function's.
    #[getter]
    fn uses_freeze_function(&self) -> bool {
        self.freezes.is_some()
    }

    /// A snapshot: `(state, failure_rate, slow_call_rate,
    /// consecutive_failures, calls_in_window, current, totals,
    /// probes_in_flight, waiting, retry_after)`, counts as 6-tuples.
    #[allow(clippy::type_complexity)]
    fn metrics(
        &self,
    ) -> (
        String,
        Option<f64>,
        Option<f64>,
        Option<u32>,
        Option<u64>,
        (u64, u64, u64, u64, u64, u64),
        (u64, u64, u64, u64, u64, u64),
        u32,
        usize,
        Option<f64>,
    ) {
        let m = self.breaker.metrics();
        let counts = |c: &Counts| {
            (
                c.successes,
                c.failures,
                c.ignored,
                c.slow,
                c.rejected,
                c.cancelled,
            )
        };
        (
            m.state.to_string(),
            m.failure_rate,
            m.slow_call_rate,
            m.consecutive_failures,
            m.calls_in_window,
            counts(&m.current),
            counts(&m.totals),
            m.probes_in_flight,
            m.waiting,
            m.retry_after.map(|d| d.as_secs_f64()),
        )
    }

    /// Opens the breaker until `resume` or `reset`.
    fn force_open(&self) {
        self.breaker.force_open();
    }

    /// Leaves a manual state for closed.
    fn resume(&self) {
        self.breaker.resume();
    }

    /// Lets every call through, recording nothing.
    fn disable(&self) {
        self.breaker.disable();
    }

    /// Records but never trips.
    fn force_metrics_only(&self) {
        self.breaker.force_metrics_only();
    }

    /// Back to closed, counts and backoff cleared.
    fn reset(&self) {
        self.breaker.reset();
    }
}

/// Permission to run one call; records its outcome once. Dropped without
/// one, it records a cancellation (and frees a half-open slot).
#[pyclass(module = "tripswitch._native", freelist = 256)]
pub(crate) struct Permit {
    run: Option<OwnedPermit>,
}

#[pymethods]
impl Permit {
    /// Records a success.
    #[inline]
    fn success(&mut self) {
        if let Some(run) = self.run.take() {
            run.success();
        }
    }

    /// Records a failure: `(tell, open)`: whether `on_error` is due (a
    /// counted run), and whether the breaker is open after it.
    fn failure(&mut self, exception: &Bound<'_, PyAny>) -> (bool, bool) {
        let Some(run) = self.run.take() else {
            return (false, false);
        };
        let error = seen(exception);
        TOLD.with(|told| told.set(false));
        let open = run.__failure_open_after(&error);
        (TOLD.with(|told| told.replace(false)), open)
    }

    /// Records an error that counts as neither success nor failure.
    fn ignored(&mut self, exception: &Bound<'_, PyAny>) {
        if let Some(run) = self.run.take() {
            run.ignored(&seen(exception));
        }
    }

    /// Records a cancellation: nothing counted, a half-open slot freed.
    fn cancel(&mut self) {
        self.run = None;
    }

    /// Makes this the seed's retry after a freeze (counted as released).
    fn for_retry(&mut self) {
        self.run = self.run.take().map(OwnedPermit::__for_retry);
    }

    /// Whether this permit holds a half-open probe slot.
    #[getter]
    fn is_probe(&self) -> bool {
        self.run.as_ref().is_some_and(OwnedPermit::is_probe)
    }
}

/// A freeze run by the Python freeze function; `end` ends it (and so does
/// dropping it).
#[pyclass(frozen, module = "tripswitch._native")]
pub(crate) struct Freeze {
    signal: Arc<Signal>,
    breaker: CircuitBreaker,
}

#[pymethods]
impl Freeze {
    /// Ends the freeze: waiting calls go (idempotent).
    fn end(&self) {
        self.signal.end();
        // The breaker polls its freeze here, so the period ends now even if
        // no call waits.
        let _ = self.breaker.is_frozen();
    }

    /// Whether the freeze is over.
    #[getter]
    fn ended(&self) -> bool {
        self.signal.is_done()
    }
}

impl Drop for Freeze {
    fn drop(&mut self) {
        self.signal.end();
    }
}
