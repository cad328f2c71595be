"""The seed's scenarios (escudeiro's tests/ds/test_circuit.py), rewritten.

Each test names the seed test it covers. Freezes are held open by an
``asyncio.Event`` the test sets, not by wall-clock sleeps, so that a busy
machine cannot change the outcome.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from functools import partial

import pytest

from tripswitch import CircuitBreaker, with_circuit_breaker

TIMEOUT = 10


def gated_breaker() -> tuple[CircuitBreaker, asyncio.Event, list[int]]:
    """A seed breaker whose freeze lasts until the returned event is set;
    the list counts freezes started."""
    gate = asyncio.Event()
    freezes: list[int] = []

    async def freeze() -> None:
        freezes.append(1)
        await gate.wait()

    return CircuitBreaker(freeze_function=freeze), gate, freezes


async def test_success_passes_through() -> None:
    # seed: test_successful_execution
    breaker = CircuitBreaker()

    async def op() -> str:
        return "success"

    assert await breaker.execute(op) == "success"
    assert not breaker.is_frozen
    assert breaker._freeze_future is None


async def test_failure_freezes_then_calls_go_again() -> None:
    # seed: test_freezes_on_exception
    breaker, gate, _ = gated_breaker()
    errors: list[Exception] = []
    breaker.on_error = errors.append

    async def failing() -> None:
        raise ValueError("Test error")

    call = asyncio.create_task(breaker.execute(failing))
    while breaker._freeze_future is None:
        await asyncio.sleep(0)
    assert breaker.is_frozen
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
    gate.set()
    with pytest.raises(ValueError, match="Test error"):
        await asyncio.wait_for(call, TIMEOUT)  # the retry after the freeze fails too
    await asyncio.wait_for(breaker._freeze_future, TIMEOUT)
    assert breaker._freeze_future.done()

    async def ok() -> str:
        return "success"

    assert await breaker.execute(ok) == "success"
    assert not breaker.is_frozen
    assert len(errors) == 1, "the retry's failure is not reported to on_error"


async def test_concurrent_calls_wait_for_one_freeze() -> None:
    # seed: test_multiple_concurrent_executions
    breaker = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.05))
    calls = 0

    async def op() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ValueError("First call error")
        return f"Call {calls}"

    results = await asyncio.wait_for(
        asyncio.gather(*(breaker.execute(op) for _ in range(5)), return_exceptions=True),
        TIMEOUT,
    )
    errors = [r for r in results if isinstance(r, ValueError)]
    assert len(errors) == 1
    assert all(isinstance(r, str) and r.startswith("Call") for r in results if r not in errors)
    # One failed first run, its retry (which fails), four waiters that ran once.
    assert calls == 6


async def test_decorator_keeps_name_signature_and_breaker() -> None:
    # seed: test_decorator_functionality
    breaker, gate, _ = gated_breaker()
    runs = 0

    @with_circuit_breaker(breaker)
    async def fetch(should_fail: bool = False) -> str:
        """Fetches."""
        nonlocal runs
        runs += 1
        if should_fail:
            raise ValueError("Decorator test error")
        return "decorator success"

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetches."
    assert str(inspect.signature(fetch)) == "(should_fail: 'bool' = False) -> 'str'"
    assert await fetch() == "decorator success" and runs == 1

    failing = asyncio.create_task(fetch(should_fail=True))
    while not breaker.is_frozen:
        await asyncio.sleep(0)
    assert runs == 2
    waiting = asyncio.create_task(fetch())
    await asyncio.sleep(0.01)
    assert runs == 2, "a call made while frozen waits"
    gate.set()
    with pytest.raises(ValueError):
        await asyncio.wait_for(failing, TIMEOUT)
    assert await asyncio.wait_for(waiting, TIMEOUT) == "decorator success"
    assert runs == 4


async def test_custom_freeze_function_is_awaited() -> None:
    # seed: test_custom_freeze_function
    entered = asyncio.Event()
    gate = asyncio.Event()
    loops: list[asyncio.AbstractEventLoop] = []

    async def custom_freeze() -> None:
        loops.append(asyncio.get_running_loop())
        entered.set()
        await gate.wait()

    breaker = CircuitBreaker(freeze_function=custom_freeze)

    async def failing() -> None:
        raise RuntimeError("Custom freeze test")

    call = asyncio.create_task(breaker.execute(failing))
    await asyncio.wait_for(entered.wait(), TIMEOUT)
    assert breaker.is_frozen
    assert loops == [asyncio.get_running_loop()], "awaited on the caller's loop"
    gate.set()
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(call, TIMEOUT)
    assert not breaker.is_frozen
    assert len(loops) == 1


async def test_on_error_gets_the_exception() -> None:
    # seed: test_custom_error_handler
    handled: list[Exception] = []
    breaker = CircuitBreaker(
        freeze_function=partial(asyncio.sleep, 0.001), on_error=handled.append
    )
    raised: list[KeyError] = []

    async def failing() -> None:
        error = KeyError("Custom handler test")
        raised.append(error)
        raise error

    with pytest.raises(KeyError) as caught:
        await asyncio.wait_for(breaker.execute(failing), TIMEOUT)
    assert len(handled) == 1
    assert handled[0] is raised[0], "on_error receives the exception object itself"
    assert str(handled[0]) == "'Custom handler test'"
    # The caller gets the retry's exception object, unchanged, with its traceback.
    assert caught.value is raised[1]
    frames = [f.name for f in caught.traceback]
    assert "failing" in frames


async def test_raising_freeze_function_ends_the_freeze(caplog: pytest.LogCaptureFixture) -> None:
    # seed: test_freeze_function_exception (the seed stays frozen for ever:
    # the defect this package fixes).
    async def failing_freeze() -> None:
        raise RuntimeError("Freeze function failed")

    breaker = CircuitBreaker(freeze_function=failing_freeze)

    async def op() -> None:
        raise ValueError("Initial error")

    with caplog.at_level(logging.ERROR, logger="tripswitch"):
        with pytest.raises(ValueError, match="Initial error"):
            await asyncio.wait_for(breaker.execute(op), TIMEOUT)
    assert not breaker.is_frozen
    assert any("freeze function raised" in r.getMessage() for r in caplog.records)
    assert breaker._freeze_future is not None
    # As the seed's future: awaiting the freeze raises what the freeze function raised.
    with pytest.raises(RuntimeError, match="Freeze function failed"):
        await asyncio.wait_for(breaker._freeze_future, TIMEOUT)

    async def ok() -> int:
        return 1

    assert await asyncio.wait_for(breaker.execute(ok), TIMEOUT) == 1


async def test_calls_made_while_frozen_run_after_the_freeze() -> None:
    # seed: test_reentry_during_frozen_state
    breaker, gate, freezes = gated_breaker()

    async def failing() -> None:
        raise ValueError("Freeze trigger")

    runs = 0

    async def op() -> str:
        nonlocal runs
        runs += 1
        return f"Call {runs}"

    trigger = asyncio.create_task(breaker.execute(failing))
    while not breaker.is_frozen:
        await asyncio.sleep(0)
    waiting = [asyncio.create_task(breaker.execute(op)) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert runs == 0
    assert breaker.metrics().waiting >= 3
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(*waiting), TIMEOUT)
    assert runs == 3 and all(r.startswith("Call") for r in results)
    with pytest.raises(ValueError):
        await asyncio.wait_for(trigger, TIMEOUT)
    assert not breaker.is_frozen
    assert freezes == [1], "one freeze at a time: the retry's failure does not freeze again"
