#!/bin/bash
# Observability through the shim (README, "Observability"):
#  1. one output per process: %p / %t / %% in EXECMEM_STATS and
#     EXECMEM_TIMELINE; a forking program leaves one stats file and one
#     timeline per process, each naming its pid and program;
#  2. bad values refused before main with one line (bad %, a format name for
#     a path, an unwritable path, a zero, negative or garbage interval);
#  3. the timeline's lines, its size bound, the Prometheus file's format;
#  4. execmem-advise on timelines of real runs: a 4 GiB budget holding
#     48 MiB is over-allocated (max recommended under 1 GiB), a starved one
#     under-allocated, a fitting one ok; a truncated timeline is one line of
#     error naming file and line; execmem-plot draws PNG and SVG.
#
# usage: observe.sh PRELOAD_LIB HOLD_PROGRAM BIN_DIR
source "$(dirname "$0")/lib.sh"

[ $# -eq 3 ] || { echo "usage: $0 PRELOAD_LIB HOLD_PROGRAM BIN_DIR" >&2; exit 2; }
require_preload "$1"
HOLD=$2
BIN=$3
make_workdir
py=/usr/bin/python3

# ---- 1. one output per process ------------------------------------------------
EXECMEM_STATS="$WORK/stats.%p.json" EXECMEM_TIMELINE="$WORK/tl.%p.jsonl" EXECMEM_TIMELINE_MS=20 \
  LD_PRELOAD="$PRELOAD" "$HOLD" 8 50 3 >"$WORK/out" 2>"$WORK/err"
rc=$?
expect "hold with 3 children: exit status $rc, stderr $(cat "$WORK/err")" [ $rc -eq 0 ]
expect "hold with 3 children: stderr not empty: $(cat "$WORK/err")" [ ! -s "$WORK/err" ]
expect "want 4 stats files (one per process), got: $(ls "$WORK")" \
  [ "$(ls "$WORK" | grep -c '^stats\.[0-9]*\.json$')" -eq 4 ]
expect "want 4 timelines (one per process), got: $(ls "$WORK")" \
  [ "$(ls "$WORK" | grep -c '^tl\.[0-9]*\.jsonl$')" -eq 4 ]
expect "the stats files do not each name their own pid and the program, or hold no 8 MiB" \
  $py - "$WORK" <<'EOF2'
import glob, json, os, re, sys
pids = set()
for path in glob.glob(os.path.join(sys.argv[1], "stats.*.json")):
    pid = int(re.search(r"stats\.(\d+)\.json$", path).group(1))
    report = json.load(open(path))
    if report["pid"] != pid or report["program"] != "shim_hold" or report["start"] <= 0:
        sys.exit(f"{path}: pid {report['pid']}, program {report['program']!r}")
    if report["executors"][0]["peak_used"] < 8 << 20:
        sys.exit(f"{path}: peak_used {report['executors'][0]['peak_used']}")
    pids.add(pid)
sys.exit(0 if len(pids) == 4 else f"pids {pids}")
EOF2
expect "the timelines are not one per process with a header, samples and a final sample" \
  $py - "$WORK" <<'EOF2'
import glob, json, os, re, sys
for path in glob.glob(os.path.join(sys.argv[1], "tl.*.jsonl")):
    pid = int(re.search(r"tl\.(\d+)\.jsonl$", path).group(1))
    lines = [json.loads(l) for l in open(path)]
    head, samples = lines[0], lines[1:]
    if head.get("timeline") != 1 or head["pid"] != pid or head["program"] != "shim_hold":
        sys.exit(f"{path}: header {head}")
    if head["interval_ms"] != 20 or not samples or not samples[-1]["final"]:
        sys.exit(f"{path}: {len(samples)} samples, last {samples[-1] if samples else None}")
    if any(s["final"] for s in samples[:-1]) or any(s["pid"] != pid for s in samples):
        sys.exit(f"{path}: a final sample before the last, or another pid")
    last = samples[-1]
    e = last["executors"][0]
    keys = {"name", "used", "footprint", "initial", "max", "overhead", "spill_calls",
            "bytes_spilled", "oom_count"}
    if not keys <= e.keys() or not {"held", "cached"} <= last["pool"].keys():
        sys.exit(f"{path}: keys {sorted(e)} {sorted(last['pool'])}")
    if e["used"] < 8 << 20 or last["rss"] < 8 << 20 or e["footprint"] < e["used"]:
        sys.exit(f"{path}: used {e['used']}, rss {last['rss']}")
    if [s["t_ms"] for s in samples] != sorted(s["t_ms"] for s in samples):
        sys.exit(f"{path}: time goes back")
EOF2

# A timeline path without %p: the parent keeps it, each forked child writes
# PATH.<its pid>, never into its parent's file.
EXECMEM_TIMELINE="$WORK/one.jsonl" EXECMEM_TIMELINE_MS=20 LD_PRELOAD="$PRELOAD" "$HOLD" 1 0 2 >/dev/null
expect "without %p: want one.jsonl and two one.jsonl.<pid>, got: $(ls "$WORK" | grep '^one')" \
  [ "$(ls "$WORK" | grep -cE '^one\.jsonl(\.[0-9]+)?$')" -eq 3 ]
expect "without %p: a file holds two headers or another pid's samples" \
  $py - "$WORK" <<'EOF2'
import glob, json, os, sys
for path in glob.glob(os.path.join(sys.argv[1], "one.jsonl*")):
    lines = [json.loads(l) for l in open(path)]
    pids = {l["pid"] for l in lines if "pid" in l}
    if len(pids) != 1 or sum("timeline" in l for l in lines) != 1:
        sys.exit(f"{path}: pids {pids}")
    if not path.endswith(".jsonl") and not path.endswith(f".{pids.pop()}"):
        sys.exit(f"{path}: not named by its pid")
EOF2

# Text reports on stderr name the pid and the program: four distinct ones.
EXECMEM_STATS=stderr LD_PRELOAD="$PRELOAD" "$HOLD" 1 0 3 >/dev/null 2>"$WORK/err"
n=$(grep -oE '^execmem stats \(version [0-9]+\) of pid [0-9]+ \(shim_hold\)$' "$WORK/err" | sort -u | wc -l)
expect "EXECMEM_STATS=stderr: $n distinct 'of pid N (shim_hold)' headers, want 4: $(head -3 "$WORK/err")" [ "$n" -eq 4 ]

# %t and %%: the start time (UTC) and a literal %.
EXECMEM_STATS="$WORK/t.%t.%%.json" LD_PRELOAD="$PRELOAD" /bin/true
expect "%t / %% not expanded: $(ls "$WORK" | grep '^t\.')" \
  [ "$(ls "$WORK" | grep -cE '^t\.20[0-9]{6}T[0-9]{6}Z\.%\.json$')" -eq 1 ]
# A file named like a format stays possible with ./
(cd "$WORK" && EXECMEM_STATS=./json LD_PRELOAD="$PRELOAD" /bin/true)
expect "EXECMEM_STATS=./json did not write ./json" $py -m json.tool "$WORK/json" /dev/null

# ---- 2. bad values -------------------------------------------------------------
touch "$WORK/a-file"
lacks() { ! grep -q "$@"; }
refused() {  # refused WHAT-THE-MESSAGE-MUST-HOLD VAR=value...
  local want=$1
  shift
  env LD_PRELOAD="$PRELOAD" "$@" /bin/echo hi >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  expect "$*: exit status $rc, want 2 (stderr: $(cat "$WORK/err"))" [ $rc -eq 2 ]
  expect "$*: the program ran" [ ! -s "$WORK/out" ]
  expect "$*: want one line on stderr: $(cat "$WORK/err")" [ "$(wc -l <"$WORK/err")" -eq 1 ]
  expect "$*: message lacks '$want': $(cat "$WORK/err")" grep -qF -- "$want" "$WORK/err"
  echo "refused $*: $(cat "$WORK/err")"
}
refused 'EXECMEM_STATS "json": a format' EXECMEM_STATS=json
refused 'write ./text for a file of that name' EXECMEM_STATS=text
refused 'unknown %q (write %% for a %)' EXECMEM_STATS="$WORK/s.%q.json"
refused 'a % at the end' EXECMEM_STATS="$WORK/s.json%"
refused 'EXECMEM_TIMELINE' EXECMEM_TIMELINE=/nonexistent-dir/t.%p.jsonl
refused 'cannot create' EXECMEM_TIMELINE="$WORK/a-file/t.jsonl"
refused 'unknown %x' EXECMEM_TIMELINE="$WORK/t.%x"
refused 'a format' EXECMEM_TIMELINE=json
refused 'EXECMEM_TIMELINE_MS "0": zero' EXECMEM_TIMELINE="$WORK/t0" EXECMEM_TIMELINE_MS=0
refused 'EXECMEM_TIMELINE_MS "-5"' EXECMEM_TIMELINE="$WORK/t0" EXECMEM_TIMELINE_MS=-5
refused 'EXECMEM_TIMELINE_MS "abc"' EXECMEM_TIMELINE_MS=abc
refused 'from 1 to 3600000' EXECMEM_TIMELINE_MS=1.5
refused 'EXECMEM_TIMELINE_MAX "1k": below 64k' EXECMEM_TIMELINE_MAX=1k
refused 'EXECMEM_TIMELINE_MAX "lots"' EXECMEM_TIMELINE_MAX=lots
refused 'EXECMEM_PROMETHEUS' EXECMEM_PROMETHEUS=/nonexistent-dir/m.prom
refused 'unknown %z' EXECMEM_PROMETHEUS="$WORK/m.%z.prom"
expect "a refused start left a timeline behind: $(ls "$WORK")" [ ! -e "$WORK/t0" ]

# ---- 3. the size bound, Prometheus ----------------------------------------------
# Samples every millisecond until the bound ends them (the program waits for
# the note line, up to a minute: no timing assumption), then the final one.
EXECMEM_TIMELINE="$WORK/bound.jsonl" EXECMEM_TIMELINE_MS=1 EXECMEM_TIMELINE_MAX=64k \
  LD_PRELOAD="$PRELOAD" $py - "$WORK/bound.jsonl" <<'EOF2'
import sys, time
deadline = time.monotonic() + 60
while time.monotonic() < deadline and '"note"' not in open(sys.argv[1]).read():
    time.sleep(0.02)
EOF2
expect "the size bound: no note, a file over 64 KiB before it, or no final sample after it" \
  $py - "$WORK/bound.jsonl" <<'EOF2'
import json, sys
raw = open(sys.argv[1]).read().splitlines(keepends=True)
notes = [i for i, l in enumerate(raw) if '"note"' in l]
if len(notes) != 1 or notes[0] != len(raw) - 2:
    sys.exit(f"notes at {notes} of {len(raw)} lines")
if sum(len(l) for l in raw[:notes[0]]) > 64 << 10:
    sys.exit("over the bound")
if not json.loads(raw[-1])["final"]:
    sys.exit("no final sample after the note")
EOF2

EXECMEM_PROMETHEUS="$WORK/m.%p.prom" EXECMEM_TIMELINE_MS=10 LD_PRELOAD="$PRELOAD" \
  "$HOLD" 4 30 >/dev/null 2>"$WORK/err"
expect "EXECMEM_PROMETHEUS: stderr $(cat "$WORK/err")" [ ! -s "$WORK/err" ]
expect "want one .prom file and no temporary file: $(ls "$WORK" | grep '^m\.')" \
  [ "$(ls "$WORK" | grep -c '^m\.')" -eq 1 ] && [ "$(ls "$WORK" | grep -c '^m\.[0-9]*\.prom$')" -eq 1 ]
expect "the Prometheus file is not well-formed text exposition format" \
  $py "$(dirname "$0")/../prometheus_check.py" "$WORK"/m.*.prom --require execmem_executor_used_bytes

# ---- 4. execmem-advise and execmem-plot on real runs ----------------------------
ADVISE="$BIN/execmem-advise"
PLOT="$BIN/execmem-plot"
# A 4 GiB budget holding 48 MiB.
EXECMEM_MAX=4g EXECMEM_TIMELINE="$WORK/over.jsonl" EXECMEM_STATS="$WORK/over.json" \
  EXECMEM_TIMELINE_MS=20 LD_PRELOAD="$PRELOAD" "$HOLD" 48 200 >/dev/null
"$ADVISE" "$WORK/over.jsonl" >"$WORK/advice" 2>"$WORK/err"
rc=$?
cat "$WORK/advice"
cp "$WORK/advice" "$WORK/over.advice"
expect "advise over.jsonl: exit status $rc, want 1 (stderr $(cat "$WORK/err"))" [ $rc -eq 1 ]
expect "advise over.jsonl: not over-allocated" grep -q '^executor default: over-allocated' "$WORK/advice"
max=$(grep -oE 'recommended: .*EXECMEM_MAX=[0-9.]+[mg]' "$WORK/advice" | grep -oE '[0-9.]+[mg]$')
expect "advise over.jsonl: recommended max '$max' is not under 1 GiB" \
  $py -c "import sys; v='$max'; sys.exit(0 if v.endswith('m') and 48 <= int(v[:-1]) < 1024 else 1)"
expect "advise over.jsonl: no Spark or Kubernetes settings" \
  grep -qE 'spark.executor.memory=[0-9]+m spark.executor.memoryOverhead=[0-9]+m' "$WORK/advice"
expect "advise over.jsonl: no Kubernetes settings" \
  grep -qE 'requests.memory: [0-9]+Mi, limits.memory: [0-9]+Mi' "$WORK/advice"
"$ADVISE" "$WORK/over.json" >"$WORK/advice2"
expect "advise on the stats report: not over-allocated: $(cat "$WORK/advice2")" \
  grep -q '^executor default: over-allocated' "$WORK/advice2"

# A starved executor: allocations refused at EXECMEM_MAX=32m.
EXECMEM_INITIAL=16m EXECMEM_MAX=32m EXECMEM_TIMELINE="$WORK/starved.jsonl" EXECMEM_TIMELINE_MS=20 \
  LD_PRELOAD="$PRELOAD" "$HOLD" 64 100 >"$WORK/out"
expect "the starved run was not refused: $(cat "$WORK/out")" grep -q refused "$WORK/out"
"$ADVISE" "$WORK/starved.jsonl" >"$WORK/advice" 2>"$WORK/err"
rc=$?
cat "$WORK/advice"
expect "advise starved.jsonl: exit status $rc, want 1" [ $rc -eq 1 ]
expect "advise starved.jsonl: not under-allocated" grep -q '^executor default: under-allocated' "$WORK/advice"
max=$(grep -oE 'recommended: .*EXECMEM_MAX=[0-9.]+[mg]' "$WORK/advice" | grep -oE '[0-9.]+[mg]$')
expect "advise starved.jsonl: recommended max '$max' not above 1.2 x 32m" \
  $py -c "import sys; v='$max'; sys.exit(0 if v.endswith('g') or int(v[:-1]) >= 39 else 1)"

# A budget that fits: ok, exit status 0.
EXECMEM_INITIAL=56m EXECMEM_MAX=64m EXECMEM_OVERHEAD=8m EXECMEM_TIMELINE="$WORK/fit.jsonl" \
  EXECMEM_TIMELINE_MS=20 LD_PRELOAD="$PRELOAD" "$HOLD" 48 100 >/dev/null
"$ADVISE" "$WORK/fit.jsonl" >"$WORK/advice"
rc=$?
cat "$WORK/advice"
expect "advise fit.jsonl: exit status $rc, want 0" [ $rc -eq 0 ]
expect "advise fit.jsonl: not ok" grep -q '^executor default: ok$' "$WORK/advice"
# A static budget (initial = max) while use varies: the program holds little
# for five samples, then 24 MiB for two or more, then little again for more
# samples than it held 24 MiB (it counts its own timeline's lines, waiting up
# to a minute each: no timing assumption). Most samples are little however
# long each phase takes on a loaded machine (zeroing 24 MiB took 38 samples
# in one run; the interpreter's start and exit hold little), so the median
# is below half the peak.
EXECMEM_INITIAL=64m EXECMEM_MAX=64m EXECMEM_TIMELINE="$WORK/static.jsonl" EXECMEM_TIMELINE_MS=20 \
  LD_PRELOAD="$PRELOAD" $py - "$WORK/static.jsonl" <<'EOF2'
import sys, time
def lines():
    return len(open(sys.argv[1]).readlines())
def wait_for(n):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and lines() < n:
        time.sleep(0.005)
wait_for(6)                        # the header and five samples
start = lines()
block = bytearray(24 << 20)        # (zeroing it takes many samples under load)
wait_for(lines() + 2)
del block
held = lines() - start + 1         # samples that may have seen the block (one in flight)
wait_for(lines() + held + 2)
EOF2
"$ADVISE" "$WORK/static.jsonl" >"$WORK/advice"
rc=$?
cat "$WORK/advice"
expect "advise static.jsonl: exit status $rc, want 1" [ $rc -eq 1 ]
expect "advise static.jsonl: not static" grep -q '^executor default: static$' "$WORK/advice"
expect "advise over.jsonl: the 102 MiB overhead of 1 GiB for a few MiB used is not mis-sized" \
  grep -q '^executor default: over-allocated, overhead-mis-sized$' "$WORK/over.advice"

# Several runs at once: one verdict per executor, the worst wins the status.
"$ADVISE" "$WORK/fit.jsonl" "$WORK/starved.jsonl" >"$WORK/advice"
expect "advise of two runs: exit status $?, want 1" [ $? -eq 1 ]

# Bad input: one line naming the file (and the line), exit status 2, no traceback.
size=$(stat -c %s "$WORK/over.jsonl")
head -c $((size - 40)) "$WORK/over.jsonl" >"$WORK/cut.jsonl"
lines=$(wc -l <"$WORK/cut.jsonl")
printf 'not json\n' >"$WORK/garbage.txt"
for bad in "$WORK/cut.jsonl" "$WORK/garbage.txt" "$WORK/missing.jsonl"; do
  for tool in "$ADVISE" "$PLOT -o $WORK/bad.png"; do
    $tool "$bad" >"$WORK/out" 2>"$WORK/err"
    rc=$?
    expect "$tool $bad: exit status $rc, want 2" [ $rc -eq 2 ]
    expect "$tool $bad: want one line on stderr: $(cat "$WORK/err")" [ "$(wc -l <"$WORK/err")" -eq 1 ]
    expect "$tool $bad: the message does not name the file: $(cat "$WORK/err")" grep -qF "$bad" "$WORK/err"
    expect "$tool $bad: a traceback" lacks Traceback "$WORK/err"
  done
done
"$ADVISE" "$WORK/cut.jsonl" 2>"$WORK/err"
echo "truncated: $(cat "$WORK/err")"
expect "the truncated timeline's error does not name line $((lines + 1)): $(cat "$WORK/err")" \
  grep -qF "cut.jsonl:$((lines + 1)):" "$WORK/err"

"$PLOT" "$WORK/over.jsonl" -o "$WORK/over.png" 2>"$WORK/err"
expect "execmem-plot PNG: exit $?, $(cat "$WORK/err")" [ "$(head -c 8 "$WORK/over.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
"$PLOT" "$WORK/starved.jsonl" -o "$WORK/starved.svg" 2>"$WORK/err"
expect "execmem-plot SVG: no <svg> with an OOM mark: $(cat "$WORK/err")" \
  grep -q OOM "$WORK/starved.svg"
expect "execmem-plot SVG: no max line" grep -q '>max<' "$WORK/starved.svg"
"$PLOT" "$WORK/over.jsonl" -o "$WORK/over.jpg" 2>"$WORK/err"
expect "execmem-plot -o .jpg: exit status $?, want 2" [ $? -eq 2 ]

finish observe
