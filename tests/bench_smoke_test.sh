#!/usr/bin/env bash
# Smoke test of the bench harness: bench/run.sh at toy scale (BENCH_SMOKE=1:
# one round, glibc and execmem) into a temporary folder, then checks that
# results.json, results.md and chart.png exist and hold every workload, every
# allocator, the micro, API and callgrind sections, with plausible numbers.
# Also checks that the harness fails when it should: an unknown allocator is
# refused, and a tampered checksum makes the report fail.
#
#   tests/bench_smoke_test.sh [BUILD_DIR]      (default: build)
# BENCH_ALLOCATORS may narrow or widen the allocators (default glibc,execmem).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)" || { echo "FAIL: no build folder ${1:-$ROOT/build}"; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# 1. A bad allocator name is refused with a clear message, before any work.
if BENCH_SMOKE=1 BENCH_ALLOCATORS=glibc,nosuchmalloc BENCH_OUT="$tmp/bad" BUILD_DIR="$BUILD" \
  BENCH_NO_BUILD=1 "$ROOT/bench/run.sh" >"$tmp/bad.log" 2>&1; then
  fail "bench/run.sh accepted an unknown allocator"
fi
grep -q "unknown allocator 'nosuchmalloc'" "$tmp/bad.log" ||
  fail "no clear message for an unknown allocator: $(cat "$tmp/bad.log")"

# 2. The toy run itself.
BENCH_SMOKE=1 BENCH_OUT="$tmp/out" BUILD_DIR="$BUILD" BENCH_NO_BUILD=1 \
  "$ROOT/bench/run.sh" >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log" >&2; fail "bench/run.sh failed"; }
grep -q '^\[1/[0-9]*' "$tmp/run.log" || fail "no progress lines in the output"
latest="$tmp/out/latest"
[[ -d "$latest" ]] || fail "no results/latest folder"
for f in results.json results.md chart.png; do
  [[ -s "$latest/$f" ]] || fail "$f missing or empty"
done
[[ "$(head -c 8 "$latest/chart.png" | od -An -tx1 | tr -d ' \n')" == 89504e470d0a1a0a ]] ||
  fail "chart.png is not a PNG"

python3 - "$latest" <<'EOF' || fail "results do not hold what they should"
import json, sys
d = sys.argv[1]
doc = json.load(open(f"{d}/results.json"))
md = open(f"{d}/results.md").read()
allocs = [a["name"] for a in doc["allocators"]]
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)
check(doc["problems"] == [], f"problems reported: {doc['problems']}")
workloads = ["hashagg", "sort", "shuffle", "larson", "largebuf", "reallocchain"]
check(sorted(doc["macro"]) == sorted(workloads), f"workloads: {sorted(doc['macro'])}")
for w in workloads:
    e = doc["macro"].get(w, {})
    check(e.get("checksum_consistent") is True, f"{w}: checksums disagree or are missing")
    for a in allocs:
        v = e.get("by_allocator", {}).get(a, {})
        check((v.get("time_s") or 0) > 0, f"{w}/{a}: no time")
        check((v.get("peak_rss_kb") or 0) > 1000, f"{w}/{a}: implausible peak RSS {v.get('peak_rss_kb')}")
    check(f"| {w} |" in md, f"{w} missing from results.md")
    if "execmem" in allocs and len(allocs) > 1:
        check(len(e.get("time_ratios", {})) == len(allocs) - 1, f"{w}: ratios missing")
for name in ["BM_MallocFree/16", "BM_MallocFree/1048576", "BM_MixedSmallLifo", "BM_Batch/64",
             "BM_CrossThread/64/real_time", "BM_ReallocGrowth/step:0/limit:1048576",
             "BM_AlignedAlloc/4096"]:
    for a in allocs:
        v = doc["micro"].get(name, {}).get("ns_per_pair", {}).get(a)
        check(v is not None and v > 0, f"micro {name} under {a}: {v}")
for a in allocs:
    v = (doc["callgrind"]["by_allocator"].get(a) or {}).get("instructions_per_pair")
    check(v is not None and 1 <= v < 100000, f"callgrind under {a}: {v}")
check("instructions/pair" in md, "callgrind table missing from results.md")
if "execmem" in allocs:
    api = doc.get("api") or {}
    check("BM_ApiAllocate/size:64" in api.get("quota", {}), "API quota table missing")
    check(all("on_over_off" in e for e in api.get("quota", {}).values()), "quota on/off pair missing")
    check(api.get("switching"), "executor switching results missing")
    sq = (doc.get("shim_quota") or {}).get("benchmarks", {})
    check(sq and all(e.get("on_over_off") for e in sq.values()), "shim quota off/on results missing")
for e in errors:
    print("  " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF

# 3. The report must notice when allocators disagree on a workload's answer.
raw="$latest/raw"
victim="$(ls "$raw"/macro/larson.*.r1.stdout | head -n 1)"
echo "checksum=0000000000000bad" >"$victim"
mkdir -p "$tmp/tampered"
allocs=""
for a in $(python3 -c "import json;print(' '.join(a['name']+'='+(a['preload'] or '') for a in json.load(open('$latest/results.json'))['allocators']))"); do
  allocs+="$a,"
done
if python3 "$ROOT/bench/tools/report.py" --raw "$raw" --out "$tmp/tampered" --mode smoke \
  --rounds 1 --micro-rounds 1 --scale 1 --allocators "${allocs%,}" \
  --workloads hashagg,sort,shuffle,larson,largebuf,reallocchain --pairs "$(python3 -c "import json;print(','.join(map(str,json.load(open('$latest/results.json'))['callgrind']['pairs'])))")" \
  --chart-script "$ROOT/bench/tools/chart.gp" 2>"$tmp/tampered.log"; then
  fail "the report accepted disagreeing checksums"
fi
grep -q "larson checksum" "$tmp/tampered.log" || fail "no checksum message: $(cat "$tmp/tampered.log")"

echo "bench smoke test passed ($(python3 -c "import json;print(', '.join(a['name'] for a in json.load(open('$latest/results.json'))['allocators']))"))"
