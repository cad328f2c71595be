"""review20: cancellation at every await, BaseExceptions everywhere."""

import asyncio
import logging
from functools import partial

import pytest

from tripswitch import CircuitBreaker

T = 20


class Boom(BaseException):
    """A BaseException that asyncio passes through tasks like any error."""


async def until(pred, limit=T):
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.005)


def make_flaky(fail_runs):
    state = {"n": 0}

    async def flaky():
        state["n"] += 1
        if state["n"] in fail_runs:
            raise OSError(state["n"])
        return state["n"]

    return flaky, state


async def healthy(cb):
    async def ok():
        return "fine"

    assert await asyncio.wait_for(cb.execute(ok), T) == "fine"
    assert not cb.is_frozen
    assert cb.metrics().waiting == 0


# --- cancellation ---

async def test_review20_cancel_waiter_mid_wait():
    go = asyncio.Event()

    async def freeze():
        await go.wait()

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None)
    flaky, _ = make_flaky({1})
    starter = asyncio.ensure_future(cb.execute(flaky))
    await until(lambda: cb.is_frozen)

    async def ok():
        return "w"

    waiters = [asyncio.ensure_future(cb.execute(ok)) for _ in range(10)]
    await until(lambda: cb.metrics().waiting >= 10)
    for w in waiters[::2]:
        w.cancel()
    await asyncio.sleep(0.01)
    await until(lambda: cb.metrics().waiting <= 6)
    go.set()
    assert await asyncio.wait_for(starter, T) == 2
    for w in waiters[1::2]:
        assert await asyncio.wait_for(w, T) == "w"
    for w in waiters[::2]:
        assert w.cancelled()
    await healthy(cb)


async def test_review20_cancel_task_that_started_freeze():
    started = asyncio.Event()
    go = asyncio.Event()
    runs = []

    async def freeze():
        runs.append(1)
        started.set()
        await go.wait()

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None)
    flaky, state = make_flaky({1})
    starter = asyncio.ensure_future(cb.execute(flaky))
    await asyncio.wait_for(started.wait(), T)

    async def ok():
        return "w"

    other = asyncio.ensure_future(cb.execute(ok))
    await asyncio.sleep(0.02)
    starter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starter
    assert cb.is_frozen, "the freeze goes on for the other callers"
    assert not other.done()
    go.set()
    assert await asyncio.wait_for(other, T) == "w"
    assert state["n"] == 1, "the cancelled call must not retry"
    assert runs == [1]
    await healthy(cb)


async def test_review20_cancel_freeze_task_itself():
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 3600), on_error=lambda e: None)
    flaky, _ = make_flaky({1})
    starter = asyncio.ensure_future(cb.execute(flaky))
    await until(lambda: cb._freeze_future is not None)

    async def ok():
        return "w"

    others = [asyncio.ensure_future(cb.execute(ok)) for _ in range(5)]
    await asyncio.sleep(0.02)
    cb._freeze_future.task.cancel()
    assert await asyncio.wait_for(starter, T) == 2
    assert await asyncio.wait_for(asyncio.gather(*others), T) == ["w"] * 5
    await healthy(cb)


async def test_review20_freeze_function_cancelled_from_inside():
    async def freeze():
        raise asyncio.CancelledError()

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None)
    flaky, _ = make_flaky({1})
    assert await asyncio.wait_for(cb.execute(flaky), T) == 2
    await healthy(cb)


async def test_review20_cancel_mid_operation_closed_path():
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=lambda e: None)
    entered = asyncio.Event()

    async def slow():
        entered.set()
        await asyncio.sleep(3600)

    t = asyncio.ensure_future(cb.execute(slow))
    await asyncio.wait_for(entered.wait(), T)
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    m = cb.metrics()
    assert m.totals.failures == 0 and m.totals.successes == 0
    assert m.state == "closed"
    await healthy(cb)


async def test_review20_cancel_during_retry_run():
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=lambda e: None)
    entered = asyncio.Event()
    n = 0

    async def op():
        nonlocal n
        n += 1
        if n == 1:
            raise OSError
        entered.set()
        await asyncio.sleep(3600)

    t = asyncio.ensure_future(cb.execute(op))
    await asyncio.wait_for(entered.wait(), T)
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    await healthy(cb)


async def test_review20_cancel_at_every_step_random_fuzz():
    """Many callers cancelled at random points; the breaker ends healthy."""
    import random

    rnd = random.Random(20)
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.005), on_error=lambda e: None)

    async def op(i):
        await asyncio.sleep(rnd.random() * 0.003)
        if i % 3 == 0:
            raise OSError(i)
        return i

    tasks = [asyncio.ensure_future(cb.execute(op, i)) for i in range(600)]
    for _ in range(30):
        await asyncio.sleep(0.002)
        for t in rnd.sample(tasks, 15):
            t.cancel()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    await until(lambda: not cb.is_frozen)
    await healthy(cb)


# --- BaseExceptions and CancelledError raised by the operation ---

async def test_review20_operation_raises_cancelled_error_itself():
    errors = []
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=errors.append)
    err = asyncio.CancelledError("from op")

    async def op():
        raise err

    with pytest.raises(asyncio.CancelledError) as info:
        await cb.execute(op)
    assert info.value is err
    assert errors == []
    assert not cb.is_frozen
    await healthy(cb)


async def test_review20_operation_raises_base_exception():
    errors = []
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=errors.append)
    err = Boom()

    async def op():
        await asyncio.sleep(0)
        raise err

    with pytest.raises(Boom) as info:
        await asyncio.wait_for(cb.execute(op), T)
    assert info.value is err
    assert errors == []
    assert cb.metrics().totals.failures == 0
    await healthy(cb)


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_review20_keyboard_interrupt_and_system_exit_from_operation(exc_type):
    """Driven by hand (no loop needed on the closed path)."""
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=lambda e: None)
    err = exc_type()

    async def op():
        raise err

    coro = cb.execute(op)
    with pytest.raises(exc_type) as info:
        coro.send(None)
    assert info.value is err
    assert cb.state == "closed" and not cb.is_frozen
    m = cb.metrics()
    assert m.totals.failures == 0

    async def ok():
        return 1

    assert asyncio.run(cb.execute(ok)) == 1


async def test_review20_on_error_raises_exception_is_logged(caplog):
    def bad(exc):
        raise RuntimeError("on_error broke")

    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=bad)
    flaky, _ = make_flaky({1})
    with caplog.at_level(logging.ERROR, logger="tripswitch"):
        assert await asyncio.wait_for(cb.execute(flaky), T) == 2
    assert any("on_error" in r.getMessage() for r in caplog.records)
    await healthy(cb)


async def test_review20_on_error_raises_base_exception_breaker_not_stuck():
    """A BaseException out of on_error reaches the caller; the breaker must
    not stay frozen with nobody running its freeze."""

    def bad(exc):
        raise Boom()

    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=bad)

    async def fails():
        raise OSError("x")

    with pytest.raises(BaseException):
        await asyncio.wait_for(cb.execute(fails), T)
    # Nobody calls execute again: the freeze must still end by itself.
    await asyncio.wait_for(cb.wait_unfrozen(), 10)
    assert not cb.is_frozen


async def test_review20_on_error_raises_base_exception_caller_gets_what():
    """Documented: the operation's exception reaches the caller unchanged."""

    def bad(exc):
        raise Boom()

    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=bad, retry_after_freeze=False)
    err = OSError("x")

    async def fails():
        raise err

    with pytest.raises(BaseException) as info:
        await asyncio.wait_for(cb.execute(fails), T)
    assert info.value is err or isinstance(info.value, Boom)
    await asyncio.wait_for(cb.wait_unfrozen(), 10)


async def test_review20_freeze_function_raises_base_exception():
    async def freeze():
        raise Boom()

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None)
    flaky, _ = make_flaky({1})
    t = asyncio.ensure_future(cb.execute(flaky))
    try:
        assert await asyncio.wait_for(t, T) == 2
    except Boom:
        pass
    await asyncio.wait_for(cb.wait_unfrozen(), 10)
    await healthy(cb)


async def test_review20_freeze_function_raises_logged(caplog):
    async def freeze():
        raise ValueError("freeze broke")

    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None)
    flaky, _ = make_flaky({1})
    with caplog.at_level(logging.ERROR, logger="tripswitch"):
        assert await asyncio.wait_for(cb.execute(flaky), T) == 2
    assert any(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in caplog.records)
    await healthy(cb)


# --- BaseExceptions out of listeners ---

SYSEXIT_LISTENER = '''
import asyncio
from tripswitch import CircuitBreaker
def listener(e):
    if e.kind == "failure":
        raise SystemExit(3)
cb = CircuitBreaker.standard(consecutive_failures=5, listeners=[listener])
async def bad():
    raise OSError("x")
async def main():
    try:
        try:
            await cb.execute(bad)
        except OSError:
            print("caller got OSError", flush=True)
    finally:
        print("finally ran", flush=True)
try:
    asyncio.run(main())
except SystemExit:
    print("SystemExit reached the caller", flush=True)
'''


def test_review20_listener_system_exit_does_not_kill_process_mid_call():
    """sys.exit() in a listener must not end the process from inside the
    Rust callback (skipping the caller's finally blocks)."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", SYSEXIT_LISTENER], capture_output=True, text=True, timeout=60)
    assert "finally ran" in p.stdout, (p.returncode, p.stdout, p.stderr)


async def test_review20_listener_base_exception_logged_on_tripswitch_logger(caplog):
    def listener(event):
        if event.kind == "failure":
            raise Boom("listener")

    cb = CircuitBreaker.standard(consecutive_failures=5, listeners=[listener])

    async def bad():
        raise OSError("x")

    reached = False
    with caplog.at_level(logging.DEBUG, logger="tripswitch"):
        try:
            await cb.execute(bad)
        except OSError:
            pass
        except Boom:
            reached = True
    logged = any(
        r.name == "tripswitch" and r.exc_info and isinstance(r.exc_info[1], Boom) for r in caplog.records
    )
    assert reached or logged, "a listener's BaseException is neither logged on 'tripswitch' nor raised"
    assert await cb.execute(asyncio.sleep, 0, "ok") == "ok"


async def test_review20_freeze_task_cancelled_before_its_first_step():
    """README: a freeze that is cancelled ends the freeze. Here the freeze task
    is cancelled right after it was created (a shutdown handler cancelling
    every task), before its coroutine ever ran."""
    cb = CircuitBreaker(
        freeze_function=partial(asyncio.sleep, 0.05), on_error=lambda e: None, retry_after_freeze=False
    )

    async def bad():
        raise OSError

    with pytest.raises(OSError):
        await cb.execute(bad)
    for t in asyncio.all_tasks():
        if t is not asyncio.current_task():
            t.cancel()
    await asyncio.sleep(0.1)

    async def ok():
        return "ok"

    assert await asyncio.wait_for(cb.execute(ok), 10) == "ok"
    assert not cb.is_frozen


async def test_review20_freeze_task_cancelled_before_first_step_seed_retry():
    """Same, with the seed's retry: the failing call cancels the freeze task
    from its on_error-free path (through _freeze_future.task) at once."""
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.05), on_error=lambda e: None)
    n = 0

    async def flaky():
        nonlocal n
        n += 1
        if n == 1:
            raise OSError
        return "retry"

    t = asyncio.ensure_future(cb.execute(flaky))
    await asyncio.sleep(0)  # t runs: fails, creates the freeze task, starts waiting
    fut = cb._freeze_future
    assert fut is not None
    fut.task.cancel()  # the freeze task has not run yet
    assert await asyncio.wait_for(t, 10) == "retry"
    assert not cb.is_frozen
