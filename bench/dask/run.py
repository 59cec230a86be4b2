#!/usr/bin/env python3
"""Dask workloads under glibc (Dask's defaults), jemalloc and execmem.

    bench/dask/run.py --out DIR [--rounds 3] [--scale 10] [--allocators glibc,jemalloc,execmem]

execmem-base (with $DASK_BENCH_BASE_PRELOAD) is execmem with another build's shim;
execmem-noidle is execmem without the plugin's idle trim (EXECMEM_DASK_IDLE_TRIM_MIB=0).

execmem runs pymalloc with its arenas from execmem (the default of
execmem_dask); execmem-malloc the former PYTHONMALLOC=malloc.

Per round and allocator (interleaved: round r starts at the r-th allocator), a
LocalCluster of 2 worker processes x 1 thread, memory_limit 1.5 GB, runs the
four workloads of integrations/dask (execmem_dask.workloads) in turn. For each
workload: wall time; the workers' CPU time (user + system); peak RSS per
worker (VmHWM, reset before the workload through /proc/PID/clear_refs, else
sampled); Dask's unmanaged memory at the
end of the workload (process memory minus managed bytes, largest worker);
pauses (the memory monitor's running -> paused transitions), restarts
(worker processes that died) and the execmem plugin's idle trims during the
workload (dask.json only). Results must equal Dask's synchronous scheduler.
Writes DIR/dask.json and DIR/dask.md (medians).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "integrations", "dask"))

import dask  # noqa: E402
import psutil  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import execmem_dask  # noqa: E402
from execmem_dask import workloads  # noqa: E402

MEMORY_LIMIT = "1.5GB"
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def _warm():
    import dask.array  # noqa: F401
    import dask.dataframe  # noqa: F401
    import pandas  # noqa: F401


def _memory(dask_worker):
    return dask_worker.monitor.get_process_memory(), dask_worker.state.nbytes, _idle_trims(
        dask_worker)


def _idle_trims(dask_worker) -> int:
    """The execmem plugin's idle trims so far (0 without it)."""
    plugin = dask_worker.plugins.get("execmem")
    return plugin.metrics().get("idle_trims", 0) if plugin is not None else 0


def worker_pids() -> set[int]:
    me = psutil.Process()
    out = set()
    for child in me.children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                out.add(child.pid)
        except psutil.Error:
            pass
    return out


def reset_hwm(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """RSS of every worker process every 50 ms; notes the pids that die."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak: dict[int, int] = {}
        self.seen: set[int] = set()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for pid in worker_pids():
                self.seen.add(pid)
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    continue
                self.peak[pid] = max(self.peak.get(pid, 0), rss)
            self.stop.wait(0.05)


def cpu_seconds(pids) -> float:
    """User + system CPU seconds of these processes so far."""
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


# execmem: pymalloc with its arenas from execmem (the default, docs/python-arenas.md);
# execmem-malloc: PYTHONMALLOC=malloc, every Python object a malloc (the opt-out);
# execmem-base: as execmem, with another build's shim ($DASK_BENCH_BASE_PRELOAD, its
# _execmem_arena beside it), so that a change and its base run interleaved;
# execmem-noidle: as execmem, without the plugin's idle trim.
EXECMEM_VARIANTS = {"execmem": "arenas", "execmem-malloc": "malloc", "execmem-base": "arenas",
                    "execmem-noidle": "arenas"}
IDLE_TRIM_OFF = {"execmem-noidle": "0"}  # the workers' $EXECMEM_DASK_IDLE_TRIM_MIB
BASE_PRELOAD = "DASK_BENCH_BASE_PRELOAD"
ALLOCATORS = ("glibc", "jemalloc", *EXECMEM_VARIANTS)


def start_cluster(allocator: str):
    kwargs = dict(n_workers=2, threads_per_worker=1, dashboard_address=":0")
    if allocator in EXECMEM_VARIANTS:
        preload = os.environ[BASE_PRELOAD] if allocator == "execmem-base" else None
        saved = os.environ.get("EXECMEM_DASK_IDLE_TRIM_MIB")
        if allocator in IDLE_TRIM_OFF:  # inherited by the workers the nannies spawn now
            os.environ["EXECMEM_DASK_IDLE_TRIM_MIB"] = IDLE_TRIM_OFF[allocator]
        try:
            return execmem_dask.local_cluster(MEMORY_LIMIT, preload=preload,
                                              python_objects=EXECMEM_VARIANTS[allocator],
                                              **kwargs)
        finally:
            if saved is None:
                os.environ.pop("EXECMEM_DASK_IDLE_TRIM_MIB", None)
            else:
                os.environ["EXECMEM_DASK_IDLE_TRIM_MIB"] = saved
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))  # Dask's defaults
    if allocator == "jemalloc":
        env["LD_PRELOAD"] = JEMALLOC
    saved = os.environ.get("LD_PRELOAD")
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            return LocalCluster(memory_limit=MEMORY_LIMIT, processes=True, **kwargs)
    finally:
        if saved is None:
            os.environ.pop("LD_PRELOAD", None)
        else:
            os.environ["LD_PRELOAD"] = saved


def run_allocator(allocator: str, scale: int, references: dict) -> list[dict]:
    cluster = start_cluster(allocator)
    client = Client(cluster)
    client.register_worker_plugin(workloads.PauseCounter())
    client.run(_warm)  # imports are not part of the first workload
    if allocator in EXECMEM_VARIANTS:
        execmem_dask.check_workers(client)
    rows = []
    for name in workloads.WORKLOADS:
        pids = worker_pids()
        exact = all(reset_hwm(p) for p in pids)
        pauses_before = sum(client.run(workloads.pauses).values())
        trims_before = sum(client.run(_idle_trims).values())
        sampler = Sampler()
        sampler.start()
        cpu0 = cpu_seconds(pids)
        t0 = time.perf_counter()
        error = None
        try:
            result = workloads.run(name, client, scale)
            ok = workloads.same(name, result, references[name])
        except Exception as e:  # a killed worker, a MemoryError: reported, not fatal
            result, ok, error = None, False, f"{type(e).__name__}: {str(e)[:200]}"
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(pids) - cpu0  # workers that died take theirs with them
        unmanaged = idle_trims = 0
        try:
            for rss, managed, trims in client.run(_memory).values():
                unmanaged = max(unmanaged, rss - managed)
                idle_trims += trims
            idle_trims -= trims_before
            pauses = sum(client.run(workloads.pauses).values()) - pauses_before
        except Exception:
            pauses = idle_trims = -1
        sampler.stop.set()
        sampler.join()
        alive = worker_pids()
        peaks = [hwm(p) if exact and p in alive and p in pids else sampler.peak.get(p, 0)
                 for p in sampler.seen | alive]
        restarts = len((pids | sampler.seen) - alive)
        del result
        rows.append(dict(allocator=allocator, workload=name, seconds=elapsed, cpu_seconds=cpu,
                         peak_rss_per_worker=max(peaks) if peaks else 0,
                         unmanaged_at_end=unmanaged, pauses=pauses, restarts=restarts,
                         idle_trims=idle_trims,
                         correct=ok, error=error, exact_peak=exact))
        print(f"  {name:8} {allocator:14} {elapsed:6.2f}s cpu {cpu:6.2f}s "
              f"peak {max(peaks, default=0) >> 20} MiB "
              f"unmanaged {unmanaged >> 20} MiB pauses {pauses} restarts {restarts} "
              f"idle trims {idle_trims}"
              f"{'' if ok else ' WRONG ' + str(error)}", file=sys.stderr, flush=True)
    client.close()
    cluster.close()
    return rows


def report(rows: list[dict], allocators: list[str], rounds: int, scale: int) -> str:
    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    lines = [f"Dask: LocalCluster of 2 worker processes x 1 thread, memory_limit {MEMORY_LIMIT}, "
             f"scale {scale}, {rounds} interleaved round(s); medians (pauses and restarts: "
             "totals over the rounds).", "",
             "| workload | allocator | time s | workers' CPU s | peak RSS per worker MiB "
             "| unmanaged at end MiB | pauses | restarts | results |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for name in workloads.WORKLOADS:
        for a in allocators:
            rs = [r for r in rows if r["workload"] == name and r["allocator"] == a]
            if not rs:
                continue
            lines.append(
                f"| {name} | {a} | {med([r['seconds'] for r in rs]):.2f} "
                f"| {med([r.get('cpu_seconds', float('nan')) for r in rs]):.2f} "
                f"| {med([r['peak_rss_per_worker'] for r in rs]) / 2**20:.0f} "
                f"| {med([r['unmanaged_at_end'] for r in rs]) / 2**20:.0f} "
                f"| {sum(max(r['pauses'], 0) for r in rs)} | {sum(r['restarts'] for r in rs)} "
                f"| {'equal' if all(r['correct'] for r in rs) else 'DIFFER/FAILED'} |")
    return "\n".join(lines) + "\n"


def parse_allocators(p: argparse.ArgumentParser, value: str) -> list[str]:
    """The --allocators list, or p.error naming what is wrong (also bench/dask/peak.py)."""
    allocators = value.split(",")
    for name in allocators:
        if name not in ALLOCATORS:
            p.error(f"unknown allocator {name!r}: one of {', '.join(ALLOCATORS)}")
    if "execmem-base" in allocators and not os.path.isfile(os.environ.get(BASE_PRELOAD, "")):
        p.error(f"execmem-base needs ${BASE_PRELOAD}: the base build's libexecmem_preload.so")
    if "jemalloc" in allocators and not os.path.exists(JEMALLOC):
        p.error(f"{JEMALLOC} is missing (apt-get install libjemalloc2)")
    return allocators


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--allocators", default="glibc,jemalloc,execmem")
    a = p.parse_args()
    allocators = parse_allocators(p, a.allocators)
    dask.config.set({"distributed.logging.distributed": "error"})
    os.makedirs(a.out, exist_ok=True)
    print(f"dask bench: references at scale {a.scale}", file=sys.stderr, flush=True)
    references = {n: workloads.reference(n, a.scale) for n in workloads.WORKLOADS}
    rows = []
    for r in range(a.rounds):
        order = allocators[r % len(allocators):] + allocators[:r % len(allocators)]
        for allocator in order:
            print(f"dask bench: round {r + 1}, {allocator}", file=sys.stderr, flush=True)
            rows += [dict(row, round=r + 1) for row in run_allocator(allocator, a.scale,
                                                                      references)]
            with open(os.path.join(a.out, "dask.json"), "w") as f:  # so far
                json.dump({"rounds": a.rounds, "scale": a.scale, "memory_limit": MEMORY_LIMIT,
                           "rows": rows}, f, indent=1)
    md = report(rows, allocators, a.rounds, a.scale)
    with open(os.path.join(a.out, "dask.md"), "w") as f:
        f.write(md)
    print(md)
    return 0 if all(r["correct"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
