#!/usr/bin/env bash
# The thread-safety check: see CMakeLists.txt in this folder.
#
#   thread_safety_test.sh COMPILE_COMMANDS SOURCE_DIR PROBE
# Compiles every library source of platform/ ... api/ listed in
# COMPILE_COMMANDS with clang, -fsyntax-only and thread-safety diagnostics
# only, as errors. First PROBE (a guarded member written without its lock)
# must fail, so that a clang or flags that check nothing cannot pass.
# Exits 77 (skipped) when no clang is installed.
set -uo pipefail
commands=$1 src=$2 probe=$3

clang=""
for c in ${CLANG_CXX:-} clang++-14 clang++; do
  if command -v "$c" >/dev/null; then clang=$c; break; fi
done
if [[ -z $clang ]]; then
  echo "SKIP: no clang++ (apt-get install clang-14): the thread-safety annotations are not checked"
  exit 77
fi
# Only thread-safety diagnostics (gcc's -Wall -Wextra -Werror is the build's;
# clang's other warnings are not this test's business), each an error.
flags=(-fsyntax-only -Wno-everything -Wthread-safety -Werror)

# The layers' sources and the include and define flags of their compile
# commands. The shim is left out: it takes no lock, and shim/new_delete.cc
# declares a [[noreturn]] function pointer, which gcc accepts and clang
# refuses.
mapfile -t lines < <(python3 - "$commands" "$src" <<'PY'
import json, shlex, sys, os
commands, src = sys.argv[1], os.path.realpath(sys.argv[2])
layers = ("platform", "pool", "budget", "cache", "executor", "api")
for e in json.load(open(commands)):
    f = os.path.realpath(e["file"])
    rel = os.path.relpath(f, src)
    if rel.split("/")[0] not in layers or not rel.endswith(".cc"):
        continue
    args = shlex.split(e["command"]) if "command" in e else e["arguments"]
    keep = [a for a in args[1:] if a.startswith(("-I", "-D", "-std=", "-isystem"))]
    print(" ".join(shlex.quote(a) for a in keep + [f]))
PY
)
if (( ${#lines[@]} < 30 )); then
  echo "FAIL: only ${#lines[@]} compile commands of library sources found in $commands (configure with CMAKE_EXPORT_COMPILE_COMMANDS)"
  exit 1
fi

# The probe must fail with a thread-safety error.
if out=$("$clang" "${flags[@]}" -std=c++20 -I"$src" -I"$src/include" "$probe" 2>&1); then
  echo "FAIL: the probe $probe compiled: these flags check no annotation"
  exit 1
elif ! grep -q 'requires holding' <<<"$out"; then
  echo "FAIL: the probe failed for another reason than the unguarded write:"
  echo "$out" | tail -20
  exit 1
fi
echo "ok: the probe's unguarded write is refused ($clang)"

# Two files at a time (the machine's cores); every error shown.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
printf '%s\n' "${lines[@]}" |
  xargs -P2 -I{} sh -c "\"$clang\" ${flags[*]} {} || echo FAILED-FILE" >"$log" 2>&1
if grep -q 'FAILED-FILE\|error:' "$log"; then
  grep -v FAILED-FILE "$log"
  echo "FAIL: $(grep -c FAILED-FILE "$log") of ${#lines[@]} compile commands break a lock annotation (above)"
  exit 1
fi
sources=$(printf '%s\n' "${lines[@]}" | awk '{print $NF}' | sort -u | wc -l)
echo "ok: the $sources library sources of platform/ ... api/ (${#lines[@]} compile commands: platform/'s" \
  "fault-injection build too) hold their lock annotations ($clang ${flags[*]})"
