#!/bin/bash
# make soak: the long versions of the soak tests, one after the other, with
# their figures (throughput under the shim / without) on stdout.
#
# usage: run.sh PRELOAD_LIB [short|long]
[ $# -ge 1 ] || { echo "usage: $0 PRELOAD_LIB [short|long]" >&2; exit 2; }
dir=$(dirname "$0")
mode=${2:-long}
status=0
for test in redis redis_oom postgres; do
  echo "== soak.$test ($mode)"
  start=$(date +%s)
  bash "$dir/$test.sh" "$1" "$mode" || status=1
  echo "== soak.$test took $(($(date +%s) - start)) s"
done
exit $status
