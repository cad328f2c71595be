#!/usr/bin/env bash
# Instructions per HTTP request, end to end (client and server in one
# process on loopback), for each case of benches/src/http.rs, counted by
# callgrind: a loaded host changes the time a request takes, not the
# instructions it runs.
#
# Each case runs with SMALL and LARGE requests; the difference divided by
# (LARGE - SMALL) is one request, with start-up and tear-down cancelled
# out. Each count is taken RUNS times (default 3) to show its spread: the
# same binary can take slightly different paths through the socket code
# (a read that finds the data or must wait for it).
#
# Usage: benches/callgrind_http.sh   (needs valgrind: apt-get install valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${SMALL:-200}
LARGE=${LARGE:-2200}
RUNS=${RUNS:-3}

cargo build --release -q -p tripswitch-benches --bin http_instructions
driver=${CARGO_TARGET_DIR:-target}/release/http_instructions

count() { # case requests -> instructions
    local out
    out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$driver" "$1" "$2" 2>&1)
    echo "$out" | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

printf '%-18s %s\n' "case" "instructions per request, each run"
for case in none identity-layer tripswitch tower-resilience; do
    line=""
    for _ in $(seq "$RUNS"); do
        small=$(count "$case" "$SMALL")
        large=$(count "$case" "$LARGE")
        line+=$(awk -v s="$small" -v l="$large" -v n=$((LARGE - SMALL)) 'BEGIN { printf " %.0f", (l - s) / n }')
    done
    printf '%-18s%s\n' "$case" "$line"
done
