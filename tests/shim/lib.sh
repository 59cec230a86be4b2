# Shared helpers of the shim's shell tests (sourced, not run).
#
# Every script takes the preload library as its first argument and checks it
# before anything else: a library that the dynamic loader refuses is only a
# warning on stderr, after which the program runs on glibc's malloc, and the
# test would pass without testing anything.

set -u -o pipefail

# Each test sets the EXECMEM_* variables it means; any inherited from the
# caller (or an LD_PRELOAD) would change what is tested.
while read -r _var; do unset "$_var"; done < <(compgen -e | grep '^EXECMEM_')
unset LD_PRELOAD _var

failures=0
checks=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

pass() {
  checks=$((checks + 1))
}

# expect CONDITION-DESCRIPTION COMMAND...: runs a test command, counts it.
expect() {
  local what=$1
  shift
  if "$@"; then pass; else fail "$what"; fi
}

finish() {
  local name=$1
  echo "$name: $checks passed, $failures failed"
  [ "$failures" -eq 0 ]
}

# require_preload LIB: LIB exists and, preloaded into a program, exports the
# execmem C API (the program then really allocates with execmem).
require_preload() {
  PRELOAD=$1
  if [ ! -f "$PRELOAD" ]; then
    echo "FAIL: preload library '$PRELOAD' does not exist" >&2
    exit 1
  fi
  PRELOAD=$(readlink -f "$PRELOAD")
  local probe
  probe=$(LD_PRELOAD="$PRELOAD" /usr/bin/python3 -c \
    'import ctypes; print(hasattr(ctypes.CDLL(None), "execmem_owns"))' 2>&1)
  if [ "$probe" != "True" ]; then
    echo "FAIL: $PRELOAD is not active when preloaded: $probe" >&2
    exit 1
  fi
}

# make_workdir: a fresh temporary directory in $WORK, removed at exit.
make_workdir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/execmem-shim-test.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
}
