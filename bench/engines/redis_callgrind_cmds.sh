#!/bin/bash
# Instructions per request of each Redis command, in the allocator's entry
# points and in total (issue 20, item 5): Debian's redis-server under callgrind
# on a unix socket in a temporary directory, preloaded with PRELOAD ("none":
# the jemalloc it links). For each of SET GET LPUSH LPOP SADD HSET in turn:
# callgrind_control zeroes the counters, redis-benchmark -t CMD -n N -c 10
# -P 16 -r 100000 runs, callgrind_control dumps; callgrind_entries.py reads
# each dump (calls into malloc, free, realloc, calloc, malloc_usable_size ...
# from outside the allocator, their inclusive instructions).
#
#   bench/engines/redis_callgrind_cmds.sh PRELOAD|none NAME [N]
#
# Prints one line per command: NAME CMD requests total_Ir alloc_Ir calls...
set -u
[ $# -ge 2 ] && [ $# -le 3 ] && [[ "${3:-1}" =~ ^[1-9][0-9]*$ ]] || {
  echo "usage: redis_callgrind_cmds.sh PRELOAD|none NAME [REQUESTS]" >&2
  exit 2
}
[ "$1" = none ] || [ -r "$1" ] || { echo "redis_callgrind_cmds.sh: no preload $1" >&2; exit 2; }
TAG=rcgc
name=$2
n=${3:-20000}
lib=$1
[ "$lib" = none ] && set -- /dev/null private || set -- "$lib" private
. "$(dirname "$0")/callgrind_setup.sh"
[ "$lib" = none ] && pre=""
here=$(cd "$(dirname "$0")" && pwd)
env LD_PRELOAD="$pre" valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" \
  redis-server --port 0 --unixsocket "$d/s.sock" --save '' --appendonly no --dir "$d" >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do redis-cli -s "$d/s.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
for cmd in set get lpush lpop sadd hset; do
  callgrind_control -z "$pid" >/dev/null || { echo "callgrind_control -z failed" >&2; exit 1; }
  redis-benchmark -s "$d/s.sock" -t "$cmd" -n "$n" -c 10 -P 16 -r 100000 -q >/dev/null 2>&1 ||
    { echo "redis-benchmark -t $cmd failed" >&2; exit 1; }
  callgrind_control -d "$cmd" "$pid" >/dev/null || { echo "callgrind_control -d failed" >&2; exit 1; }
done
kill -TERM "$pid"
wait "$pid"
pid=""
i=0
for cmd in set get lpush lpop sadd hset; do
  i=$((i + 1))
  echo "$name $cmd $n $(python3 "$here/callgrind_entries.py" "$d/cg.out.$i" "$pre")"
  [ -n "${KEEP_DUMPS:-}" ] && cp "$d/cg.out.$i" "$KEEP_DUMPS/$name.$cmd.out"
done
