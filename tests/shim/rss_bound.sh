#!/bin/bash
# Peak RSS stays inside the budget: execmem-wl-largebuf (large buffers of
# 3-30 MiB replaced at random, then realloc chains to 256 MiB, through the
# dedicated mappings above 64 MiB) under EXECMEM_MAX=600m must peak at no more
# than max + 10 % overhead + 64 MiB of resident memory, and give the same
# checksum as under glibc. Only memory is checked, never time: the machine may
# be loaded.
#
# usage: rss_bound.sh PRELOAD_LIB LARGEBUF MEASURE
source "$(dirname "$0")/lib.sh"

[ $# -eq 3 ] || { echo "usage: $0 PRELOAD_LIB LARGEBUF MEASURE" >&2; exit 2; }
require_preload "$1"
largebuf=$2
measure=$3
make_workdir

# Scale 2: 160 replacements and 4 chains, enough for freed blocks to pile up
# (a pool that does not coalesce passes the bound within the first hundred).
scale=2
max=600m
# What the bound allows beyond max: the default overhead reservation (10 %)
# and 64 MiB for the program, the loader and partly used pages.
overhead_percent=10
slack_kib=$((64 * 1024))

# kib SIZE: EXECMEM-style size (digits with an optional k/m/g suffix) in KiB.
kib() {
  local n=${1%[kKmMgG]}
  case "${1#"$n"}" in
    k | K) echo "$n" ;;
    m | M) echo $((n * 1024)) ;;
    g | G) echo $((n * 1024 * 1024)) ;;
    *) echo $((n / 1024)) ;;
  esac
}
max_kib=$(kib "$max")
bound_kib=$((max_kib + max_kib * overhead_percent / 100 + slack_kib))

# field JSON NAME: a number from execmem-measure's one-line record.
field() { sed -n "s/.*\"$2\":\(-\{0,1\}[0-9]*\).*/\1/p" "$1"; }

# run NAME [VAR=VALUE...] [--preload LIB]: the workload under execmem-measure
# with those variables, into $WORK/NAME.{json,out,err}.
run() {
  local name=$1 vars=()
  shift
  while [[ $# -gt 0 && "$1" == *=* ]]; do vars+=("$1"); shift; done
  env "${vars[@]}" "$measure" "$@" --out "$WORK/$name.json" -- "$largebuf" "$scale" \
    >"$WORK/$name.out" 2>"$WORK/$name.err"
  local rc=$?
  expect "largebuf $scale under $name: exit status $rc, record $(cat "$WORK/$name.json" 2>/dev/null), stderr: $(head -c 300 "$WORK/$name.err")" \
    [ $rc -eq 0 ]
}

run glibc
# The shim's stats at exit show that execmem, with this max, ran the program.
run execmem EXECMEM_MAX=$max EXECMEM_STATS="$WORK/stats.json" --preload "$PRELOAD"

glibc_sum=$(grep '^checksum=' "$WORK/glibc.out")
execmem_sum=$(grep '^checksum=' "$WORK/execmem.out")
expect "no checksum from the glibc run: $(head -c 300 "$WORK/glibc.out")" [ -n "$glibc_sum" ]
expect "checksum under execmem '$execmem_sum' differs from glibc's '$glibc_sum'" \
  [ "$execmem_sum" = "$glibc_sum" ]
# The report also says where the excess sits, for whoever must fix it.
if [ -s "$WORK/stats.json" ]; then
  summary=$(/usr/bin/python3 - "$WORK/stats.json" $((max_kib * 1024)) 2>&1 <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
pool = doc["pool"]
exe = next(e for e in doc["executors"] if e["name"] == "default")
if exe["max"] != int(sys.argv[2]):
    sys.exit(f"the default executor's max is {exe['max']}, not {sys.argv[2]}")
mib = lambda v: f"{v / 2**20:.0f} MiB"
print(f"execmem at exit: executor peak used {mib(exe['peak_used'])}, peak footprint "
      f"{mib(exe['peak_footprint'])}; pool held {mib(pool['held'])} (cached "
      f"{mib(pool['cached'])}), mapped {mib(pool['mapped'])} in {pool['arenas']} arenas")
PY
)
  rc=$?
  echo "$summary"
  expect "execmem did not run the program with EXECMEM_MAX=$max: $summary" [ $rc -eq 0 ]
else
  fail "no EXECMEM_STATS report: execmem did not run the program"
fi

peak_kib=$(field "$WORK/execmem.json" maxrss_kb)
glibc_kib=$(field "$WORK/glibc.json" maxrss_kb)
if [ -n "$peak_kib" ]; then
  echo "rss_bound: peak RSS $((peak_kib / 1024)) MiB under execmem with EXECMEM_MAX=$max," \
    "bound $((bound_kib / 1024)) MiB (max + $overhead_percent % + $((slack_kib / 1024)) MiB);" \
    "glibc: $((${glibc_kib:-0} / 1024)) MiB"
  expect "peak RSS $((peak_kib / 1024)) MiB is above the bound of $((bound_kib / 1024)) MiB" \
    [ "$peak_kib" -le "$bound_kib" ]
else
  fail "no peak RSS in the record: $(cat "$WORK/execmem.json" 2>/dev/null)"
fi

finish rss_bound
