#!/bin/bash
# Redis 7 out of memory under the preload: EXECMEM_MAX and no maxmemory, so
# that execmem, not Redis, refuses a write. Redis then logs "Out Of Memory
# allocating N bytes!" and panics; its failure path needs a little memory
# (the log line, the crash report), which the emergency reserve serves
# (budget/emergency.h). Checked: the line is in the log, there is one bug
# report (no failure inside the failure path), the log stays small, and the
# process ends on its own. Without the reserve (EXECMEM_EMERGENCY_RESERVE=0)
# Redis recursed in its crash handler until SIGSEGV some 20 s later, with an
# 87 MB log and no "Out Of Memory" line.
#
# usage: redis_oom.sh PRELOAD_LIB [short|long] [EXTRA VAR=VALUE...]
source "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || { echo "usage: $0 PRELOAD_LIB [short|long] [VAR=VALUE...]" >&2; exit 2; }
soak_setup "$1" "${2:-short}"
shift $(($# >= 2 ? 2 : 1))
command -v redis-server >/dev/null || { echo "FAIL: redis-server not installed" >&2; exit 1; }

max=64m
log=$WORK/redis.log
env LD_PRELOAD="$PRELOAD" EXECMEM_MAX=$max "$@" \
  redis-server --port 0 --unixsocket "$WORK/sock" --unixsocketperm 700 --dir "$WORK" \
  --save '' --appendonly no --logfile "$log" --daemonize no &
pid=$!
soak_started "$pid"
wait_until 60 redis-cli -s "$WORK/sock" ping || { fail "redis-server did not start"; exit 1; }

# 16 KiB values until Redis can hold no more: 96 MiB is far past 64m.
python3 - >"$WORK/fill.resp" <<'PY'
import sys
out = sys.stdout.buffer
val = b"v" * 16384
for i in range(6144):
    k = b"key:%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(val), val))
PY
start=$(date +%s)
redis-cli -s "$WORK/sock" --pipe <"$WORK/fill.resp" >"$WORK/fill.out" 2>&1
cli_status=$?
# The server ends by itself; 30 s is far beyond what a clean panic takes
# (about a second here) and far below what the recursion took.
ended=no
for ((i = 0; i < 300; i++)); do
  kill -0 "$pid" 2>/dev/null || { ended=yes; break; }
  sleep 0.1
done
seconds=$(($(date +%s) - start))
wait "$pid" 2>/dev/null
status=$?
log_bytes=$(stat -c %s "$log" 2>/dev/null || echo 0)
echo "redis under EXECMEM_MAX=$max $*: ended=$ended after ${seconds}s (status $status), log $log_bytes bytes"
grep -m1 "Out Of Memory" "$log"
expect "the fill did not complete: a write was refused (redis-cli status $cli_status)" \
  test "$cli_status" -ne 0
expect "the server ended by itself within 30 s" test "$ended" = yes
expect "the log shows Redis' 'Out Of Memory allocating N bytes' line" \
  grep -q "Out Of Memory allocating [0-9]* bytes" "$log"
reports=$(grep -c "REDIS BUG REPORT START" "$log")
expect "one bug report, no failure inside the failure path ($reports)" test "$reports" -eq 1
expect "the log stays small ($log_bytes bytes < 1 MiB)" test "$log_bytes" -lt 1048576
finish "soak.redis_oom"
