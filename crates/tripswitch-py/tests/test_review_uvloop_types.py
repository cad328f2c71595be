"""review20: the seed scenarios on uvloop ("any asyncio loop"), and the
typing promises checked with mypy --strict."""

import asyncio
import subprocess
import sys
import textwrap
import threading
from functools import partial

import pytest

from tripswitch import CircuitBreaker

T = 20


def runner():
    uvloop = pytest.importorskip("uvloop")
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


async def until(pred, limit=T):
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.005)


def test_review20_uvloop_freeze_waiters_cancel():
    cb = CircuitBreaker(on_error=lambda e: None)

    async def main():
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
            return "retry"

        async def ok(i):
            return i

        starter = asyncio.ensure_future(cb.execute(flaky))
        await until(lambda: cb.is_frozen)
        ws = [asyncio.ensure_future(cb.execute(ok, i)) for i in range(2000)]
        await until(lambda: cb.metrics().waiting >= 2000)
        for w in ws[:100]:
            w.cancel()
        await asyncio.wait_for(cb._freeze_future if False else asyncio.sleep(0), T)
        go.set()
        assert await asyncio.wait_for(starter, T) == "retry"
        got = await asyncio.wait_for(asyncio.gather(*ws[100:]), T)
        assert got == list(range(100, 2000))
        assert cb.metrics().waiting == 0

    with runner() as r:
        r.run(main())


def test_review20_uvloop_cross_thread_waiters_and_freeze_future():
    cb = CircuitBreaker(freeze_function=partial(asyncio.sleep, 0.3), on_error=lambda e: None)
    frozen = threading.Event()
    res = {}

    def other():
        assert frozen.wait(T)

        async def main():
            async def ok():
                return "ok"

            fut = cb._freeze_future
            r = await asyncio.wait_for(asyncio.gather(*(cb.execute(ok) for _ in range(50))), T)
            await asyncio.wait_for(fut, T)
            return r

        with runner() as r:
            res["other"] = r.run(main())

    th = threading.Thread(target=other, daemon=True)
    th.start()

    async def main():
        n = 0

        async def flaky():
            nonlocal n
            n += 1
            if n == 1:
                raise OSError
            return "retry"

        t = asyncio.ensure_future(cb.execute(flaky))
        await until(lambda: cb._freeze_future is not None)
        frozen.set()
        return await asyncio.wait_for(t, T)

    with runner() as r:
        assert r.run(main()) == "retry"
    th.join(T)
    assert res.get("other") == ["ok"] * 50


TYPED = textwrap.dedent(
    """
    import asyncio
    from functools import partial
    from tripswitch import CircuitBreaker, CircuitOpenError, Metrics, with_circuit_breaker

    def on_error(exc: Exception) -> None:
        print(exc)

    cb = CircuitBreaker(freeze_function=lambda: asyncio.sleep(10), on_error=on_error)
    cb.freeze_function = partial(asyncio.sleep, 0.01)
    cb.on_error = on_error

    async def fetch(url: str, *, timeout: float = 1.0) -> bytes:
        return b""

    class Client:
        @with_circuit_breaker(cb)
        async def get(self, key: str) -> int:
            return 1

    async def main() -> None:
        data: bytes = await cb.execute(fetch, "u", timeout=2.0)
        n: int = await Client().get("k")
        wrapped = with_circuit_breaker(cb)(fetch)
        more: bytes = await wrapped("u", timeout=3.0)
        frozen: bool = cb.is_frozen
        m: Metrics = cb.metrics()
        total: int = m.totals.calls
        try:
            pass
        except CircuitOpenError as e:
            ra: float | None = e.retry_after
            nm: str | None = e.name
    """
)

TYPED_BAD = textwrap.dedent(
    """
    from tripswitch import CircuitBreaker, with_circuit_breaker
    cb = CircuitBreaker()
    async def fetch(url: str, *, timeout: float = 1.0) -> bytes:
        return b""
    async def main() -> None:
        await cb.execute(fetch, 1)
        await with_circuit_breaker(cb)(fetch)("u", timeout="slow")
        s: str = await cb.execute(fetch, "u")
    """
)


def mypy(tmp_path, source):
    pytest.importorskip("mypy")
    f = tmp_path / "snippet.py"
    f.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version", "3.11", str(f)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )


def test_review20_types_seed_usage_checks_clean(tmp_path):
    p = mypy(tmp_path, TYPED)
    assert p.returncode == 0, p.stdout + p.stderr


def test_review20_types_wrong_calls_rejected(tmp_path):
    p = mypy(tmp_path, TYPED_BAD)
    assert p.returncode == 1, p.stdout
    assert p.stdout.count("error:") >= 3, p.stdout
