#!/usr/bin/env bash
# bench/redis/run.sh — one round of Redis under one allocator, for bench/run.sh
# (which interleaves allocators and rounds; report.py takes the medians):
#
#   bench/redis/run.sh --raw DIR --round N --requests N --name NAME
#                      [--preload LIB] [--env "VAR=VALUE ..."]
#
# Starts Debian's redis-server on a unix socket in a fresh temporary folder
# (no TCP port, no persistence) with LD_PRELOAD=LIB and the extra variables,
# waits until it answers PING, runs redis-benchmark (not preloaded) with the
# SET GET LPUSH LPOP SADD HSET tests, then stops the server by its pid (TERM,
# then KILL after 30 s) — never by name. Writes into DIR:
#   NAME.rN.csv         redis-benchmark --csv (requests/s per test)
#   NAME.rN.log         the server's log
#   NAME.rN.check       key=value lines: preload (the library the server ran
#                       under, as /proc/PID/maps showed it, or "none"), exit
#                       (the server's exit status on TERM), command (the
#                       benchmark's), server (redis-server --version)
#   NAME.rN.stats.json  for execmem: EXECMEM_STATS written at the server's exit
# Exit status 0 when the server started, ran the benchmark and stopped cleanly
# under the allocator asked for; otherwise 1 with one line on stderr saying
# why (the log's tail included).
set -euo pipefail

readonly TESTS=set,get,lpush,lpop,sadd,hset
readonly PIPELINE=16 CLIENTS=50 KEYSPACE=100000
readonly START_TIMEOUT_S=60 STOP_TIMEOUT_S=30

raw="" round="" requests="" name="" lib="" extra_env=""
while (($#)); do
  [[ $# -ge 2 ]] || { echo "bench/redis/run.sh: $1 needs a value" >&2; exit 2; }
  case "$1" in
    --raw) raw=$2 ;;
    --round) round=$2 ;;
    --requests) requests=$2 ;;
    --name) name=$2 ;;
    --preload) lib=$2 ;;
    --env) extra_env=$2 ;;
    *) echo "bench/redis/run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
[[ -d "$raw" && "$round" =~ ^[1-9][0-9]*$ && "$requests" =~ ^[1-9][0-9]*$ && -n "$name" ]] || {
  echo "usage: bench/redis/run.sh --raw DIR --round N --requests N --name NAME [--preload LIB] [--env VARS]" >&2
  exit 2
}
base="$raw/$name.r$round"

work="$(mktemp -d "${TMPDIR:-/tmp}/execmem-bench-redis.XXXXXX")"
pid=""
# Stops the server (if still running) by its pid and waits for it; sets $status.
stop_server() {
  status=0
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || status=$?
  pid=""
}
cleanup() {
  stop_server
  [[ -f "$work/log" ]] && cp "$work/log" "$base.log"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  local tail=""
  [[ -f "$work/log" ]] && tail="; server log: $(tail -n 5 "$work/log" | tr '\n\t' '  ')"
  echo "redis under $name round $round: $*$tail" >&2
  exit 1
}

sock="$work/r.sock"
server_env=(-u LD_PRELOAD -u EXECMEM_INITIAL -u EXECMEM_MAX -u EXECMEM_OVERHEAD -u EXECMEM_OOM)
[[ -n "$lib" ]] && server_env+=("LD_PRELOAD=$lib")
read -r -a vars <<<"$extra_env"
server_env+=("${vars[@]}")
[[ -n "$lib" && "$(basename "$lib")" == libexecmem_preload.so ]] &&
  server_env+=("EXECMEM_STATS=$base.stats.json")
rm -f "$base.stats.json"

env "${server_env[@]}" redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
  --dir "$work" --save '' --appendonly no --logfile "$work/log" --daemonize no &
pid=$!
started=0
for ((i = 0; i < START_TIMEOUT_S * 10; i++)); do
  kill -0 "$pid" 2>/dev/null || break
  if [[ "$(env -u LD_PRELOAD redis-cli -s "$sock" ping 2>/dev/null)" == PONG ]]; then
    started=1
    break
  fi
  sleep 0.1
done
if ((!started)); then
  kill -0 "$pid" 2>/dev/null && why="did not answer PING within $START_TIMEOUT_S s" ||
    why="redis-server exited before answering PING"
  die "$why"
fi

# The server must really run under the library asked for.
seen=none
if [[ -n "$lib" ]]; then
  real="$(readlink -f "$lib")"
  grep -qF "$real" "/proc/$pid/maps" 2>/dev/null && seen="$real"
  [[ "$seen" != none ]] || die "$real is not mapped in redis-server (pid $pid)"
fi

bench=(redis-benchmark -s SOCKET -t "$TESTS" -n "$requests" -c "$CLIENTS" -P "$PIPELINE"
  -r "$KEYSPACE" -q --csv)
env -u LD_PRELOAD "${bench[@]/SOCKET/$sock}" >"$base.csv" 2>"$work/bench.stderr" ||
  die "redis-benchmark failed: $(tail -c 300 "$work/bench.stderr" | tr '\n' ' ')"

stop_server
printf 'preload=%s\nexit=%s\ncommand=%s\nserver=%s\n' "$seen" "$status" "${bench[*]}" \
  "$(redis-server --version)" >"$base.check"
[[ "$status" -eq 0 ]] || die "redis-server exited with status $status on SIGTERM"
if [[ "${server_env[*]}" == *EXECMEM_STATS=* && ! -s "$base.stats.json" ]]; then
  die "no EXECMEM_STATS report at $base.stats.json: execmem did not serve the server"
fi
exit 0
