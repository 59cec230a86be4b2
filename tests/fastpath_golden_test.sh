#!/usr/bin/env bash
# The fast path's instruction count as a checked figure (like tcmalloc's
# fast-path goldens): callgrind counts instructions exactly, so this is not a
# timing test. Counts instructions per mixed 16-512 B malloc+free pair through
# the shim, (Ir(N2) - Ir(N1)) / (N2 - N1) inside run_pairs() only, and fails if
# it passes the golden. Raise the golden only with a reason in the commit.
#
#   fastpath_golden_test.sh PRELOAD_SO PAIRS_PROGRAM
set -euo pipefail
readonly GOLDEN=66   # measured 63.5 on 2026-11-24 (jemalloc 83.6, mimalloc 135); 66.5 on 2026-12-01 with the free checks (cache/check.h); 67.5 -> 69.5 on 2026-12-07 with malloc checking the free key (issue 19); 63 on 2026-12-07 (issue 20 item 5: block-start test by one multiply, malloc class from a 16-byte table); 64 on 2026-12-08 (issue 20: malloc prefetches the next free block, docs/performance.md "Remote frees without walks")
preload=$1
pairs=$2
# shellcheck source=tests/callgrind_ir.sh
. "$(dirname "$0")/callgrind_ir.sh"
ir() { callgrind_ir "$preload" run_pairs "$pairs" "$1"; }
a=$(ir 20000)
b=$(ir 120000)
golden_check "instructions per malloc+free pair" $(( (b - a) / 100000 )) "$GOLDEN"
