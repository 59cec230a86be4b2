"""The plugin's idle trim (docs/python-arenas.md, "Trim when the worker goes
idle"): a worker whose task stream has stopped gives the pool's cached pages
back to the OS, without waiting for execmem's decay.

1. The rules, without a cluster: `ExecmemPlugin._idle_tick` on a fake worker
   state and a fake shim, tick by tick — no trim while a task is executing,
   ready, waiting or fetched, nor at the first idle tick, nor when a task ran
   between two idle ticks, nor under the threshold; one trim at the second
   idle tick, and one handed to the task threads (execmem_trim gives back
   the calling thread's caches only); none again in the same idle period
   unless the threshold's worth is freed again. And `transition`: when the
   worker forgets its last task, one trim is scheduled on the loop (after
   the batch of releases), none while it holds a task or under the threshold.
2. In a worker started as local_cluster starts them, with
   EXECMEM_DECAY_MS=3600000 (the decay would keep the pages for an hour): a
   task allocates and frees 32 MiB of 1 MiB blocks and returns the pool's
   cached bytes, at least 16 MiB; the worker, idle after it, must bring them
   under 4 MiB (polled, 60 s at most) with one idle trim that returned them to
   the OS. With EXECMEM_DASK_IDLE_TRIM_MIB=0 (no idle trim) part 2 fails.
"""
import os
import time
from types import SimpleNamespace

from common import check, finish, preload_path

import execmem_dask
from execmem_dask.plugin import ExecmemPlugin

MIB = 1 << 20


# ---- 1. the rule, tick by tick ----------------------------------------------------
class FakeShim:
    def __init__(self) -> None:
        self.cached = 0
        self.trims = 0

    def pool_stats(self):
        return SimpleNamespace(cached=self.cached)

    def trim(self) -> None:
        self.trims += 1
        self.cached = 0


def fake_plugin():
    state = SimpleNamespace(executing=set(), long_running=set(), ready=[], constrained=[],
                            waiting=set(), in_flight_tasks=set(), executed_count=0, tasks={})
    plugin = ExecmemPlugin.__new__(ExecmemPlugin)
    plugin._closed = False
    plugin._shim = FakeShim()
    executor = SimpleNamespace(submitted=[])
    executor.submit = executor.submitted.append
    plugin._worker = SimpleNamespace(state=state, executors={"default": executor})
    plugin._idle_mark = None
    plugin._emptied = False
    plugin._loop = SimpleNamespace(callbacks=[])
    plugin._loop.add_callback = plugin._loop.callbacks.append
    plugin.idle_trims = plugin.idle_trimmed = plugin.idle_thread_trims = 0
    plugin.idle_trim_threshold = 4 * MIB
    return plugin, state, plugin._shim, executor


def ticks(plugin, n=1):
    for _ in range(n):
        plugin._idle_tick()


def rule():
    plugin, state, shim, executor = fake_plugin()
    shim.cached = 40 * MIB
    state.executing.add("t1")
    ticks(plugin, 3)
    check(shim.trims == 0, "no trim while a task executes")
    for busy in ("long_running", "waiting", "in_flight_tasks"):
        getattr(state, busy).add("t")
        ticks(plugin, 3)
        getattr(state, busy).discard("t")
    state.ready.append("t2")
    ticks(plugin, 3)
    check(shim.trims == 0, "no trim while a task is seceded, waiting, fetched or ready")
    state.ready.clear()
    state.executing.clear()
    state.executed_count += 2
    ticks(plugin)
    check(shim.trims == 0, "no trim at the first idle tick")
    state.executed_count += 1  # a task ran between two idle ticks
    ticks(plugin)
    check(shim.trims == 0, "no trim when a task ran since the previous idle tick")
    ticks(plugin)
    check(shim.trims == 1 and shim.cached == 0 and plugin.idle_trims == 1 and
          plugin.idle_trimmed == 40 * MIB,
          f"one trim at the second idle tick with no task between: {shim.trims} trims, "
          f"{plugin.idle_trimmed // MIB} MiB trimmed")
    check(executor.submitted == [shim.trim] and plugin.idle_thread_trims == 1,
          "and one trim handed to the task threads' executor (their own caches)")
    ticks(plugin, 10)
    check(shim.trims == 1, "no second trim in the same idle period")
    shim.cached = 3 * MIB
    ticks(plugin, 5)
    check(shim.trims == 1, "no trim under the threshold (3 MiB cached, threshold 4)")
    shim.cached = 6 * MIB  # keys released while idle freed more
    ticks(plugin)
    check(shim.trims == 2, "one more trim once the threshold's worth is freed in the period")
    plugin._closed = True
    shim.cached = 40 * MIB
    ticks(plugin, 3)
    check(shim.trims == 2, "no trim after teardown")
    check(len(executor.submitted) == 2, "each idle trim hands the task threads one")


def emptied():
    """The worker forgets its last task: trimmed after the batch of releases,
    without waiting for a tick."""
    plugin, state, shim, executor = fake_plugin()
    loop = plugin._loop
    shim.cached = 40 * MIB
    state.executed_count = 7
    state.tasks = {"a": 1, "b": 2}
    plugin.transition("a", "released", "forgotten")
    plugin.transition("x", "memory", "released")
    check(not loop.callbacks, "no trim while the worker still holds a task")
    state.tasks = {}
    plugin.transition("b", "memory", "released")
    check(not loop.callbacks, "none at a release that is not the last forget")
    plugin.transition("b", "released", "forgotten")
    plugin.transition("c", "released", "forgotten")  # the same batch
    check(len(loop.callbacks) == 1 and shim.trims == 0,
          "the last forget schedules one trim on the loop, after the batch")
    loop.callbacks.pop()()
    check(shim.trims == 1 and shim.cached == 0 and executor.submitted == [shim.trim],
          "which trims the loop's caches and the pool's, and hands the task threads one")
    shim.cached = 40 * MIB
    plugin.transition("c", "released", "forgotten")
    state.tasks = {"d": 1}  # a new task arrived before the callback ran
    loop.callbacks.pop()()
    check(shim.trims == 1, "no trim when a task arrived before the callback")
    state.tasks = {}
    shim.cached = 3 * MIB
    plugin.transition("d", "released", "forgotten")
    loop.callbacks.pop()()
    check(shim.trims == 1, "none under the threshold")


# ---- 2. in a worker --------------------------------------------------------------
def churn():
    """32 MiB of 1 MiB blocks, every page written, all freed; returns the
    pool's cached bytes after the frees."""
    from execmem_dask import _lib

    blocks = [bytearray(MIB) for _ in range(32)]
    for b in blocks:
        b[::4096] = b"\1" * (MIB // 4096)
    del blocks, b
    return _lib.shim().pool_stats().cached


def pool(dask_worker):
    m = dask_worker.plugins["execmem"].metrics()
    keys = ("pool_cached", "idle_trims", "idle_trimmed", "idle_thread_trims")
    return {k: m.get(k, 0) for k in keys} | {
        "returned": execmem_dask._lib.shim().pool_stats().returned_to_os}


def main():
    from distributed import Client

    rule()
    emptied()
    os.environ["EXECMEM_PRELOAD"] = preload_path()
    os.environ["EXECMEM_DECAY_MS"] = "3600000"  # inherited by the spawned worker
    cluster = execmem_dask.local_cluster("1GB", n_workers=1, threads_per_worker=1,
                                         dashboard_address=":0")
    try:
        with Client(cluster) as client:
            (before,) = client.run(pool).values()
            cached = client.submit(churn, pure=False).result()
            check(cached >= 16 * MIB,
                  f"the task left {cached / MIB:.1f} MiB in the pool's cache (>= 16)")
            deadline = time.monotonic() + 60
            while True:
                (now,) = client.run(pool).values()
                if now["pool_cached"] < 4 * MIB or time.monotonic() > deadline:
                    break
                time.sleep(0.2)  # polling; the deadline only bounds a failure
            check(now["pool_cached"] < 4 * MIB,
                  f"idle, the worker's pool caches {now['pool_cached'] / MIB:.1f} MiB (< 4), "
                  "with a decay of an hour")
            check(now["idle_trims"] >= before["idle_trims"] + 1 and
                  now["idle_trimmed"] - before["idle_trimmed"] >= 12 * MIB,
                  f"idle trims {before['idle_trims']} -> {now['idle_trims']}, "
                  f"{(now['idle_trimmed'] - before['idle_trimmed']) / MIB:.1f} MiB trimmed")
            check(now["returned"] - before["returned"] >= 12 * MIB,
                  f"{(now['returned'] - before['returned']) / MIB:.1f} MiB returned to the OS")
            check(now["idle_thread_trims"] >= 1 and client.submit(sum, [1, 2]).result() == 3,
                  f"{now['idle_thread_trims']} trim(s) handed to the task thread, which then "
                  "runs tasks as before")
    finally:
        cluster.close()
    finish()


if __name__ == "__main__":
    main()
