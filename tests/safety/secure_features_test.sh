#!/usr/bin/env bash
# One secure-mode feature (cache/secure.h) through its scenario in
# secure_features.cc, preloaded with EXECMEM_SECURE=1: the expected outcome is
# a report (abort, with the line), a fault (SIGSEGV), or "ok". Errors that
# secure mode catches are also run without it, where they must go unnoticed
# by that check (the feature is the mode's, not a leftover of the default).
#
#   secure_features_test.sh PROGRAM PRELOAD_SO FEATURE
set -uo pipefail
prog=$1 preload=$2 feature=$3
ulimit -c 0
run() {  # run SECURE SCENARIO: sets out, status
  out=$( { EXECMEM_SECURE=$1 LD_PRELOAD=$preload timeout 60 "$prog" "$2" 2>&1; } 2>/dev/null)
  status=$?
}
expect_report_in() {  # EXECMEM_SECURE value, scenario, regex
  run "$1" "$2"
  if [[ $status -ne 134 ]] || ! grep -Eq "$3" <<<"$out"; then
    echo "FAIL: $2 under EXECMEM_SECURE=$1: exit $status, expected abort with /$3/; output: $out"
    exit 1
  fi
}
expect_report() { expect_report_in 1 "$@"; }  # scenario, regex
expect_fault() {
  run 1 "$1"
  if [[ $status -ne 139 ]]; then
    echo "FAIL: $1 under EXECMEM_SECURE=1: exit $status, expected SIGSEGV (139); output: $out"
    exit 1
  fi
}
expect_ok() {
  run "$2" "$1"
  if [[ $status -ne 0 || $out != *ok* ]]; then
    echo "FAIL: $1 (EXECMEM_SECURE=$2): exit $status; output: $out"
    exit 1
  fi
}
unnoticed_without() {  # the scenario's error goes unnoticed by default
  run 0 "$1"
  if [[ $out != *FAIL:* ]]; then
    echo "FAIL: $1 without secure mode: expected it to run past the error; exit $status, output: $out"
    exit 1
  fi
}
case "$feature" in
  canary) expect_report canary "heap overflow past the end of"; unnoticed_without canary
          expect_report underflow "heap underflow before"; unnoticed_without underflow ;;
  zeroed) expect_report zeroed "write after free of"; unnoticed_without zeroed
          expect_ok malloc_zero 1 ;;
  guard_pages) expect_fault guard_after; expect_fault guard_before; expect_fault guard_huge
               expect_fault large_uaf; unnoticed_without guard_after
               # The guard page before a huge block is not read by a bad free.
               expect_report huge_interior "it is 67112960 bytes into a" ;;
  encoded) expect_ok encoded 1 ;;
  random) expect_ok random 1
          run 0 random; [[ $out == *FAIL:* ]] || { echo "FAIL: default order is not address order: $out"; exit 1; } ;;
  # Zero-size blocks fault in the default mode too (allocator/zero_size.h).
  zero_size) expect_fault zero_size
             run 0 zero_size
             [[ $status -eq 139 ]] || { echo "FAIL: zero_size without secure mode: exit $status, expected SIGSEGV (139); output: $out"; exit 1; } ;;
  quarantine) expect_ok quarantine 1
              run 0 quarantine; [[ $out == *FAIL:* ]] || { echo "FAIL: default mode reuses at once, but: $out"; exit 1; } ;;
  double_free) expect_report double_free "double free" ;;
  neighbours) expect_report neighbour "heap underflow before.*the (slack of the|free) block next to it"
              unnoticed_without neighbour ;;
  next_malloc) expect_report next_malloc "malloc\(\): heap overflow past the end of.*found at the next malloc"
               unnoticed_without next_malloc ;;
  # realloc and malloc_usable_size of a block its span never handed out, on
  # the span owner's thread and on another: reported in both modes.
  realloc) expect_ok realloc 1; expect_ok realloc 0
           for secure in 1 0; do
             for where in "" _remote; do
               expect_report_in "$secure" never_realloc$where \
                 "^execmem: realloc\(\): pointer 0x[0-9a-f]+ not allocated by execmem$"
               expect_report_in "$secure" never_usable$where \
                 "^execmem: malloc_usable_size\(\): pointer 0x[0-9a-f]+ not allocated by execmem$"
             done
           done
           # malloc_usable_size of a freed block: secure mode's only.
           expect_report freed_usable "^execmem: malloc_usable_size\(\): double free"
           unnoticed_without freed_usable ;;
  # A block freed by another thread than its span's owner: the same checks.
  remote) expect_report remote_canary "free\(\): heap overflow past the end of"
          unnoticed_without remote_canary
          expect_ok remote_zeroed 1 ;;
  # EXECMEM_SECURE_CHECKS: the optional protections one by one; the
  # scenarios' outcomes depend on no random draw.
  checks) export EXECMEM_SECURE_CHECKS=none
          expect_report canary "heap overflow past the end of"  # always on
          expect_report double_free "double free"
          for s in zeroed quarantine random neighbour; do
            run 1 "$s"
            [[ $out == *FAIL:* ]] || { echo "FAIL: $s with EXECMEM_SECURE_CHECKS=none: expected it unnoticed; exit $status, output: $out"; exit 1; }
          done
          export EXECMEM_SECURE_CHECKS=zero,quarantine
          expect_report zeroed "write after free of"; expect_ok quarantine 1
          export EXECMEM_SECURE_CHECKS=neighbours,zero
          expect_report neighbour "heap underflow before"
          export EXECMEM_SECURE_CHECKS=shuffle
          expect_ok random 1
          export EXECMEM_SECURE_CHECKS=zero,bogus
          run 1 canary
          [[ $status -ne 0 && $out == *EXECMEM_SECURE_CHECKS* ]] || { echo "FAIL: an invalid EXECMEM_SECURE_CHECKS was not refused: exit $status, output: $out"; exit 1; } ;;
  *) echo "unknown feature $feature"; exit 2 ;;
esac
echo "1 passed, 0 failed"
