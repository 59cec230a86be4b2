#!/usr/bin/env python3
"""A skewed Dask workload: one pool for the host against a static split (issue 18).

    bench/dask/skewed.py --out DIR [--rounds 1] [--total 2GB] [--workers 4]

A LocalCluster of WORKERS processes x 1 thread on a host budget TOTAL. One
partition needs three times a worker's static share (TOTAL / WORKERS): its
32 MiB chunks are computed on one worker (a hot key) and held at once, then
summed where they live (execmem_dask.workloads.run_skewed). Three setups, in
turn per round (round r starts at the r-th):

  glibc-static    Dask's defaults, memory_limit TOTAL / WORKERS per worker;
  execmem-static  execmem_dask.local_cluster(TOTAL / WORKERS): a static budget each;
  execmem-shared  execmem_dask.local_cluster(TOTAL, shared=True): one pool of TOTAL.

For each: wall time, result (must equal the reference) or the error, peak RSS
per worker (largest VmHWM; sampled for workers that died), pauses (the memory
monitor's running -> paused moves), bytes spilled to disk, restarts (worker
processes that died). Writes DIR/dask-skewed.json and DIR/dask-skewed.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dask  # noqa: E402
from dask.utils import parse_bytes  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from run import Sampler, hwm, reset_hwm, worker_pids  # noqa: E402

import execmem_dask  # noqa: E402  (run.py put integrations/dask on the path)
from execmem_dask import workloads  # noqa: E402

SETUPS = ("glibc-static", "execmem-static", "execmem-shared")


def start(setup: str, total: int, n: int):
    kwargs = dict(n_workers=n, threads_per_worker=1, dashboard_address=":0")
    if setup == "execmem-shared":
        return execmem_dask.local_cluster(total, shared=True, **kwargs)
    if setup == "execmem-static":
        return execmem_dask.local_cluster(total // n, **kwargs)
    return LocalCluster(memory_limit=total // n, processes=True, **kwargs)


def run_one(setup: str, total: int, n: int, plan: dict, want: int) -> dict:
    cluster = start(setup, total, n)
    client = Client(cluster)
    client.wait_for_workers(n, timeout=300)
    client.register_worker_plugin(workloads.PauseCounter())
    pids = worker_pids()
    exact = all(reset_hwm(p) for p in pids)
    sampler = Sampler()
    sampler.start()
    t0 = time.perf_counter()
    error = None
    try:
        got = workloads.run_skewed(client, plan)
        ok = got == want
    except Exception as e:  # a killed worker, a MemoryError: reported, not fatal
        ok, error = False, f"{type(e).__name__}: {str(e)[:300]}"
    elapsed = time.perf_counter() - t0
    pauses = spilled = -1
    for attempt in range(3):  # a worker busy writing to disk may not answer in time
        try:
            pauses = sum(client.run(workloads.pauses).values())
            spilled = sum(client.run(workloads.spilled_bytes).values())
            break
        except Exception as e:
            print(f"  {setup}: cannot read the workers' counters ({attempt + 1} of 3): "
                  f"{type(e).__name__}: {e}", file=sys.stderr, flush=True)
    sampler.stop.set()
    sampler.join()
    alive = worker_pids()
    peaks = [hwm(p) if exact and p in alive and p in pids else sampler.peak.get(p, 0)
             for p in sampler.seen | alive]
    restarts = len((pids | sampler.seen) - alive)
    client.close()
    cluster.close()
    row = dict(setup=setup, seconds=elapsed, peak_rss_per_worker=max(peaks, default=0),
               pauses=pauses, spilled_bytes=spilled, restarts=restarts, correct=ok, error=error)
    print(f"  {setup:15} {elapsed:7.2f}s peak {row['peak_rss_per_worker'] >> 20} MiB pauses "
          f"{pauses} spilled {spilled >> 20} MiB restarts {restarts}"
          f"{'' if ok else ' FAILED ' + str(error)}", file=sys.stderr, flush=True)
    return row


def report(rows, total, n, plan, rounds) -> str:
    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    lines = [f"Dask, skewed partition: LocalCluster of {n} worker processes x 1 thread, host "
             f"budget {total >> 20} MiB (static share {plan['share'] >> 20} MiB); the hot "
             f"partition {plan['hot_chunks']} x {plan['chunk_bytes'] >> 20} MiB held on one "
             f"worker, {plan['even_chunks']} chunk(s) on each other; {rounds} round(s), medians "
             "(pauses, spilled, restarts: totals).", "",
             "| setup | time s | peak RSS per worker MiB | pauses | spilled to disk MiB "
             "| restarts | result |", "|---|---:|---:|---:|---:|---:|---|"]
    for s in SETUPS:
        rs = [r for r in rows if r["setup"] == s]
        if not rs:
            continue
        result = "equal" if all(r["correct"] for r in rs) else \
            "FAILED: " + "; ".join(str(r["error"])[:120] for r in rs if not r["correct"])
        lines.append(f"| {s} | {med([r['seconds'] for r in rs]):.2f} "
                     f"| {med([r['peak_rss_per_worker'] for r in rs]) / 2**20:.0f} "
                     f"| {sum(max(r['pauses'], 0) for r in rs)} "
                     f"| {sum(max(r['spilled_bytes'], 0) for r in rs) / 2**20:.0f} "
                     f"| {sum(r['restarts'] for r in rs)} | {result} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--total", default="2GB")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--setups", default=",".join(SETUPS))
    a = p.parse_args()
    setups = a.setups.split(",")
    for s in setups:
        if s not in SETUPS:
            p.error(f"unknown setup {s!r}: one of {', '.join(SETUPS)}")
    if a.workers < 2 or a.rounds < 1:
        p.error("--workers 2 or more, --rounds 1 or more")
    total = parse_bytes(a.total)
    dask.config.set({"distributed.logging.distributed": "error",
                     "distributed.scheduler.allowed-failures": 1})
    os.makedirs(a.out, exist_ok=True)
    plan = workloads.skewed_plan(total, a.workers)
    want = workloads.skewed_reference(plan, a.workers)
    rows = []
    for r in range(a.rounds):
        for i in range(len(setups)):
            s = setups[(i + r) % len(setups)]
            print(f"dask skewed: round {r + 1}, {s}", file=sys.stderr, flush=True)
            rows.append(dict(run_one(s, total, a.workers, plan, want), round=r + 1))
    with open(os.path.join(a.out, "dask-skewed.json"), "w") as f:
        json.dump({"total": total, "workers": a.workers, "plan": plan, "rounds": a.rounds,
                   "rows": rows}, f, indent=1)
    md = report(rows, total, a.workers, plan, a.rounds)
    with open(os.path.join(a.out, "dask-skewed.md"), "w") as f:
        f.write(md)
    print(md)
    shared_ok = all(r["correct"] and r["pauses"] == 0 and r["spilled_bytes"] == 0 and
                    r["restarts"] == 0 for r in rows if r["setup"] == "execmem-shared")
    return 0 if shared_ok else 1


if __name__ == "__main__":
    sys.exit(main())
