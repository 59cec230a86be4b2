#!/bin/bash
# Instructions of a whole redis-server run under the preload, private or in a
# shared pool (issue 18, speed): callgrind on the server (start-up,
# redis-benchmark -t set,get,lpush,lpop,sadd,hset -n 20000 -c 10 -P 16
# -r 100000 = 120 000 requests, shutdown) on a unix socket in a temporary
# directory.
#
#   bench/engines/redis_callgrind.sh PRELOAD private|shared
set -u
TAG=rcg
. "$(dirname "$0")/callgrind_setup.sh"
env LD_PRELOAD="$pre" "${extra[@]}" valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" \
  redis-server --port 0 --unixsocket "$d/s.sock" --save '' --appendonly no --dir "$d" >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do redis-cli -s "$d/s.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-benchmark -s "$d/s.sock" -t set,get,lpush,lpop,sadd,hset -n 20000 -c 10 -P 16 -r 100000 \
  -q >/dev/null 2>&1 || { echo "redis-benchmark failed" >&2; exit 1; }
kill -TERM "$pid"
wait "$pid"
pid=""
echo "$v: $(grep -m1 '^summary:\|^totals:' "$d/cg.out" | awk '{print $2}') instructions"
