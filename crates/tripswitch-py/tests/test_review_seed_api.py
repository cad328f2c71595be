"""review20: the seed's API, attacked (kwargs, identity, decorator, freeze future)."""

import asyncio
import functools
import inspect
import threading
import traceback
from functools import partial

import pytest

from tripswitch import CircuitBreaker, with_circuit_breaker

T = 20  # generous timeout for anything that must not hang


def quick(**kw):
    return CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=lambda e: None, **kw)


# --- keyword arguments the operation takes must reach it, also on the retry path ---

@pytest.mark.parametrize("kwname", ["first", "func", "self", "args", "kwargs"])
async def test_review20_retry_with_keyword_argument_named_like_internal(kwname):
    cb = quick()
    calls = []

    async def op(**kw):
        calls.append(kw)
        if len(calls) == 1:
            raise ValueError("first run fails")
        return kw[kwname]

    got = await asyncio.wait_for(cb.execute(op, **{kwname: 42}), T)
    assert got == 42
    assert calls == [{kwname: 42}, {kwname: 42}]


async def test_review20_decorated_function_with_keyword_first_retries():
    cb = quick()
    calls = []

    @with_circuit_breaker(cb)
    async def page(*, first: int = 0, func: str = "x") -> int:
        calls.append(first)
        if len(calls) == 1:
            raise ConnectionError("boom")
        return first

    assert await asyncio.wait_for(page(first=7, func="y"), T) == 7
    assert calls == [7, 7]


# --- exception identity and traceback ---

async def test_review20_exception_identity_and_traceback_no_retry():
    cb = quick(retry_after_freeze=False)
    raised = []

    async def deep_failure():
        err = KeyError("k")
        raised.append(err)
        raise err

    with pytest.raises(KeyError) as info:
        await asyncio.wait_for(cb.execute(deep_failure), T)
    assert info.value is raised[0]
    names = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "deep_failure" in names


async def test_review20_exception_identity_after_retry():
    cb = quick()
    raised = []
    seen_by_on_error = []
    cb.on_error = seen_by_on_error.append

    async def always_fails():
        err = RuntimeError(f"run {len(raised)}")
        raised.append(err)
        raise err

    with pytest.raises(RuntimeError) as info:
        await asyncio.wait_for(cb.execute(always_fails), T)
    assert len(raised) == 2
    assert info.value is raised[-1]
    assert seen_by_on_error and seen_by_on_error[0] is raised[0]
    names = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "always_fails" in names


async def test_review20_on_error_receives_the_exception_object():
    got = []
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.01), on_error=got.append)
    err = ValueError("v")

    async def op():
        raise err

    with pytest.raises(ValueError):
        await asyncio.wait_for(cb.execute(op), T)
    assert got[0] is err


# --- attributes assignable later ---

async def test_review20_attributes_reassignable_and_used():
    cb = CircuitBreaker()
    used = []

    async def freeze_a():
        used.append("a")
        await asyncio.sleep(0.01)

    cb.freeze_function = freeze_a
    errors = []
    cb.on_error = errors.append
    n = 0

    async def flaky():
        nonlocal n
        n += 1
        if n == 1:
            raise OSError("x")
        return n

    assert await asyncio.wait_for(cb.execute(flaky), T) == 2
    assert used == ["a"] and len(errors) == 1


async def test_review20_reassign_freeze_function_during_freeze():
    cb = CircuitBreaker(on_error=lambda e: None)
    started = asyncio.Event()
    release = asyncio.Event()
    log = []

    async def freeze_one():
        log.append("one")
        started.set()
        await release.wait()

    async def freeze_two():
        log.append("two")

    cb.freeze_function = freeze_one
    n = 0

    async def flaky():
        nonlocal n
        n += 1
        if n in (1, 3):
            raise OSError(n)
        return n

    t = asyncio.ensure_future(cb.execute(flaky))
    await asyncio.wait_for(started.wait(), T)
    cb.freeze_function = freeze_two
    cb.on_error = lambda e: log.append("new on_error")
    assert cb.is_frozen
    release.set()
    assert await asyncio.wait_for(t, T) == 2
    assert not cb.is_frozen
    assert await asyncio.wait_for(cb.execute(flaky), T) == 4
    assert log == ["one", "new on_error", "two"]


# --- with_circuit_breaker ---

async def test_review20_decorator_keeps_name_doc_signature():
    cb = quick()

    async def fetch(url: str, /, retries: int = 3, *, timeout: float = 1.0, **extra: int) -> bytes:
        """Fetch docs."""
        return b"ok"

    wrapped = with_circuit_breaker(cb)(fetch)
    assert wrapped.__name__ == "fetch"
    assert wrapped.__doc__ == "Fetch docs."
    assert wrapped.__wrapped__ is fetch
    assert inspect.signature(wrapped) == inspect.signature(fetch)
    assert inspect.iscoroutinefunction(wrapped)
    assert await wrapped("u", timeout=2.0, z=1) == b"ok"
    with pytest.raises(TypeError):
        await wrapped("u", 1, 2)  # too many positionals: the function's own TypeError


async def test_review20_decorator_on_methods():
    cb = quick()

    class Client:
        def __init__(self):
            self.n = 0

        @with_circuit_breaker(cb)
        async def get(self, key, *, default=None):
            self.n += 1
            if self.n == 1:
                raise ConnectionError("first")
            return (self, key, default)

    c = Client()
    got = await asyncio.wait_for(c.get("k", default=5), T)
    assert got == (c, "k", 5)
    assert list(inspect.signature(Client.get).parameters) == ["self", "key", "default"]
    assert list(inspect.signature(c.get).parameters) == ["key", "default"]


# --- is_frozen / _freeze_future ---

async def test_review20_freeze_future_none_before_and_awaitable_during():
    cb = CircuitBreaker(on_error=lambda e: None)
    assert cb._freeze_future is None
    assert cb.is_frozen is False
    go = asyncio.Event()

    async def freeze():
        await go.wait()

    cb.freeze_function = freeze
    n = 0

    async def flaky():
        nonlocal n
        n += 1
        if n == 1:
            raise OSError
        return "ok"

    t = asyncio.ensure_future(cb.execute(flaky))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if cb._freeze_future is not None:
            break
    fut = cb._freeze_future
    assert fut is not None and cb.is_frozen
    assert not fut.done()
    waiter = asyncio.ensure_future(asyncio.wait_for(fut, T))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    go.set()
    await waiter
    assert await asyncio.wait_for(t, T) == "ok"
    assert not cb.is_frozen
    assert fut.done()


async def test_review20_freeze_future_awaited_from_another_loop():
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.5), on_error=lambda e: None)
    n = 0

    async def flaky():
        nonlocal n
        n += 1
        if n == 1:
            raise OSError
        return "ok"

    t = asyncio.ensure_future(cb.execute(flaky))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if cb._freeze_future is not None:
            break
    fut = cb._freeze_future
    result = {}

    def other():
        async def main():
            await asyncio.wait_for(fut, T)
            result["frozen_after"] = cb.is_frozen

        asyncio.run(main())
        result["done"] = True

    th = threading.Thread(target=other, daemon=True)
    th.start()
    assert await asyncio.wait_for(t, T) == "ok"
    await asyncio.to_thread(th.join, T)
    assert result == {"frozen_after": False, "done": True}


# --- odd freeze functions ---

@pytest.mark.parametrize(
    "freeze",
    [
        lambda: None,  # not a coroutine function, returns a non-awaitable
        lambda: 42,
        lambda: 1 / 0,  # raises synchronously
        partial(asyncio.sleep, 0.01, result=None),
    ],
    ids=["returns-None", "returns-int", "raises-sync", "partial"],
)
async def test_review20_odd_freeze_functions_never_hang(freeze):
    cb = CircuitBreaker(freeze_function=freeze, on_error=lambda e: None)
    n = 0

    async def flaky():
        nonlocal n
        n += 1
        if n == 1:
            raise OSError
        return "ok"

    assert await asyncio.wait_for(cb.execute(flaky), T) == "ok"
    assert not cb.is_frozen
    assert await asyncio.wait_for(cb.execute(flaky), T) == "ok"


async def test_review20_freeze_function_returning_future_and_generator_coroutine():
    loop = asyncio.get_running_loop()

    def fut_freeze():
        f = loop.create_future()
        loop.call_later(0.02, f.set_result, None)
        return f

    cb = CircuitBreaker(freeze_function=fut_freeze, on_error=lambda e: None)
    n = 0

    async def flaky():
        nonlocal n
        n += 1
        if n == 1:
            raise OSError
        return "ok"

    assert await asyncio.wait_for(cb.execute(flaky), T) == "ok"
