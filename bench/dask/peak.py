#!/usr/bin/env python3
"""What a Dask worker's memory is made of around its peak, per allocator.

    bench/dask/peak.py OUT.json [--workload groupby] [--rounds 3]
                       [--allocators execmem-base,execmem,glibc]

Interleaved rounds, each a LocalCluster as run.py starts it (2 workers x 1
thread; execmem-base: $DASK_BENCH_BASE_PRELOAD, as run.py). After the warm-up
and 1 s idle, a thread inside each worker samples every 10 ms, through the
workload: VmRSS and, under execmem, the pool's held and cached bytes and the
default executor's used and footprint. Per worker it reports the start, the
peak RSS (the worker's VmHWM) and the samples at two moments: the first one at
the highest RSS and the one at the highest `used` (the churn's in-use peak,
where the committed heap grows). docs/python-arenas.md.
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/dask/run.py)
from distributed import Client  # noqa: E402
from execmem_dask import workloads  # noqa: E402

COLUMNS = ("t", "rss", "held", "cached", "used", "footprint")


def start_sampler(dask_worker=None):
    """In a worker: samples COLUMNS every 10 ms until stop_sampler."""
    from execmem_dask._lib import shim, shim_loaded

    lib = shim() if shim_loaded() else None
    samples, stop = [], threading.Event()

    def loop():
        while not stop.is_set():
            with open("/proc/self/statm") as f:
                row = [time.monotonic(), int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")]
            if lib is not None:
                p, e = lib.pool_stats(), lib.executor_stats()
                row += [p.held, p.cached, e.used, e.footprint]
            samples.append(row)
            stop.wait(0.01)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    dask_worker._peak_probe = (samples, stop, t)


def stop_sampler(dask_worker=None):
    samples, stop, t = dask_worker._peak_probe
    stop.set()
    t.join()
    return os.getpid(), samples


def summary(samples, hwm):
    mib = lambda x: round(x / 2**20, 1)  # noqa: E731
    def at(i):
        return {c: mib(v) for c, v in zip(COLUMNS[1:], samples[i][1:])}
    out = {"start": at(0), "peak_rss": mib(hwm), "at_max_rss":
           at(max(range(len(samples)), key=lambda i: samples[i][1]))}
    if len(samples[0]) > 2:
        out["at_max_used"] = at(max(range(len(samples)), key=lambda i: samples[i][4]))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--workload", default="groupby", choices=workloads.WORKLOADS)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--allocators", default="execmem-base,execmem,glibc")
    args = p.parse_args()
    allocators = run.parse_allocators(p, args.allocators)
    out = []
    for rnd in range(args.rounds):
        for a in allocators[rnd % len(allocators):] + allocators[:rnd % len(allocators)]:
            cluster = run.start_cluster(a)
            client = Client(cluster)
            client.run(run._warm)
            time.sleep(1)
            pids = run.worker_pids()
            for pid in pids:
                run.reset_hwm(pid)
            client.run(start_sampler)
            workloads.run(args.workload, client, args.scale)
            samples = client.run(stop_sampler)
            peaks = {pid: run.hwm(pid) for pid in pids}
            client.close()
            cluster.close()
            for pid, s in samples.values():
                row = dict(round=rnd, allocator=a, workload=args.workload,
                           **summary(s, peaks.get(pid) or max(r[1] for r in s)))
                out.append(row)
                print(json.dumps(row), flush=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
