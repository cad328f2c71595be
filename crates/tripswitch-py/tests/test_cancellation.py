"""`task.cancel()` while a call waits, while its operation runs and while a
freeze runs never leaves the breaker stuck."""

from __future__ import annotations

import asyncio

import pytest

from tripswitch import CircuitBreaker, CircuitOpenError, HalfOpen

TIMEOUT = 10


async def fail() -> None:
    raise ValueError("down")


async def ok() -> str:
    return "ok"


async def test_cancel_while_waiting_leaves_the_queue() -> None:
    gate = asyncio.Event()
    breaker = CircuitBreaker(freeze_function=gate.wait)
    trigger = asyncio.create_task(breaker.execute(fail))
    while not breaker.is_frozen:
        await asyncio.sleep(0)
    waiter = asyncio.create_task(breaker.execute(ok))
    other = asyncio.create_task(breaker.execute(ok))
    await asyncio.sleep(0.01)
    assert breaker.metrics().waiting == 3  # the trigger's retry and two calls
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)
    assert breaker.metrics().waiting == 2
    gate.set()
    assert await asyncio.wait_for(other, TIMEOUT) == "ok"
    with pytest.raises(ValueError):
        await asyncio.wait_for(trigger, TIMEOUT)
    assert not breaker.is_frozen
    assert breaker.metrics().waiting == 0


async def test_cancel_the_call_whose_failure_started_the_freeze() -> None:
    # The freeze is the breaker's, not the call's: it goes on, and the other
    # waiting calls are released when it ends.
    gate = asyncio.Event()
    breaker = CircuitBreaker(freeze_function=gate.wait)
    trigger = asyncio.create_task(breaker.execute(fail))
    while not breaker.is_frozen:
        await asyncio.sleep(0)
    waiter = asyncio.create_task(breaker.execute(ok))
    await asyncio.sleep(0.01)
    trigger.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trigger
    assert breaker.is_frozen
    gate.set()
    assert await asyncio.wait_for(waiter, TIMEOUT) == "ok"
    assert not breaker.is_frozen


async def test_cancelling_the_freeze_ends_it() -> None:
    # A cancelled freeze ends the freeze (as a dropped freeze future does in Rust).
    breaker = CircuitBreaker(freeze_function=asyncio.Event().wait)  # never ends by itself
    trigger = asyncio.create_task(breaker.execute(fail))
    while breaker._freeze_future is None:
        await asyncio.sleep(0)
    waiter = asyncio.create_task(breaker.execute(ok))
    await asyncio.sleep(0.01)
    assert breaker.is_frozen
    freeze_task = breaker._freeze_future.task
    assert freeze_task is not None
    freeze_task.cancel()
    assert await asyncio.wait_for(waiter, TIMEOUT) == "ok"
    with pytest.raises(ValueError):
        await asyncio.wait_for(trigger, TIMEOUT)
    assert not breaker.is_frozen


async def test_cancel_while_the_operation_runs_records_nothing() -> None:
    breaker = CircuitBreaker.standard(consecutive_failures=1, fail_fast=True)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(breaker.execute(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    metrics = breaker.metrics()
    assert metrics.state == "closed"
    assert metrics.totals.cancelled == 1 and metrics.totals.failures == 0


async def test_cancelled_probe_gives_its_slot_back() -> None:
    breaker = CircuitBreaker.standard(
        consecutive_failures=1, open_for=0.01, half_open=HalfOpen(probes=1), fail_fast=True
    )
    with pytest.raises(ValueError):
        await breaker.execute(fail)
    assert breaker.is_frozen
    while breaker.state != "half-open":
        await asyncio.sleep(0.005)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    probe = asyncio.create_task(breaker.execute(hang))
    await started.wait()
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.execute(ok)
    assert refused.value.reason == "half_open_full"
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    # The slot is free again: the next call is the probe, and closes the breaker.
    assert await breaker.execute(ok) == "ok"
    assert breaker.state == "closed"
