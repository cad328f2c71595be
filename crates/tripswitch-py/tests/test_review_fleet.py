"""review20: a fleet breaker whose state changes from Redis (a background
thread) while Python threads use it and listeners re-enter it. Run in a
subprocess: a GIL / breaker-lock deadlock would hang pytest."""

import shutil
import socket
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, threading, time
    from tripswitch import CircuitBreaker, CircuitOpenError, Fleet
    url = sys.argv[1]
    a = Fleet.connect(url, prefix="r20", replica_id="a", sync_interval=0.01, require_redis=True)
    b = Fleet.connect(url, prefix="r20", replica_id="b", sync_interval=0.01, require_redis=True)
    box = []
    events = []
    def listener(event):
        events.append(event.kind)
        box[0].metrics(); box[0].state; box[0].is_frozen
    cb = a.breaker("svc", consecutive_failures=3, open_for=0.05, listeners=[listener])
    cb_b = b.breaker("svc", consecutive_failures=3, open_for=0.05)
    box.append(cb)
    stop = time.monotonic() + 6
    def flipper():
        while time.monotonic() < stop:
            b.force_open("svc", 0.02)
            time.sleep(0.005)
            b.force_close("svc")
    def worker(i):
        async def main():
            async def op(j):
                await asyncio.sleep(0)
                if (i + j) % 2:
                    raise OSError
                return j
            while time.monotonic() < stop:
                await asyncio.gather(*(cb.execute(op, j) for j in range(20)), return_exceptions=True)
                await asyncio.gather(*(cb_b.execute(op, j) for j in range(5)), return_exceptions=True)
                cb.metrics()
        asyncio.run(main())
    ts = [threading.Thread(target=flipper)] + [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print("done", "transition" in events)
    """
)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def redis_url():
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("no redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/"
    proc.terminate()
    proc.wait(10)


def test_review20_fleet_background_sync_listeners_threads_no_deadlock(redis_url):
    p = subprocess.run([sys.executable, "-c", SCRIPT, redis_url], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.split() == ["done", "True"], (p.stdout, p.stderr[-3000:])


def test_a_fleet_breaker_refuses_a_freeze_function():
    """A fleet breaker's open period is timed: a Python freeze function
    cannot run in the other replicas, so it is refused by name (no Redis
    needed: without require_redis the fleet connects to nothing and runs
    alone)."""
    import asyncio as _asyncio

    import pytest as _pytest

    from tripswitch import Fleet

    fleet = Fleet.connect("redis://127.0.0.1:1/", prefix="r20-refuse", replica_id="x")
    with _pytest.raises(ValueError, match="open period is timed"):
        fleet.breaker("inventory", freeze_function=lambda: _asyncio.sleep(1))
    fleet.breaker("inventory", open_for=1.0)
