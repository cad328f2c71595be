"""review20: the standard breaker: CircuitOpenError, metrics(), listeners, manual control."""

import asyncio
import copy
import dataclasses
import pickle
from functools import partial

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
    with_circuit_breaker,
)

T = 20


async def bad():
    raise OSError("down")


async def ok():
    return "ok"


async def test_review20_circuit_open_error_attributes():
    events = []
    cb = CircuitBreaker.standard(name="payments", consecutive_failures=1, open_for=30, listeners=[events.append])
    with pytest.raises(OSError):
        await cb.execute(bad)
    assert cb.is_frozen and cb.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        await asyncio.wait_for(cb.execute(ok), T)
    e = info.value
    assert isinstance(e, Exception)
    assert e.name == "payments"
    assert e.retry_after is not None and 0 < e.retry_after <= 30
    assert e.state == "open"
    assert e.reason == "open"
    assert "payments" in str(e)
    m = cb.metrics()
    assert m.totals.rejected == 1
    assert m.retry_after is not None and 0 < m.retry_after <= 30
    assert any(ev.kind == "rejected" and ev.reason == "open" for ev in events)


async def test_review20_circuit_open_error_pickle_and_copy():
    cb = CircuitBreaker.standard(name="p", consecutive_failures=1, open_for=30)
    with pytest.raises(OSError):
        await cb.execute(bad)
    with pytest.raises(CircuitOpenError) as info:
        await cb.execute(ok)
    for clone in (pickle.loads(pickle.dumps(info.value)), copy.copy(info.value)):
        assert isinstance(clone, CircuitOpenError)
        assert (clone.name, clone.retry_after, clone.state, clone.reason) == (
            info.value.name, info.value.retry_after, info.value.state, info.value.reason)
        assert str(clone) == str(info.value)


async def test_review20_forced_open_error():
    cb = CircuitBreaker.standard(name="f")
    cb.force_open()
    assert cb.is_frozen
    with pytest.raises(CircuitOpenError) as info:
        await cb.execute(ok)
    assert info.value.reason == "forced_open"
    assert info.value.retry_after is None
    assert info.value.name == "f"
    cb.resume()
    assert await cb.execute(ok) == "ok"


async def test_review20_max_wait_and_max_waiters_reasons():
    cb = CircuitBreaker(consecutive_failures=1, open_for=30, max_wait=0.05, name="w")
    with pytest.raises(OSError):
        await asyncio.wait_for(cb.execute(bad), T)
    with pytest.raises(CircuitOpenError) as info:
        await asyncio.wait_for(cb.execute(ok), T)
    assert info.value.reason == "wait_timed_out"

    cb2 = CircuitBreaker(consecutive_failures=1, open_for=30, max_waiters=1)
    with pytest.raises(OSError):
        await asyncio.wait_for(cb2.execute(bad), T)
    first = asyncio.ensure_future(cb2.execute(ok))
    await asyncio.sleep(0.05)
    with pytest.raises(CircuitOpenError) as info2:
        await asyncio.wait_for(cb2.execute(ok), T)
    assert info2.value.reason == "too_many_waiters"
    first.cancel()


async def test_review20_metrics_fields_closed():
    cb = CircuitBreaker.standard(consecutive_failures=3, open_for=1)
    m = cb.metrics()
    assert isinstance(m, Metrics) and dataclasses.is_dataclass(m)
    assert m.state == "closed"
    assert m.retry_after == 0
    assert m.waiting == 0 and m.probes_in_flight == 0
    assert isinstance(m.totals, Counts)
    assert await cb.execute(ok) == "ok"
    with pytest.raises(OSError):
        await cb.execute(bad)
    m = cb.metrics()
    assert m.totals.successes == 1 and m.totals.failures == 1
    assert m.totals.calls == 2
    assert m.consecutive_failures == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.state = "open"  # type: ignore[misc]
    assert set(f.name for f in dataclasses.fields(m)) >= {
        "state", "failure_rate", "slow_call_rate", "consecutive_failures", "calls_in_window",
        "current", "totals", "probes_in_flight", "waiting", "retry_after"}


async def test_review20_failure_rate_window_trips():
    cb = CircuitBreaker.standard(failure_rate=FailureRate(0.5, calls=4, min_calls=4), open_for=30)
    for f in (ok, bad, ok, bad):
        try:
            await cb.execute(f)
        except OSError:
            pass
    assert cb.state == "open"
    m = cb.metrics()
    assert m.failure_rate == pytest.approx(0.5)


async def test_review20_listener_events_vocabulary():
    events = []
    cb = CircuitBreaker.standard(
        name="v", consecutive_failures=1, open_for=0.05, half_open=HalfOpen(probes=1), listeners=[events.append]
    )
    assert await cb.execute(ok) == "ok"
    assert any(e.kind == "success" for e in events), "a success on the closed path reaches listeners"
    with pytest.raises(OSError):
        await cb.execute(bad)
    await asyncio.sleep(0.15)
    assert await asyncio.wait_for(cb.execute(ok), T) == "ok"
    transitions = [(e.from_state, e.to_state) for e in events if e.kind == "transition"]
    states = {"closed", "open", "half-open", "forced open", "disabled", "metrics-only"}
    assert transitions, events
    for a, b in transitions:
        assert a in states and b in states, transitions
    assert all(isinstance(e, Event) and e.breaker == "v" for e in events)
    fails = [e for e in events if e.kind == "failure"]
    assert fails and "down" in fails[0].error


async def test_review20_listener_raising_is_logged_and_harmless(caplog):
    def boom(event):
        raise RuntimeError("listener broke")

    seen = []
    cb = CircuitBreaker.standard(consecutive_failures=1, open_for=0.01, listeners=[boom, seen.append])
    with pytest.raises(OSError):
        await cb.execute(bad)
    await asyncio.sleep(0.05)
    assert await asyncio.wait_for(cb.execute(ok), T) == "ok"
    assert seen, "the second listener still runs"
    assert any("listener" in r.getMessage() for r in caplog.records)


async def test_review20_half_open_probe_slot_freed_on_cancel():
    cb = CircuitBreaker.standard(consecutive_failures=1, open_for=0.05, half_open=HalfOpen(probes=1))
    with pytest.raises(OSError):
        await cb.execute(bad)
    await asyncio.sleep(0.1)
    entered = asyncio.Event()

    async def hang():
        entered.set()
        await asyncio.sleep(3600)

    probe = asyncio.ensure_future(cb.execute(hang))
    await asyncio.wait_for(entered.wait(), T)
    assert cb.metrics().probes_in_flight == 1
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert cb.metrics().probes_in_flight == 0
    assert await asyncio.wait_for(cb.execute(ok), T) == "ok"
    assert cb.state == "closed"


async def test_review20_ignore_counts_neither():
    errors = []
    cb = CircuitBreaker.standard(consecutive_failures=1, open_for=30, ignore=KeyError, on_error=errors.append)

    async def kerr():
        raise KeyError("k")

    for _ in range(3):
        with pytest.raises(KeyError):
            await cb.execute(kerr)
    assert cb.state == "closed" and errors == []
    assert cb.metrics().totals.ignored == 3


async def test_review20_backoff_and_manual_control():
    cb = CircuitBreaker.standard(consecutive_failures=1, backoff=Backoff(initial=0.05, max=1.0))
    with pytest.raises(OSError):
        await cb.execute(bad)
    assert cb.is_frozen
    cb.reset()
    assert cb.state == "closed" and not cb.is_frozen
    cb.disable()
    for _ in range(5):
        with pytest.raises(OSError):
            await cb.execute(bad)
    assert cb.state == "disabled"
    cb.force_metrics_only()
    for _ in range(5):
        with pytest.raises(OSError):
            await cb.execute(bad)
    assert cb.state == "metrics-only"
    cb.resume()
    assert cb.state == "closed"


async def test_review20_fail_fast_on_error_and_identity():
    got = []
    cb = CircuitBreaker.standard(consecutive_failures=1, open_for=30, on_error=got.append)
    err = OSError("same")

    async def fails():
        raise err

    with pytest.raises(OSError) as info:
        await cb.execute(fails)
    assert info.value is err and got == [err]


async def test_review20_standard_with_freeze_function():
    ran = []

    async def freeze():
        ran.append(1)
        await asyncio.sleep(0.02)

    cb = CircuitBreaker.standard(consecutive_failures=1, freeze_function=freeze)
    with pytest.raises(OSError):
        await cb.execute(bad)
    await asyncio.sleep(0.1)
    assert ran == [1]
    assert not cb.is_frozen or cb.state == "half-open"
    assert await asyncio.wait_for(cb.execute(ok), T) == "ok"


def test_review20_bad_settings_raise_value_error():
    with pytest.raises((ValueError, TypeError)):
        CircuitBreaker.standard(open_for=-1)
    with pytest.raises((ValueError, TypeError)):
        CircuitBreaker.standard(failure_rate=FailureRate(1.5, calls=10))
    with pytest.raises(ValueError):
        FailureRate(0.5)._settings()
    with pytest.raises(TypeError):
        CircuitBreaker(listeners=[42])


def test_review20_fleet_unreachable_redis_runs_alone():
    import threading
    import time

    from tripswitch import Fleet

    out = {}

    def connect():
        t0 = time.monotonic()
        try:
            out["fleet"] = Fleet.connect("redis://127.0.0.1:1/", prefix="review20", command_timeout=0.5)
        except BaseException as e:  # noqa: BLE001
            out["error"] = e
        out["took"] = time.monotonic() - t0

    th = threading.Thread(target=connect, daemon=True)
    th.start()
    th.join(60)
    assert not th.is_alive(), "Fleet.connect blocked for over a minute"
    assert "fleet" in out, out
    fleet = out["fleet"]
    assert not fleet.is_connected()
    cb = fleet.breaker("inv", consecutive_failures=1, open_for=30)

    async def main():
        assert await asyncio.wait_for(cb.execute(ok), T) == "ok"
        with pytest.raises(OSError):
            await cb.execute(bad)
        with pytest.raises(CircuitOpenError) as info:
            await cb.execute(ok)
        assert info.value.name == "inv"

    asyncio.run(main())


def test_review20_fleet_require_redis_raises():
    from tripswitch import Fleet

    with pytest.raises(Exception):
        Fleet.connect("redis://127.0.0.1:1/", require_redis=True, command_timeout=0.5)
