//! The bridge between Rust futures and asyncio. A call waiting for a permit
//! is a [`Waiter`]: the waiting coroutine polls the Rust wait itself and
//! awaits an `asyncio.Future` that a wake resolves (directly on the loop's
//! thread, through `call_soon_threadsafe` from another). Other waits
//! (`wait_unfrozen`) are a [`Task`]: a Rust future polled on the loop by a
//! scheduled callback, its output set on an `asyncio.Future`. And the
//! signal that ends a freeze driven from Python.
//!
//! Only calls that have to wait come here: admission and recording are
//! synchronous calls. A waker never runs under a lock of the breaker (the
//! core wakes after its locks are released), so taking the GIL in it cannot
//! deadlock with a thread that holds the GIL and wants such a lock.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::ThreadId;

use pyo3::intern;
use pyo3::prelude::*;

/// Locks a mutex whatever a panicking holder left behind (nothing here
/// leaves a value half-written).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A Rust future whose output becomes a Python value (or exception) on the loop's thread.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Output> + Send>>;

/// What a bridged future gives: made into Python on the loop's thread.
pub(crate) type Output = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// One bridged future: the Rust future, the asyncio future it completes,
/// and the loop that polls it.
pub(crate) struct Task {
    pending: Mutex<Option<Pending>>,
    event_loop: Py<PyAny>,
    future: Py<PyAny>,
    /// A poll is already scheduled on the loop.
    scheduled: AtomicBool,
    /// The callable the loop calls to poll (a `Poller` holding this task).
    poller: Mutex<Option<Py<PyAny>>>,
    /// The loop's thread: a wake there (the GIL held, as everything on that
    /// thread runs inside a call from Python) uses `call_soon`, which does
    /// not write to the loop's self-pipe as `call_soon_threadsafe` does.
    loop_thread: ThreadId,
}

impl Task {
    /// Polls `pending` once on this (the loop's) thread: ready output comes
    /// back at once, otherwise an `asyncio.Future` that a later wake completes.
    pub(crate) fn start(
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        mut pending: Pending,
    ) -> PyResult<Result<Py<PyAny>, Py<PyAny>>> {
        let future = event_loop.call_method0(intern!(py, "create_future"))?;
        let task = Arc::new(Task {
            pending: Mutex::new(None),
            event_loop: event_loop.clone().unbind(),
            future: future.clone().unbind(),
            scheduled: AtomicBool::new(false),
            poller: Mutex::new(None),
            loop_thread: std::thread::current().id(),
        });
        let waker = Waker::from(Arc::clone(&task));
        if let Poll::Ready(output) = pending.as_mut().poll(&mut Context::from_waker(&waker)) {
            return output(py).map(Ok);
        }
        let poller = Py::new(
            py,
            Poller {
                task: Arc::clone(&task),
            },
        )?
        .into_any();
        *lock(&task.poller) = Some(poller.clone_ref(py));
        *lock(&task.pending) = Some(pending);
        // A cancelled wait leaves the queue at once (not at its next wake).
        future.call_method1(intern!(py, "add_done_callback"), (poller,))?;
        if task.scheduled.swap(false, Ordering::AcqRel) {
            // Woken during the first poll, before the poller existed.
            task.schedule(py);
        }
        Ok(Err(future.unbind()))
    }

    /// Asks the loop to poll again.
    fn schedule(&self, py: Python<'_>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(poller) = lock(&self.poller).as_ref().map(|p| p.clone_ref(py)) else {
            // Not started yet: `start` looks at `scheduled` once it is.
            return;
        };
        let method = if std::thread::current().id() == self.loop_thread {
            intern!(py, "call_soon")
        } else {
            intern!(py, "call_soon_threadsafe")
        };
        if self.event_loop.call_method1(py, method, (poller,)).is_err() {
            // The loop is closed: nobody will ever poll this wait, so it
            // leaves the queue now (unless it is being polled right now).
            let stale = self.pending.try_lock().ok().and_then(|mut p| p.take());
            drop(stale);
            self.clear_poller();
        }
    }

    /// Polls once on the loop's thread.
    fn poll(self: &Arc<Self>, py: Python<'_>) -> PyResult<()> {
        self.scheduled.store(false, Ordering::Release);
        let future = self.future.bind(py);
        let mut slot = lock(&self.pending);
        let Some(pending) = slot.as_mut() else {
            return Ok(());
        };
        if future.call_method0(intern!(py, "done"))?.is_truthy()? {
            // Cancelled while waiting: leave the queue.
            let stale = slot.take();
            drop(slot);
            drop(stale);
            self.clear_poller();
            return Ok(());
        }
        let waker = Waker::from(Arc::clone(self));
        let Poll::Ready(output) = pending.as_mut().poll(&mut Context::from_waker(&waker)) else {
            return Ok(());
        };
        let done = slot.take();
        drop(slot);
        drop(done);
        self.clear_poller();
        match output(py) {
            Ok(value) => future.call_method1(intern!(py, "set_result"), (value,))?,
            Err(error) => future.call_method1(intern!(py, "set_exception"), (error.value(py),))?,
        };
        Ok(())
    }

    /// Breaks the task ↔ poller cycle once the task is over.
    fn clear_poller(&self) {
        let poller = lock(&self.poller).take();
        drop(poller);
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.load(Ordering::Acquire) {
            return;
        }
        // `None` while the interpreter is shutting down: then nothing waits.
        let _ = Python::try_attach(|py| self.schedule(py));
    }
}

/// The callable a loop calls to poll a bridged future (and, as the asyncio
/// future's done callback, to notice a cancellation).
#[pyclass(frozen, module = "tripswitch._native")]
pub(crate) struct Poller {
    task: Arc<Task>,
}

#[pymethods]
impl Poller {
    #[pyo3(signature = (*_args))]
    fn __call__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.task.poll(py)
    }
}

/// The end of a freeze run by a Python freeze function: the Rust breaker's
/// async freeze is a future that completes when Python says so.
#[derive(Default)]
pub(crate) struct Signal {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    /// Ends the freeze (idempotent): wakes whoever polls the freeze.
    pub(crate) fn end(&self) {
        self.done.store(true, Ordering::Release);
        let waker = lock(&self.waker).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// The future the breaker polls as its freeze.
    pub(crate) fn future(self: &Arc<Self>) -> SignalFuture {
        SignalFuture(Arc::clone(self))
    }
}

/// Completes when its [`Signal`] ends.
pub(crate) struct SignalFuture(Arc<Signal>);

impl Future for SignalFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.is_done() {
            return Poll::Ready(());
        }
        *lock(&self.0.waker) = Some(cx.waker().clone());
        if self.0.is_done() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// A call waiting for the breaker, polled by the waiting coroutine itself:
/// `poll` gives the permit, or an asyncio future that a wake resolves (with
/// `None`), after which the coroutine polls again. A release then costs one
/// `set_result` per waiter (on the loop's thread; `call_soon_threadsafe`
/// from another), not a scheduled poll and a result.
#[pyclass(frozen, module = "tripswitch._native")]
pub(crate) struct Waiter {
    pending: Mutex<Option<Pending>>,
    wake: Arc<WakeFuture>,
}

/// What a waiter's wake resolves: the asyncio future its coroutine awaits.
struct WakeFuture {
    /// `(loop, future)` while the coroutine awaits.
    future: Mutex<Option<(Py<PyAny>, Py<PyAny>)>>,
    loop_thread: Mutex<Option<ThreadId>>,
}

impl Waiter {
    pub(crate) fn new(pending: Pending) -> Self {
        Self {
            pending: Mutex::new(Some(pending)),
            wake: Arc::new(WakeFuture {
                future: Mutex::new(None),
                loop_thread: Mutex::new(None),
            }),
        }
    }
}

/// `fut.set_result(None)` unless it is done (cancelled).
fn resolve(py: Python<'_>, future: &Bound<'_, PyAny>) -> PyResult<()> {
    if !future.call_method0(intern!(py, "done"))?.is_truthy()? {
        future.call_method1(intern!(py, "set_result"), (py.None(),))?;
    }
    Ok(())
}

/// The callable `call_soon_threadsafe` runs on the loop's thread.
#[pyfunction]
pub(crate) fn _resolve(future: &Bound<'_, PyAny>) -> PyResult<()> {
    resolve(future.py(), future)
}

impl Wake for WakeFuture {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let Some((event_loop, future)) = lock(&self.future).take() else {
            return;
        };
        let here = *lock(&self.loop_thread) == Some(std::thread::current().id());
        // `None` while the interpreter shuts down: then nothing waits.
        let _ = Python::try_attach(|py| {
            let result = if here {
                resolve(py, future.bind(py))
            } else {
                match py
                    .import(intern!(py, "tripswitch._native"))
                    .and_then(|m| m.getattr(intern!(py, "_resolve")))
                {
                    Ok(callback) => event_loop
                        .call_method1(py, intern!(py, "call_soon_threadsafe"), (callback, future))
                        .map(drop),
                    Err(error) => Err(error),
                }
            };
            // A closed loop: its coroutine will never poll again; nothing to do.
            drop(result);
        });
    }
}

#[pymethods]
impl Waiter {
    /// The permit (or `CircuitOpenError`) if granted, else an asyncio future
    /// on `event_loop` resolved when it is worth polling again.
    fn poll(&self, py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let mut slot = lock(&self.pending);
        let Some(pending) = slot.as_mut() else {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "tripswitch: a waiter polled after it finished",
            ));
        };
        let future = event_loop.call_method0(intern!(py, "create_future"))?;
        *lock(&self.wake.loop_thread) = Some(std::thread::current().id());
        *lock(&self.wake.future) = Some((event_loop.clone().unbind(), future.clone().unbind()));
        let waker = Waker::from(Arc::clone(&self.wake));
        match pending.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(output) => {
                let done = slot.take();
                drop(slot);
                drop(done);
                *lock(&self.wake.future) = None;
                output(py)
            }
            Poll::Pending => Ok(future.unbind()),
        }
    }

    /// Leaves the queue (a cancelled wait); a grant not taken is given back.
    fn close(&self) {
        let stale = lock(&self.pending).take();
        drop(stale);
        let future = lock(&self.wake.future).take();
        drop(future);
    }
}
