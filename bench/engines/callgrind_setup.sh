# Sourced by pg_callgrind.sh and redis_callgrind.sh (not run): their common
# set-up for a server under the preload and callgrind, private or in a shared
# pool. With $1 = PRELOAD, $2 = private|shared and TAG set by the caller,
# defines:
#   pre    the preload's absolute path
#   v      private|shared
#   d      a temporary directory (execmem-TAG.XXXXXX), removed at exit
#   pool   the shared pool's name (TAG-PID), its segment removed at exit
#   pid    the server's pid, killed at exit unless the caller waited for it
#          and emptied it
#   extra  the environment of a shared member (empty when private)
pre=$(readlink -f "$1")
v=$2
d=$(mktemp -d "${TMPDIR:-/tmp}/execmem-$TAG.XXXXXX")
pool="$TAG-$$"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -f "/dev/shm/execmem.$pool"
  rm -rf "$d"
}
trap cleanup EXIT
extra=()
[ "$v" = shared ] && extra=("EXECMEM_SHARED=$pool" EXECMEM_SHARED_CAPACITY=4g)
