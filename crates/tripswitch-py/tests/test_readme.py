"""The README's Python section: every ```python block runs, in order, in one
namespace (top-level `await` allowed, as in the seed's examples). Blocks
marked ```py are shown, not run (the fleet needs a Redis server; the fleet
test covers the same calls)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def python_blocks() -> list[str]:
    text = README.read_text()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


async def test_readme_python_examples_run(capsys: object) -> None:
    blocks = python_blocks()
    assert len(blocks) == 3
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in blocks:
        code = compile(block, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(code, namespace)  # noqa: S307 - the README's own examples
        if result is not None:
            await result
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "charged" in out and "success" in out
    assert namespace["result"] is None  # `unreliable` returns None
