#!/bin/bash
# The shared pool in every report (issue 18, "See it"): processes under the
# preload in one pool write EXECMEM_STATS (JSON and text), a timeline and a
# Prometheus file that carry the pool's figures, and execmem-advise judges
# the pool's capacity as a whole from them.
#   shared_reports_test.sh PRELOAD SHARED_HOG ADVISE PROMETHEUS_CHECK
set -u
preload=$1
hog=$2
advise=$3
prom_check=$4
fail=0
pool="test-rep-$$"
file="/dev/shm/execmem.$pool"
tmp=$(mktemp -d)
a_in=""
cleanup() {
  [ -n "$a_in" ] && exec {a_in}>&-
  for pid in $(jobs -p); do kill -9 "$pid" 2>/dev/null; done
  rm -f "$file"
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/testing.sh"
member() {  # member NAME MIB: the hog in the pool (100 MiB), with every report
  local name=$1
  shift
  env LD_PRELOAD="$preload" EXECMEM_SHARED="$pool" EXECMEM_SHARED_CAPACITY=100m \
    EXECMEM_MAX=1g EXECMEM_STATS="$tmp/$name.json" EXECMEM_TIMELINE="$tmp/$name.jsonl" \
    EXECMEM_TIMELINE_MS=20 EXECMEM_PROMETHEUS="$tmp/$name.prom" "$hog" "$@"
}

# A holds 30 MiB and stays; B asks for 90 and is refused (30 + 90 > 100).
mkfifo "$tmp/a.in"
member a 30 <"$tmp/a.in" >"$tmp/a.out" 2>"$tmp/a.err" &
a_pid=$!
exec {a_in}>"$tmp/a.in"
check "A holds 30 MiB" wait_for "$tmp/a.out" "^held 30$"
# The timeline's samples carry A's slot once its grants are in it.
check "A's timeline shows its grants" wait_for "$tmp/a.jsonl" '"member_granted":[1-9]'
# Into a file, not a pipe: `$(... | head -1)` returns at B's first line,
# while B may still run (and has not written its report yet).
member b 90 </dev/null >"$tmp/b.out" 2>"$tmp/b.err"
b=$(head -1 "$tmp/b.out")
check "B is refused ($b)" grep -q "refused" <<<"$b"
# C: the text report, on stderr, while A still holds.
env LD_PRELOAD="$preload" EXECMEM_SHARED="$pool" EXECMEM_MAX=1g EXECMEM_STATS=stderr \
  "$hog" 5 </dev/null >/dev/null 2>"$tmp/c.err"
exec {a_in}>&-
a_in=""
wait "$a_pid"
check "A exits 0" [ $? -eq 0 ]

check "stats JSON: the pool's and B's figures" python3 - "$tmp/b.json" "$pool" "$a_pid" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["version"] >= 4, doc["version"]
p = doc["pool"]
assert p["shared_name"] == sys.argv[2], p
assert p["shared_capacity"] == 100 << 20, p
assert p["shared_members"] >= 2, p                  # A was in the pool when B exited
assert p["shared_refusals"] >= 1, p                 # B's refusal
assert p["shared_peak"] >= 85 << 20, p              # A's 30 and B's 55-odd together
assert p["shared_peak"] <= p["shared_capacity"], p
assert p["shared_reserved"] + p["shared_granted"] <= p["shared_capacity"], p
for key in ("member_reserved", "member_granted", "member_used", "member_asked",
            "member_answered", "shared_reclaimed_members", "shared_reclaimed_bytes"):
    assert isinstance(p[key], int) and p[key] >= 0, (key, p)
PY
check "stats JSON of A: its slot" python3 - "$tmp/a.json" "$pool" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["pool"]
assert p["shared_name"] == sys.argv[2] and p["shared_capacity"] == 100 << 20, p
PY
check "timeline: every sample of A has the pool's figures; some its 30 MiB" \
  python3 - "$tmp/a.jsonl" "$pool" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
samples = [l for l in lines if "t_ms" in l]
assert samples, lines[:2]
assert all(s["pool"].get("shared_name") == sys.argv[2] for s in samples), samples[0]
held = max(s["pool"]["member_reserved"] + s["pool"]["member_granted"] for s in samples)
used = max(s["pool"]["member_used"] for s in samples)
assert held >= 30 << 20, held
assert used >= 30 << 20, used          # published for the report, not only every 4 MiB
assert samples[-1]["final"] is True, samples[-1]
PY
check "text report: the shared pool's lines" grep -q \
  "^shared pool $pool: capacity 100 MiB, reserved .*, [0-9]* member(s)$" "$tmp/c.err"
check "text report: this process's slot" grep -q \
  "^shared pool: this process reserved .*, granted .*, used .*; asked to give back 0 time(s), answered 0$" \
  "$tmp/c.err"
check "text report: the refusals" grep -q "^shared pool: free .*; refused [1-9][0-9]* request(s); " \
  "$tmp/c.err"
check "Prometheus: well-formed, with the shared metrics" python3 "$prom_check" "$tmp/b.prom" \
  --require execmem_shared_capacity_bytes --require execmem_shared_member_granted_bytes \
  --require execmem_pool_held_bytes
check "Prometheus: the pool label on the pool's series" grep -q \
  "^execmem_shared_capacity_bytes{pid=\"[0-9]*\",program=\"shared_hog\",pool=\"$pool\"} 104857600$" \
  "$tmp/b.prom"
check "Prometheus: and on the process's series" grep -q \
  "^execmem_pool_held_bytes{pid=\"[0-9]*\",program=\"shared_hog\",pool=\"$pool\"} " "$tmp/b.prom"

# execmem-advise: the pool as a whole (B was refused: under-allocated),
# then each member's executors.
"$advise" "$tmp/a.jsonl" "$tmp/a.json" "$tmp/b.jsonl" "$tmp/b.json" >"$tmp/advice" 2>&1
rc=$?
check "advise: exit 1 (not ok)" [ $rc -eq 1 ]
check "advise: the pool is under-allocated" grep -q "^shared pool $pool: under-allocated$" \
  "$tmp/advice"
check "advise: two member runs" grep -q "figures (2 member run(s)" "$tmp/advice"
check "advise: capacity raised by 20 % or more" grep -q \
  "recommended: EXECMEM_SHARED_CAPACITY=120m" "$tmp/advice"
check "advise: still each executor" grep -q "^executor default (\|^executor default:" \
  "$tmp/advice"
[ $fail -ne 0 ] && { echo "--- advice:"; cat "$tmp/advice"; echo "--- C's report:"; cat "$tmp/c.err"; }

# A corrupt timeline of a member: one line naming the file, exit 2.
sed 's/"shared_capacity":[0-9]*/"shared_capacity":"lots"/' "$tmp/a.jsonl" >"$tmp/bad.jsonl"
"$advise" "$tmp/bad.jsonl" >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
check "advise on a corrupt shared figure: exit 2" [ $rc -eq 2 ]
check "advise on a corrupt shared figure: one line naming the file" bash -c \
  "[ \$(wc -l <'$tmp/bad.err') -eq 1 ] && grep -qF '$tmp/bad.jsonl:2: \"shared_capacity\"' '$tmp/bad.err' && [ ! -s '$tmp/bad.out' ]"
exit $fail
