#!/usr/bin/python3
"""execmem-advise and execmem-plot on made-up files (issue 22): each case is
one of the issue's wrong answers, checked against the tools in BIN_DIR.

usage: advise_test.py BIN_DIR"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

MIB = 1 << 20
FAILURES = []


def check(condition, what):
    print(f"{'ok  ' if condition else 'FAIL'} {what}", flush=True)
    if not condition:
        FAILURES.append(what)


def executor(name="default", used=0, peak=None, initial=64 * MIB, max_=256 * MIB,
             overhead=8 * MIB, ooms=0, above_ns=0, footprint=None):
    return {"name": name, "used": used, "peak_used": peak if peak is not None else used,
            "footprint": footprint if footprint is not None else used + MIB,
            "peak_footprint": (peak or used) + MIB, "initial": initial, "max": max_,
            "overhead": overhead, "spill_calls": 0, "bytes_spilled": 0, "oom_count": ooms,
            "ns_above_initial": above_ns}


def stats(path, pid, program, start=1_800_000_000, exit_status=None, **e):
    report = {"version": 3, "pid": pid, "program": program, "start": start,
              "pool": {"resident": 80 * MIB, "untracked": 10 * MIB},
              "executors": [executor(**e)]}
    if exit_status is not None:
        report["exit_status"] = exit_status
    with open(path, "w") as f:
        json.dump(report, f)
    return path


def timeline(path, pid, program, samples, start=1_800_000_000):
    """samples: list of executor() dicts, one a second."""
    with open(path, "w") as f:
        f.write(json.dumps({"timeline": 1, "pid": pid, "program": program, "start": start,
                            "interval_ms": 1000}) + "\n")
        for i, e in enumerate(samples):
            line = {"t_ms": i * 1000, "executors": [e], "pool": {"untracked": 10 * MIB},
                    "rss": 80 * MIB}
            if i == len(samples) - 1:
                line["final"] = True
            f.write(json.dumps(line) + "\n")
    return path


def shared_pool(name="etl", capacity=1024 * MIB, reserved=0, granted=0, peak=None, members=2,
                refusals=0, own=0, used=None):
    """The shared-pool figures of a "pool" object (EXECMEM_STATS_VERSION 4)."""
    return {"shared_name": name, "shared_capacity": capacity, "shared_reserved": reserved,
            "shared_granted": granted,
            "shared_peak": peak if peak is not None else reserved + granted,
            "shared_members": members, "shared_refusals": refusals,
            "shared_reclaimed_members": 0, "shared_reclaimed_bytes": 0, "member_reserved": 0,
            "member_granted": own, "member_used": used if used is not None else own,
            "member_asked": 0, "member_answered": 0}


def member_timeline(path, pid, pools, used=None):
    """A member's timeline: one sample a second, pools[i] its "pool" object."""
    with open(path, "w") as f:
        f.write(json.dumps({"timeline": 1, "pid": pid, "program": "worker",
                            "start": 1_800_000_000, "interval_ms": 1000}) + "\n")
        for i, p in enumerate(pools):
            u = used[i] if used else p["member_used"]
            line = {"t_ms": i * 1000, "pool": dict(p, untracked=10 * MIB), "rss": 80 * MIB,
                    "executors": [executor(used=u, initial=0, max_=1024 * MIB)],
                    "final": i == len(pools) - 1}
            f.write(json.dumps(line) + "\n")
    return path


def advise(bin_dir, *files):
    r = subprocess.run([sys.executable, os.path.join(bin_dir, "execmem-advise"), *files],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def size(text):
    n, unit = text.split()
    return float(n) * {"B": 1, "KiB": 1 << 10, "MiB": MIB, "GiB": 1 << 30}[unit]


def main(bin_dir):
    work = tempfile.mkdtemp(prefix="execmem-advise-test-")
    try:
        # 1. A stats report alone: p95 and median are of the same figures
        # (the run's peak), so p95 is never below the median.
        f = stats(f"{work}/alone.json", 10, "python3", used=475_000, peak=int(64.1 * MIB),
                  max_=64 * MIB, initial=64 * MIB, exit_status=0)
        _, out = advise(bin_dir, f)
        m = re.search(r"p95[^0-9]*([0-9.]+ [KMG]?i?B), median[^0-9]*([0-9.]+ [KMG]?i?B)", out)
        check(m is not None and size(m.group(1)) >= size(m.group(2)),
              f"stats report: p95 >= median: {m.group(0) if m else out}")

        # 2. A timeline and a stats report of the same process are one run.
        e = dict(used=40 * MIB, initial=16 * MIB, max_=48 * MIB, ooms=2)
        t = timeline(f"{work}/same.jsonl", 11, "etl", [executor(**e)] * 5)
        s = stats(f"{work}/same.json", 11, "etl", exit_status=1, **e)
        _, out = advise(bin_dir, t, s)
        check("(1 run(s)" in out and "OOMs 2" in out,
              f"timeline + stats of one process: 1 run, 2 OOMs: {out.splitlines()[1:2]}")

        # 3. A worker and the command it ran (same preload) are judged apart.
        w = stats(f"{work}/worker.json", 20, "python3", used=MIB, peak=600 * MIB,
                  max_=1024 * MIB, initial=256 * MIB, exit_status=0)
        c = stats(f"{work}/uname.json", 21, "uname", used=0, peak=100_000, max_=1024 * MIB,
                  initial=256 * MIB, exit_status=0)
        _, out = advise(bin_dir, w, c)
        check("executor default (python3)" in out and "executor default (uname)" in out,
              f"a child program's figures are not merged into its parent's: "
              f"{[l for l in out.splitlines() if l.startswith('executor')]}")
        worker = out.split("executor default (uname)")[0]
        check("used peak 600.0 MiB" in worker or "used peak 600 MiB" in worker,
              "the worker's figures are its own")

        # 4. Only EXECMEM_MAX set: initial = max. No setting shown that was not
        # made, no "above initial", and the plot's max line is visible.
        samples = [executor(used=u * MIB, initial=64 * MIB, max_=64 * MIB,
                            above_ns=i * 10**9) for i, u in enumerate([20, 60, 62, 63, 64])]
        samples[-1]["used"] = int(64.1 * MIB)
        t = timeline(f"{work}/maxonly.jsonl", 30, "app", samples)
        _, out = advise(bin_dir, t)
        now = next((l for l in out.splitlines() if "budget now" in l), "")
        check("EXECMEM_INITIAL=" not in now and "initial = max" in now,
              f"initial = max: the budget now shows only what was set: {now.strip()}")
        check("above initial" not in out, "initial = max: no 'above initial' figure or note")
        if shutil.which("gnuplot"):
            svg = f"{work}/maxonly.svg"
            r = subprocess.run([sys.executable, os.path.join(bin_dir, "execmem-plot"), t, "-o",
                                svg], capture_output=True, text=True, timeout=120)
            text = open(svg).read() if os.path.exists(svg) else r.stderr
            check("max (= initial)" in text,
                  "the plot names the one line 'max (= initial)' when they coincide")

        # 5. A refusal with used far under max: the request was large; 20 %
        # more max is not the answer.
        f = stats(f"{work}/large.json", 40, "app", used=MIB, peak=2 * MIB, max_=64 * MIB,
                  initial=16 * MIB, ooms=1, exit_status=1)
        _, out = advise(bin_dir, f)
        check("perhaps larger than max" in out and "raised by 20 %" not in out,
              f"a request larger than what was left: {[l for l in out.splitlines() if 'why' in l]}")
        rec = re.search(r"recommended: .*EXECMEM_MAX=(\S+)", out)
        check(rec is not None and rec.group(1) == "64m",
              f"and max is not raised by 20 % blindly: {rec.group(0) if rec else out}")

        # 6. Refused, then adapted and exited 0: not under-allocated.
        f = stats(f"{work}/adapted.json", 50, "app", used=30 * MIB, peak=60 * MIB,
                  max_=64 * MIB, initial=48 * MIB, ooms=3, exit_status=0)
        status, out = advise(bin_dir, f)
        first = out.splitlines()[0]
        check("under-allocated" not in first and "adapted and exited 0" in out,
              f"a program that adapted and exited 0: {first}")
        # ... and the same refusals in a program that failed are.
        f = stats(f"{work}/failed.json", 51, "app", used=30 * MIB, peak=60 * MIB,
                  max_=64 * MIB, initial=48 * MIB, ooms=3, exit_status=1)
        status, out = advise(bin_dir, f)
        check(status == 1 and "under-allocated" in out.splitlines()[0],
              f"the same refusals in a program that exited 1: {out.splitlines()[0]}")

        # 7. Advice for Dask's memory_limit too.
        dask = next((l for l in out.splitlines() if "Dask:" in l), "")
        m = re.search(r'memory_limit="([0-9]+)MiB"', dask)
        check(m is not None and int(m.group(1)) * MIB * 0.8 > 64 * MIB * 1.2,
              f"Dask advice: {dask.strip()}")

        # 8. A shared pool judged as a whole. Two members peaking at different
        # times, 600 MiB together at most of 1 GiB, nothing refused: ok, and
        # the static split they would have needed is shown.
        a = member_timeline(f"{work}/m1.jsonl", 60, [
            shared_pool(granted=g, own=o) for g, o in
            ((100 * MIB, 100 * MIB), (600 * MIB, 500 * MIB), (200 * MIB, 100 * MIB))])
        b = member_timeline(f"{work}/m2.jsonl", 61, [
            shared_pool(granted=g, own=o) for g, o in
            ((100 * MIB, 0), (550 * MIB, 100 * MIB), (500 * MIB, 450 * MIB))])
        status, out = advise(bin_dir, a, b)
        lines = out.splitlines()
        check(lines[0] == "shared pool etl: ok", f"a pool used at 59 %: ok: {lines[:1]}")
        check("figures (2 member run(s), 6 sample(s)): capacity 1 GiB, members' peak total "
              "(reserved + granted) 600 MiB (59 %)" in out, f"the pool's figures: {lines[1:2]}")
        check("static split: each member's own peak together is 950 MiB" in out,
              "each member's peak together (what a static split needs)")
        check("recommended: EXECMEM_SHARED_CAPACITY=1g" in out, "ok: the capacity is kept")
        check(any(l.startswith("executor default") for l in lines),
              "the executors are still judged one by one")

        # 9. Refusals: under-allocated, capacity raised by 20 %.
        a = member_timeline(f"{work}/full.jsonl", 62, [
            shared_pool(granted=g, own=g, refusals=r, capacity=512 * MIB) for g, r in
            ((200 * MIB, 0), (510 * MIB, 3), (300 * MIB, 7))])
        status, out = advise(bin_dir, a)
        check(status == 1 and out.startswith("shared pool etl: under-allocated\n"),
              f"a pool that refused grants is under-allocated (exit 1): {out.splitlines()[:1]}")
        check("refused 7 reservation(s) or grant(s)" in out and
              "EXECMEM_SHARED_CAPACITY=615m" in out,
              f"7 refusals, 512 MiB x 1.2: {[l for l in out.splitlines() if 'shared' in l]}")

        # 10. Held far under the capacity: over-allocated, from a stats report
        # too (its pool object), with the recorded peak rather than the last total.
        f = stats(f"{work}/over.json", 63, "worker", used=10 * MIB, peak=20 * MIB,
                  exit_status=0)
        doc = json.load(open(f))
        doc["pool"].update(shared_pool(name="big", capacity=8192 * MIB, granted=10 * MIB,
                                       peak=400 * MIB, members=1, own=10 * MIB))
        json.dump(doc, open(f, "w"))
        status, out = advise(bin_dir, f)
        check(status == 1 and out.startswith("shared pool big: over-allocated\n") and
              "EXECMEM_SHARED_CAPACITY=460m" in out,
              f"a pool held at 5 % at most: over-allocated, 400 MiB + 15 %: {out.splitlines()[:1]}")

        # 11. Corrupt shared figures: one line naming the file, exit 2.
        for bad, why in (({"shared_capacity": "1g"}, '"shared_capacity" is missing or not a number'),
                         ({"shared_name": 7}, '"shared_name" is not a pool name'),
                         ({"shared_capacity": 0}, "with a capacity of 0")):
            doc["pool"] = dict(shared_pool(name="big"), **bad)
            json.dump(doc, open(f, "w"))
            status, out = advise(bin_dir, f)
            check(status == 2 and out.count("\n") == 1 and f"{f}:1: " in out and why in out,
                  f"corrupt shared figures ({bad}): one line, exit 2: {out.strip()}")
        with open(f"{work}/badpool.jsonl", "w") as g:
            g.write(json.dumps({"timeline": 1, "pid": 1, "program": "x"}) + "\n")
            g.write(json.dumps({"t_ms": 0, "pool": [1, 2], "executors": []}) + "\n")
        status, out = advise(bin_dir, f"{work}/badpool.jsonl")
        check(status == 2 and out.count("\n") == 1 and '"pool" is not an object' in out,
              f"a timeline whose pool is not an object: one line, exit 2: {out.strip()}")

        # 12. Corrupt files that Python's json reads without complaint (NaN,
        # Infinity, numbers past 64 bits, a list for the program, nesting past
        # the recursion limit), an empty file and binary garbage: one line
        # naming the file and the line, exit 2, no traceback, from both tools
        # (they tracebacked on the first six: OverflowError, ValueError,
        # TypeError, RecursionError, 2026-12-08).
        good = executor(used=10 * MIB)
        header = {"timeline": 1, "pid": 1, "program": "x"}

        def one_sample(path, head=header, **changes):
            sample = {"t_ms": 0, "executors": [dict(good, **changes)], "pool": {}, "rss": 0}
            with open(path, "w") as g:
                g.write(json.dumps(head) + "\n" + json.dumps(sample) + "\n")
            return path

        bad_files = [
            (one_sample(f"{work}/inf.jsonl", used=float("inf")), ":2: ", '"used"'),
            (one_sample(f"{work}/nan.jsonl", max_=0, max=float("nan")), ":2: ", '"max"'),
            (one_sample(f"{work}/huge.jsonl", used=10 ** 400), ":2: ", "2^64"),
            (one_sample(f"{work}/peak.jsonl", peak_used="x"), ":2: ", '"peak_used"'),
            (one_sample(f"{work}/program.jsonl", head=dict(header, program=[1])), ":1: ",
             '"program" is not a string'),
            (one_sample(f"{work}/pid.jsonl", head=dict(header, pid="1")), ":1: ",
             '"pid" is not a whole number'),
        ]
        with open(f"{work}/deep.jsonl", "w") as g:
            g.write(json.dumps(header) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
        bad_files.append((f"{work}/deep.jsonl", ":2: ", "nested too deeply"))
        report = {"pool": {"resident": float("inf")}, "executors": [good], "program": "x"}
        with open(f"{work}/resident.json", "w") as g:
            json.dump(report, g)
        bad_files.append((f"{work}/resident.json", ":1: ", '"resident"'))
        open(f"{work}/empty.jsonl", "w").close()
        bad_files.append((f"{work}/empty.jsonl", ": ", "empty file"))
        with open(f"{work}/binary.jsonl", "wb") as g:
            g.write(bytes(range(256)) * 16)
        bad_files.append((f"{work}/binary.jsonl", ":2: ", "not UTF-8"))  # byte 10 ends line 1
        with open(f"{work}/cut.jsonl", "w") as g:
            g.write('{"timeline": 1, "pid": 1')
        bad_files.append((f"{work}/cut.jsonl", ":1: ", "truncated or corrupt"))
        tools = [["execmem-advise"]]
        if shutil.which("gnuplot"):
            tools.append(["execmem-plot", "-o", f"{work}/bad.png"])
        for path, where, why in bad_files:
            for tool in tools:
                r = subprocess.run([sys.executable, os.path.join(bin_dir, tool[0]), path,
                                    *tool[1:]], capture_output=True, text=True, timeout=120)
                err = r.stderr
                check(r.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err and
                      f"{path}{where}" in err and why in err,
                      f"{tool[0]} {os.path.basename(path)}: one line naming the file and "
                      f"'{why}', exit 2: {r.returncode}, {err.strip()[-200:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"advise_test: {len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: advise_test.py BIN_DIR")
    sys.exit(main(sys.argv[1]))
