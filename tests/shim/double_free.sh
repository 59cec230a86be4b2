#!/bin/bash
# The free checks on by default (cache/check.h), seen by a C program
# under the preload: each error prints exactly one line on stderr and aborts
# (status 134, SIGABRT); the legitimate "ok-" runs exit 0 with nothing on
# stderr.
#
# usage: double_free.sh PRELOAD_LIB PROGRAM
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { echo "usage: $0 PRELOAD_LIB PROGRAM" >&2; exit 2; }
require_preload "$1"
program=$2
make_workdir

readonly hex='0x[0-9a-f]+'
# caught MODE REGEX: one line matching REGEX, then abort.
caught() {
  local mode=$1 regex=$2
  # (in a shell of its own, whose "Aborted" notice is not this test's output)
  bash -c 'env LD_PRELOAD="$1" "$2" "$3" >"$4/out" 2>"$4/err"' _ "$PRELOAD" "$program" "$mode" "$WORK" 2>/dev/null
  local rc=$? err
  err=$(cat "$WORK/err")
  expect "$mode: exit status $rc, want 134 (SIGABRT); stderr: $err" [ $rc -eq 134 ]
  expect "$mode: $(wc -l <"$WORK/err") lines on stderr, want 1: $err" [ "$(wc -l <"$WORK/err")" -eq 1 ]
  expect "$mode: stderr does not match /$regex/: $err" grep -qE -- "^$regex\$" "$WORK/err"
}
# fine MODE: exit 0, stderr empty.
fine() {
  local mode=$1
  env LD_PRELOAD="$PRELOAD" "$program" "$mode" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  expect "$mode: exit status $rc, want 0; stderr: $(cat "$WORK/err")" [ $rc -eq 0 ]
  expect "$mode: stderr not empty: $(cat "$WORK/err")" [ ! -s "$WORK/err" ]
}

block() { echo "\\(a $1-byte block of executor \"default\"\\)"; }
caught plain "execmem: free\\(\\): double free of $hex $(block 48)"
caught delayed "execmem: free\\(\\): double free of $hex $(block 32)"
caught interleaved "execmem: free\\(\\): double free of $hex $(block 64)"
caught medium "execmem: free\\(\\): double free of $hex \\(a [0-9]+-byte block of executor \"default\"\\)"
caught large "execmem: free\\(\\): double free of $hex \\(a 3145728-byte block\\)"
caught huge "execmem: free\\(\\): double free of $hex $(block 94371840)"
caught thread "execmem: free\\(\\): double free of $hex $(block 48)"
caught invalid "execmem: free\\(\\): pointer $hex not allocated by execmem"
caught interior "execmem: free\\(\\): pointer $hex not allocated by execmem \\(it is 16 bytes into a 112-byte block of executor \"default\"\\)"
caught sized "execmem: free_sized\\(\\): wrong size 480 for $hex $(block 48)"
caught usable-interior "execmem: malloc_usable_size\\(\\): pointer $hex not allocated by execmem \\(it is 16 bytes into a 112-byte block of executor \"default\"\\)"
caught usable-large-interior "execmem: malloc_usable_size\\(\\): pointer $hex not allocated by execmem \\(it is 64 bytes into a [0-9]+-byte block of executor \"default\"\\)"
caught realloc-interior "execmem: realloc\\(\\): pointer $hex not allocated by execmem \\(it is 16 bytes into a 112-byte block of executor \"default\"\\)"
for offset in 0 16 48 128 65536 131136; do
  for op in usable:malloc_usable_size realloc:realloc; do
    SHIM_META_OFFSET=$offset caught "${op%%:*}-meta" "execmem: ${op#*:}\\(\\): pointer $hex not allocated by execmem"
  done
done
fine ok-usable
fine ok-reuse
fine ok-sized

finish double_free
