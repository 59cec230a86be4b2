#!/usr/bin/env bash
# realloc growth's instruction count as a checked figure, beside the fast
# path's (fastpath_golden_test.sh): callgrind counts instructions exactly, so
# this is not a timing test. Counts instructions per realloc of
# execmem-rchain's chain through the shim (malloc 4 KiB, realloc doubling to
# 1 MiB, free: 8 reallocs a chain, the chain's malloc and free included),
# (Ir(N2) - Ir(N1)) / (8 (N2 - N1)) inside run_chains() only, and fails if it
# passes the golden. Raise the golden only with a reason in the commit.
#
#   realloc_golden_test.sh PRELOAD_SO RCHAIN_PROGRAM
set -euo pipefail
# Measured 2026-12-07 (issue 20): 242 before realloc's growth within a span
# was inline in the shim, 196 after (docs/large-blocks.md).
readonly GOLDEN=210
# shellcheck source=tests/callgrind_ir.sh
. "$(dirname "$0")/callgrind_ir.sh"
# Chains of 1 000 and 3 000: the difference is 16 000 reallocs.
few=$(callgrind_ir "$1" run_chains "$2" 1000)
many=$(callgrind_ir "$1" run_chains "$2" 3000)
golden_check "instructions per realloc (4 KiB -> 1 MiB chain)" $(( (many - few) / 16000 )) "$GOLDEN"
