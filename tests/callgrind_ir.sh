# shellcheck shell=bash
# Sourced by the instruction-count goldens (fastpath_golden_test.sh,
# realloc_golden_test.sh): callgrind's count of the instructions inside one
# function of a program run with a library preloaded.
#
#   callgrind_ir PRELOAD_SO FUNCTION PROGRAM ARG
# (callgrind's files go to a directory removed when the script exits)
command -v valgrind >/dev/null || { echo "valgrind missing (make deps installs it)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
callgrind_ir() {
  local preload=$1 fn=$2 program=$3 arg=$4
  LD_PRELOAD="$preload" valgrind --tool=callgrind --toggle-collect="$fn" \
    --callgrind-out-file="$tmp/cg.$arg" "$program" "$arg" >/dev/null 2>"$tmp/err.$arg" ||
    { cat "$tmp/err.$arg"; exit 1; }
  awk '/^(summary|totals):/ {print $2; exit}' "$tmp/cg.$arg"
}

# Passes when 0 < VALUE <= GOLDEN, with the figure on stdout.
#   golden_check WHAT VALUE GOLDEN
golden_check() {
  echo "$1: $2 (golden $3)"
  if (( $2 <= 0 || $2 > $3 )); then
    echo "FAIL: $1 is $2, golden is $3"
    exit 1
  fi
  echo "1 passed, 0 failed"
}
