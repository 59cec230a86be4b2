#!/bin/bash
# Redis 7 (Debian's redis-server) under load, with and without the preload:
# redis-benchmark, then a deterministic variable-size rewrite load (SETs of
# 1 B to 64 KiB, half deleted and rewritten at other sizes, APPENDs, hashes,
# lists, sets, sorted sets). The two servers' DEBUG DIGEST must be equal and
# not empty; the preloaded one's EXECMEM_STATS must show that execmem served
# it. Prints redis-benchmark's throughput under the shim / without.
#
# usage: redis.sh PRELOAD_LIB short|long
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { echo "usage: $0 PRELOAD_LIB short|long" >&2; exit 2; }
soak_setup "$1" "$2"
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
  { echo "FAIL: redis-server / redis-benchmark not installed (make deps)" >&2; exit 1; }

if [ "$SOAK_MODE" = long ]; then
  keys=200000 bench_n=300000
else
  keys=10000 bench_n=10000
fi

# start_redis NAME [VAR=VALUE...]: a server on $WORK/NAME/sock; sets PID_<NAME>.
start_redis() {
  local name=$1
  shift
  mkdir -p "$WORK/$name"
  env "$@" redis-server --port 0 --unixsocket "$WORK/$name/sock" --unixsocketperm 700 \
    --dir "$WORK/$name" --save '' --appendonly no --logfile "$WORK/$name/log" \
    --enable-debug-command yes --daemonize no &
  local pid=$!
  soak_started "$pid"
  printf -v "PID_$name" '%s' "$pid"
  if ! wait_until 60 redis-cli -s "$WORK/$name/sock" ping; then
    fail "$name: redis-server did not answer within 60 s"
    tail -5 "$WORK/$name/log" >&2
    exit 1
  fi
}

cli() { redis-cli -s "$WORK/$1/sock" "${@:2}"; }

# The rewrite load as a RESP stream, the same bytes for both servers.
python3 - "$keys" >"$WORK/load.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
def size(i, salt):
    x = (i * 7919 + salt * 104729) % 1000003
    if x % 97 == 0:
        return 16384 + x % 49152       # now and then 16-64 KiB
    return 1 + x % 3000                # mostly 1 B - 3 KB
def value(i, salt):
    s = size(i, salt)
    unit = b"%d:%d|" % (i, salt)
    return (unit * (s // len(unit) + 1))[:s]
for i in range(n):
    cmd("SET", "k:%d" % i, value(i, 0))
    if i % 3 == 0:
        cmd("HSET", "h:%d" % (i % 1000), "f%d" % i, value(i, 1)[:200])
    if i % 5 == 0:
        cmd("RPUSH", "l:%d" % (i % 500), value(i, 2)[:100])
    if i % 7 == 0:
        cmd("SADD", "s:%d" % (i % 300), i)
        cmd("ZADD", "z:%d" % (i % 200), i % 1009, "m%d" % i)
for i in range(0, n, 2):                    # half deleted...
    cmd("DEL", "k:%d" % i)
for i in range(0, n, 2):                    # ...and rewritten at other sizes
    cmd("SET", "k:%d" % i, value(i, 3))
for i in range(1, n, 3):
    cmd("APPEND", "k:%d" % i, value(i, 4)[:500])
for i in range(0, n, 10):
    cmd("LPOP", "l:%d" % (i % 500))
    cmd("HDEL", "h:%d" % (i % 1000), "f%d" % (i - i % 3))
PY

start_redis base
start_redis shim "LD_PRELOAD=$PRELOAD" "EXECMEM_STATS=$WORK/shim/stats.json"

# ---- redis-benchmark: throughput, and the allocator under a mixed load ----------
bench_tests=set,get,incr,lpush,lpop,sadd,hset,mset
declare -A rps_base rps_shim
for name in base shim; do
  while IFS=, read -r test rps _; do
    test=${test//\"/} rps=${rps//\"/}
    [ "$test" = test ] && continue
    if [ "$name" = base ]; then rps_base[$test]=$rps; else rps_shim[$test]=$rps; fi
  done < <(redis-benchmark -s "$WORK/$name/sock" --csv -n "$bench_n" -c 16 -P 8 -d 200 \
             -r 100000 -t "$bench_tests" 2>/dev/null)
  cli "$name" flushall >/dev/null
done
expect "redis-benchmark reported every test on both servers" \
  test "${#rps_base[@]}" -ge 8 -a "${#rps_shim[@]}" -ge 8
echo "redis-benchmark ($SOAK_MODE, -n $bench_n -c 16 -P 8 -d 200; requests/s):"
for test in "${!rps_base[@]}"; do
  printf '  %-24s without %10s   execmem %10s   ratio %s\n' "$test" \
    "${rps_base[$test]}" "${rps_shim[$test]:-0}" "$(ratio "${rps_shim[$test]:-0}" "${rps_base[$test]}")"
done | sort
geomean=$(for test in "${!rps_base[@]}"; do echo "${rps_shim[$test]:-0} ${rps_base[$test]}"; done |
  awk '$1 > 0 && $2 > 0 { s += log($1 / $2); n++ } END { if (n) printf "%.2f", exp(s / n); else print "n/a" }')
echo "  geometric mean of the ratios (execmem / without): $geomean"

# ---- the rewrite load: same data, same digest ---------------------------------------
for name in base shim; do
  out=$(cli "$name" --pipe <"$WORK/load.resp" 2>&1)
  expect "$name: the rewrite load ran without errors ($out)" grep -q "errors: 0," <<<"$out"
done
digest_base=$(cli base debug digest)
digest_shim=$(cli shim debug digest)
dbsize=$(cli shim dbsize)
echo "rewrite load: $keys keys, dbsize $dbsize, digest base $digest_base shim $digest_shim"
expect "the digest is not that of an empty database" \
  test -n "$digest_base" -a "$digest_base" != 0000000000000000000000000000000000000000
expect "DEBUG DIGEST under execmem ($digest_shim) equals the one without ($digest_base)" \
  test "$digest_shim" = "$digest_base"
expect "dbsize under execmem ($dbsize) equals the one without" test "$dbsize" = "$(cli base dbsize)"

# ---- clean shutdown; the stats show that execmem served Redis ----------------------------
for name in base shim; do
  pid_var=PID_$name
  soak_stop "${!pid_var}"
  status=$?
  expect "$name: redis-server exited cleanly on SIGTERM (status $status)" test "$status" -eq 0
done
allocs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["executors"][0]["allocations"])' \
  "$WORK/shim/stats.json" 2>/dev/null || echo 0)
expect "execmem served the preloaded server ($allocs allocations)" test "$allocs" -gt 100000
finish "soak.redis ($SOAK_MODE)"
