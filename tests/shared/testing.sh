# Sourced by the shell tests of this folder (not run): their common helpers.
# The sourcing script sets fail=0 and exits with $fail.
check() {  # check WHAT COMMAND...: the command must succeed
  local what=$1
  shift
  if ! "$@"; then
    echo "FAIL: $what"
    fail=1
  fi
}
wait_for() {  # wait_for FILE PATTERN: a line of FILE matches (guard: 60 s)
  for _ in $(seq 1 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no \"$2\" in $1:"; cat "$1" 2>/dev/null; return 1
}
