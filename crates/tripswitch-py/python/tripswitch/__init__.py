"""tripswitch: an async circuit breaker for asyncio, on a Rust core.

Out of the box, :class:`CircuitBreaker` is the *freeze and wait* breaker of
the Python library tripswitch started from, with the same API: after an
operation fails the breaker **freezes** (awaits its ``freeze_function``),
calls made meanwhile **wait** for the freeze to end, and the failing call
runs once more after it::

    from tripswitch import CircuitBreaker, with_circuit_breaker

    breaker = CircuitBreaker()

    @with_circuit_breaker(breaker)
    async def fetch_data() -> bytes: ...

Unlike the seed, a freeze function that raises ends the freeze (the error
is logged) instead of freezing the breaker for ever, and one breaker may be
shared by calls on several event loops in several threads.

:meth:`CircuitBreaker.standard` (or keyword arguments) gives the full
closed / open / half-open breaker: failure-rate and slow-call windows,
fail-fast with :class:`CircuitOpenError`, backoff, half-open probes, manual
control, :meth:`~CircuitBreaker.metrics` and listeners. :class:`Fleet`
shares a breaker's state with every replica of a service, Rust or Python,
through Redis.

Admission and recording are synchronous calls into Rust; the event loop is
touched only when a call has to wait.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

from . import _native

__all__ = [
    "Backoff",
    "CircuitBreaker",
    "CircuitOpenError",
    "Counts",
    "Event",
    "FailureRate",
    "Fleet",
    "HalfOpen",
    "Metrics",
    "SlowCallRate",
    "with_circuit_breaker",
]

__version__: str = _native.__version__

T = TypeVar("T")
P = ParamSpec("P")

logger = logging.getLogger("tripswitch")

#: The seed's default freeze: five seconds.
DEFAULT_DELAY = 5


class CircuitOpenError(Exception):
    """A call refused by an open breaker (fail-fast mode, or a wait limit).

    Attributes:
        name: The breaker's name, if it has one.
        retry_after: Seconds until the breaker may let calls through again,
            when known (``None`` while forced open, for example).
        state: The breaker's state when it refused the call.
        reason: Why: ``"open"``, ``"half_open_full"``, ``"forced_open"``,
            ``"wait_timed_out"`` or ``"too_many_waiters"``.
    """

    def __init__(
        self,
        message: str,
        name: str | None = None,
        retry_after: float | None = None,
        state: str = "open",
        reason: str = "open",
    ) -> None:
        super().__init__(message)
        self.name = name
        self.retry_after = retry_after
        self.state = state
        self.reason = reason


_native._register(CircuitOpenError)


@dataclass(frozen=True)
class Counts:
    """Calls counted by outcome."""

    successes: int
    failures: int
    ignored: int
    slow: int
    rejected: int
    cancelled: int

    @property
    def calls(self) -> int:
        """Calls that ran to an outcome: successes, failures and ignored."""
        return self.successes + self.failures + self.ignored


@dataclass(frozen=True)
class Metrics:
    """A snapshot of a breaker (see :meth:`CircuitBreaker.metrics`).

    Attributes:
        state: ``"closed"``, ``"open"``, ``"half-open"``, ``"forced open"``,
            ``"disabled"`` or ``"metrics-only"``.
        failure_rate: The failure rate in the window (a failure-rate policy).
        slow_call_rate: The slow-call rate in the window (a slow-call policy).
        consecutive_failures: Failures in a row (a consecutive-failures policy).
        calls_in_window: Calls in the rate window.
        current: Counts since the state was entered.
        totals: Counts since the breaker was made.
        probes_in_flight: Half-open probes running.
        waiting: Calls waiting for the breaker.
        retry_after: Seconds until an open breaker may let calls through
            (0 when closed; ``None`` when unknown).
    """

    state: str
    failure_rate: float | None
    slow_call_rate: float | None
    consecutive_failures: int | None
    calls_in_window: int | None
    current: Counts
    totals: Counts
    probes_in_flight: int
    waiting: int
    retry_after: float | None


@dataclass(frozen=True)
class Event:
    """What a listener receives.

    Attributes:
        kind: ``"transition"``, ``"success"``, ``"failure"``, ``"ignored"``,
            ``"slow"``, ``"rejected"`` or ``"waited"``.
        breaker: The breaker's name, if it has one.
        from_state, to_state: A transition's states.
        reason: Why a transition happened (``"tripped"``,
            ``"open_period_ended"``, ``"probes_succeeded"``...) or a call
            was rejected (``"open"``, ``"half_open_full"``...).
        error: The ``repr`` of a failure's or an ignored call's exception.
        elapsed: How long the call took (or waited, for ``"waited"``), in
            seconds, when the breaker measures calls.
        threshold: The slow-call threshold a slow call passed.
    """

    kind: str
    breaker: str | None
    from_state: str | None = None
    to_state: str | None = None
    reason: str | None = None
    error: str | None = None
    elapsed: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class FailureRate:
    """Trip when at least ``threshold`` (0 to 1) of the calls in the window
    failed, once the window holds ``min_calls`` calls.

    The window is the last ``calls`` calls, or the last ``seconds`` seconds
    (give one of them).
    """

    threshold: float
    calls: int | None = None
    seconds: float | None = None
    min_calls: int | None = None

    def _settings(self) -> tuple[float, str, float, int | None]:
        kind, size = _window(self.calls, self.seconds)
        return (self.threshold, kind, size, self.min_calls)


@dataclass(frozen=True)
class SlowCallRate:
    """Trip when at least ``threshold`` (0 to 1) of the calls in the window
    took longer than ``slow_after`` seconds. Window as for :class:`FailureRate`.
    """

    slow_after: float
    threshold: float
    calls: int | None = None
    seconds: float | None = None
    min_calls: int | None = None

    def _settings(self) -> tuple[float, float, str, float, int | None]:
        kind, size = _window(self.calls, self.seconds)
        return (self.slow_after, self.threshold, kind, size, self.min_calls)


def _window(calls: int | None, seconds: float | None) -> tuple[str, float]:
    if (calls is None) == (seconds is None):
        raise ValueError("a window is either `calls=` or `seconds=`, exactly one of them")
    if calls is not None:
        return ("calls", float(calls))
    assert seconds is not None
    return ("seconds", float(seconds))


@dataclass(frozen=True)
class HalfOpen:
    """After the open period: ``probes`` trial calls at a time decide
    (``None``: let every waiting call through), closing after
    ``close_after`` successes; ``max_duration`` seconds bound the state."""

    probes: int | None = 1
    close_after: int | None = None
    max_duration: float | None = None


@dataclass(frozen=True)
class Backoff:
    """Open periods that grow with consecutive openings: ``initial``
    seconds, times ``multiplier`` at each, at most ``max``; ``jitter`` (0 to
    1) randomises each period by up to that fraction."""

    initial: float
    max: float
    multiplier: float = 2.0
    jitter: float = 0.0


def _default_on_error(exc: BaseException) -> None:
    logger.error("Failed execution during CircuitBreaker execution", exc_info=exc)


_running_freezes: set[asyncio.Task[None]] = set()


class _FreezeFuture:
    """The current freeze, as the seed's ``_freeze_future``: awaiting it
    waits (on any event loop) until the breaker is no longer frozen, then
    raises what the freeze function raised, if it did (as the seed's
    future does; the calls waiting on the breaker are not affected)."""

    __slots__ = ("_core", "_freeze", "task", "error")

    def __init__(self, core: _native.Core, freeze: _native.Freeze) -> None:
        self._core = core
        self._freeze = freeze
        self.task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    def done(self) -> bool:
        """Whether this freeze is over."""
        return self._freeze.ended

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        got = self._core.wait_unfrozen(asyncio.get_running_loop())
        if got is not None:
            await got
        if self.error is not None:
            raise self.error


class CircuitBreaker:
    """An async circuit breaker guarding one resource.

    ``CircuitBreaker()`` is the seed's breaker: after a failure it awaits
    ``freeze_function()`` (default ``asyncio.sleep(5)``) on the failing
    call's event loop; calls made meanwhile wait for the freeze to end; the
    failing call then runs once more and returns (or raises) what that run
    does. ``on_error`` is called with each counted failure's exception.
    Both are attributes, assignable at any time.

    The other keyword arguments turn it into the standard breaker (see
    :meth:`standard`, which starts from its defaults): ``open_for`` (seconds,
    instead of the freeze function), ``backoff``, ``consecutive_failures``,
    ``failure_rate``, ``slow_call_rate``, ``slow_call_threshold``,
    ``half_open``, ``fail_fast`` (refuse calls with
    :class:`CircuitOpenError` instead of making them wait), ``max_wait``,
    ``max_waiters``, ``retry_after_freeze``, ``max_freeze`` (the longest a
    freeze function may hold the breaker: 300 s unless set), ``ignore``
    (exception types that count as neither success nor failure),
    ``listeners`` (callables receiving each :class:`Event`) and ``name``.

    A breaker may be shared by tasks on several event loops in several
    threads. Exceptions raised by ``on_error``, a listener or the freeze
    function are logged (logger ``"tripswitch"``) and never break it.
    """

    __slots__ = (
        "freeze_function",
        "on_error",
        "_core",
        "_admit",
        "_admit_token",
        "_succeed",
        "_ignore",
        "_retries",
        "_freezes",
        "_freeze_future",
        "__weakref__",
    )

    def __init__(
        self,
        freeze_function: Callable[[], Awaitable[Any]] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        *,
        name: str | None = None,
        open_for: float | None = None,
        backoff: Backoff | None = None,
        max_freeze: float | None = None,
        consecutive_failures: int | None = None,
        failure_rate: FailureRate | None = None,
        slow_call_rate: SlowCallRate | None = None,
        slow_call_threshold: float | None = None,
        half_open: HalfOpen | None = None,
        fail_fast: bool | None = None,
        max_wait: float | None = None,
        max_waiters: int | None = None,
        retry_after_freeze: bool | None = None,
        ignore: type[BaseException] | tuple[type[BaseException], ...] = (),
        listeners: Iterable[Callable[[Event], Any]] = (),
        preset: Literal["seed", "standard"] = "seed",
    ) -> None:
        config = _config(
            preset=preset,
            freeze_function=freeze_function,
            name=name,
            open_for=open_for,
            backoff=backoff,
            max_freeze=max_freeze,
            consecutive_failures=consecutive_failures,
            failure_rate=failure_rate,
            slow_call_rate=slow_call_rate,
            slow_call_threshold=slow_call_threshold,
            half_open=half_open,
            fail_fast=fail_fast,
            max_wait=max_wait,
            max_waiters=max_waiters,
            retry_after_freeze=retry_after_freeze,
            listeners=listeners,
        )
        self._setup(_native.Core(config), freeze_function, on_error, ignore)

    def _setup(
        self,
        core: _native.Core,
        freeze_function: Callable[[], Awaitable[Any]] | None,
        on_error: Callable[[Exception], Any] | None,
        ignore: type[BaseException] | tuple[type[BaseException], ...],
    ) -> None:
        self.freeze_function: Callable[[], Awaitable[Any]] = (
            freeze_function
            if freeze_function is not None
            else functools.partial(asyncio.sleep, DEFAULT_DELAY)
        )
        self.on_error: Callable[[Exception], Any] = (
            on_error if on_error is not None else _default_on_error
        )
        self._core = core
        self._admit = core.admit
        self._admit_token = core.admit_token
        self._succeed = core.succeed
        self._ignore = ignore if isinstance(ignore, tuple) else (ignore,)
        self._retries = core.retries_after_freeze
        self._freezes = core.uses_freeze_function
        self._freeze_future: _FreezeFuture | None = None

    @classmethod
    def standard(cls, **settings: Any) -> CircuitBreaker:
        """The standard closed / open / half-open breaker: five failures in a
        row open it for 5 seconds, calls are refused at once
        (:class:`CircuitOpenError`) while it is open, then one probe at a
        time decides. ``settings`` are :class:`CircuitBreaker`'s keyword
        arguments; a ``freeze_function`` given here replaces the timed open
        period."""
        return cls(preset="standard", **settings)

    async def execute(
        self,
        func: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Runs ``await func(*args, **kwargs)`` through the breaker.

        If the breaker is frozen, the call first waits for the freeze to end
        (or, failing fast, raises :class:`CircuitOpenError`). If ``func``
        raises, ``on_error`` is called with the exception and the breaker
        may freeze; the exception reaches the caller unchanged (the same
        object, its traceback kept). With the seed's settings, a call whose
        failure froze the breaker waits out the freeze and runs once more,
        returning (or raising) what that run does.

        Cancelling the calling task while it waits, while ``func`` runs or
        while a freeze it started runs records nothing for the call, frees
        a half-open slot it held and leaves the breaker usable (a running
        freeze goes on for the other callers).
        """
        token = self._admit_token()
        if token is None:
            return await self._execute_permit(func, args, kwargs)
        # The closed path: a plain token in, a success out (no object made).
        try:
            result = await func(*args, **kwargs)
        except Exception as exc:
            if not self._failed(self._core.permit_for(token), exc):
                raise
            first = exc
        except BaseException:
            self._core.permit_for(token).cancel()
            raise
        else:
            self._succeed(token)
            return result
        return await self._retry(first, func, *args, **kwargs)

    async def _execute_permit(
        self, func: Callable[..., Awaitable[T]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        """`execute` when the call needs a permit: not closed, or timed."""
        permit = self._admit()
        if permit is None:
            permit = await self._wait()
        try:
            result = await func(*args, **kwargs)
        except Exception as exc:
            if not self._failed(permit, exc):
                raise
            first = exc
        except BaseException:
            permit.cancel()
            raise
        else:
            permit.success()
            return result
        return await self._retry(first, func, *args, **kwargs)

    async def _wait(self) -> _native.Permit:
        if self._freezes:
            self._start_pending_freeze()
        loop = asyncio.get_running_loop()
        waiter = self._core.waiter()
        try:
            while True:
                got = waiter.poll(loop)
                if isinstance(got, _native.Permit):
                    return got
                await got
        finally:
            # Cancelled (or done): leave the queue, give back a grant not taken.
            waiter.close()

    def _failed(self, permit: _native.Permit, exc: Exception) -> bool:
        """Records a failure; whether the seed's retry is due."""
        if self._ignore and isinstance(exc, self._ignore):
            permit.ignored(exc)
            return False
        tell, is_open = permit.failure(exc)
        try:
            if tell:
                try:
                    self.on_error(exc)
                except Exception:
                    logger.exception("tripswitch: on_error raised (ignored)")
        finally:
            # Even when on_error raised a BaseException (which goes on to the
            # caller): the trip is recorded, so its freeze must run.
            if self._freezes:
                self._start_pending_freeze()
        return tell and is_open and self._retries

    async def _retry(
        self,
        first: Exception,
        func: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """The seed's retry: waits out the freeze, runs once more."""
        refused = False
        try:
            permit = await self._wait()
        except CircuitOpenError:
            refused = True
        if refused:
            # The retry could not wait (fail-fast or a wait limit): the
            # caller gets the first run's error, as in Rust.
            raise first
        permit.for_retry()
        try:
            result = await func(*args, **kwargs)
        except Exception as exc:
            self._failed(permit, exc)
            raise
        except BaseException:
            permit.cancel()
            raise
        permit.success()
        return result

    def _start_pending_freeze(self) -> None:
        freeze = self._core.take_freeze()
        if freeze is None:
            return
        # One freeze function at a time: one that outlived its freeze (ended
        # by max_freeze) is cancelled before the next starts, on its own loop.
        previous = self._freeze_future
        outlived = getattr(previous, "task", None) if previous is not None else None
        if outlived is not None and outlived.done():
            outlived = None
        handle = _FreezeFuture(self._core, freeze)
        self._freeze_future = handle
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            freeze.end()
            return
        if outlived is not None:
            if outlived.get_loop() is loop:
                outlived.cancel()
            else:
                try:
                    outlived.get_loop().call_soon_threadsafe(outlived.cancel)
                except RuntimeError:
                    pass  # its loop is closed: nothing runs it any more
                outlived = None
        task = loop.create_task(self._run_freeze(freeze, handle, outlived))
        handle.task = task
        _running_freezes.add(task)
        task.add_done_callback(_running_freezes.discard)
        # A task cancelled before its first step never enters `_run_freeze`'s
        # `finally`: the freeze ends here all the same (ending twice is a no-op).
        task.add_done_callback(lambda _: freeze.end())

    async def _run_freeze(
        self,
        freeze: _native.Freeze,
        handle: _FreezeFuture,
        outlived: asyncio.Task[None] | None = None,
    ) -> None:
        try:
            if outlived is not None:
                # A freeze function that outlived its freeze (ended by
                # max_freeze), cancelled: it ends before the next one starts.
                await asyncio.wait([outlived])
            await self.freeze_function()
        except Exception as error:
            handle.error = error
            logger.exception(
                "tripswitch: the freeze function raised; the freeze ends here"
            )
        except asyncio.CancelledError:
            logger.warning("tripswitch: the freeze was cancelled; it ends here")
            raise
        finally:
            freeze.end()

    @property
    def is_frozen(self) -> bool:
        """Whether the breaker is frozen (open, or forced open) now."""
        return self._core.is_frozen()

    @property
    def name(self) -> str | None:
        """The breaker's name, if it was given one."""
        return self._core.name

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"``, ``"half-open"``, ``"forced open"``,
        ``"disabled"`` or ``"metrics-only"``."""
        return self._core.state()

    def metrics(self) -> Metrics:
        """A snapshot of the breaker's state and counts."""
        m = self._core.metrics()
        return Metrics(
            state=m[0],
            failure_rate=m[1],
            slow_call_rate=m[2],
            consecutive_failures=m[3],
            calls_in_window=m[4],
            current=Counts(*m[5]),
            totals=Counts(*m[6]),
            probes_in_flight=m[7],
            waiting=m[8],
            retry_after=m[9],
        )

    async def wait_unfrozen(self) -> None:
        """Waits until the breaker is not frozen (returns at once if it is not)."""
        got = self._core.wait_unfrozen(asyncio.get_running_loop())
        if got is not None:
            await got

    def force_open(self) -> None:
        """Opens the breaker by hand until :meth:`resume` or :meth:`reset`."""
        self._core.force_open()

    def resume(self) -> None:
        """Leaves a manual state (forced open, disabled, metrics-only) for closed."""
        self._core.resume()

    def disable(self) -> None:
        """Lets every call through and records nothing, until :meth:`resume`."""
        self._core.disable()

    def force_metrics_only(self) -> None:
        """Records outcomes but never trips, until :meth:`resume`."""
        self._core.force_metrics_only()

    def reset(self) -> None:
        """Back to closed, counts and backoff cleared; waiting calls go."""
        self._core.reset()

    def __repr__(self) -> str:
        return f"<tripswitch.CircuitBreaker name={self.name!r} state={self.state!r}>"


def _config(
    *,
    preset: str,
    freeze_function: object,
    listeners: Iterable[Callable[[Event], Any]],
    backoff: Backoff | None,
    failure_rate: FailureRate | None,
    slow_call_rate: SlowCallRate | None,
    half_open: HalfOpen | None,
    **plain: Any,
) -> dict[str, Any]:
    config: dict[str, Any] = dict(plain)
    config["preset"] = preset
    # The standard preset's open period is timed unless a freeze function is given.
    config["freeze_function"] = freeze_function is not None
    if backoff is not None:
        config["backoff"] = (
            float(backoff.initial),
            float(backoff.max),
            float(backoff.multiplier),
            float(backoff.jitter),
        )
    if failure_rate is not None:
        config["failure_rate"] = failure_rate._settings()
    if slow_call_rate is not None:
        config["slow_call_rate"] = slow_call_rate._settings()
    if half_open is not None:
        config["half_open"] = (half_open.probes, half_open.close_after, half_open.max_duration)
    for key in ("open_for", "max_freeze", "slow_call_threshold", "max_wait"):
        if config.get(key) is not None:
            config[key] = float(config[key])
    listeners = list(listeners)
    for listener in listeners:
        if not callable(listener):
            raise TypeError(f"a listener must be callable, not {listener!r}")
    if listeners:
        config["listener"] = _dispatcher(tuple(listeners))
    return config


def _dispatcher(
    listeners: tuple[Callable[[Event], Any], ...],
) -> Callable[[str, str | None, dict[str, Any]], None]:
    def dispatch(kind: str, breaker: str | None, fields: dict[str, Any]) -> None:
        event = Event(kind, breaker, **fields)
        for listener in listeners:
            try:
                listener(event)
            except BaseException:
                # BaseException too (SystemExit, KeyboardInterrupt): the
                # listener runs inside the breaker, which cannot carry it to
                # the caller; it is logged, never raised from Rust.
                logger.exception("tripswitch: a listener raised (ignored)")

    return dispatch


def with_circuit_breaker(
    circuit_breaker: CircuitBreaker,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorator running an async function through ``circuit_breaker``; the
    wrapper keeps the function's name, docstring and signature
    (``functools.wraps``)."""

    def decorator(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await circuit_breaker.execute(func, *args, **kwargs)

        return wrapper

    return decorator


class Fleet:
    """Breakers shared by every replica of a service through Redis: the same
    keys and script as Rust's ``tripswitch-redis``, so Python and Rust
    replicas share one state.

    ``Fleet.connect`` blocks while it connects (call it at start-up, or
    through ``asyncio.to_thread``); after that no call ever waits on Redis:
    a background thread syncs counts and state.
    """

    __slots__ = ("_fleet",)

    def __init__(self, fleet: _native.Fleet) -> None:
        self._fleet = fleet

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        prefix: str | None = None,
        replica_id: str | None = None,
        sync_interval: float | None = None,
        command_timeout: float | None = None,
        probe_lease: float | None = None,
        quorum: int | None = None,
        failure_rate: tuple[float, int] | None = None,
        open_for: float | None = None,
        require_redis: bool = False,
    ) -> Fleet:
        """Connects to the fleet at ``url`` (``redis://host:port/``).

        ``quorum`` replicas must trip to open the fleet (default 1);
        ``failure_rate`` ``(rate, min_calls)`` also opens it on a
        fleet-wide failure rate (off unless given); ``open_for`` seconds
        is the fleet's open period. With ``require_redis`` a Redis that
        cannot be reached is an error; otherwise the breakers run alone
        until it can.
        """
        return cls(
            _native.Fleet.connect(
                url,
                prefix=prefix,
                replica_id=replica_id,
                sync_interval=sync_interval,
                command_timeout=command_timeout,
                probe_lease=probe_lease,
                quorum=quorum,
                failure_rate=failure_rate,
                open_for=open_for,
                require_redis=require_redis,
            )
        )

    def breaker(
        self,
        name: str,
        *,
        on_error: Callable[[Exception], Any] | None = None,
        ignore: type[BaseException] | tuple[type[BaseException], ...] = (),
        **settings: Any,
    ) -> CircuitBreaker:
        """The breaker ``name``, shared with every replica: the standard
        breaker (see :meth:`CircuitBreaker.standard`) with ``settings``.
        Its open period is timed (a freeze function cannot run in other
        processes)."""
        listeners = settings.pop("listeners", ())
        config = _config(
            preset="standard",
            # Passed on, so that the fleet refuses one by name (its open
            # period must be timed: other replicas cannot run it).
            freeze_function=settings.pop("freeze_function", None),
            listeners=listeners,
            backoff=settings.pop("backoff", None),
            failure_rate=settings.pop("failure_rate", None),
            slow_call_rate=settings.pop("slow_call_rate", None),
            half_open=settings.pop("half_open", None),
            name=name,
            **settings,
        )
        core = self._fleet.breaker(name, config)
        breaker = CircuitBreaker.__new__(CircuitBreaker)
        breaker._setup(core, None, on_error, ignore)
        return breaker

    @property
    def replica_id(self) -> str:
        """This replica's id in the fleet."""
        return self._fleet.replica_id

    def is_connected(self) -> bool:
        """Whether the last exchange with Redis went through."""
        return self._fleet.is_connected()

    def force_open(self, name: str, seconds: float) -> None:
        """Opens ``name`` for every replica for ``seconds``."""
        self._fleet.force_open(name, seconds)

    def force_close(self, name: str) -> None:
        """Closes ``name`` for every replica."""
        self._fleet.force_close(name)
