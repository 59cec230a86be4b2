#!/usr/bin/env bash
# tests/safety/run.sh — the memory-safety error suite under each allocator.
#
#   tests/safety/run.sh [-a ALLOCATORS] [-o RESULTS.tsv] [-j JOBS] ERRORS_PROGRAM
#
# Runs every case of ERRORS_PROGRAM (execmem-safety-errors) once per
# allocator, with the allocator preloaded, and counts a case as caught when
# the process did not exit 0 (a report and abort, or a fault); a run that
# passes 20 s counts as not caught. ALLOCATORS is a comma list from
#   glibc jemalloc tcmalloc mimalloc (Debian's libraries, as in bench/run.sh)
#   execmem         libexecmem_preload.so, checks on by default
#   execmem-secure  the same with EXECMEM_SECURE=1
# (default: all six). EXECMEM_PRELOAD names the execmem library (default
# build/lib/libexecmem_preload.so next to the program's bin/).
# Prints a table per kind of error (caught / cases) and writes one line per
# case and allocator to RESULTS.tsv: allocator case kind caught exit_status.
set -euo pipefail
allocators=glibc,jemalloc,tcmalloc,mimalloc,execmem,execmem-secure
results=""
jobs=2
while getopts "a:o:j:" opt; do
  case "$opt" in
    a) allocators=$OPTARG ;;
    o) results=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -eq 1 && -x "$1" ]] || { echo "usage: $0 [-a ALLOCATORS] [-o RESULTS.tsv] [-j JOBS] ERRORS_PROGRAM" >&2; exit 2; }
prog=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
execmem_lib=${EXECMEM_PRELOAD:-$(dirname "$prog")/../lib/libexecmem_preload.so}
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../bench/tools" && pwd)/baselines.sh"
preload_of() {
  case "$1" in
    execmem | execmem-secure) echo "$execmem_lib" ;;
    *) baseline_preload "$1" ;;
  esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$prog" --list >"$tmp/cases"
IFS=, read -r -a names <<<"$allocators"
: >"$tmp/jobs"
for a in "${names[@]}"; do
  lib=$(preload_of "$a") || { echo "$0: unknown allocator '$a'" >&2; exit 2; }
  [[ -z "$lib" || -r "$lib" ]] || { echo "$0: $a: $lib is missing" >&2; exit 2; }
  while read -r name kind; do echo "$a ${lib:--} $name $kind" >>"$tmp/jobs"; done <"$tmp/cases"
done

# One case: prints "allocator case kind caught status".
run_one() {
  local a=$1 lib=$2 name=$3 kind=$4 secure=0 status=0
  [[ $lib == - ]] && lib=""  # glibc: nothing preloaded
  [[ $a == execmem-secure ]] && secure=1
  ulimit -c 0
  EXECMEM_SECURE=$secure LD_PRELOAD=$lib timeout -k 5 20 "$prog" "$name" >/dev/null 2>&1 || status=$?
  local caught=0
  [[ $status -ne 0 && $status -ne 124 && $status -ne 137 ]] && caught=1
  echo "$a $name $kind $caught $status"
}
export -f run_one
export prog
xargs -P "$jobs" -L 1 bash -c 'run_one "$@" 2>/dev/null' _ <"$tmp/jobs" | sort >"$tmp/results"
[[ -n "$results" ]] && cp "$tmp/results" "$results"

python3 - "$tmp/results" "$allocators" "$tmp/cases" <<'PY'
import sys, collections
rows = [l.split() for l in open(sys.argv[1])]
allocs = sys.argv[2].split(",")
kinds = []
for l in open(sys.argv[3]):
    k = l.split()[1]
    if k not in kinds: kinds.append(k)
caught = collections.Counter(); total = collections.Counter()
for a, name, kind, c, status in rows:
    total[a, kind] += 1; caught[a, kind] += int(c)
w = max(len(a) for a in allocs) + 2
print("| kind | cases | " + " | ".join(allocs) + " |")
print("|---|---|" + "---|" * len(allocs))
for k in kinds:
    n = total[allocs[0], k]
    print(f"| {k} | {n} | " + " | ".join(str(caught[a, k]) for a in allocs) + " |")
n = sum(total[allocs[0], k] for k in kinds)
print(f"| **all** | {n} | " + " | ".join(f"**{sum(caught[a, k] for k in kinds)}**" for a in allocs) + " |")
PY
