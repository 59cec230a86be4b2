#!/usr/bin/env bash
# The layering check: see CMakeLists.txt in this folder.
#
#   layering_test.sh CMAKE BUILD_DIR SOURCE_DIR LAYER_OBJECTS TARGET=HEADER...
# Each TARGET (a probe) must fail to build, with HEADER reported not found.
# Then every #include "..." of the layer folders is checked against the order.
# LAYER_OBJECTS: the layers' object files, ':'-separated, each in a folder
# named after its layer (part d).
set -uo pipefail
cmake=$1 build=$2 src=$3 layer_objects=$4
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
os_calls='\b(pthread_[a-z_]+|sched_yield|getenv|secure_getenv|mmap|munmap|madvise|mremap|mprotect|sysconf|getrandom|syscall|futex|clock_gettime|nanosleep|usleep|_exit|atexit|on_exit|fork|dlsym|dlopen)[[:space:]]*\(|[^_[:alnum:]]environ[^_[:alnum:]]|[^_[:alnum:]]environ$'
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

# ---- (d) inner orders: the files of a layer call one way ----
# In each layer, a .cc file uses functions and objects of the files before it
# in its order only: no two files call each other both ways. Checked from the
# object files (nm): a strong global definition of a later file among an
# earlier file's undefined symbols is an arrow climbing the order, and no
# pair of files is exempt. The exceptions, each with its reason:
declare -A inner_order=(
  [platform]="os cgroup shm"
  [pool]="arena purge pool"  # pool/pool_internal.h
  [budget]="shared_ledger shared_process ledger emergency account"
  [cache]="meta secure span large secure_large orphanage thread check zero_size heap"  # cache/cache.h
  [executor]="config executor runtime shared reclaim limits"
  [api]="output_path stats_format prometheus_format timeline_format options api timeline version"
)
declare -A inner_exempt=()  # files left out of their layer's order (none)
# The cache's interface to the layer above (cache/tenant.h): every file that
# charges a tenant or drops a reference names g_reclaimer; reclaim.cc defines
# it. A call through it is a call into the cache's contract, not into
# reclaim.cc.
inner_ignored_symbols=(_ZN7execmem11g_reclaimerE)
declare -A inner_rank=() inner_obj=()
for layer in "${!inner_order[@]}"; do
  i=0
  for n in ${inner_order[$layer]}; do inner_rank[$layer/$n]=$((i++)); done
done
IFS=: read -r -a objs <<<"$layer_objects"
for o in "${objs[@]}"; do
  n=${o##*/}
  n=${n%.cc.o}
  n=${n%.o}
  d=${o%/*}
  inner_obj[${d##*/}/$n]=$o
done
inner_edges=0 inner_files=0
for layer in "${!inner_order[@]}"; do
  for f in "$src/$layer"/*.cc; do
    [[ -e $f ]] || continue
    n=${f##*/}
    n=$layer/${n%.cc}
    ((inner_files++))
    if [[ -z ${inner_exempt[$n]:-} && -z ${inner_rank[$n]:-} ]]; then
      echo "$n.cc: not in $layer/'s inner order (inner_order here)"
      bad=1
    fi
    if [[ -z ${inner_obj[$n]:-} || ! -e ${inner_obj[$n]} ]]; then
      echo "$n.cc: no object file among LAYER_OBJECTS (build the library first)"
      bad=1
    fi
  done
  for a in ${inner_order[$layer]}; do
    [[ -e ${inner_obj[$layer/$a]:-} ]] || continue
    undefined=$(nm -u "${inner_obj[$layer/$a]}" | awk '{print $2}' | sort -u |
                grep -vxF -f <(printf '%s\n' "${inner_ignored_symbols[@]}"))
    for b in ${inner_order[$layer]}; do
      (( inner_rank[$layer/$b] > inner_rank[$layer/$a] )) || continue
      [[ -e ${inner_obj[$layer/$b]:-} ]] || continue
      ((inner_edges++))
      # Strong global definitions of b (weak ones are inline code every user emits).
      used=$(comm -12 <(nm -g --defined-only "${inner_obj[$layer/$b]}" |
                        awk '$2 ~ /^[TDBR]$/ {print $3}' | sort -u) <(echo "$undefined"))
      for sym in $used; do
        echo "$layer/$a.cc uses $(c++filt "$sym") of $layer/$b.cc, which comes after it in $layer/'s inner order"
        bad=1
      done
    done
  done
done

if (( bad )); then
  echo "FAIL: includes that climb the layer order or pass a contract header, OS calls outside platform/, or calls that climb a layer's inner order (see above)"
  fail=1
else
  echo "ok: $files files in ${layers[*]}: no include climbs the layer order; across layers" \
    "only contract headers, and $across listed exceptions (${#exception[@]} allowed); OS calls only in platform/;" \
    "the $inner_files .cc files of ${!inner_order[*]} call down their layer's order only ($inner_edges pairs checked)"
fi
exit $fail
