#!/usr/bin/env bash
# The layering check: see CMakeLists.txt in this folder.
#
#   layering_test.sh CMAKE BUILD_DIR SOURCE_DIR CACHE_OBJECTS TARGET=HEADER...
# Each TARGET (a probe) must fail to build, with HEADER reported not found.
# Then every #include "..." of the layer folders is checked against the order.
# CACHE_OBJECTS: the cache layer's object files, ':'-separated (part d).
set -uo pipefail
cmake=$1 build=$2 src=$3 cache_objects=$4
shift 4
fail=0

# ---- (a) probes ----
for probe in "$@"; do
  target=${probe%%=*} header=${probe#*=}
  out=$("$cmake" --build "$build" --target "$target" 2>&1)
  rc=$?
  if (( rc == 0 )); then
    echo "FAIL: probe $target built: $header is visible to a layer below it"
    fail=1
  elif grep -q "${header}: No such file or directory" <<<"$out"; then
    echo "ok: $target does not build: ${header} not found"
  else
    echo "FAIL: probe $target failed for another reason than ${header} missing:"
    echo "$out" | tail -20
    fail=1
  fi
done

# ---- (b) includes of every layer file ----
# A layer includes only layers below it, and of each only the header that
# states its contract; the exceptions, each with its reason:
layers=(platform pool budget cache executor api shim)
declare -A contract=([platform]=platform/os.h [pool]=pool/pool.h [budget]=budget/budget.h
                     [cache]=cache/cache.h [executor]=executor/executor.h [api]=api/api.h)
declare -A exception=(
  # The shim's inline fast path: malloc/free and operator new/delete inline
  # the thread cache's pop and push (STYLE.md: hot paths inline), skipping
  # the executor and api layers, which the fast path never enters.
  ["shim/malloc.cc cache/heap-inl.h"]=1
  ["shim/new_delete.cc cache/heap-inl.h"]=1
)
rank() {
  local i
  for i in "${!layers[@]}"; do [[ ${layers[$i]} == "$1" ]] && { echo "$i"; return; }; done
  echo -1
}
bad=0 files=0 across=0
for layer in "${layers[@]}"; do
  r=$(rank "$layer")
  for f in "$src/$layer"/*.h "$src/$layer"/*.cc; do
    [[ -e $f ]] || continue
    ((files++))
    while IFS=: read -r line text; do
      inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/' <<<"$text")
      rel=$layer/${f##*/}
      if [[ $inc == ../* || $inc == */../* ]]; then
        echo "$rel:$line: #include \"$inc\": a relative path out of the layer's folder"
        bad=1
        continue
      fi
      [[ $inc == */* ]] || continue  # a file of the same folder
      top=${inc%%/*}
      t=$(rank "$top")
      [[ $t -lt 0 || $top == "$layer" ]] && continue  # not a layer (absl/...), or its own
      if (( t > r )); then
        echo "$rel:$line: #include \"$inc\": $layer/ may not include $top/ (order: ${layers[*]})"
        bad=1
      elif [[ $inc != "${contract[$top]}" ]]; then
        if [[ -n ${exception["$rel $inc"]:-} ]]; then
          ((across++))
        else
          echo "$rel:$line: #include \"$inc\": another layer's header other than its contract ${contract[$top]}"
          bad=1
        fi
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
  done
done
# ---- (c) OS calls only in platform/ ----
os_calls='\b(pthread_[a-z_]+|sched_yield|getenv|secure_getenv|mmap|munmap|madvise|mremap|mprotect|sysconf|getrandom)[[:space:]]*\('
for layer in "${layers[@]}"; do
  [[ $layer == platform ]] && continue
  for f in "$src/$layer"/*.h "$src/$layer"/*.cc; do
    [[ -e $f ]] || continue
    while IFS=: read -r line text; do
      [[ $text =~ ^[[:space:]]*// ]] && continue
      echo "$layer/${f##*/}:$line: an OS call outside platform/ (platform/os.h is the seam): ${text## }"
      bad=1
    done < <(grep -nE "$os_calls" "$f")
  done
done

# ---- (d) the cache's inner order (cache/cache.h's map) ----
# A .cc file of cache/ uses functions and objects of the files before it in
# the order only: no two files call each other both ways. No exception
# (secure mode is a policy of the span code: secure.cc comes before span.cc,
# secure_large.cc after large.cc).
cache_order=(meta secure span large secure_large orphanage thread check zero_size heap)
declare -A cache_rank=() cache_obj=()
for i in "${!cache_order[@]}"; do cache_rank[${cache_order[$i]}]=$i; done
IFS=: read -r -a objs <<<"$cache_objects"
for o in "${objs[@]}"; do
  n=${o##*/}
  n=${n%.cc.o}
  n=${n%.o}
  cache_obj[$n]=$o
done
for f in "$src"/cache/*.cc; do
  n=${f##*/}
  n=${n%.cc}
  if [[ -z ${cache_rank[$n]:-} ]]; then
    echo "cache/$n.cc: not in the cache's inner order (cache/cache.h; cache_order here)"
    bad=1
  fi
  if [[ -z ${cache_obj[$n]:-} || ! -e ${cache_obj[$n]} ]]; then
    echo "cache/$n.cc: no object file among CACHE_OBJECTS (build the library first)"
    bad=1
  fi
done
cache_edges=0
for a in "${cache_order[@]}"; do
  [[ -e ${cache_obj[$a]:-} ]] || continue
  undefined=$(nm -u "${cache_obj[$a]}" | awk '{print $2}' | sort -u)
  for b in "${cache_order[@]}"; do
    (( cache_rank[$b] > cache_rank[$a] )) || continue
    [[ -e ${cache_obj[$b]:-} ]] || continue
    # Strong global definitions of b (weak ones are inline code every user emits).
    used=$(comm -12 <(nm -g --defined-only "${cache_obj[$b]}" | awk '$2 ~ /^[TDBR]$/ {print $3}' |
                      sort -u) <(echo "$undefined"))
    for sym in $used; do
      echo "cache/$a.cc uses $(c++filt "$sym") of cache/$b.cc, which comes after it in the cache's order"
      bad=1
    done
    ((cache_edges++))
  done
done

if (( bad )); then
  echo "FAIL: includes that climb the layer order or pass a contract header, OS calls outside platform/, or calls that climb the cache's inner order (see above)"
  fail=1
else
  echo "ok: $files files in ${layers[*]}: no include climbs the layer order; across layers" \
    "only contract headers, and $across listed exceptions (${#exception[@]} allowed); OS calls only in platform/;" \
    "cache/'s ${#cache_order[@]} files call down their order only ($cache_edges pairs checked)"
fi
exit $fail
