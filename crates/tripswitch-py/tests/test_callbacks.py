"""An exception in any callback (on_error, a listener, the freeze function)
is logged and never breaks the breaker."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import pytest

from tripswitch import CircuitBreaker, Event

TIMEOUT = 10


async def fail() -> None:
    raise ValueError("down")


async def ok() -> str:
    return "ok"


async def test_on_error_raising_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def on_error(exc: Exception) -> None:
        raise RuntimeError("on_error broke")

    breaker = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.001), on_error=on_error)
    with caplog.at_level(logging.ERROR, logger="tripswitch"):
        with pytest.raises(ValueError):
            await asyncio.wait_for(breaker.execute(fail), TIMEOUT)
    assert any("on_error raised" in r.getMessage() for r in caplog.records)
    assert await asyncio.wait_for(breaker.execute(ok), TIMEOUT) == "ok"
    assert not breaker.is_frozen


async def test_listener_raising_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener broke")

    breaker = CircuitBreaker.standard(
        name="inventory",
        consecutive_failures=1,
        fail_fast=True,
        listeners=[broken, seen.append],
    )
    with caplog.at_level(logging.ERROR, logger="tripswitch"):
        with pytest.raises(ValueError):
            await breaker.execute(fail)
    assert any("listener raised" in r.getMessage() for r in caplog.records)
    kinds = [e.kind for e in seen]
    assert "failure" in kinds and "transition" in kinds, "the next listener still runs"
    transition = next(e for e in seen if e.kind == "transition")
    assert (transition.from_state, transition.to_state, transition.reason) == (
        "closed",
        "open",
        "tripped",
    )
    assert transition.breaker == "inventory"
    assert breaker.is_frozen


@pytest.mark.parametrize(
    "freeze",
    [
        pytest.param(lambda: (_ for _ in ()).throw(RuntimeError("sync raise")), id="raises-before-awaitable"),
        pytest.param(lambda: None, id="not-awaitable"),
    ],
)
async def test_freeze_function_misbehaving_ends_the_freeze(
    freeze: object, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = CircuitBreaker(freeze_function=freeze)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="tripswitch"):
        with pytest.raises(ValueError):
            await asyncio.wait_for(breaker.execute(fail), TIMEOUT)
    assert not breaker.is_frozen
    assert any("freeze function raised" in r.getMessage() for r in caplog.records)


async def test_freeze_function_raising_releases_waiters() -> None:
    gate = asyncio.Event()

    async def freeze() -> None:
        await gate.wait()
        raise RuntimeError("freeze broke")

    breaker = CircuitBreaker(freeze_function=freeze)
    trigger = asyncio.create_task(breaker.execute(fail))
    while not breaker.is_frozen:
        await asyncio.sleep(0)
    waiters = [asyncio.create_task(breaker.execute(ok)) for _ in range(3)]
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), TIMEOUT) == ["ok"] * 3
    with pytest.raises(ValueError):
        await asyncio.wait_for(trigger, TIMEOUT)


async def test_attributes_assignable_later() -> None:
    # The seed's API: both callbacks are plain attributes.
    breaker = CircuitBreaker()
    seen: list[Exception] = []
    breaker.on_error = seen.append
    breaker.freeze_function = partial(asyncio.sleep, 0.001)
    with pytest.raises(ValueError):
        await asyncio.wait_for(breaker.execute(fail), TIMEOUT)
    assert len(seen) == 1


async def test_a_freeze_that_never_ends_is_bounded_by_max_freeze() -> None:
    never = asyncio.Event()
    breaker = CircuitBreaker(freeze_function=never.wait, max_freeze=0.05)
    trigger = asyncio.create_task(breaker.execute(fail))
    while not breaker.is_frozen:
        await asyncio.sleep(0)
    waiter = asyncio.create_task(breaker.execute(ok))
    # The freeze function never returns; the bound ends the freeze anyway.
    assert await asyncio.wait_for(waiter, TIMEOUT) == "ok"
    with pytest.raises(ValueError):
        await asyncio.wait_for(trigger, TIMEOUT)
    assert not breaker.is_frozen


async def test_wait_unfrozen() -> None:
    gate = asyncio.Event()
    breaker = CircuitBreaker(freeze_function=gate.wait)
    await asyncio.wait_for(breaker.wait_unfrozen(), TIMEOUT)  # not frozen: at once
    trigger = asyncio.create_task(breaker.execute(fail))
    while not breaker.is_frozen:
        await asyncio.sleep(0)
    unfrozen = asyncio.create_task(breaker.wait_unfrozen())
    await asyncio.sleep(0.01)
    assert not unfrozen.done()
    gate.set()
    await asyncio.wait_for(unfrozen, TIMEOUT)
    with pytest.raises(ValueError):
        await asyncio.wait_for(trigger, TIMEOUT)
