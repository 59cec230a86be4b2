#!/usr/bin/env bash
# The ABI check can fail: a library that removes the C API under the
# committed SONAME fails it, and passes once its SONAME is bumped.
#   abi_check_selftest.sh BROKEN_SAME_SONAME BROKEN_BUMPED_SONAME DUMP_DIR HEADERS_DIR SOURCE_DIR
set -uo pipefail
check=$(dirname "${BASH_SOURCE[0]}")/abi_check.sh
fail=0
out=$(bash "$check" check "$1" "$3" "$4" "$5" 2>&1)
rc=$?
if (( rc == 77 )); then echo "$out"; exit 77; fi
if (( rc == 1 )) && grep -q '^FAIL: the C API of libexecmem.so.[0-9]* changed' <<<"$out"; then
  echo "ok   removing the C API under the same SONAME fails the check"
else
  echo "FAIL: removing the C API under the same SONAME was not caught (exit $rc):"
  echo "$out"
  fail=1
fi
out=$(bash "$check" check "$2" "$3" "$4" "$5" 2>&1)
rc=$?
if (( rc == 0 )) && grep -q 'SONAME was bumped' <<<"$out"; then
  echo "ok   the same library under a bumped SONAME passes"
else
  echo "FAIL: a bumped SONAME did not pass the check (exit $rc):"
  echo "$out"
  fail=1
fi
exit $fail
