#!/usr/bin/env bash
# The layering check: see CMakeLists.txt in this folder.
#
#   layering_test.sh CMAKE BUILD_DIR SOURCE_DIR TARGET=HEADER...
# Each TARGET (a probe) must fail to build, with HEADER reported not found.
# Then every #include "..." of the layer folders is checked against the order.
set -uo pipefail
cmake=$1 build=$2 src=$3
shift 3
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
layers=(platform pool budget allocator shim)
rank() {
  local i
  for i in "${!layers[@]}"; do [[ ${layers[$i]} == "$1" ]] && { echo "$i"; return; }; done
  echo -1
}
bad=0 files=0
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
      if (( t > r )); then
        echo "$rel:$line: #include \"$inc\": $layer/ may not include $top/ (order: ${layers[*]})"
        bad=1
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
  done
done
if (( bad )); then
  echo "FAIL: includes that climb the layer order (see above)"
  fail=1
else
  echo "ok: $files files in ${layers[*]}: no include climbs the layer order"
fi
exit $fail
