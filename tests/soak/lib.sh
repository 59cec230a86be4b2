# Shared helpers of the soak tests (sourced, not run): real servers started
# by the test on unix sockets in a temporary directory, each stopped by its
# pid. Nothing here uses systemd, TCP ports or a server already running.
#
# Builds on tests/shim/lib.sh (expect / fail / finish / require_preload,
# EXECMEM_* cleared). SOAK_MODE is "short" (make test) or "long" (make soak).

source "$(dirname "${BASH_SOURCE[0]}")/../shim/lib.sh"

SOAK_PIDS=()

# soak_setup PRELOAD MODE: checks the preload, makes $WORK and arranges that
# every server started with soak_started is stopped, and $WORK removed, at
# exit, whatever ends the script.
soak_setup() {
  require_preload "$1"
  SOAK_MODE=${2:-short}
  case "$SOAK_MODE" in
    short | long) ;;
    *) echo "FAIL: mode '$SOAK_MODE' is not short or long" >&2; exit 2 ;;
  esac
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/execmem-soak.XXXXXX")
  chmod 755 "$WORK"
  trap soak_cleanup EXIT
  trap 'exit 130' INT TERM
}

soak_cleanup() {
  local pid
  for pid in "${SOAK_PIDS[@]}"; do soak_stop "$pid" KILL; done
  [ -n "${SOAK_KEEP:-}" ] && echo "soak: kept $WORK" >&2 || rm -rf "$WORK"
}

# soak_started PID: remembers a server to stop at exit.
soak_started() { SOAK_PIDS+=("$1"); }

# soak_stop PID [SIGNAL]: stops one server (TERM unless told) and waits for
# it, up to 60 s, then kills it. Returns its exit status (if our child).
soak_stop() {
  local pid=$1 sig=${2:-TERM} i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return; }
  kill "-$sig" "$pid" 2>/dev/null
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds
# (true) or SECONDS pass (false). The bound is generous: a start-up that
# takes longer is a failure, not a slow machine.
wait_until() {
  local limit=$1 i
  shift
  for ((i = 0; i < limit * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# ratio A B: A / B with two decimals (throughput under the shim / without).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
