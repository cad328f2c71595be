#!/usr/bin/env bash
# The test suite under load: both cores saturated by another process
# (stress-ng --cpu 2), the suite run three times in a row. A test that only
# passes on a quiet machine is a bug. Not part of CI (it triples the test
# time); run it before resolving work that touches timing or concurrency:
#
#     bash scripts/stress-suite.sh            # 3 runs of the README test command
#     RUNS=1 bash scripts/stress-suite.sh -p tripswitch   # extra args go to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"

if ! command -v stress-ng >/dev/null; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq stress-ng >/dev/null
fi

# Build first, unloaded: the load is for the tests, not the compiler.
cargo test --all-features --no-run "$@" >/dev/null

stress-ng --cpu 2 --quiet &
STRESS_PID=$!
trap 'kill "$STRESS_PID" 2>/dev/null || true; wait "$STRESS_PID" 2>/dev/null || true' EXIT

for run in $(seq 1 "$RUNS"); do
    echo "== run $run of $RUNS, with stress-ng --cpu 2 saturating both cores"
    cargo test --all-features "$@"
done
echo "== $RUNS runs passed under load"
