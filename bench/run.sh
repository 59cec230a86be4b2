#!/usr/bin/env bash
# bench/run.sh — execmem against glibc, jemalloc, tcmalloc and mimalloc.
#
#   bench/run.sh                 full run (41 minutes without Dask on a loaded 2-core machine)
#   QUICK=1 bench/run.sh         quick run (4-5 minutes)       [make bench QUICK=1]
#
# What runs, in this order:
#   1. micro   build/bin/execmem-bench-micro once per allocator per round
#              (plain malloc/free, the allocator chosen by LD_PRELOAD), and once
#              more under execmem with tight budgets (EXECMEM_INITIAL/MAX);
#   2. api     build/bin/execmem-bench-api once (the C++ API; quotas off / on;
#              executor switching);
#   3. macro   each workload in bench/workloads under each allocator per round,
#              and under execmem-quota (the shim with budgets far above what the
#              workload needs: limits checked, never reached), wall time and peak
#              RSS measured by execmem-measure; a workload id may run a program
#              with other arguments (larson2: larson on 2 threads);
#   4. fast path: execmem-pairs under `valgrind --tool=callgrind` per allocator:
#              instructions per mixed 16-512 B malloc+free pair;
#   5. redis   bench/redis/run.sh: Debian's redis-server on a unix socket under
#              each allocator and execmem-quota per round, redis-benchmark SET /
#              GET / LPUSH / LPOP / SADD / HSET -> redis.md / redis.json
#              (full: 3 rounds of 200 000 requests, quick: 2 of 100 000, smoke:
#              1 of 2 000);
#   6. dask    bench/dask/run.py: Dask's four workloads on a LocalCluster of 2
#              workers under glibc (Dask's defaults), jemalloc and execmem
#              (integrations/dask), interleaved: time, workers' CPU, peak RSS per worker,
#              unmanaged memory, pauses, restarts -> dask.md / dask.json
#              (not in smoke mode; full: 3 rounds at scale 10, quick: 1 at 4);
#   7. engines under one shared pool (issue 18; not in smoke mode):
#              tests/soak/postgres_shared.py --mode long: the whole PostgreSQL
#              server in a 1 GiB pool, eight 300 MB sorts, pgbench, pg_amcheck,
#              then the same without a pool (glibc) -> postgres-shared.md / .json;
#              bench/dask/skewed.py: a partition three times a worker's static
#              share, static split (glibc, execmem) against shared=True
#              -> dask-skewed.md / .json (full: 3 rounds, quick: 1).
# Rounds interleave the allocators (round r starts at the r-th allocator), so
# that drift of the machine during the run falls on all of them alike; the
# report takes medians. Every workload prints a checksum, and the checksums
# must agree across allocators (the same work must give the same answer).
#
# Output: $BENCH_OUT/<date-time>/{results.json,results.md,chart.png,raw/} and
# $BENCH_OUT/latest pointing at it. Exit status 0 only when every run succeeded
# and every checksum agreed; the results are written either way.
#
# Environment (all optional):
#   QUICK=1             quick mode
#   BENCH_SMOKE=1       toy scale, one round, glibc and execmem only (the CTest smoke test)
#   BENCH_ALLOCATORS    comma list from: glibc,jemalloc,tcmalloc,mimalloc,execmem
#   BENCH_ROUNDS        rounds (default: full 5, quick 3, smoke 1)
#   BENCH_SCALE         workload scale (default: full 10, quick 2, smoke 1)
#   BENCH_OUT           results folder (default: bench/results)
#   BUILD_DIR           build tree (default: build); programs are read from $BUILD_DIR/bin
#   BENCH_NO_BUILD=1    do not run `cmake --build` for the bench targets first
#   BENCH_NO_DASK=1     skip the Dask section
#   BENCH_NO_REDIS=1    skip the Redis section
#   BENCH_NO_ENGINES=1  skip the shared-pool engines section (PostgreSQL, Dask skewed)
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$ROOT/build}"
[[ -d "$build_dir" ]] || { echo "bench/run.sh: no build folder $build_dir: run make build first" >&2; exit 2; }
readonly BUILD="$(cd "$build_dir" && pwd)"
readonly BIN="$BUILD/bin"
readonly TOOLS="$ROOT/bench/tools"
# Workload ids: execmem-wl-ID SCALE, except those workload_command maps.
readonly WORKLOADS=(hashagg sort shuffle larson larson2 larson-sized outoforder tree randorder
  randorder-mt ownobjects largebuf largechurn malloclarge reallocchain)
readonly ALL_ALLOCATORS=(glibc jemalloc tcmalloc mimalloc execmem)

die() {
  printf 'bench/run.sh: %s\n' "$*" >&2
  exit 2
}

# The program (without $BIN/) and its arguments for workload id $1 at scale $2.
workload_command() {
  case "$1" in
    larson2) echo execmem-wl-larson "$2" 2 ;;
    randorder-mt) echo execmem-wl-randorder "$2" 2 ;;
    *) echo "execmem-wl-$1" "$2" ;;
  esac
}

# ---- mode ------------------------------------------------------------------
is_on() { [[ "${1:-0}" == 1 || "${1:-0}" == yes || "${1:-0}" == true ]]; }
if is_on "${BENCH_SMOKE:-0}"; then
  mode=smoke rounds=1 scale=1 micro_min_time=0.002 micro_reps=1 cg_n1=2000 cg_n2=12000
  default_allocators=glibc,execmem
elif is_on "${QUICK:-0}"; then
  mode=quick rounds=3 scale=2 micro_min_time=0.03 micro_reps=1 cg_n1=10000 cg_n2=60000
  default_allocators=glibc,jemalloc,tcmalloc,mimalloc,execmem
else
  mode=full rounds=5 scale=10 micro_min_time=0.2 micro_reps=3 cg_n1=20000 cg_n2=220000
  default_allocators=glibc,jemalloc,tcmalloc,mimalloc,execmem
fi
for var in BENCH_ROUNDS BENCH_SCALE; do
  value="${!var:-}"
  if [[ -n "$value" && ! "$value" =~ ^[1-9][0-9]{0,3}$ ]]; then
    die "$var='$value': expected a whole number from 1 to 9999"
  fi
done
rounds="${BENCH_ROUNDS:-$rounds}"
scale="${BENCH_SCALE:-$scale}"
micro_rounds=$micro_reps

# ---- allocators ----------------------------------------------------------------
source "$TOOLS/baselines.sh"
preload_of() {
  case "$1" in
    execmem) echo "$BUILD/lib/libexecmem_preload.so" ;;
    *) baseline_preload "$1" ;;
  esac
}
remedy_of() {
  case "$1" in
    jemalloc) echo "apt-get install libjemalloc2" ;;
    tcmalloc) echo "apt-get install libtcmalloc-minimal4" ;;
    mimalloc) echo "apt-get install libmimalloc2.0" ;;
    execmem) echo "make build" ;;
  esac
}
IFS=, read -r -a allocators <<<"${BENCH_ALLOCATORS:-$default_allocators}"
[[ ${#allocators[@]} -gt 0 ]] || die "BENCH_ALLOCATORS is empty; choose from: ${ALL_ALLOCATORS[*]}"
declare -A preload=()
for a in "${allocators[@]}"; do
  [[ -z "${preload[$a]+set}" ]] || die "allocator '$a' named twice in BENCH_ALLOCATORS"
  lib="$(preload_of "$a")" || die "unknown allocator '$a'; choose from: ${ALL_ALLOCATORS[*]}"
  if [[ -n "$lib" && ! -r "$lib" ]]; then
    die "allocator '$a': $lib is missing ($(remedy_of "$a")), or leave it out of BENCH_ALLOCATORS"
  fi
  preload[$a]="$lib"
done
has_execmem=0
[[ -n "${preload[execmem]+set}" ]] && has_execmem=1
# The Dask section: execmem and whichever of glibc / jemalloc are chosen.
dask_allocators=()
if ((has_execmem)) && [[ "$mode" != smoke ]] && ! is_on "${BENCH_NO_DASK:-0}"; then
  for a in glibc jemalloc execmem; do [[ -n "${preload[$a]+set}" ]] && dask_allocators+=("$a"); done
  dask_allocators+=(execmem-malloc)  # PYTHONMALLOC=malloc beside the arena hook (execmem)
fi
has_dask=$((${#dask_allocators[@]} > 0))
dask_rounds=3 dask_scale=10
[[ "$mode" == quick ]] && dask_rounds=1 dask_scale=4
# The Redis section: every allocator chosen, and execmem-quota with execmem.
redis_variants=()
if ! is_on "${BENCH_NO_REDIS:-0}"; then
  redis_variants=("${allocators[@]}")
  ((has_execmem)) && redis_variants+=(execmem-quota)
fi
has_redis=$((${#redis_variants[@]} > 0))
has_engines=0
if ((has_execmem)) && [[ "$mode" != smoke ]] && ! is_on "${BENCH_NO_ENGINES:-0}"; then
  has_engines=1
fi
engine_rounds=3
[[ "$mode" == quick ]] && engine_rounds=1
case "$mode" in
  smoke) redis_rounds=1 redis_requests=2000 ;;
  quick) redis_rounds=2 redis_requests=100000 ;;
  *) redis_rounds=3 redis_requests=200000 ;;
esac

# ---- tools -----------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is required for the report"
command -v gnuplot >/dev/null || die "gnuplot is required for the chart (apt-get install gnuplot-nox)"
command -v valgrind >/dev/null || die "valgrind is required for the fast-path count (apt-get install valgrind)"

targets=(execmem-bench-micro execmem-measure execmem-pairs)
for w in "${WORKLOADS[@]}"; do
  read -r program _ <<<"$(workload_command "$w" 1)"
  [[ " ${targets[*]} " == *" $program "* ]] || targets+=("$program")
done
((has_execmem)) && targets+=(execmem-bench-api)
build_targets=("${targets[@]}")
is_on "${BENCH_NO_REDIS:-0}" || build_targets+=(execmem_bench_glibc)
if ! is_on "${BENCH_NO_BUILD:-0}" && [[ -f "$BUILD/CMakeCache.txt" ]]; then
  cmake --build "$BUILD" --target "${build_targets[@]}" -j2 >/dev/null ||
    die "building the bench targets failed: cmake --build $BUILD --target ${build_targets[*]}"
fi
for t in "${targets[@]}"; do
  [[ -x "$BIN/$t" ]] || die "$BIN/$t is missing: build first (make build), or set BUILD_DIR"
done
readonly GLIBC_PRELOAD="$BUILD/lib/libexecmem_bench_glibc.so"
if ((has_redis)); then
  for tool in redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null ||
      die "$tool is missing (apt-get install redis-server redis-tools), or set BENCH_NO_REDIS=1"
  done
  [[ -r "$GLIBC_PRELOAD" ]] ||
    die "$GLIBC_PRELOAD is missing: build first (make build), or set BENCH_NO_REDIS=1"
fi

# ---- output ----------------------------------------------------------------
out_root="${BENCH_OUT:-$ROOT/bench/results}"
stamp="$(date +%Y-%m-%d_%H%M%S)"
out="$out_root/$stamp"
[[ ! -e "$out" ]] || die "$out already exists"
raw="$out/raw"
mkdir -p "$raw/micro" "$raw/macro" "$raw/callgrind" || die "cannot create $out"
failures="$raw/failures.txt"
: >"$failures"

# ---- progress ----------------------------------------------------------------
total_steps=$((micro_rounds * (${#allocators[@]} + has_execmem) + has_execmem \
  + rounds * ${#WORKLOADS[@]} * (${#allocators[@]} + has_execmem) + 2 * ${#allocators[@]} \
  + redis_rounds * ${#redis_variants[@]} + has_dask + 3 * has_engines + 1))
step_no=0
start_s=$SECONDS
progress() {
  step_no=$((step_no + 1))
  local line
  line="$(printf '[%d/%d %3ds] %s' "$step_no" "$total_steps" $((SECONDS - start_s)) "$*")"
  if [[ -t 2 ]]; then printf '\r\033[K%s' "$line" >&2; else printf '%s\n' "$line" >&2; fi
}
progress_done() { [[ -t 2 ]] && printf '\n' >&2 || true; }

# Runs "$@" with allocator $1's library preloaded (none for glibc).
# execmem-quota is execmem through the shim with tight budgets that the micro
# benchmarks cross (initial) but never reach (max): the shim's quota cost.
readonly SHIM_QUOTA=(EXECMEM_INITIAL=16m EXECMEM_MAX=512m)
# execmem-quota in the macro and Redis sections: budgets that the larger
# workloads cross (initial) and none comes near (max; largebuf holds up to
# 480 MiB live): the limits are checked on every refill, never reached.
readonly MACRO_QUOTA=(EXECMEM_INITIAL=64m EXECMEM_MAX=2g)
# The EXECMEM_* budgets a plain execmem run must not inherit from the caller.
readonly EXECMEM_LIMITS=(-u EXECMEM_INITIAL -u EXECMEM_MAX -u EXECMEM_OVERHEAD -u EXECMEM_OOM)
with_allocator() {
  local name="$1"
  shift
  case "$name" in
    glibc) env -u LD_PRELOAD "$@" ;;
    execmem-quota)  # QUOTA_STATS: where the shim writes its stats at exit (peak used)
      env LD_PRELOAD="${preload[execmem]}" "${SHIM_QUOTA[@]}" \
        ${QUOTA_STATS:+EXECMEM_STATS="$QUOTA_STATS"} "$@" ;;
    *) LD_PRELOAD="${preload[$name]}" "$@" ;;
  esac
}
# The names in $2... in the order of round $1: rotated, so that each takes each position in turn.
rotated() {
  local r=$1 i
  shift
  local names=("$@")
  for ((i = 0; i < ${#names[@]}; i++)); do echo "${names[(i + r) % ${#names[@]}]}"; done
}
fail() { printf '%s\t%s\n' "$1" "$2" >>"$failures"; }

echo "bench: $mode mode, allocators: ${allocators[*]}, rounds: $rounds, scale: $scale -> $out" >&2

# ---- 1. micro ------------------------------------------------------------------
micro_variants=("${allocators[@]}")
((has_execmem)) && micro_variants+=(execmem-quota)
for ((r = 0; r < micro_rounds; r++)); do
  for a in $(rotated "$r" "${micro_variants[@]}"); do
    progress "micro under $a round $((r + 1))"
    f="$raw/micro/$a.r$((r + 1))"
    QUOTA_STATS="$f.stats.json"
    with_allocator "$a" "$BIN/execmem-bench-micro" --benchmark_min_time="$micro_min_time" \
      --benchmark_format=json --benchmark_out="$f.json" --benchmark_out_format=json \
      >/dev/null 2>"$f.stderr" ||
      fail "micro/$a/round$((r + 1))" "exit status $?: $(tail -c 300 "$f.stderr" | tr '\n\t' '  ')"
  done
done

# ---- 2. api ------------------------------------------------------------------------
if ((has_execmem)); then
  progress "C++ API, quotas off and on, executor switching"
  api_reps=()
  [[ "$mode" == full ]] && api_reps=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
  env -u LD_PRELOAD "$BIN/execmem-bench-api" --benchmark_min_time="$micro_min_time" \
    "${api_reps[@]}" --benchmark_format=json --benchmark_out="$raw/api.json" \
    --benchmark_out_format=json >/dev/null 2>"$raw/api.stderr" ||
    fail "api" "exit status $?: $(tail -c 300 "$raw/api.stderr" | tr '\n\t' '  ')"
fi

# ---- 3. macro ------------------------------------------------------------------------
timeout_s=120
[[ "$mode" == full ]] && timeout_s=300
macro_variants=("${allocators[@]}")
((has_execmem)) && macro_variants+=(execmem-quota)
for ((r = 0; r < rounds; r++)); do
  for w in "${WORKLOADS[@]}"; do
    read -r program program_args <<<"$(workload_command "$w" "$scale")"
    for a in $(rotated "$r" "${macro_variants[@]}"); do
      progress "$w under $a round $((r + 1))"
      f="$raw/macro/$w.$a.r$((r + 1))"
      args=(--timeout "$timeout_s" --out "$f.json")
      budgets=("${EXECMEM_LIMITS[@]}")
      case "$a" in
        execmem-quota)
          args+=(--preload "${preload[execmem]}")
          budgets=("${MACRO_QUOTA[@]}" "EXECMEM_STATS=$f.stats.json") ;;
        *) [[ -n "${preload[$a]}" ]] && args+=(--preload "${preload[$a]}") ;;
      esac
      # shellcheck disable=SC2086  # program_args: the workload's own words
      env -u LD_PRELOAD "${budgets[@]}" "$BIN/execmem-measure" "${args[@]}" -- "$BIN/$program" \
        $program_args >"$f.stdout" 2>"$f.stderr" ||
        fail "macro/$w/$a/round$((r + 1))" "exit status $?: $(tail -c 300 "$f.stderr" | tr '\n\t' '  ')"
    done
  done
done

# ---- 4. fast path ------------------------------------------------------------------------
for a in "${allocators[@]}"; do
  for n in "$cg_n1" "$cg_n2"; do
    progress "callgrind: $n malloc+free pairs under $a"
    f="$raw/callgrind/$a.$n"
    with_allocator "$a" valgrind --tool=callgrind --toggle-collect=run_pairs \
      --callgrind-out-file="$f.out" "$BIN/execmem-pairs" "$n" >/dev/null 2>"$f.stderr" ||
      fail "callgrind/$a/$n" "exit status $?: $(tail -c 300 "$f.stderr" | tr '\n\t' '  ')"
  done
done

# ---- 5. redis ------------------------------------------------------------------------------
if ((has_redis)); then
  mkdir -p "$raw/redis"
  for ((r = 0; r < redis_rounds; r++)); do
    for a in $(rotated "$r" "${redis_variants[@]}"); do
      progress "redis-server under $a round $((r + 1))"
      redis_args=(--raw "$raw/redis" --round $((r + 1)) --requests "$redis_requests" --name "$a")
      case "$a" in
        glibc) redis_args+=(--preload "$GLIBC_PRELOAD") ;;  # the server links jemalloc
        execmem-quota) redis_args+=(--preload "${preload[execmem]}" --env "${MACRO_QUOTA[*]}") ;;
        *) redis_args+=(--preload "${preload[$a]}") ;;
      esac
      "$ROOT/bench/redis/run.sh" "${redis_args[@]}" 2>>"$raw/redis/run.stderr" ||
        fail "redis/$a/round$((r + 1))" "$(tail -n 1 "$raw/redis/run.stderr" | tr '\t' ' ')"
    done
  done
fi

# ---- 6. dask -------------------------------------------------------------------------------
if ((has_dask)); then
  progress "dask: 4 workloads x ${dask_allocators[*]}, $dask_rounds round(s) at scale $dask_scale"
  dask_python=""
  for py in /usr/bin/python3 python3; do
    if "$py" -c "import distributed, pandas" 2>/dev/null; then dask_python="$py" && break; fi
  done
  if [[ -z "$dask_python" ]]; then
    fail "dask" "no python3 imports distributed (make deps installs python3-distributed)"
  else
    EXECMEM_PRELOAD="${preload[execmem]}" "$dask_python" "$ROOT/bench/dask/run.py" --out "$out" \
      --rounds "$dask_rounds" --scale "$dask_scale" \
      --allocators "$(IFS=,; echo "${dask_allocators[*]}")" >"$raw/dask.stdout" 2>"$raw/dask.stderr" ||
      fail "dask" "exit status $?: $(tail -c 300 "$raw/dask.stderr" | tr '\n\t' '  ')"
  fi
fi

# ---- 7. engines under one shared pool ----------------------------------------------------------
if ((has_engines)); then
  mkdir -p "$raw/engines"
  engine_python=/usr/bin/python3
  [[ -x "$engine_python" ]] || engine_python=python3
  for variant in shared glibc; do
    progress "postgres: the whole server in one 1 GiB pool, eight 300 MB sorts ($variant)"
    "$engine_python" "$ROOT/tests/soak/postgres_shared.py" --preload "${preload[execmem]}" \
      --top "$BIN/execmem-top" --mode long --allocator "$variant" \
      --json "$raw/engines/postgres-$variant.json" >"$raw/engines/postgres-$variant.stdout" \
      2>"$raw/engines/postgres-$variant.stderr" ||
      fail "postgres-shared/$variant" "exit status $?: $(tail -c 300 "$raw/engines/postgres-$variant.stderr" | tr '\n\t' '  ')"
  done
  "$engine_python" - "$raw/engines" "$out/postgres-shared.md" <<'PY' || fail "postgres-shared/report" "no figures"
import json, os, sys
rows = []
for v in ("shared", "glibc"):
    path = os.path.join(sys.argv[1], f"postgres-{v}.json")
    if os.path.exists(path):
        rows.append(json.load(open(path)))
mib = lambda b: f"{b / 2**20:.0f}" if isinstance(b, (int, float)) else "-"
lines = ["PostgreSQL 15, eight sessions sorting with work_mem 300MB (each sort about "
         "240 MB, in memory), measured while every sort holds its rows or has failed.", "",
         "| server | sessions ok / out of memory / other | private memory MiB (processes) "
         "| bound MiB | pool granted MiB of | pgbench tps | checks failed |",
         "|---|---|---:|---:|---:|---:|---|"]
for r in rows:
    pool = (f"{mib(r['pool_granted'] + r['pool_reserved'])} of {mib(r['pool_capacity'])}"
            if "pool_capacity" in r else "-")
    lines.append(f"| {r['allocator']} | {r['succeeded']} / {r['out_of_memory']} / "
                 f"{r['other_errors']} | {mib(r['private_bytes'])} ({r['processes']}) | "
                 f"{mib(r['bound_bytes']) if r['allocator'] == 'shared' else '-'} | {pool} | "
                 f"{r.get('pgbench_tps') or '-'} | {len(r['failures'])} |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
  progress "dask: a skewed partition, static split against one pool ($engine_rounds round(s))"
  EXECMEM_PRELOAD="${preload[execmem]}" "$engine_python" "$ROOT/bench/dask/skewed.py" \
    --out "$out" --rounds "$engine_rounds" >"$raw/engines/dask-skewed.stdout" \
    2>"$raw/engines/dask-skewed.stderr" ||
    fail "dask-skewed" "exit status $?: $(tail -c 300 "$raw/engines/dask-skewed.stderr" | tr '\n\t' '  ')"
fi

# ---- report ------------------------------------------------------------------------------
progress "report and chart"
progress_done
alloc_spec=""
for a in "${allocators[@]}"; do alloc_spec+="$a=${preload[$a]},"; done
status=0
python3 "$TOOLS/report.py" --raw "$raw" --out "$out" --mode "$mode" --rounds "$rounds" \
  --scale "$scale" --micro-rounds "$micro_rounds" --allocators "${alloc_spec%,}" \
  --shim-quota "${SHIM_QUOTA[*]}" --macro-quota "${MACRO_QUOTA[*]}" \
  --redis-rounds "$((has_redis ? redis_rounds : 0))" --redis-requests "$redis_requests" \
  --redis-allocators "$(IFS=,; echo "${redis_variants[*]}")" --workloads "$(IFS=,; echo "${WORKLOADS[*]}")" --pairs "$cg_n1,$cg_n2" \
  --chart-script "$TOOLS/chart.gp" || status=$?
ln -sfn "$stamp" "$out_root/latest"
echo "bench: results in $out (also $out_root/latest), $((SECONDS - start_s)) s" >&2
exit "$status"
