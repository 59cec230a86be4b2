#!/bin/bash
# A newcomer's first hour (issue 22): what the shim says at a refusal, reports
# that reach stderr when the program closed fd 2, a tiny max with reports, a
# misspelt variable, and a program linked with libexecmem.so under the preload.
# Each check failed on main 441b5f6.
#
# usage: newcomer.sh PRELOAD_LIB LIBEXECMEM_SO
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { echo "usage: $0 PRELOAD_LIB LIBEXECMEM_SO" >&2; exit 2; }
require_preload "$1"
LIBEXECMEM=$(readlink -f "$2")
make_workdir
py=/usr/bin/python3

# 1. EXECMEM_OOM=report: the first refusal's report once on stderr; the program
# gets its MemoryError (NULL) and goes on.
out=$(EXECMEM_MAX=64m EXECMEM_OOM=report LD_PRELOAD="$PRELOAD" $py -c '
for i in range(3):
    try:
        bytearray(100 << 20)
    except MemoryError:
        pass
print("adapted")' 2>"$WORK/err")
rc=$?
expect "EXECMEM_OOM=report: the program goes on (exit $rc, stdout '$out', $(head -c 300 "$WORK/err"))" \
  [ $rc -eq 0 -a "$out" = adapted ]
expect "EXECMEM_OOM=report: one report for three refusals: $(cat "$WORK/err")" \
  [ "$(grep -c '^execmem: out of memory' "$WORK/err")" -eq 1 ]
expect "the report says the request can never fit" \
  grep -q "refused: it is larger than the max (64 MiB): it can never fit" "$WORK/err"

# 2. Plain words for a shim user without hooks: what would pass which variable,
# and no "spill more".
EXECMEM_MAX=64m EXECMEM_OOM=report LD_PRELOAD="$PRELOAD" $py -c '
a = bytearray(40 << 20)
try:
    b = bytearray(40 << 20)
except MemoryError:
    pass' 2>"$WORK/err"
expect "the refusal names what would pass EXECMEM_MAX: $(cat "$WORK/err")" \
  grep -qE "used \([0-9.]+ MiB\) plus this request would pass EXECMEM_MAX \(64 MiB\)" "$WORK/err"
expect "a shim user without hooks is told what to do: $(cat "$WORK/err")" \
  grep -q "Raise EXECMEM_MAX or make the program use less memory" "$WORK/err"
expect "no 'spill more' for a program without spill hooks" \
  bash -c "! grep -qi 'spill more' '$WORK/err'"

# 3. Programs that close fd 2 before exit (coreutils' close_stdout): the report
# still reaches stderr, through the duplicate kept at start-up.
seq 1 20000 | shuf --random-source=<(yes) >"$WORK/big.txt"
for cmd in "sort $WORK/big.txt" "cat $WORK/big.txt"; do
  EXECMEM_STATS=stderr LD_PRELOAD="$PRELOAD" $cmd >/dev/null 2>"$WORK/err"
  expect "EXECMEM_STATS=stderr $cmd: the report reaches stderr ($(head -c 200 "$WORK/err"))" \
    grep -q '^execmem stats' "$WORK/err"
done
# The duplicate does not leak into exec'd programs (close-on-exec).
plain=$(bash -c 'true; ls /proc/self/fd' | sort -n | tr '\n' ' ')
fds=$(LD_PRELOAD="$PRELOAD" EXECMEM_STATS=stderr bash -c 'true; env -u LD_PRELOAD ls /proc/self/fd' 2>/dev/null | sort -n | tr '\n' ' ')
expect "an exec'd program inherits no extra descriptor: $fds, without the shim $plain" \
  [ "$fds" = "$plain" ]

# 4. A tiny max with reports: refused at start-up with one line, or the report
# is written; never "terminate called" (exit 134), never a stale report left
# as if current.
for max in 100 4k 64k 300k 512k; do
  for var in EXECMEM_STATS EXECMEM_TIMELINE; do
    echo '{"stale": true}' >"$WORK/old.json"
    env EXECMEM_MAX=$max "$var=$WORK/old.json" LD_PRELOAD="$PRELOAD" /bin/true 2>"$WORK/err"
    rc=$?
    if [ $rc -eq 2 ]; then
      expect "EXECMEM_MAX=$max $var: refused with one line: $(cat "$WORK/err")" \
        [ "$(wc -l <"$WORK/err")" -eq 1 ] && grep -q "^execmem: .*EXECMEM_MAX" "$WORK/err"
    else
      expect "EXECMEM_MAX=$max $var: /bin/true exits 0, not $rc: $(head -c 300 "$WORK/err")" \
        [ $rc -eq 0 ]
      expect "EXECMEM_MAX=$max $var: the report replaced the old file" \
        bash -c "! grep -q stale '$WORK/old.json'"
    fi
  done
done

# 5. A misspelt EXECMEM_* variable is warned about; the variables of other
# parts of execmem (execmem_dask) are not.
EXECMEM_MAXX=64m LD_PRELOAD="$PRELOAD" /bin/true 2>"$WORK/err"
expect "a misspelt variable is warned about: $(cat "$WORK/err")" \
  grep -qx "execmem: warning: EXECMEM_MAXX is not an execmem variable, ignored (did you mean EXECMEM_MAX?)" "$WORK/err"
EXECMEM_PRELOAD=x EXECMEM_DASK=1 EXECMEM_DASK_SPILL_TIMEOUT=30 LD_PRELOAD="$PRELOAD" /bin/true 2>"$WORK/err"
expect "execmem_dask's variables are not warned about: $(cat "$WORK/err")" [ ! -s "$WORK/err" ]

# 6. libexecmem.so loaded into a process under the preload: two runtimes, said.
LD_PRELOAD="$PRELOAD" $py -c "import ctypes; ctypes.CDLL('$LIBEXECMEM')" 2>"$WORK/err"
expect "libexecmem.so under the preload is detected: $(cat "$WORK/err")" \
  grep -q "^execmem: warning: two execmem runtimes in one process (.*libexecmem_preload.so" "$WORK/err"
$py -c "import ctypes; ctypes.CDLL('$LIBEXECMEM')" 2>"$WORK/err"
expect "libexecmem.so alone says nothing: $(cat "$WORK/err")" [ ! -s "$WORK/err" ]
LD_PRELOAD="$PRELOAD" /bin/true 2>"$WORK/err"
expect "the preload alone says nothing: $(cat "$WORK/err")" [ ! -s "$WORK/err" ]

finish newcomer
