#!/usr/bin/env bash
# Smoke test of the bench harness: bench/run.sh at toy scale (BENCH_SMOKE=1:
# one round, glibc and execmem) into a temporary folder, then checks that
# results.json, results.md and chart.png exist and hold every workload, every
# allocator (and execmem-quota), the micro, API, callgrind and Redis sections,
# with plausible numbers. Also checks that the harness fails when it should: an
# unknown allocator is refused, and a tampered checksum or a Redis run without
# its allocator makes the report fail.
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
for f in results.json results.md chart.png redis.json redis.md; do
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
variants = allocs + (["execmem-quota"] if "execmem" in allocs else [])
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)
check(doc["problems"] == [], f"problems reported: {doc['problems']}")
check(doc["schema_version"] == 2 and doc["macro_variants"] == variants,
      f"schema {doc['schema_version']}, variants {doc.get('macro_variants')}")
workloads = ["hashagg", "sort", "shuffle", "larson", "larson2", "larson-sized", "outoforder",
             "tree", "randorder", "randorder-mt", "ownobjects", "largebuf", "reallocchain",
             "malloclarge", "largechurn"]
check(sorted(doc["macro"]) == sorted(workloads), f"workloads: {sorted(doc['macro'])}")
for w in workloads:
    e = doc["macro"].get(w, {})
    check(e.get("checksum_consistent") is True, f"{w}: checksums disagree or are missing")
    runs = sum(len(v) for v in e.get("checksums", {}).values())
    check(runs == len(variants), f"{w}: {runs} checksums for {len(variants)} variants")
    for a in variants:
        v = e.get("by_allocator", {}).get(a, {})
        check((v.get("time_s") or 0) > 0, f"{w}/{a}: no time")
        check((v.get("peak_rss_kb") or 0) > 1000, f"{w}/{a}: implausible peak RSS {v.get('peak_rss_kb')}")
        if w.startswith("larson"):
            check((v.get("ops_per_s") or 0) > 1000, f"{w}/{a}: no throughput")
    check(f"| {w} |" in md, f"{w} missing from results.md")
    if "execmem" in allocs and len(allocs) > 1:
        check(len(e.get("time_ratios", {})) == len(allocs) - 1, f"{w}: ratios missing")
    if "execmem" in allocs:
        q = e.get("quota", {})
        check(q.get("reports") == 1 and q.get("oom_count") == 0 and q.get("time_on_over_off"),
              f"{w}: quota run not reported: {q}")
        if "glibc" in allocs:
            check(e["versus"]["execmem-quota"]["time_s"]["over_glibc"] > 0, f"{w}: no quota ratio")
if "glibc" in allocs:
    import math
    for key in ("time_s", "cpu_s"):
        g = doc.get("macro_geomean", {}).get(key, {})
        for a in variants:
            want = math.exp(sum(math.log(doc["macro"][w]["by_allocator"][a][key] /
                                         doc["macro"][w]["by_allocator"]["glibc"][key])
                                for w in workloads) / len(workloads))
            check(g.get(a) is not None and abs(g[a] - want) < 1e-9 * want,
                  f"geometric mean of {key} under {a}: {g.get(a)}, want {want}")
        check(g.get("workloads") == len(workloads) and g.get("glibc") == 1.0,
              f"geometric mean of {key}: {g}")
    check(md.count("geometric mean ÷ glibc (") == 2, "geometric mean rows missing from results.md")
check("Larson server: throughput" in md, "larson throughput table missing from results.md")
redis = doc.get("redis") or {}
tests = ["SET", "GET", "LPUSH", "LPOP", "SADD", "HSET"]
check(redis.get("tests") == tests, f"redis tests: {redis.get('tests')}")
for a in variants:
    r = redis.get("by_allocator", {}).get(a, {})
    check(all((r.get("rps", {}).get(t) or 0) > 0 for t in tests), f"redis under {a}: {r.get('rps')}")
    check(len(r.get("preload_seen", [])) == 1, f"redis under {a}: allocator not seen in its maps")
    if a.startswith("execmem"):
        check(min(r.get("execmem_allocations") or [0]) > 1000, f"redis under {a}: execmem idle")
check("## Redis: requests per second" in md, "Redis table missing from results.md")
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

# 3. The report must notice when allocators disagree on a workload's answer,
# and when a Redis server ran without the allocator it was meant to run under.
raw="$latest/raw"
victim="$(ls "$raw"/macro/larson.*.r1.stdout | head -n 1)"
echo "checksum=0000000000000bad" >"$victim"
redis_victim="$(ls "$raw"/redis/*.r1.check | head -n 1)"
sed -i 's/^preload=.*/preload=none/' "$redis_victim"
mkdir -p "$tmp/tampered"
allocs=""
for a in $(python3 -c "import json;print(' '.join(a['name']+'='+(a['preload'] or '') for a in json.load(open('$latest/results.json'))['allocators']))"); do
  allocs+="$a,"
done
if python3 "$ROOT/bench/tools/report.py" --raw "$raw" --out "$tmp/tampered" --mode smoke \
  --rounds 1 --micro-rounds 1 --scale 1 --allocators "${allocs%,}" \
  --workloads "$(python3 -c "import json;print(','.join(json.load(open('$latest/results.json'))['macro']))")" \
  --redis-rounds 1 --redis-requests 2000 --redis-allocators "$(python3 -c "import json;print(','.join(json.load(open('$latest/results.json'))['redis']['variants']))")" \
  --pairs "$(python3 -c "import json;print(','.join(map(str,json.load(open('$latest/results.json'))['callgrind']['pairs'])))")" \
  --chart-script "$ROOT/bench/tools/chart.gp" 2>"$tmp/tampered.log"; then
  fail "the report accepted disagreeing checksums"
fi
grep -q "larson checksum" "$tmp/tampered.log" || fail "no checksum message: $(cat "$tmp/tampered.log")"
grep -q "redis under $(basename "$redis_victim" .r1.check) round 1: the server ran without a preload" \
  "$tmp/tampered.log" ||
  fail "no message for a Redis run without its allocator: $(cat "$tmp/tampered.log")"

echo "bench smoke test passed ($(python3 -c "import json;print(', '.join(a['name'] for a in json.load(open('$latest/results.json'))['allocators']))"))"
