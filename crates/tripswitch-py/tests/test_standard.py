"""Beyond the seed: the standard breaker's settings as keyword arguments."""

from __future__ import annotations

import asyncio
import traceback

import pytest

from tripswitch import (
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
    Counts,
    Event,
    FailureRate,
    HalfOpen,
    Metrics,
    SlowCallRate,
)

TIMEOUT = 10


class Down(Exception):
    pass


async def fail() -> None:
    raise Down("down")


async def ok() -> str:
    return "ok"


async def until(condition: object) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), TIMEOUT)


async def test_fail_fast_raises_circuit_open_error_with_retry_after_and_name() -> None:
    breaker = CircuitBreaker.standard(name="payments", consecutive_failures=2, open_for=30)
    for _ in range(2):
        with pytest.raises(Down):
            await breaker.execute(fail)
    assert breaker.state == "open" and breaker.is_frozen
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.execute(ok)
    error = refused.value
    assert error.name == "payments"
    assert error.retry_after is not None and 0 < error.retry_after <= 30
    assert error.reason == "open" and error.state == "open"
    assert breaker.metrics().totals.rejected == 1


async def test_operation_exception_is_the_same_object_with_its_traceback() -> None:
    breaker = CircuitBreaker.standard(fail_fast=True)
    raised: list[BaseException] = []

    async def deep() -> None:
        error = Down("deep")
        raised.append(error)
        raise error

    with pytest.raises(Down) as caught:
        await breaker.execute(deep)
    assert caught.value is raised[0]
    names = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert names[-1] == "deep"


async def test_failure_rate_window_trips() -> None:
    breaker = CircuitBreaker.standard(
        failure_rate=FailureRate(0.5, calls=4, min_calls=4), open_for=30
    )
    assert await breaker.execute(ok) == "ok"
    assert await breaker.execute(ok) == "ok"
    with pytest.raises(Down):
        await breaker.execute(fail)
    assert breaker.state == "closed"  # 1 of 3: below min_calls
    with pytest.raises(Down):
        await breaker.execute(fail)
    assert breaker.state == "open"  # 2 of 4 = 50 %
    assert breaker.metrics().failure_rate == pytest.approx(0.5)


async def test_slow_call_rate_trips() -> None:
    breaker = CircuitBreaker.standard(
        slow_call_rate=SlowCallRate(slow_after=0.001, threshold=1.0, calls=2, min_calls=2),
        open_for=30,
    )

    async def slow() -> str:
        await asyncio.sleep(0.02)
        return "slow"

    assert await breaker.execute(slow) == "slow"
    assert breaker.state == "closed"
    assert await breaker.execute(slow) == "slow"
    assert breaker.state == "open"
    assert breaker.metrics().totals.slow == 2


async def test_half_open_probe_closes_or_reopens() -> None:
    breaker = CircuitBreaker.standard(
        consecutive_failures=1, open_for=0.02, half_open=HalfOpen(probes=1)
    )
    with pytest.raises(Down):
        await breaker.execute(fail)
    await until(lambda: breaker.state == "half-open")
    with pytest.raises(Down):
        await breaker.execute(fail)  # the probe fails: open again
    assert breaker.state == "open"
    await until(lambda: breaker.state == "half-open")
    assert await breaker.execute(ok) == "ok"
    assert breaker.state == "closed"


async def test_backoff_lengthens_open_periods() -> None:
    breaker = CircuitBreaker.standard(
        consecutive_failures=1, backoff=Backoff(initial=0.02, max=60, multiplier=1000)
    )
    with pytest.raises(Down):
        await breaker.execute(fail)
    first = breaker.metrics().retry_after
    assert first is not None and first <= 0.02
    await until(lambda: breaker.state == "half-open")
    with pytest.raises(Down):
        await breaker.execute(fail)  # a failed probe: the second opening
    second = breaker.metrics().retry_after
    assert second is not None and second > 1.0


async def test_wait_mode_with_max_wait_refuses_after_waiting() -> None:
    breaker = CircuitBreaker.standard(
        consecutive_failures=1, open_for=30, fail_fast=False, max_wait=0.02
    )
    with pytest.raises(Down):
        await breaker.execute(fail)
    with pytest.raises(CircuitOpenError) as refused:
        await asyncio.wait_for(breaker.execute(ok), TIMEOUT)
    assert refused.value.reason == "wait_timed_out"


async def test_manual_control() -> None:
    breaker = CircuitBreaker.standard(fail_fast=True)
    breaker.force_open()
    assert breaker.state == "forced open" and breaker.is_frozen
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.execute(ok)
    assert refused.value.reason == "forced_open" and refused.value.retry_after is None
    breaker.resume()
    assert await breaker.execute(ok) == "ok"
    breaker.disable()
    for _ in range(10):
        with pytest.raises(Down):
            await breaker.execute(fail)
    assert breaker.state == "disabled"
    breaker.force_metrics_only()
    for _ in range(10):
        with pytest.raises(Down):
            await breaker.execute(fail)
    assert breaker.state == "metrics-only"
    assert breaker.metrics().totals.failures == 10  # disabled counted nothing
    breaker.reset()
    assert breaker.state == "closed"


async def test_metrics_is_a_dataclass_snapshot() -> None:
    breaker = CircuitBreaker.standard(consecutive_failures=3)
    assert await breaker.execute(ok) == "ok"
    with pytest.raises(Down):
        await breaker.execute(fail)
    metrics = breaker.metrics()
    assert isinstance(metrics, Metrics) and isinstance(metrics.totals, Counts)
    assert metrics.state == "closed"
    assert metrics.totals.successes == 1 and metrics.totals.failures == 1
    assert metrics.totals.calls == 2
    assert metrics.consecutive_failures == 1
    assert metrics.retry_after == 0
    with pytest.raises(AttributeError):
        metrics.state = "open"  # type: ignore[misc]


async def test_ignored_exceptions_do_not_count() -> None:
    breaker = CircuitBreaker.standard(consecutive_failures=1, ignore=KeyError)

    async def missing() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await breaker.execute(missing)
    assert breaker.state == "closed"
    assert breaker.metrics().totals.ignored == 1


async def test_listeners_receive_events() -> None:
    events: list[Event] = []
    breaker = CircuitBreaker.standard(
        name="svc", consecutive_failures=1, open_for=30, listeners=[events.append]
    )
    assert await breaker.execute(ok) == "ok"
    with pytest.raises(Down):
        await breaker.execute(fail)
    with pytest.raises(CircuitOpenError):
        await breaker.execute(ok)
    kinds = [e.kind for e in events]
    assert kinds == ["success", "failure", "transition", "rejected"]
    failure = events[1]
    assert failure.error is not None and "down" in failure.error
    assert events[3].reason == "open" and all(e.breaker == "svc" for e in events)


def test_bad_settings_raise_value_error() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker.standard(failure_rate=FailureRate(0.5))  # no window
    with pytest.raises(ValueError):
        CircuitBreaker.standard(open_for=-1)
    with pytest.raises(ValueError):
        CircuitBreaker.standard(failure_rate=FailureRate(2.0, calls=10))
    with pytest.raises(TypeError):
        CircuitBreaker(listeners=[42])  # type: ignore[list-item]


def test_works_without_a_running_loop_until_a_call() -> None:
    breaker = CircuitBreaker()
    assert asyncio.run(breaker.execute(ok)) == "ok"
    assert asyncio.run(breaker.execute(ok)) == "ok"  # a second loop, same breaker
    assert not breaker.is_frozen
