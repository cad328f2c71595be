#!/usr/bin/env bash
# Instructions per call for every benchmark case, counted by callgrind.
#
# Each case runs twice, with SMALL and LARGE calls; the difference divided by
# (LARGE - SMALL) is the cost of one call, with set-up and tear-down cancelled
# out. Instruction counts are deterministic for a given binary, unlike time on
# a shared VM.
#
# Usage: benches/callgrind.sh [case-prefix]   (needs valgrind: apt-get install valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${SMALL:-2000}
LARGE=${LARGE:-22000}
filter=${1:-}

cargo build --release -q -p tripswitch-benches --bin count_instructions
driver=${CARGO_TARGET_DIR:-target}/release/count_instructions
cases=$("$driver" 2>&1 | sed -n "s/^  //p" || true)

count() { # case calls -> instructions
    local out
    out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$driver" "$1" "$2" 2>&1)
    echo "$out" | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

printf '%-42s %12s\n' "case" "instr/call"
for case in $cases; do
    [[ -n "$filter" && "$case" != "$filter"* ]] && continue
    small=$(count "$case" "$SMALL")
    large=$(count "$case" "$LARGE")
    awk -v c="$case" -v s="$small" -v l="$large" -v n=$((LARGE - SMALL)) \
        'BEGIN { printf "%-42s %12.1f\n", c, (l - s) / n }'
done
