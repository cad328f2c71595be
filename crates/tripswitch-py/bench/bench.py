"""Per-call overhead of tripswitch against the pure-Python breakers.

    python crates/tripswitch-py/bench/bench.py [--calls N] [--rounds R]

Needs, besides tripswitch, the benchmark-only packages `escudeiro` (the seed:
Python >= 3.12), `pybreaker`, `aiobreaker` and `purgatory` (see
BENCHMARKS.md); a missing one is left out of the table.

Happy path: `await breaker.execute(op)` (or each library's equivalent) on a
closed breaker with an operation that returns at once, minus a plain
`await op()`, in one coroutine: the best of R rounds of N calls.

Frozen / open: for the breakers that wait (the seed, tripswitch's seed
mode), N calls queued behind a freeze, timed from the freeze's end until
the last returns, minus the same with N tasks awaiting one asyncio.Event;
for the breakers that fail fast, the cost of a refused call (raised and
caught), minus a plain raise and catch.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any

RESULT = "value"


async def op() -> str:
    return RESULT


async def fail() -> None:
    raise ValueError("down")


def interleaved(rounds: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """The best of `rounds` runs of each, the runs interleaved (one of each
    per round), so that a machine's load drifting over time hits them alike."""
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            gc.collect()
            best[name] = min(best[name], run())
    return best


async def loop_calls(n: int, call: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        await call()
    return (time.perf_counter_ns() - start) / n


async def loop_refused(n: int, call: Callable[[], Awaitable[Any]], error: type[BaseException]) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        try:
            await call()
        except error:
            pass
    return (time.perf_counter_ns() - start) / n


# --- happy path ----------------------------------------------------------


def happy_callers() -> dict[str, Callable[[], Awaitable[Any]]]:
    callers: dict[str, Callable[[], Awaitable[Any]]] = {"plain await": op}
    try:
        from escudeiro.ds import CircuitBreaker as Seed

        seed = Seed()
        callers["seed (escudeiro)"] = partial(seed.execute, op)
    except ImportError:
        pass
    import tripswitch

    ts_seed = tripswitch.CircuitBreaker()
    callers["tripswitch, seed API"] = partial(ts_seed.execute, op)
    ts_std = tripswitch.CircuitBreaker.standard(consecutive_failures=5)
    callers["tripswitch.standard (fail fast, counts)"] = partial(ts_std.execute, op)
    ts_rate = tripswitch.CircuitBreaker.standard(
        failure_rate=tripswitch.FailureRate(0.5, calls=100)
    )
    callers["tripswitch.standard, failure-rate window"] = partial(ts_rate.execute, op)
    try:
        import aiobreaker

        aio = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(seconds=60))
        callers["aiobreaker"] = partial(aio.call_async, op)
    except ImportError:
        pass
    try:
        import pybreaker

        pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
        # pybreaker's coroutine support (call_async) runs on tornado, on the asyncio loop.
        callers["pybreaker (call_async)"] = partial(pyb.call_async, op)
    except ImportError:
        pass
    try:
        from purgatory import AsyncCircuitBreakerFactory

        factory = AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)

        async def purgatory_call() -> str:
            async with await factory.get_breaker("bench"):
                return await op()

        callers["purgatory"] = purgatory_call
    except ImportError:
        pass
    return callers


# --- while frozen / open -------------------------------------------------


async def released_per_call(n: int, make: Callable[[], tuple[Callable[[], Awaitable[Any]], Callable[[], None]]]) -> float:
    """N calls queued behind a freeze, timed from its end to the last return."""
    call, release = make()
    tasks = [asyncio.ensure_future(call()) for _ in range(n)]
    for _ in range(5):
        await asyncio.sleep(0)
    start = time.perf_counter_ns()
    release()
    await asyncio.gather(*tasks)
    return (time.perf_counter_ns() - start) / n


def event_queue() -> tuple[Callable[[], Awaitable[Any]], Callable[[], None]]:
    event = asyncio.Event()

    async def call() -> str:
        await event.wait()
        return await op()

    return call, event.set


def seed_queue(module: Any) -> Callable[[], tuple[Callable[[], Awaitable[Any]], Callable[[], None]]]:
    def make() -> tuple[Callable[[], Awaitable[Any]], Callable[[], None]]:
        gate = asyncio.Event()
        breaker = module.CircuitBreaker(freeze_function=gate.wait, on_error=lambda e: None)
        # Freeze it: one failing call, left to retry after the freeze.
        asyncio.ensure_future(breaker.execute(fail)).add_done_callback(lambda t: t.exception())
        return partial(breaker.execute, op), gate.set

    return make


def refusing() -> dict[str, tuple[Callable[[], Awaitable[Any]], type[BaseException]]]:
    out: dict[str, tuple[Callable[[], Awaitable[Any]], type[BaseException]]] = {}

    async def plain() -> None:
        raise RuntimeError("refused")

    out["plain raise"] = (plain, RuntimeError)
    import tripswitch

    ts = tripswitch.CircuitBreaker.standard(fail_fast=True)
    ts.force_open()
    out["tripswitch.standard"] = (partial(ts.execute, op), tripswitch.CircuitOpenError)
    try:
        import aiobreaker

        aio = aiobreaker.CircuitBreaker(fail_max=1, timeout_duration=timedelta(seconds=600))
        aio.open()
        out["aiobreaker"] = (partial(aio.call_async, op), aiobreaker.CircuitBreakerError)
    except ImportError:
        pass
    try:
        import pybreaker

        pyb = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=600)
        pyb.open()
        out["pybreaker (call_async)"] = (partial(pyb.call_async, op), pybreaker.CircuitBreakerError)
    except ImportError:
        pass
    try:
        from purgatory import AsyncCircuitBreakerFactory
        from purgatory.domain.model import OpenedState

        factory = AsyncCircuitBreakerFactory(default_threshold=1, default_ttl=600)

        async def purgatory_call() -> str:
            async with await factory.get_breaker("bench-open"):
                return await op()

        out["purgatory"] = (purgatory_call, OpenedState)
        PURGATORY_TRIP.append(factory)
    except ImportError:
        pass
    return out


PURGATORY_TRIP: list[Any] = []


async def trip_purgatory() -> None:
    """Opens the purgatory breaker with one failure (threshold 1)."""
    factory = PURGATORY_TRIP[0]
    try:
        async with await factory.get_breaker("bench-open"):
            raise ValueError("down")
    except Exception:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--queued", type=int, default=10_000)
    args = parser.parse_args()
    n, rounds = args.calls, args.rounds
    print(f"Python {platform.python_version()} ({sys.implementation.name}), {platform.machine()}")
    print(f"{n} calls a round, best of {rounds} rounds\n")

    print("## Happy path (closed breaker, operation returns at once)\n")
    print("| breaker | ns/call | overhead ns/call | overhead / seed's |")
    print("|---|---:|---:|---:|")
    results = interleaved(
        rounds,
        {
            name: partial(lambda call: asyncio.run(loop_calls(n, call)), call)
            for name, call in happy_callers().items()
        },
    )
    base = results["plain await"]
    seed = results.get("seed (escudeiro)")
    for name, t in results.items():
        over = t - base
        ratio = f"{over / (seed - base):.2f}x" if seed is not None and name != "plain await" else ""
        print(f"| {name} | {t:.0f} | {over:.0f} | {ratio} |")

    print("\n## While frozen, wait mode: calls queued behind a freeze, released\n")
    print(f"{args.queued} calls queued, timed from the freeze's end to the last return\n")
    print("| breaker | ns/call | overhead ns/call |")
    print("|---|---:|---:|")
    import tripswitch

    queues: dict[str, Any] = {"asyncio.Event (no breaker)": event_queue}
    try:
        import escudeiro.ds

        queues["seed (escudeiro)"] = seed_queue(escudeiro.ds)
    except ImportError:
        pass
    queues["tripswitch, seed API"] = seed_queue(tripswitch)
    released = interleaved(
        rounds,
        {
            name: partial(lambda make: asyncio.run(released_per_call(args.queued, make)), make)
            for name, make in queues.items()
        },
    )
    base_r = released["asyncio.Event (no breaker)"]
    for name, t in released.items():
        print(f"| {name} | {t:.0f} | {t - base_r:.0f} |")

    print("\n## While open, fail fast: a refused call (raised and caught)\n")
    print("| breaker | ns/call | overhead ns/call |")
    print("|---|---:|---:|")
    def refused_run(name: str, call: Any, error: Any) -> float:
        async def run() -> float:
            if name == "purgatory":
                await trip_purgatory()
            return await loop_refused(n, call, error)

        return asyncio.run(run())

    refused = interleaved(
        rounds,
        {name: partial(refused_run, name, call, error) for name, (call, error) in refusing().items()},
    )
    base_x = refused["plain raise"]
    for name, t in refused.items():
        print(f"| {name} | {t:.0f} | {t - base_x:.0f} |")


if __name__ == "__main__":
    main()
