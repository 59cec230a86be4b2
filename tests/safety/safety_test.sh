#!/usr/bin/env bash
# What execmem must catch in the memory-safety error suite (tests/safety):
#   * the default build (no EXECMEM_SECURE): every case of kind double_free
#     and invalid_free;
#   * EXECMEM_SECURE=1: at least MIN_SECURE of the suite's cases, and every
#     double_free, invalid_free, overflow, underflow and use_after_free case
#     but the ones listed in SECURE_MISSES (shim rounding, malloc(0) frees).
# Caught means the process did not exit 0; whether a case is caught depends
# only on the allocator's checks, never on timing.
# Secure mode keys its canaries and free-list links with a per-process secret
# (and ASLR moves the blocks): a one-byte corruption of a canary goes unseen
# when the byte written happens to equal the canary's (1 in 256). What the
# mode guarantees is a catch with probability >= 255/256 in each process, not
# in one draw: a missed case is run again, each time a new process with a new
# secret, and fails only when missed RERUNS + 1 times in a row (by chance:
# 256^-4), which an allocator that never catches it always is.
#
#   safety_test.sh ERRORS_PROGRAM PRELOAD_SO
set -euo pipefail
readonly MIN_SECURE=107
# Known secure-mode misses in the checked kinds, with the reason:
#   of_odd_size_1  malloc(37) reaches the allocator as 48 (shim/request.h rounds
#                  requests up to 128 bytes to 16), so p[37] is inside the request
readonly SECURE_MISSES=" of_odd_size_1 "
readonly RERUNS=3
prog=$1
export EXECMEM_PRELOAD=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$here/run.sh" -a execmem,execmem-secure -o "$tmp/results" "$prog"
# caught_on_rerun SECURE NAME: 0 when one of RERUNS new processes catches NAME.
caught_on_rerun() {
  local i status
  ulimit -c 0
  for ((i = 0; i < RERUNS; i++)); do
    status=0
    EXECMEM_SECURE=$1 LD_PRELOAD=$EXECMEM_PRELOAD timeout -k 5 60 "$prog" "$2" \
      </dev/null >/dev/null 2>&1 || status=$?
    [[ $status -ne 0 && $status -ne 124 && $status -ne 137 ]] && return 0
  done
  return 1
}
fail=0
while read -r alloc name kind caught status; do
  case "$alloc:$kind" in
    execmem:double_free | execmem:invalid_free)
      if [[ $caught != 1 ]] && ! caught_on_rerun 0 "$name"; then
        echo "FAIL: default execmem misses $name ($kind, exit $status)"
        fail=1
      fi ;;
    execmem-secure:double_free | execmem-secure:invalid_free | execmem-secure:overflow | \
      execmem-secure:underflow | execmem-secure:use_after_free)
      if [[ $caught != 1 && $SECURE_MISSES != *" $name "* ]] && ! caught_on_rerun 1 "$name"; then
        echo "FAIL: EXECMEM_SECURE=1 misses $name ($kind, exit $status)"
        fail=1
      fi ;;
  esac
done <"$tmp/results"
secure=$(awk '$1 == "execmem-secure" { n += $4 } END { print n + 0 }' "$tmp/results")
total=$(awk '$1 == "execmem-secure" { n++ } END { print n + 0 }' "$tmp/results")
echo "EXECMEM_SECURE=1 catches $secure of $total (at least $MIN_SECURE expected)"
if (( secure < MIN_SECURE )); then
  echo "FAIL: EXECMEM_SECURE=1 catches $secure, fewer than $MIN_SECURE"
  fail=1
fi
# A case that survives must really have run to its end under each setting.
if ! EXECMEM_SECURE=1 LD_PRELOAD=$EXECMEM_PRELOAD "$prog" mm_new_free | grep -q '^survived'; then
  echo "FAIL: a case that commits no checked error did not survive under EXECMEM_SECURE=1"
  fail=1
fi
(( fail == 0 )) && echo "1 passed, 0 failed"
exit $fail
