#!/usr/bin/env bash
# malloc_usable_size's instruction count as a checked figure (issue 20, Redis):
# Redis asks it at every allocation and free (zmalloc_size), so a small
# block's answer must stay on an inline path. Counts, under callgrind, the
# instructions of N malloc+free pairs through the shim with and without two
# malloc_usable_size calls on each block (execmem-pairs N usable), per pair,
# and fails if one call costs more than the golden. Not a timing test.
#
#   usable_size_golden_test.sh PRELOAD_SO PAIRS_PROGRAM
set -euo pipefail
readonly GOLDEN=32   # measured 36 on 2026-12-07 (the call and the PLT jump included): 106 before the inline path (issue 20); mimalloc 2.0 33, jemalloc 5.3 45; 30 later on 2026-12-07 (issue 20 item 5: no metadata-page test, no secure-bit test, one multiply)
preload=$1
pairs=$2
command -v valgrind >/dev/null || { echo "valgrind missing (make deps installs it)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# ir N FUNCTION [usable]: instructions inside FUNCTION for N pairs.
ir() {
  LD_PRELOAD="$preload" valgrind --tool=callgrind --toggle-collect="$2" \
    --callgrind-out-file="$tmp/cg.$1.$2" "$pairs" "$1" ${3:+"$3"} >/dev/null 2>"$tmp/err" ||
    { cat "$tmp/err"; exit 1; }
  awk '/^(summary|totals):/ {print $2; exit}' "$tmp/cg.$1.$2"
}
plain=$(( $(ir 120000 run_pairs) - $(ir 20000 run_pairs) ))
usable=$(( $(ir 120000 run_usable_pairs usable) - $(ir 20000 run_usable_pairs usable) ))
per_call=$(( (usable - plain) / 200000 ))
echo "instructions per malloc_usable_size call: $per_call (golden $GOLDEN)"
if (( per_call <= 0 || per_call > GOLDEN )); then
  echo "FAIL: malloc_usable_size costs $per_call instructions a call, golden is $GOLDEN"
  exit 1
fi
echo "1 passed, 0 failed"
