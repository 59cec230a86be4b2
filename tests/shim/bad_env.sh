#!/bin/bash
# A bad EXECMEM_* value stops the program before main: exit status 2, nothing
# on stdout, exactly one line on stderr naming the variable, the value and
# what is accepted. Good values start the program as usual, with nothing on
# stderr. Programs are run by path (/bin/true, never the shell's builtin).
#
# usage: bad_env.sh PRELOAD_LIB
source "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 PRELOAD_LIB" >&2; exit 2; }
require_preload "$1"
make_workdir

# refused VARIABLE VALUE ACCEPTED VAR=value...: the message names VARIABLE,
# quotes VALUE and contains ACCEPTED (what the user should write instead).
refused() {
  local name=$1 value=$2 accepted=$3
  shift 3
  local program
  for program in "/bin/echo hi" /bin/true; do
    env LD_PRELOAD="$PRELOAD" "$@" $program >"$WORK/out" 2>"$WORK/err"
    local rc=$?
    local lines
    lines=$(wc -l <"$WORK/err")
    local err
    err=$(cat "$WORK/err")
    expect "$* $program: exit status $rc, want 2 (stderr: $err)" [ $rc -eq 2 ]
    expect "$* $program: the program ran (stdout: $(cat "$WORK/out"))" [ ! -s "$WORK/out" ]
    expect "$* $program: $lines lines on stderr, want 1: $err" [ "$lines" -eq 1 ]
    expect "$* $program: message does not name $name: $err" grep -qF -- "$name" "$WORK/err"
    expect "$* $program: message does not quote '$value': $err" grep -qF -- "$value" "$WORK/err"
    expect "$* $program: message does not say what is accepted ('$accepted'): $err" \
      grep -qF -- "$accepted" "$WORK/err"
  done
  echo "refused $(printf '%q ' "$@"): $(cat "$WORK/err")"
}

# accepted VAR=value...: the program runs and says nothing more.
accepted() {
  env LD_PRELOAD="$PRELOAD" "$@" /bin/echo hi >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  expect "$*: exit status $rc, want 0 (stderr: $(cat "$WORK/err"))" [ $rc -eq 0 ]
  expect "$*: stdout '$(cat "$WORK/out")', want hi" [ "$(cat "$WORK/out")" = hi ]
  expect "$*: stderr not empty: $(cat "$WORK/err")" [ ! -s "$WORK/err" ]
}

refused EXECMEM_MAX abc "such as 512m" EXECMEM_MAX=abc
refused EXECMEM_MAX -1g "such as 512m" EXECMEM_MAX=-1g
refused EXECMEM_MAX 12q "such as 512m" EXECMEM_MAX=12q
refused EXECMEM_MAX 0 "such as 512m" EXECMEM_MAX=0
refused EXECMEM_INITIAL 1x "such as 512m" EXECMEM_INITIAL=1x
# initial above max: the message names one of them with its value.
refused EXECMEM_INITIAL 8g "must not exceed max" EXECMEM_INITIAL=8g EXECMEM_MAX=1g EXECMEM_POOL_CAPACITY=16g
refused EXECMEM_OVERHEAD 150% "such as 10%" EXECMEM_OVERHEAD=150%
refused EXECMEM_OVERHEAD 1.5 "such as 0.1" EXECMEM_OVERHEAD=1.5
refused EXECMEM_OVERHEAD lots "such as 256m" EXECMEM_OVERHEAD=lots
refused EXECMEM_OVERHEAD -1% "such as 10%" EXECMEM_OVERHEAD=-1%
refused EXECMEM_INITIAL 1.5.5g "such as 512m" EXECMEM_INITIAL=1.5.5g
refused EXECMEM_MAX 18446744073709551616 "such as 512m" EXECMEM_MAX=18446744073709551616
refused EXECMEM_OOM maybe "null, report or abort" EXECMEM_OOM=maybe
refused EXECMEM_STATS stdout "stderr (or 1), or a file path" EXECMEM_STATS=stdout
refused EXECMEM_STATS /nonexistent-dir/report.json "or a file path" EXECMEM_STATS=/nonexistent-dir/report.json
refused EXECMEM_DECAY_MS x "from 0 to" EXECMEM_DECAY_MS=x
refused EXECMEM_DECAY_MS -5 "from 0 to" EXECMEM_DECAY_MS=-5
# Past 64 bits: too long, not "not a whole number" (until 2026-12-08).
refused EXECMEM_DECAY_MS 99999999999999999999 "too long" EXECMEM_DECAY_MS=99999999999999999999
refused EXECMEM_POOL_CAPACITY lots "such as 512m" EXECMEM_POOL_CAPACITY=lots
# Too small for the shim's own start-up (64k, 1) or its report at exit (1m):
# std::terminate until 2026-12-08.
refused EXECMEM_POOL_CAPACITY 64k "below 2m" EXECMEM_POOL_CAPACITY=64k
refused EXECMEM_POOL_CAPACITY 1 "below 2m" EXECMEM_POOL_CAPACITY=1
refused EXECMEM_POOL_CAPACITY 1m "below 2m" EXECMEM_POOL_CAPACITY=1m EXECMEM_STATS=stderr
# Explicit budgets above the pool's capacity are refused, not capped.
refused EXECMEM_MAX 100000t "above the pool capacity" EXECMEM_MAX=100000t
refused EXECMEM_MAX 2g "above the pool capacity" EXECMEM_POOL_CAPACITY=1g EXECMEM_MAX=2g
# A value with a newline still gives one line.
refused EXECMEM_OOM 'abort' "null, report or abort" "EXECMEM_OOM=abort
now"

accepted EXECMEM_MAX=1g
accepted EXECMEM_INITIAL=64m EXECMEM_MAX=512MiB EXECMEM_OVERHEAD=10%
accepted EXECMEM_OVERHEAD=0.25 EXECMEM_INITIAL=100m
accepted EXECMEM_OVERHEAD=32m
accepted EXECMEM_OOM=abort
accepted EXECMEM_OOM=null
accepted EXECMEM_DECAY_MS=0
accepted EXECMEM_STATS=off
accepted EXECMEM_STATS=
accepted EXECMEM_POOL_CAPACITY=2g EXECMEM_MAX=1g
# The default initial and overhead are capped to fit a small pool: refused
# ("cannot reserve initial + overhead 1 GiB from the pool") until 2026-12-08,
# the bytes granted before the reservation counted twice.
accepted EXECMEM_POOL_CAPACITY=1g
accepted EXECMEM_POOL_CAPACITY=200m
accepted EXECMEM_POOL_CAPACITY=2m
accepted EXECMEM_POOL_CAPACITY=0

finish bad_env
