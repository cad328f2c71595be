"""review20: more corners: max_freeze, blocked loops, freeze future errors, manual control mid-call."""

import asyncio
import threading
import time
from functools import partial

import pytest

from tripswitch import CircuitBreaker, CircuitOpenError

T = 20


async def until(pred, limit=T):
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.005)


async def ok():
    return "ok"


async def test_review20_freeze_future_raises_freeze_functions_error():
    err = ValueError("freeze broke")

    async def freeze():
        await asyncio.sleep(0.02)
        raise err

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None)
    n = 0

    async def flaky():
        nonlocal n
        n += 1
        if n == 1:
            raise OSError
        return n

    t = asyncio.ensure_future(cb.execute(flaky))
    await until(lambda: cb._freeze_future is not None)
    fut = cb._freeze_future
    with pytest.raises(ValueError) as info:
        await asyncio.wait_for(fut, T)
    assert info.value is err
    assert await asyncio.wait_for(t, T) == 2


async def test_review20_freeze_future_with_asyncio_helpers():
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.05), on_error=lambda e: None)
    n = 0

    async def flaky():
        nonlocal n
        n += 1
        if n == 1:
            raise OSError
        return n

    t = asyncio.ensure_future(cb.execute(flaky))
    await until(lambda: cb._freeze_future is not None)
    fut = cb._freeze_future
    await asyncio.wait_for(asyncio.shield(fut), T)
    await asyncio.wait_for(asyncio.gather(fut, fut), T)
    assert await asyncio.wait_for(t, T) == 2


async def test_review20_max_freeze_bounds_a_long_freeze_and_one_freeze_at_a_time():
    running = 0
    peak = 0

    async def freeze():
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(1.0)
        finally:
            running -= 1

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None, max_freeze=0.1)

    async def fails():
        raise OSError

    t1 = asyncio.ensure_future(cb.execute(fails))
    await until(lambda: cb.is_frozen)
    await asyncio.wait_for(cb.wait_unfrozen(), 10)  # max_freeze ends it
    t2 = asyncio.ensure_future(cb.execute(fails))
    await asyncio.gather(t1, t2, return_exceptions=True)
    assert peak == 1, "two freeze functions ran at once after max_freeze ended the first"


async def test_review20_retry_refused_by_max_wait_raises_first_error():
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 5), on_error=lambda e: None, max_wait=0.05)
    err = OSError("first")

    async def fails():
        raise err

    with pytest.raises(OSError) as info:
        await asyncio.wait_for(cb.execute(fails), T)
    assert info.value is err
    cb._freeze_future.task.cancel()


async def test_review20_manual_control_while_calls_run():
    cb = CircuitBreaker.standard(consecutive_failures=2, open_for=0.05)
    gate = asyncio.Event()

    async def held(fail):
        await gate.wait()
        if fail:
            raise OSError
        return "ok"

    tasks = [asyncio.ensure_future(cb.execute(held, i % 2 == 0)) for i in range(20)]
    await asyncio.sleep(0.01)
    cb.force_open()
    cb.reset()
    cb.disable()
    cb.resume()
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), T)
    await asyncio.sleep(0.1)
    m = cb.metrics()
    assert m.probes_in_flight == 0 and m.waiting == 0
    cb.reset()
    assert await asyncio.wait_for(cb.execute(ok), T) == "ok"


def test_review20_blocked_loop_waiters_do_not_hold_up_others():
    """Waiters on a loop that is blocked must not delay waiters on a live loop
    once the freeze ends."""
    go = threading.Event()
    waiting = threading.Event()

    async def freeze():
        await asyncio.to_thread(go.wait, T)

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None)

    def blocked_thread():
        async def main():
            ts = [asyncio.ensure_future(cb.execute(ok)) for _ in range(5)]
            await until(lambda: cb.metrics().waiting >= 5)
            waiting.set()
            go.wait(T)
            time.sleep(15)  # blocks this loop: its waiters cannot run
            return await asyncio.gather(*ts)

        return asyncio.run(main())

    async def main():
        n = 0

        async def flaky():
            nonlocal n
            n += 1
            if n == 1:
                raise OSError
            return "retry"

        starter = asyncio.ensure_future(cb.execute(flaky))
        await until(lambda: cb.is_frozen)
        th = threading.Thread(target=blocked_thread, daemon=True)
        th.start()
        await asyncio.to_thread(waiting.wait, T)
        live = [asyncio.ensure_future(cb.execute(ok)) for _ in range(5)]
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        go.set()
        got = await asyncio.wait_for(asyncio.gather(starter, *live), 60)
        took = time.monotonic() - t0
        await asyncio.to_thread(th.join, 60)
        return got, took

    got, took = asyncio.run(main())
    assert got == ["retry"] + ["ok"] * 5
    assert took < 10, f"live-loop waiters waited {took:.1f}s for a blocked loop"


def test_review20_blocking_freeze_function_cross_thread():
    async def freeze():
        time.sleep(0.2)  # blocks its loop

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None)
    frozen = threading.Event()
    res = {}

    def other():
        assert frozen.wait(T)

        async def main():
            return await asyncio.wait_for(asyncio.gather(*(cb.execute(ok) for _ in range(10))), T)

        res["other"] = asyncio.run(main())

    th = threading.Thread(target=other, daemon=True)
    th.start()

    async def main():
        n = 0

        async def flaky():
            nonlocal n
            n += 1
            if n == 1:
                await asyncio.sleep(0)
                frozen.set()
                raise OSError
            return "retry"

        return await asyncio.wait_for(cb.execute(flaky), T)

    assert asyncio.run(main()) == "retry"
    th.join(T)
    assert res.get("other") == ["ok"] * 10


async def test_review20_operation_retries_exactly_once_even_if_retry_fails():
    calls = 0
    errors = []
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=errors.append)

    async def fails():
        nonlocal calls
        calls += 1
        raise OSError(calls)

    with pytest.raises(OSError) as info:
        await asyncio.wait_for(cb.execute(fails), T)
    assert calls == 2
    assert info.value.args == (2,)
    await asyncio.wait_for(cb.wait_unfrozen(), T)
    assert await asyncio.wait_for(cb.execute(ok), T) == "ok"


async def test_review20_waiters_run_after_freeze_not_during():
    go = asyncio.Event()
    log = []

    async def freeze():
        log.append("freeze-start")
        await go.wait()
        log.append("freeze-end")

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None)
    n = 0

    async def flaky():
        nonlocal n
        n += 1
        if n == 1:
            raise OSError
        log.append("retry")
        return "r"

    async def w(i):
        log.append(f"w{i}")
        return i

    starter = asyncio.ensure_future(cb.execute(flaky))
    await until(lambda: cb.is_frozen)
    ws = [asyncio.ensure_future(cb.execute(w, i)) for i in range(3)]
    await asyncio.sleep(0.05)
    assert log == ["freeze-start"]
    go.set()
    await asyncio.wait_for(asyncio.gather(starter, *ws), T)
    assert log[:2] == ["freeze-start", "freeze-end"]
    assert sorted(log[2:]) == sorted(["retry", "w0", "w1", "w2"])


async def test_review20_fail_fast_seed_with_freeze_function():
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.2), on_error=lambda e: None, fail_fast=True, name="ff")

    async def fails():
        raise OSError("x")

    with pytest.raises(OSError):
        await asyncio.wait_for(cb.execute(fails), T)
    assert cb.is_frozen
    with pytest.raises(CircuitOpenError) as info:
        await cb.execute(ok)
    assert info.value.name == "ff"
    await asyncio.wait_for(cb.wait_unfrozen(), T)


async def test_review20_half_open_waiters_cancel_fuzz():
    """Wait mode, one probe at a time, callers cancelled at random (also right
    after being granted): the breaker must end closed with nothing held."""
    import random

    from tripswitch import HalfOpen

    rnd = random.Random(2020)
    cb = CircuitBreaker.standard(
        consecutive_failures=1, open_for=0.01, half_open=HalfOpen(probes=1), fail_fast=False
    )
    fail_until = asyncio.get_running_loop().time() + 0.5

    async def op(i):
        await asyncio.sleep(rnd.random() * 0.002)
        if asyncio.get_running_loop().time() < fail_until and i % 4 == 0:
            raise OSError(i)
        return i

    tasks = []
    for round_ in range(40):
        tasks += [asyncio.ensure_future(cb.execute(op, round_ * 50 + j)) for j in range(50)]
        await asyncio.sleep(0.005)
        for t in rnd.sample(tasks, 20):
            t.cancel()
        await asyncio.sleep(0)
        for t in rnd.sample(tasks, 5):
            t.cancel()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 120)
    await asyncio.sleep(0.6)

    async def ok():
        return "ok"

    for _ in range(3):
        assert await asyncio.wait_for(cb.execute(ok), T) == "ok"
    m = cb.metrics()
    assert m.state == "closed", m
    assert m.probes_in_flight == 0 and m.waiting == 0, m


async def test_review20_wait_unfrozen_cancel_and_other_loops():
    go = threading.Event()

    async def freeze():
        await asyncio.to_thread(go.wait, T)

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None, retry_after_freeze=False)

    async def bad():
        raise OSError

    with pytest.raises(OSError):
        await cb.execute(bad)
    await until(lambda: cb.is_frozen)
    ws = [asyncio.ensure_future(cb.wait_unfrozen()) for _ in range(100)]
    await asyncio.sleep(0.02)
    for w in ws[:50]:
        w.cancel()

    def other():
        async def main():
            await asyncio.wait_for(asyncio.gather(*(cb.wait_unfrozen() for _ in range(50))), T)
            return cb.is_frozen

        return asyncio.run(main())

    th_result = {}
    th = threading.Thread(target=lambda: th_result.setdefault("r", other()), daemon=True)
    th.start()
    await asyncio.sleep(0.05)
    go.set()
    await asyncio.wait_for(asyncio.gather(*ws[50:]), T)
    await asyncio.to_thread(th.join, T)
    assert th_result.get("r") is False
