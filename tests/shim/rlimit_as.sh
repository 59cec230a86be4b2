#!/bin/bash
# Under a low address-space limit (ulimit -v, RLIMIT_AS: batch systems set
# it) a preloaded program starts and allocates: the first 256 MiB arena needs
# 256 MiB of address space, not the 512 MiB an over-reservation for its
# alignment takes (the program died at start, in the shim's setup, under
# ulimit -v 500000 until 2026-12-07).
#
# usage: rlimit_as.sh PRELOAD_LIB HOLD
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { echo "usage: $0 PRELOAD_LIB HOLD" >&2; exit 2; }
require_preload "$1"
hold=$2

# 400 MiB: the arena (256 MiB), the program with its libraries and the
# page map's BSS (about 60 MiB), and 16 MiB held, with room to spare; less
# than the 512 MiB of an over-reservation.
limit_kib=$((400 * 1024))
out=$(ulimit -v "$limit_kib" && LD_PRELOAD="$PRELOAD" "$hold" 16 0 2>&1)
rc=$?
expect "hold under ulimit -v $limit_kib exits 0 (rc $rc: $out)" [ "$rc" -eq 0 ]
expect "hold under ulimit -v $limit_kib holds 16 MiB ($out)" grep -q "held 16 MiB" <<<"$out"

# Below what the arena needs: one line that says why, exit status 2, never
# an abort (rc 134) or a bare std::terminate message.
low_kib=$((200 * 1024))
out=$(ulimit -v "$low_kib" && LD_PRELOAD="$PRELOAD" "$hold" 16 0 2>&1)
rc=$?
expect "hold under ulimit -v $low_kib exits 2 (rc $rc: $out)" [ "$rc" -eq 2 ]
expect "hold under ulimit -v $low_kib writes one line ($out)" [ "$(wc -l <<<"$out")" -eq 1 ]
expect "hold under ulimit -v $low_kib says why ($out)" \
  grep -q "^execmem: cannot map the first 256 MiB arena" <<<"$out"

finish rlimit_as
