#!/usr/bin/env python3
"""A Dask worker's resident memory idle and around one groupby, per allocator.

    bench/dask/idle.py OUT.json   (execmem-base: $DASK_BENCH_BASE_PRELOAD, as run.py)

3 interleaved rounds of execmem-base, execmem and glibc, each a LocalCluster as
run.py starts it (2 workers x 1 thread): the bench's warm-up, 2 s idle, each
worker's VmRSS / RssAnon / RssFile; then groupby at scale 10 and 2 s idle: VmHWM
(the peak since the worker started) and VmRSS. docs/python-arenas.md.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/dask/run.py)
from distributed import Client  # noqa: E402
from execmem_dask import workloads  # noqa: E402

FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def rss() -> dict:
    """This process's FIELDS in MiB (run in each worker)."""
    with open("/proc/self/status") as f:
        return {line.split(":")[0]: int(line.split()[1]) / 1024 for line in f
                if line.startswith(FIELDS)}


def main():
    out = []
    for rnd in range(3):
        for a in ["execmem-base", "execmem", "glibc"]:
            cluster = run.start_cluster(a)
            client = Client(cluster)
            client.run(run._warm)
            time.sleep(2)
            idle = client.run(rss)
            workloads.run("groupby", client, 10)
            time.sleep(2)
            after = client.run(rss)
            client.close()
            cluster.close()
            for w in idle:
                out.append(dict(round=rnd, allocator=a, idle=idle[w], after_groupby=after[w]))
                print(a, "idle", idle[w], "after groupby", after[w], flush=True)
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
