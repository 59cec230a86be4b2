#!/usr/bin/env bash
# Smoke test of execmem-demo with small, quick settings (about a second):
#  - a roomy and a starved executor both finish with verified results;
#  - the final table and the pool line are printed, and the JSON stats written;
#  - the starved executor spilled (execmem counted spill hook calls, and the
#    demo wrote runs to disk), the roomy one did not;
#  - spill files do not outlive the run;
#  - bad settings fail with a clear message and exit status 2, and a budget
#    too small to finish fails with status 1 and names the executor.
#
# Usage: demo_smoke_test.sh [path/to/execmem-demo]
#   (default: $EXECMEM_DEMO, else build/bin/execmem-demo next to this script's repo)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
demo=${1:-${EXECMEM_DEMO:-$here/../build/bin/execmem-demo}}
if [[ ! -x $demo ]]; then
  echo "FAIL: $demo is not an executable program (build it first: make build)"
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/execmem-demo-smoke-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/spill"
out=$work/out.txt

fail() {
  echo "FAIL: $*"
  echo "---- output of the last run:"
  cat "$out"
  exit 1
}

# Column of the final table, by header name, for one executor's row.
column() {  # executor header
  awk -v name="$1" -v header="$2" '
    $1 == "executor" { ncol = NF; for (i = 1; i <= NF; i++) col[$i] = i; next }
    (header in col) && $1 == name && NF == ncol { print $col[header]; exit }' "$out"
}

# ---- a run that must succeed ------------------------------------------------
rc=0
# starved's max is half of what its tasks hold at their peak without spilling
# (about 11.5 MiB), so that it must spill however the two tasks interleave.
timeout 120 "$demo" --executors=roomy:8m:256m::2,starved:4m:6m::2 --rows=400000 \
  --progress_interval=0.1 --spill_dir="$work/spill" --json="$work/stats.json" \
  --timeline="$work/timeline.jsonl" --timeline_ms=20 >"$out" 2>&1 || rc=$?
[[ $rc -eq 0 ]] || fail "execmem-demo exited with status $rc"

grep -qE '^executor +used +peak +footprint +initial +max +overhead +spills +spilled +OOMs$' "$out" ||
  fail "no final table header"
grep -qE '^pool: capacity ' "$out" || fail "no pool line"
grep -qE '^\[ *[0-9.]+s\] roomy ' "$out" || fail "no progress line"
for name in roomy starved; do
  grep -qE "^results: OK +$name " "$out" || fail "results of '$name' not reported as verified OK"
  [[ -n $(column "$name" used) ]] || fail "no table row for '$name'"
done
grep -q 'FAILED' "$out" && fail "a result is reported FAILED"

starved_spills=$(column starved spills)
[[ $starved_spills =~ ^[0-9]+$ ]] || fail "cannot read the starved executor's spills ('$starved_spills')"
((starved_spills > 0)) || fail "the starved executor's spill hook was never called"
roomy_spills=$(column roomy spills)
[[ $roomy_spills == 0 ]] || fail "the roomy executor spilled ($roomy_spills spill calls)"
grep -qE '^results: OK +starved .* [1-9][0-9]* runs \([^)]*\) spilled to disk' "$out" ||
  fail "the starved executor wrote no runs to disk"
grep -qE '^results: OK +roomy .* 0 runs \(0B\) spilled to disk' "$out" ||
  fail "the roomy executor wrote runs to disk"

[[ -s $work/stats.json ]] || fail "--json wrote nothing"
if command -v python3 >/dev/null; then
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$work/stats.json" ||
    fail "--json did not write valid JSON"
fi
[[ -z $(ls -A "$work/spill") ]] || fail "spill files left behind: $(ls -A "$work/spill")"

# --timeline: a header, samples of both executors, the final one last.
if command -v python3 >/dev/null; then
  python3 - "$work/timeline.jsonl" <<'EOF' || fail "--timeline did not write a timeline of both executors"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
names = {e["name"] for l in lines[1:] for e in l["executors"]}
sys.exit(0 if lines[0]["program"] == "execmem-demo" and {"roomy", "starved"} <= names
         and lines[-1]["final"] and len(lines) >= 3 else 1)
EOF
fi

# ---- bad settings: status 2 and a message naming the problem ---------------
expect_usage_error() {  # pattern args...
  local pattern=$1
  shift
  rc=0
  timeout 30 "$demo" --quiet "$@" >"$out" 2>&1 || rc=$?
  [[ $rc -eq 2 ]] || fail "'$*' exited with status $rc, expected 2"
  grep -qE -- "$pattern" "$out" || fail "'$*' did not explain the error (expected /$pattern/)"
}
expect_usage_error "executor 'x'.*initial" --executors=x:12q:1g
expect_usage_error "expected name:initial:max" --executors=x:1m
expect_usage_error "'x' is given twice" --executors=x:1m:8m,x:1m:8m
expect_usage_error "threads '0'" --executors=x:1m:8m::0
expect_usage_error "--rows=0" --rows=0
expect_usage_error "--timeline: .*interval_ms 0" --timeline="$work/t.jsonl" --timeline_ms=0
expect_usage_error "--timeline: .*cannot create /nonexistent-dir/t.jsonl" --timeline=/nonexistent-dir/t.jsonl
printf 'ok:1m:8m\n# comment\nbad line here\n' >"$work/bad.conf"
expect_usage_error "bad.conf:3: " --config="$work/bad.conf"
expect_usage_error "either --executors or --config" --executors=x:1m:8m --config="$work/bad.conf"

# ---- a budget too small to finish: status 1, the executor named ------------
# 4M rows have 125K keys, whose aggregation table (which cannot spill) needs
# 6 MiB: more than the 4 MiB max, whatever the sort spills.
rc=0
timeout 60 "$demo" --quiet --executors=tiny:1m:4m::1 --rows=4000000 --spill_dir="$work/spill" >"$out" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "a 4 MiB executor aggregating 125K keys exited with status $rc, expected 1"
grep -qE "^results: FAILED tiny .*aggregation.*out of memory" "$out" ||
  fail "the failing executor's out-of-memory error is not reported"
[[ $(column tiny OOMs) =~ ^[1-9][0-9]*$ ]] || fail "execmem counted no OOM for the failing executor"

echo "PASS: execmem-demo smoke test"
