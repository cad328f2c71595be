"""One Rust replica (fleet-demo, tripswitch-redis' own example) and one
Python replica share one breaker through a real, private redis-server: a
trip by either is seen by the other.

Needs `redis-server` on the PATH and the `fleet-demo` binary
(`cargo build -p tripswitch-redis --bin fleet-demo`; the path in
TRIPSWITCH_FLEET_DEMO, or found under the cargo target directory). Without
them the test is skipped, unless TRIPSWITCH_REQUIRE_REDIS=1 (CI), where a
skip is a failure.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tripswitch import CircuitOpenError, Fleet, HalfOpen

TIMEOUT = 20.0
REQUIRE = os.environ.get("TRIPSWITCH_REQUIRE_REDIS") == "1"


def unavailable(why: str) -> None:
    if REQUIRE:
        pytest.fail(f"{why} (TRIPSWITCH_REQUIRE_REDIS=1)")
    pytest.skip(why)


def fleet_demo() -> Path | None:
    given = os.environ.get("TRIPSWITCH_FLEET_DEMO")
    if given:
        return Path(given) if Path(given).exists() else None
    root = Path(__file__).resolve().parents[3]
    for target in (os.environ.get("CARGO_TARGET_DIR"), str(root / "target")):
        if target and (Path(target) / "debug" / "fleet-demo").exists():
            return Path(target) / "debug" / "fleet-demo"
    return None


@pytest.fixture
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not on the PATH (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/"
    finally:
        server.kill()
        server.wait()


class RustReplica:
    """fleet-demo --replica: driven through its standard input."""

    def __init__(self, binary: Path, url: str, prefix: str) -> None:
        self.process = subprocess.Popen(
            [str(binary), "--replica", "rust", "--redis", url, "--prefix", prefix, "--open-ms", "60000"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.expect(lambda line: line == "ready")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def expect(self, wanted: object) -> str:
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail("the Rust replica did not say what was expected")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if wanted(line):  # type: ignore[operator]
                return line

    def state(self) -> str:
        self.send("state")
        return self.expect(lambda line: line.startswith("state ")).removeprefix("state ")

    def close(self) -> None:
        try:
            self.send("quit")
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def python_replica(url: str, prefix: str) -> tuple[Fleet, object]:
    # The same fleet and breaker settings as fleet-demo's replicas.
    fleet = Fleet.connect(
        url,
        prefix=prefix,
        replica_id="python",
        sync_interval=0.02,
        command_timeout=0.15,
        probe_lease=2.0,
        open_for=60.0,
        require_redis=True,
    )
    breaker = fleet.breaker("inventory", consecutive_failures=2, half_open=HalfOpen(probes=1))
    return fleet, breaker


async def fail() -> None:
    raise ValueError("down")


async def ok() -> str:
    return "ok"


async def test_a_rust_trip_opens_the_python_breaker(redis_url: str) -> None:
    binary = fleet_demo()
    if binary is None:
        unavailable("fleet-demo is not built (cargo build -p tripswitch-redis --bin fleet-demo)")
    assert binary is not None
    prefix = f"py-fleet-{uuid.uuid4().hex[:8]}"
    rust = RustReplica(binary, redis_url, prefix)
    try:
        fleet, breaker = python_replica(redis_url, prefix)
        assert fleet.is_connected()
        assert await breaker.execute(ok) == "ok"  # type: ignore[attr-defined]
        rust.send("fail")
        rust.send("fail")
        rust.expect(lambda line: line == "transition closed open")
        wait_until(lambda: breaker.state == "open", "the Python replica is open")  # type: ignore[attr-defined]
        with pytest.raises(CircuitOpenError) as refused:
            await breaker.execute(ok)  # type: ignore[attr-defined]
        assert refused.value.name == "inventory"
        assert refused.value.retry_after is not None and refused.value.retry_after > 0
        # An operator's close from Python reaches the Rust replica too.
        fleet.force_close("inventory")
        wait_until(lambda: breaker.state == "closed", "the Python replica is closed")  # type: ignore[attr-defined]
        wait_until(lambda: rust.state() == "closed", "the Rust replica is closed")
    finally:
        rust.close()


async def test_a_python_trip_opens_the_rust_breaker(redis_url: str) -> None:
    binary = fleet_demo()
    if binary is None:
        unavailable("fleet-demo is not built (cargo build -p tripswitch-redis --bin fleet-demo)")
    assert binary is not None
    prefix = f"py-fleet-{uuid.uuid4().hex[:8]}"
    rust = RustReplica(binary, redis_url, prefix)
    try:
        _fleet, breaker = python_replica(redis_url, prefix)
        assert rust.state() == "closed"
        for _ in range(2):
            with pytest.raises(ValueError):
                await breaker.execute(fail)  # type: ignore[attr-defined]
        assert breaker.state == "open"  # type: ignore[attr-defined]
        rust.expect(lambda line: line == "transition closed open")
        assert rust.state() == "open"
        rust.send("ok")
        assert rust.expect(lambda line: line.startswith("result ")) == "result rejected"
    finally:
        rust.close()
