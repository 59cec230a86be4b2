#!/usr/bin/env bash
# tests/safety/original_run.sh — mimalloc-bench's 116 security programs
# (tests/safety/original/, docs/safety.md) under each allocator, counted as
# mimalloc-bench counts them.
#
#   tests/safety/original_run.sh [-a ALLOCATORS] [-o RESULTS.tsv] [-j JOBS] [-n ROUNDS] BIN_DIR
#
# BIN_DIR holds execmem-safety-original-{small,medium,large,cxx}; the 116
# programs are the 37 C programs at each of the three sizes (NAME_small,
# NAME_medium, NAME_large) and the 5 C++ ones. Every program checks itself
# and prints NOT_CAUGHT when the error went unnoticed, so a program counts as
# caught when its standard output has no NOT_CAUGHT line — whether it
# aborted, faulted or exited (a NULL from malloc(0) exits 1) — as the
# original runner counts. A run that passes 120 s counts as not caught.
# With ROUNDS > 1 each program runs ROUNDS times per allocator and counts as
# caught only when it was caught in every round (what holds every run).
#
# ALLOCATORS is a comma list from glibc jemalloc tcmalloc mimalloc (Debian's
# libraries, bench/tools/baselines.sh), execmem (libexecmem_preload.so,
# default mode) and execmem-secure (the same with EXECMEM_SECURE=1); default
# glibc,execmem,execmem-secure. EXECMEM_PRELOAD names the execmem library
# (default BIN_DIR/../lib/libexecmem_preload.so).
#
# Prints a table of caught programs per family and allocator, the total, and
# per allocator the programs it missed (and those caught in some rounds
# only). RESULTS.tsv gets one line per program and allocator:
#   allocator program caught_rounds rounds last_exit_status
set -euo pipefail
allocators=glibc,execmem,execmem-secure
results=""
jobs=2
rounds=1
while getopts "a:o:j:n:" opt; do
  case "$opt" in
    a) allocators=$OPTARG ;;
    o) results=$OPTARG ;;
    j) jobs=$OPTARG ;;
    n) rounds=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
usage="usage: $0 [-a ALLOCATORS] [-o RESULTS.tsv] [-j JOBS] [-n ROUNDS] BIN_DIR"
[[ $# -eq 1 && -d "$1" ]] || { echo "$usage" >&2; exit 2; }
[[ $rounds =~ ^[1-9][0-9]*$ && $jobs =~ ^[1-9][0-9]*$ ]] || { echo "$usage" >&2; exit 2; }
bin=$(cd "$1" && pwd)
execmem_lib=${EXECMEM_PRELOAD:-$bin/../lib/libexecmem_preload.so}
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../bench/tools" && pwd)/baselines.sh"
preload_of() {
  case "$1" in
    execmem | execmem-secure) echo "$execmem_lib" ;;
    *) baseline_preload "$1" ;;
  esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The programs: "executable program-name label".
: >"$tmp/programs"
for size in small medium large cxx; do
  exe=$bin/execmem-safety-original-$size
  [[ -x $exe ]] || { echo "$0: $exe is missing" >&2; exit 2; }
  "$exe" --list >"$tmp/names.$size"
  while read -r name; do
    label=${name}_$size
    [[ $size == cxx ]] && label=$name
    echo "$exe $name $label" >>"$tmp/programs"
  done <"$tmp/names.$size"
done
count=$(wc -l <"$tmp/programs")
(( count == 116 )) || { echo "$0: found $count programs, expected 116" >&2; exit 2; }

IFS=, read -r -a names <<<"$allocators"
: >"$tmp/jobs"
for a in "${names[@]}"; do
  lib=$(preload_of "$a") || { echo "$0: unknown allocator '$a'" >&2; exit 2; }
  [[ -z "$lib" || -r "$lib" ]] || { echo "$0: $a: $lib is missing" >&2; exit 2; }
  for ((r = 1; r <= rounds; r++)); do
    while read -r exe name label; do echo "$a ${lib:--} $exe $name $label $r" >>"$tmp/jobs"; done \
      <"$tmp/programs"
  done
done

# One run: prints "allocator label caught status".
run_one() {
  local a=$1 lib=$2 exe=$3 name=$4 label=$5 round=$6 secure=0 status=0
  [[ $lib == - ]] && lib=""  # glibc: nothing preloaded
  [[ $a == execmem-secure ]] && secure=1
  local out=$tmp/out.$a.$label.$round
  ulimit -c 0
  EXECMEM_SECURE=$secure LD_PRELOAD=$lib timeout -k 5 120 "$exe" "$name" >"$out" 2>/dev/null ||
    status=$?
  local caught=1
  grep -aq 'NOT_CAUGHT' "$out" && caught=0
  [[ $status -eq 124 || $status -eq 137 ]] && caught=0
  rm -f "$out"
  echo "$a $label $caught $status"
}
export -f run_one
export tmp
xargs -P "$jobs" -L 1 bash -c 'run_one "$@" 2>/dev/null' _ <"$tmp/jobs" >"$tmp/runs"

python3 - "$tmp/runs" "$allocators" "$tmp/programs" "$rounds" "${results:-/dev/null}" <<'PY'
import sys, collections, re
runs_file, allocs, programs_file, rounds, out = sys.argv[1:6]
allocs, rounds = allocs.split(","), int(rounds)
labels = [l.split()[2] for l in open(programs_file)]
caught = collections.Counter(); seen = collections.Counter(); last = {}
for line in open(runs_file):
    a, label, c, status = line.split()
    seen[a, label] += 1; caught[a, label] += int(c); last[a, label] = status
bad = [(a, l) for a in allocs for l in labels if seen[a, l] != rounds]
if bad:
    sys.exit(f"original_run.sh: {len(bad)} runs missing, e.g. {bad[0]}")
with open(out, "w") as f:
    for a in allocs:
        for l in labels:
            f.write(f"{a} {l} {caught[a, l]} {rounds} {last[a, l]}\n")
def family(label):
    return re.sub(r"_(small|medium|large)$", "", label)
families = list(dict.fromkeys(family(l) for l in labels))
always = {a: {l for l in labels if caught[a, l] == rounds} for a in allocs}
print("| program | sizes | " + " | ".join(allocs) + " |")
print("|---|---|" + "---|" * len(allocs))
for fam in families:
    members = [l for l in labels if family(l) == fam]
    print(f"| {fam} | {len(members)} | " +
          " | ".join(str(sum(l in always[a] for l in members)) for a in allocs) + " |")
print(f"| **all** | {len(labels)} | " + " | ".join(f"**{len(always[a])}**" for a in allocs) + " |")
for a in allocs:
    missed = [l for l in labels if l not in always[a]]
    some = [l for l in missed if caught[a, l] > 0]
    print(f"{a}: caught {len(always[a])} of {len(labels)}"
          + (f" in every one of {rounds} rounds" if rounds > 1 else ""))
    never = [l for l in missed if l not in some]
    print(f"  missed ({len(never)}): " + " ".join(never))
    if some:
        print(f"  caught in some rounds only ({len(some)}): " +
              " ".join(f"{l}({caught[a, l]}/{rounds})" for l in some))
PY
