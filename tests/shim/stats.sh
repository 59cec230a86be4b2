#!/bin/bash
# EXECMEM_STATS: the report at exit, as text on stderr or as JSON in a file.
#
# usage: stats.sh PRELOAD_LIB
source "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 PRELOAD_LIB" >&2; exit 2; }
require_preload "$1"
make_workdir
py=/usr/bin/python3

# 1. The issue's own check: EXECMEM_STATS=stderr python3 -c pass prints the report.
EXECMEM_STATS=stderr LD_PRELOAD="$PRELOAD" $py -c pass >"$WORK/out" 2>"$WORK/err"
rc=$?
echo "--- EXECMEM_STATS=stderr python3 -c pass:"
cat "$WORK/err"
echo "---"
expect "python3 -c pass: exit status $rc" [ $rc -eq 0 ]
expect "python3 -c pass: stdout not empty" [ ! -s "$WORK/out" ]
expect "the text report does not name the default executor" grep -q default "$WORK/err"
expect "the text report is shorter than 3 lines" [ "$(wc -l <"$WORK/err")" -ge 3 ]
expect "the text report has no resident / tracked / untracked line" \
  grep -qE '^pool: resident [0-9.]+ [KMGTPE]?i?B \(peak [0-9.]+ [KMGTPE]?i?B\), tracked .*, untracked ' "$WORK/err"
expect "the text report does not split tracked into its parts" \
  grep -qE '^pool: tracked = footprints .* \+ cached .* \+ metadata ' "$WORK/err"

# The report leaves stdout alone, and "1" means stderr too.
out=$(EXECMEM_STATS=1 LD_PRELOAD="$PRELOAD" $py -c 'print(6 * 7)' 2>"$WORK/err1")
expect "stdout changed under EXECMEM_STATS=1: '$out'" [ "$out" = 42 ]
expect "EXECMEM_STATS=1 printed no report" grep -q default "$WORK/err1"

# 2. JSON to a file, valid and with the executor's numbers.
EXECMEM_STATS="$WORK/report.json" LD_PRELOAD="$PRELOAD" $py -c 'x = [0] * 1000000' \
  >"$WORK/out" 2>"$WORK/err"
rc=$?
expect "python3 with EXECMEM_STATS=PATH: exit status $rc, stderr $(cat "$WORK/err")" [ $rc -eq 0 ]
expect "EXECMEM_STATS=PATH printed to stderr: $(cat "$WORK/err")" [ ! -s "$WORK/err" ]
expect "no JSON report written" [ -s "$WORK/report.json" ]
expect "the report is not valid JSON" $py -m json.tool "$WORK/report.json" >/dev/null
expect "the JSON report has no default executor with a peak of 8 MB or more" \
  $py - "$WORK/report.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
def executors(node):
    if isinstance(node, dict):
        if node.get("name") == "default":
            yield node
        for value in node.values():
            yield from executors(value)
    elif isinstance(node, list):
        for value in node:
            yield from executors(value)
found = list(executors(report))
def peak(e):
    return max((v for k, v in e.items() if "peak" in k and isinstance(v, int)), default=0)
sys.exit(0 if found and peak(found[0]) >= 8_000_000 else 1)
EOF
expect "the JSON report's resident / tracked / untracked are not consistent: $(cat "$WORK/report.json")" \
  $py - "$WORK/report.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
pool = report["pool"]
ok = (report["version"] >= 3
      and pool["resident"] > 0 and pool["held"] > 0
      and pool["peak_resident"] >= pool["resident"]
      and pool["metadata"] > 0
      and pool["tracked"] == pool["held"] + pool["metadata"]
      and pool["untracked"] == max(0, pool["resident"] - pool["tracked"])
      and 0 < pool["untracked"] < pool["resident"])        # python's own binary at least
sys.exit(0 if ok else 1)
EOF

# 3. A relative path is taken from the starting directory, although the
#    program moves; no temporary file is left beside the report.
mkdir "$WORK/rel"
(cd "$WORK/rel" && EXECMEM_STATS=report.json LD_PRELOAD="$PRELOAD" $py -c 'import os; os.chdir("/")')
expect "relative EXECMEM_STATS not written in the starting directory" \
  [ -s "$WORK/rel/report.json" ]
expect "temporary files left beside the report: $(ls "$WORK/rel")" \
  [ "$(ls "$WORK/rel")" = report.json ]

# 4. Several processes sharing the path (a shell running programs): the file
#    is one whole report, never two interleaved.
EXECMEM_STATS="$WORK/shared.json" LD_PRELOAD="$PRELOAD" bash -c \
  'for i in 1 2 3 4; do '"$py"' -c pass & done; wait'
expect "shared EXECMEM_STATS file is not one valid JSON document" \
  $py -m json.tool "$WORK/shared.json" >/dev/null

finish stats
