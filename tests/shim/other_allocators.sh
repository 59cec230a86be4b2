#!/bin/bash
# The contract programs can fail: run under allocators with known defects,
# they must not pass. Debian's jemalloc has no pvalloc, so glibc's pvalloc
# block reaches jemalloc's malloc_usable_size / free (it crashes); Debian's
# mimalloc aborts on a nothrow operator new of an impossible size instead of
# returning nullptr. An allocator that is not installed is skipped (77).
#
# usage: other_allocators.sh CONTRACT CONTRACT_CC
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { echo "usage: $0 CONTRACT CONTRACT_CC" >&2; exit 2; }
contract=$1
contract_cc=$2
make_workdir
ulimit -c 0  # the crashes are expected: no core files

libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
jemalloc=$libdir/libjemalloc.so.2
mimalloc=$libdir/libmimalloc.so.2
ran=0

# must_fail LIBRARY PROGRAM WHAT: PROGRAM under LD_PRELOAD=LIBRARY exits non-zero.
must_fail() {
  local lib=$1 program=$2 what=$3
  if [ ! -f "$lib" ]; then
    echo "skip: $lib is not installed"
    return
  fi
  ran=$((ran + 1))
  LD_PRELOAD=$lib "$program" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  local how="exit status $rc"
  [ $rc -gt 128 ] && how="killed by signal $((rc - 128))"
  echo "$(basename "$lib") $(basename "$program"): $how; $(grep -c '^FAIL' "$WORK/err") checks failed"
  grep '^FAIL' "$WORK/err" | sort | uniq -c | head -5
  expect "$(basename "$program") passed under $(basename "$lib"), which $what" [ $rc -ne 0 ]
}

must_fail "$jemalloc" "$contract" "has no pvalloc (glibc's block reaches its free)"
must_fail "$mimalloc" "$contract_cc" "aborts on nothrow new of an impossible size"
[ $ran -gt 0 ] || { echo "neither jemalloc nor mimalloc is installed"; exit 77; }
finish other_allocators
