"""10,000 concurrent tasks, and one breaker shared by several event loops in
several threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tripswitch import CircuitBreaker

TIMEOUT = 60


async def fail() -> None:
    raise ValueError("down")


async def test_ten_thousand_tasks_wait_out_one_freeze() -> None:
    gate = asyncio.Event()
    freezes = 0

    async def freeze() -> None:
        nonlocal freezes
        freezes += 1
        await gate.wait()

    breaker = CircuitBreaker(freeze_function=freeze)
    trigger = asyncio.create_task(breaker.execute(fail))
    while not breaker.is_frozen:
        await asyncio.sleep(0)
    runs = 0

    async def op(i: int) -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0)
        return i

    tasks = [asyncio.create_task(breaker.execute(op, i)) for i in range(10_000)]
    while breaker.metrics().waiting < 10_001:
        await asyncio.sleep(0.01)
    assert runs == 0
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert results == list(range(10_000))
    with pytest.raises(ValueError):
        await asyncio.wait_for(trigger, TIMEOUT)
    assert freezes == 1
    metrics = breaker.metrics()
    assert metrics.waiting == 0 and metrics.state == "closed"


async def test_ten_thousand_concurrent_calls_on_a_closed_breaker() -> None:
    breaker = CircuitBreaker.standard(consecutive_failures=5, fail_fast=True)

    async def op(i: int) -> int:
        await asyncio.sleep(0)
        return i

    results = await asyncio.wait_for(
        asyncio.gather(*(breaker.execute(op, i) for i in range(10_000))), TIMEOUT
    )
    assert results == list(range(10_000))
    assert breaker.metrics().totals.successes == 10_000


def test_several_loops_in_threads_share_one_breaker() -> None:
    """A failure on one loop freezes the breaker for calls on every loop;
    the freeze runs on the failing call's loop; its end releases them all."""
    release = threading.Event()
    frozen = threading.Event()
    freeze_threads: list[int] = []

    async def freeze() -> None:
        freeze_threads.append(threading.get_ident())
        frozen.set()
        await asyncio.to_thread(release.wait, TIMEOUT)

    breaker = CircuitBreaker(freeze_function=freeze)
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    trip_thread: list[int] = []

    async def op(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async def tripper() -> None:
        trip_thread.append(threading.get_ident())
        try:
            await breaker.execute(fail)
        except ValueError:
            pass

    awaited_freeze: list[int] = []

    async def caller(n: int) -> None:
        frozen.wait(TIMEOUT)
        tasks = [asyncio.create_task(breaker.execute(op, i)) for i in range(200)]
        if n == 0:
            # The seed's `_freeze_future`, awaited on another thread's loop.
            assert breaker._freeze_future is not None
            await asyncio.wait_for(breaker._freeze_future, TIMEOUT)
            awaited_freeze.append(n)
        results[n] = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)

    def run(coro_fn: object, *args: object) -> None:
        try:
            asyncio.run(coro_fn(*args))  # type: ignore[operator]
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=run, args=(tripper,))]
    threads += [threading.Thread(target=run, args=(caller, n)) for n in range(3)]
    for thread in threads:
        thread.start()
    assert frozen.wait(TIMEOUT)
    # Every loop's calls queue behind the one freeze.
    deadline = 0
    while breaker.metrics().waiting < 602 and deadline < 1000:
        threading.Event().wait(0.01)
        deadline += 1
    assert breaker.is_frozen
    # The tripper's retry, 3 x 200 calls and the `_freeze_future` awaiter.
    assert breaker.metrics().waiting == 602
    release.set()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not errors
    assert freeze_threads == trip_thread
    assert results == {n: list(range(200)) for n in range(3)}
    assert awaited_freeze == [0]
    assert not breaker.is_frozen
