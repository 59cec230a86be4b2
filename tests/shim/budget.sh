#!/bin/bash
# Budget enforcement through the environment: EXECMEM_INITIAL=16m
# EXECMEM_MAX=64m, and a program that allocates 1 MiB blocks until refused.
#
# usage: budget.sh PRELOAD_LIB BUDGET_HOG
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { echo "usage: $0 PRELOAD_LIB BUDGET_HOG" >&2; exit 2; }
require_preload "$1"
hog=$2
make_workdir
ulimit -c 0  # the abort cases must not leave core files

budget=(EXECMEM_INITIAL=16m EXECMEM_MAX=64m)
# Live bytes are capped at max: at most 64 blocks of 1 MiB (the program's own
# start-up allocations take a little); refusing before 48 would be a budget
# far smaller than asked.
min=48
max=64

# under ENV... -- COMMAND...: runs with the preload and the given variables.
under() {
  local vars=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  env LD_PRELOAD="$PRELOAD" "${vars[@]}" "$@"
}

# 1. null policy (the default): NULL with ENOMEM / std::bad_alloc, clean exit.
for mode in malloc new; do
  under "${budget[@]}" -- "$hog" $mode $min $max >"$WORK/$mode.out" 2>"$WORK/$mode.err"
  rc=$?
  cat "$WORK/$mode.out"
  expect "$mode past EXECMEM_MAX: exit status $rc (stderr: $(head -c 300 "$WORK/$mode.err"))" \
    [ $rc -eq 0 ]
done
# The default policy is null, and saying so explicitly is the same.
under "${budget[@]}" EXECMEM_OOM=null -- "$hog" malloc $min $max >/dev/null 2>&1
expect "EXECMEM_OOM=null: malloc past the budget" [ $? -eq 0 ]

# 2. abort policy: SIGABRT (status 134 from bash) and the report on stderr.
for mode in malloc new; do
  under "${budget[@]}" EXECMEM_OOM=abort -- "$hog" $mode $min $max \
    >"$WORK/abort-$mode.out" 2>"$WORK/abort-$mode.err"
  rc=$?
  expect "EXECMEM_OOM=abort, $mode: exit status $rc, want 134 (SIGABRT)" [ $rc -eq 134 ]
  expect "EXECMEM_OOM=abort, $mode: the program went on after the refusal" \
    bash -c "! grep -q PASS '$WORK/abort-$mode.out'"
  report=$(cat "$WORK/abort-$mode.err")
  expect "EXECMEM_OOM=abort, $mode: report does not name the default executor: $report" \
    grep -qi 'default' "$WORK/abort-$mode.err"
  expect "EXECMEM_OOM=abort, $mode: report does not give max (64 MiB = 67108864): $report" \
    grep -qiE 'max[^0-9]*(64(\.0)? ?MiB|67108864)' "$WORK/abort-$mode.err"
done
echo "--- the out-of-memory report:"
cat "$WORK/abort-malloc.err"
echo "---"

# 3. A real program under the budget: Python's MemoryError.
under "${budget[@]}" -- /usr/bin/python3 -c '
try:
    blob = bytearray(256 * 1024 * 1024)
except MemoryError:
    print("MemoryError")
small = bytearray(8 * 1024 * 1024)
print(len(small))' >"$WORK/python.out" 2>"$WORK/python.err"
rc=$?
expect "python3 under EXECMEM_MAX=64m: status $rc, output $(tr '\n' ' ' <"$WORK/python.out") $(head -c 300 "$WORK/python.err")" \
  [ $rc -eq 0 -a "$(tr '\n' ' ' <"$WORK/python.out")" = "MemoryError 8388608 " ]

finish budget
