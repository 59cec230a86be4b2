#!/usr/bin/env bash
# What execmem must catch of mimalloc-bench's 116 security programs
# (tests/safety/original/, counted by original_run.sh as mimalloc-bench
# counts them): at least FLOOR_DEFAULT in the default mode and FLOOR_SECURE
# with EXECMEM_SECURE=1. The floors are what each mode catches on every run:
# a program that secure mode's random choices catch only on some runs is not
# in them (docs/safety.md lists the programs). glibc runs too, for the
# comparison printed; its count is not asserted (it is glibc's).
#
#   original_test.sh BIN_DIR PRELOAD_SO
set -euo pipefail
readonly FLOOR_DEFAULT=71
readonly FLOOR_SECURE=105
bin=$1
export EXECMEM_PRELOAD=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$here/original_run.sh" -a glibc,execmem,execmem-secure -o "$tmp/results" "$bin"
count() { awk -v a="$1" '$1 == a && $3 == $4 { n++ } END { print n + 0 }' "$tmp/results"; }
fail=0
for mode in execmem:$FLOOR_DEFAULT execmem-secure:$FLOOR_SECURE; do
  name=${mode%:*}
  floor=${mode#*:}
  got=$(count "$name")
  echo "$name catches $got of 116 (at least $floor expected; glibc $(count glibc))"
  if (( got < floor )); then
    echo "FAIL: $name catches $got, fewer than $floor"
    fail=1
  fi
done
(( fail == 0 )) && echo "1 passed, 0 failed"
exit $fail
