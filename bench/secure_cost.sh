#!/usr/bin/env bash
# bench/secure_cost.sh — what secure mode (EXECMEM_SECURE=1) costs on the macro
# workloads, against execmem's default mode in the same run.
#
#   bench/secure_cost.sh [ROUNDS] [SCALE]      (default 5 rounds, scale 2: make bench QUICK=1's)
#
# Each round runs every workload (bench/workloads) once in each mode, the
# order of the two modes alternating from round to round, so that drift of a
# loaded machine falls on both alike; execmem-measure gives wall time, CPU
# time (user + sys) and peak RSS. Prints a Markdown table of medians and the
# secure/default ratios. Every run must exit 0 and both modes must print the
# same checksum. Needs make build.
set -euo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BIN="${BUILD_DIR:-$ROOT/build}/bin"
readonly LIB="${BUILD_DIR:-$ROOT/build}/lib/libexecmem_preload.so"
readonly WORKLOADS=(hashagg sort shuffle larson largebuf reallocchain)
rounds=${1:-5}
scale=${2:-2}
for t in execmem-measure "${WORKLOADS[@]/#/execmem-wl-}"; do
  [[ -x "$BIN/$t" ]] || { echo "$0: $BIN/$t is missing: make build first" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((r = 0; r < rounds; r++)); do
  modes=(0 1)
  ((r % 2)) && modes=(1 0)
  for w in "${WORKLOADS[@]}"; do
    for m in "${modes[@]}"; do
      f="$tmp/$w.$m.$r"
      EXECMEM_SECURE=$m "$BIN/execmem-measure" --preload "$LIB" --timeout 600 --out "$f.json" \
        -- "$BIN/execmem-wl-$w" "$scale" >"$f.out" 2>"$f.err" ||
        { echo "$0: $w with EXECMEM_SECURE=$m failed: $(tail -c 300 "$f.err")" >&2; exit 1; }
    done
  done
done
python3 - "$tmp" "$rounds" "$scale" "${WORKLOADS[@]}" <<'PY'
import json, re, statistics, sys
tmp, rounds, scale, workloads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def load(w, m, r):
    rec = json.load(open(f"{tmp}/{w}.{m}.{r}.json"))
    out = open(f"{tmp}/{w}.{m}.{r}.out").read()
    sums = re.findall(r"checksum=(\S+)", out)
    return rec, sums
print(f"secure mode cost: {rounds} interleaved rounds, scale {scale}, medians")
print()
print("| workload | wall s default | wall s secure | secure/default | CPU s default | CPU s secure | secure/default | peak RSS MiB default | secure | secure/default |")
print("|---|---|---|---|---|---|---|---|---|---|")
bad = False
for w in workloads:
    v = {}
    for m in ("0", "1"):
        recs = [load(w, m, r) for r in range(rounds)]
        v[m] = dict(wall=statistics.median(x[0]["wall_s"] for x in recs),
                    cpu=statistics.median(x[0]["user_s"] + x[0]["sys_s"] for x in recs),
                    rss=statistics.median(x[0]["maxrss_kb"] for x in recs) / 1024,
                    sums={tuple(x[1]) for x in recs})
    if v["0"]["sums"] != v["1"]["sums"] or len(v["0"]["sums"]) != 1:
        print(f"checksums differ for {w}: {v['0']['sums']} vs {v['1']['sums']}", file=sys.stderr)
        bad = True
    a, b = v["0"], v["1"]
    print(f"| {w} | {a['wall']:.2f} | {b['wall']:.2f} | {b['wall']/a['wall']:.2f} | {a['cpu']:.2f} | {b['cpu']:.2f} | "
          f"{b['cpu']/a['cpu']:.2f} | {a['rss']:.0f} | {b['rss']:.0f} | {b['rss']/a['rss']:.2f} |")
sys.exit(1 if bad else 0)
PY
