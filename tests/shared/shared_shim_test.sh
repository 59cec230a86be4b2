#!/bin/bash
# Processes under the preload sharing one pool (EXECMEM_SHARED): bounded
# together; a killed member's memory usable by the next; a refused segment
# is one line and a pool of the process's own (or exit 1 when required).
#   shared_shim_test.sh PRELOAD SHARED_HOG EXECMEM_TOP
set -u
preload=$1
hog=$2
top=$3
fail=0
pool="test-shim-$$"
file="/dev/shm/execmem.$pool"
tmp=$(mktemp -d)
cleanup() {
  for pid in $(jobs -p); do kill -9 "$pid" 2>/dev/null; done
  rm -f "$file"
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/testing.sh"
mib=$((1 << 20))
run() {  # run ARGS...: the hog under the preload, in the pool, 100 MiB capacity
  env LD_PRELOAD="$preload" EXECMEM_SHARED="$pool" EXECMEM_SHARED_CAPACITY=100m \
    EXECMEM_MAX=1g "$hog" "$@"
}

# A holds 60 MiB; B asks for 60 and is refused before the pool's 100 MiB
# are passed together.
mkfifo "$tmp/a.in"
env LD_PRELOAD="$preload" EXECMEM_SHARED="$pool" EXECMEM_SHARED_CAPACITY=100m EXECMEM_MAX=1g \
  "$hog" 60 <"$tmp/a.in" >"$tmp/a.out" 2>"$tmp/a.err" &
a_pid=$!
exec {a_in}>"$tmp/a.in"
check "A holds 60 MiB" wait_for "$tmp/a.out" "^held 60$"
# Into files, not pipes: `$(... | head -1)` returns at the first line,
# while the process may still hold its memory.
run 60 </dev/null >"$tmp/b.out" 2>"$tmp/b.err"
b=$(head -1 "$tmp/b.out")
b_held=$(echo "$b" | awk '{print $2}')
check "B is refused ($b)" grep -q refused <<<"$b"
check "A + B within the capacity ($b_held + 60 MiB)" [ $((b_held + 60)) -le 100 ]
check "B got what A left ($b_held MiB)" [ "$b_held" -ge 20 ]
"$top" --json "$pool" >"$tmp/top.json"
check "execmem-top sees A with its grant" python3 - "$tmp/top.json" "$a_pid" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
m = [m for m in doc["members"] if m["pid"] == int(sys.argv[2])]
assert len(m) == 1, doc
assert m[0]["granted"] + m[0]["reserved"] >= 60 << 20, m
assert m[0]["footprint"] >= 50 << 20, m  # the pool's committed bytes, published at grants
assert m[0]["resident"] >= 60 << 20, m
assert doc["granted"] + doc["reserved"] <= doc["capacity"], doc
PY
# A killed with SIGKILL: everything it held is the next member's at once.
kill -9 "$a_pid"
wait "$a_pid" 2>/dev/null
exec {a_in}>&-
run 90 </dev/null >"$tmp/c.out" 2>"$tmp/c.err"
c=$(head -1 "$tmp/c.out")
check "after A is killed, C gets 90 MiB ($c)" [ "$c" = "held 90" ]

# Refused segments: one line naming the file; a pool of its own, or exit 1.
rm -f "$file"
head -c 40000 /dev/urandom >"$file"
chmod 600 "$file"
run 10 </dev/null >"$tmp/d.out" 2>"$tmp/d.err"
out=$(head -1 "$tmp/d.out")
check "a corrupt pool: the process runs on its own ($out)" [ "$out" = "held 10" ]
check "a corrupt pool: one line naming it" bash -c \
  "[ \$(wc -l <'$tmp/d.err') -eq 1 ] && grep -qF '$file: ' '$tmp/d.err' && grep -q 'running with a pool of its own' '$tmp/d.err'"
EXECMEM_SHARED_REQUIRED=1 run 10 </dev/null >/dev/null 2>"$tmp/e.err"
rc=$?
check "EXECMEM_SHARED_REQUIRED=1: exit 1 (got $rc)" [ $rc -eq 1 ]
check "EXECMEM_SHARED_REQUIRED=1: one line" bash -c "[ \$(wc -l <'$tmp/e.err') -eq 1 ]"
env LD_PRELOAD="$preload" EXECMEM_SHARED="a/b" "$hog" 1 </dev/null >/dev/null 2>"$tmp/f.err"
rc=$?
check "a bad pool name stops the program (exit 2, got $rc)" [ $rc -eq 2 ]
check "a bad pool name: one line naming the variable" grep -q "EXECMEM_SHARED" "$tmp/f.err"
exit $fail
