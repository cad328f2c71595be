"""The package is typed (py.typed, stubs): mypy checks calls through
`execute` and the decorator against the wrapped function's signature."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

USER_CODE = textwrap.dedent(
    """
    from tripswitch import CircuitBreaker, CircuitOpenError, Metrics, with_circuit_breaker

    breaker = CircuitBreaker()

    async def fetch(item: int, *, verbose: bool = False) -> str:
        return str(item)

    @with_circuit_breaker(breaker)
    async def decorated(item: int) -> bytes:
        return b""

    async def main() -> None:
        ok: str = await breaker.execute(fetch, 1, verbose=True)
        fine: bytes = await decorated(2)
        metrics: Metrics = breaker.metrics()
        frozen: bool = breaker.is_frozen
        retry: float | None = CircuitOpenError("x").retry_after
        bad_arg = await breaker.execute(fetch, "one")  # line 19
        bad_result: int = await breaker.execute(fetch, 1)  # line 20
        bad_kw = await decorated(item="x")  # line 21
        breaker.is_frozen()  # line 22
    """
)


def test_mypy_checks_user_code(tmp_path: Path) -> None:
    source = tmp_path / "user.py"
    source.write_text(USER_CODE)
    out, err, status = api.run(
        [str(source), "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache")]
    )
    errors = sorted(
        int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line
    )
    assert status == 1, out + err
    assert errors == [19, 20, 21, 22], out


def test_the_package_itself_type_checks(tmp_path: Path) -> None:
    # The installed package, its stubs included, passes mypy --strict: its
    # annotations are the ones user code is checked against.
    out, err, status = api.run(
        ["-p", "tripswitch", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache")]
    )
    assert status == 0, out + err


def test_pyright_checks_user_code(tmp_path: Path) -> None:
    # The same promise for pyright (the stubs are read by both checkers).
    # .ci/python installs pyright and sets TRIPSWITCH_REQUIRE_PYRIGHT, so
    # that a missing checker fails there instead of skipping.
    import os
    import shutil
    import subprocess
    import sys

    import pytest

    pyright = shutil.which("pyright") or str(Path(sys.executable).with_name("pyright"))
    if not Path(pyright).exists():
        if os.environ.get("TRIPSWITCH_REQUIRE_PYRIGHT"):
            pytest.fail("pyright is required here (TRIPSWITCH_REQUIRE_PYRIGHT) but not installed")
        pytest.skip("pyright is not installed")
    source = tmp_path / "user.py"
    source.write_text(USER_CODE)
    run = subprocess.run(
        [pyright, "--pythonpath", sys.executable, str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = sorted(
        int(line.split(":")[1])
        for line in run.stdout.splitlines()
        if " - error: " in line and line.strip().startswith(str(source))
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert errors == [19, 20, 21, 22], run.stdout
