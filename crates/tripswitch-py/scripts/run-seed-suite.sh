#!/usr/bin/env bash
# Runs the seed's own test suite (escudeiro's tests/ds/test_circuit.py,
# given as a path; it is not copied into this repository) unmodified
# against this package: a conftest maps the module `escudeiro.ds` to
# `tripswitch`. The one test that asserts the seed's frozen-for-ever defect
# (test_freeze_function_exception: a raising freeze function must leave the
# breaker frozen) is deselected: this package fixes that defect.
#
#   bash crates/tripswitch-py/scripts/run-seed-suite.sh path/to/test_circuit.py
#   bash crates/tripswitch-py/scripts/run-seed-suite.sh path/to/escudeiro-0.4.0.tar.gz
#
# The seed's sdist on PyPI ships the suite (tests/ds/test_circuit.py):
#   pip download --no-deps --no-binary :all: --ignore-requires-python escudeiro==0.4.0
# fetches it (slowly: pip prepares the sdist's metadata with maturin), or
# take the tarball's URL from PyPI's project page.
#
# Needs pytest and pytest-asyncio, and tripswitch installed.
set -euo pipefail
SUITE="$(realpath "$1")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
case "$SUITE" in
    *.tar.gz)
        tar xzf "$SUITE" -C "$WORK" --wildcards '*/tests/ds/test_circuit.py'
        mv "$WORK"/*/tests/ds/test_circuit.py "$WORK/test_circuit.py"
        ;;
    *) cp "$SUITE" "$WORK/test_circuit.py" ;;
esac
cat > "$WORK/conftest.py" <<'PY'
import sys
import types

import tripswitch

escudeiro = types.ModuleType("escudeiro")
escudeiro.ds = tripswitch
sys.modules["escudeiro"] = escudeiro
sys.modules["escudeiro.ds"] = tripswitch
PY
printf '[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n' > "$WORK/pytest.ini"
cd "$WORK"
python -m pytest -q -p no:cacheprovider test_circuit.py \
    --deselect test_circuit.py::test_freeze_function_exception "${@:2}"
