"""CPython's arenas from execmem (_execmem_arena, docs/python-arenas.md).

In plain Python processes under the shim:
  - arenas mapped before the hook (by CPython's mmap) are given back to it when
    their objects die, and arenas allocated after it come from execmem, count
    in the executor's used bytes, and go back to execmem;
  - a pure-Python object churn under a 64 MiB budget raises MemoryError (caught
    by the program, which then allocates again), the arenas refused counted.
In a Dask worker started as local_cluster starts them (no PYTHONMALLOC): the
plugin installed the hook at start, a task's objects are in the executor's
budget, and the spill hook goes through the C trampoline. (A worker task that
fills the budget is not tested: the worker's own loop is then refused memory
too, in Dask's code, as with any allocation that fills it.)
"""
import json
import os
import subprocess
import sys

import dask
from common import HERE, check, finish, preload_path

import execmem_dask
from distributed import Client, LocalCluster

PACKAGE_PARENT = os.path.dirname(HERE)
ARENA = 1 << 20  # ARENA_SIZE of 64-bit CPython 3.10-3.12

PRE_HOOK = r"""
import gc, json
from execmem_dask import _arena, _lib
shim = _lib.shim()
before = [(i, str(i)) for i in range(300000)]   # arenas mapped by CPython (mmap)
out = {"install": _arena.install()}
del before
gc.collect()
out["after_pre_hook_free"] = _arena.stats()
used0 = shim.executor_stats().used
after = [(i, str(i)) for i in range(300000)]    # arenas from execmem
out["with_objects"] = _arena.stats()
out["used_delta"] = shim.executor_stats().used - used0
del after
gc.collect()
out["after_free"] = _arena.stats()
out["used_delta_after_free"] = shim.executor_stats().used - used0
print(json.dumps(out))
"""

CHURN = r"""
import gc, json
from execmem_dask import _arena, _lib
_arena.install()
shim = _lib.shim()
def fill():
    node, n = None, 0
    while True:          # small objects only: a chain of 2-tuples of a float
        node = (node, float(n))
        n += 1
caught = 0
for round in range(3):
    try:
        fill()
    except MemoryError:
        caught += 1
    gc.collect()
refused = _arena.stats()["refused"]
node = None
for n in range(200000):  # the budget is free again
    node = (node, float(n))
del node
s = shim.executor_stats()
print(json.dumps({"caught": caught, "refused": refused, "oom_count": s.oom_count,
                  "peak_footprint": s.peak_footprint, "max": s.max, "overhead": s.overhead,
                  "arenas": _arena.stats()}))
"""


def run_script(script, **env):
    environ = dict(os.environ, LD_PRELOAD=preload_path(),
                   PYTHONPATH=os.pathsep.join([PACKAGE_PARENT, os.environ.get("PYTHONPATH", "")]),
                   **env)
    environ.pop("PYTHONMALLOC", None)
    p = subprocess.run([sys.executable, "-c", script], env=environ, capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        print(p.stdout[-2000:], p.stderr[-3000:])
        return p.returncode, None
    return 0, json.loads(p.stdout.strip().splitlines()[-1])


def plain_processes():
    rc, out = run_script(PRE_HOOK)
    check(rc == 0, f"pre-hook arenas: the process exits cleanly (status {rc})")
    if out:
        print(out)
        check(out["install"]["installed"] and out["install"]["arenas_allocated"] == 0,
              "install() replaced the arena allocator")
        size = out["with_objects"]["arena_bytes_live"] // max(out["with_objects"]["arenas_live"], 1)
        check(size == ARENA, f"arenas of {size >> 10} KiB")
        freed = out["after_pre_hook_free"]
        check(freed["previous_frees"] >= 20 and freed["arenas_freed"] == 0,
              f"{freed['previous_frees']} arenas mapped before the hook went back to CPython's "
              "allocator, none to execmem")
        held = out["with_objects"]["arenas_live"] - freed["arenas_live"]
        check(held >= 20, f"{held} new arenas came from execmem")
        check(out["used_delta"] >= held * ARENA,
              f"the executor's used grew by {out['used_delta'] >> 20} MiB >= {held} arenas")
        done = out["after_free"]
        check(done["arenas_freed"] >= held // 2 and done["previous_frees"] >=
              freed["previous_frees"], f"{done['arenas_freed']} arenas went back to execmem")
        check(out["used_delta_after_free"] <= out["used_delta"] - (held // 2) * ARENA,
              f"used fell back ({out['used_delta_after_free'] >> 20} MiB over the start)")

    rc, out = run_script(CHURN, EXECMEM_INITIAL="32m", EXECMEM_MAX="64m",
                         EXECMEM_OVERHEAD="16m")
    check(rc == 0, f"object churn under a 64 MiB budget: the process exits cleanly (status {rc})")
    if out:
        print(out)
        check(out["caught"] == 3, "each of 3 rounds ended in MemoryError, caught by the program")
        check(out["refused"] >= 3 and out["oom_count"] >= 3,
              f"execmem refused {out['refused']} arenas ({out['oom_count']} refusals in all)")
        check(out["peak_footprint"] <= out["max"] + out["overhead"],
              "footprint stayed within max + overhead")


def make_objects(n):
    from execmem_dask import _arena, _lib

    shim = _lib.shim()
    a0, u0 = _arena.stats(), shim.executor_stats().used
    objects = [(i, str(i)) for i in range(n)]
    a1, u1 = _arena.stats(), shim.executor_stats().used
    del objects
    return {"arenas": a1["arenas_live"] - a0["arenas_live"], "used": u1 - u0}


def hook_kinds():
    """How each spill hook is kept: (C trampoline, callable) or a ctypes callback."""
    from execmem_dask import _lib

    return [type(kept).__name__ for kept in _lib.shim()._hooks.values()]


def in_a_worker():
    env = execmem_dask.worker_env("2GB", preload=preload_path())
    check("PYTHONMALLOC" not in env and env["EXECMEM_DASK_PYTHON_ARENAS"] == "1",
          "worker_env: no PYTHONMALLOC, Python's arenas from execmem")
    config = {"distributed.nanny.pre-spawn-environ": env,
              "distributed.worker.preload": ["execmem_dask"]}
    with dask.config.set(config):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, memory_limit="2GB",
                               processes=True, dashboard_address=":0")
    client = Client(cluster)
    try:
        execmem_dask.check_workers(client)
        (seen,) = client.run(lambda: os.environ.get("PYTHONMALLOC")).values()
        check(seen is None, "the worker runs without PYTHONMALLOC")
        (stats,) = client.run(execmem_dask.worker_stats).values()
        check(stats["python_arenas"] == "execmem" and stats["python_installed"],
              f"the plugin installed the hook at start ({stats['python_arenas_live']} arenas "
              f"from execmem, {stats['python_previous_frees']} pre-hook arenas given back)")
        got = client.submit(make_objects, 300000, pure=False).result()
        check(got["arenas"] >= 20 and got["used"] >= got["arenas"] * ARENA,
              f"a task's {got['arenas']} arenas are in the budget (used +{got['used'] >> 20} MiB)")
        (hooks,) = client.run(hook_kinds).values()
        check(hooks == ["tuple"],
              "the spill hook is registered through _execmem_arena's C trampoline")
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    ext = os.environ.get("EXECMEM_ARENA_EXT")
    if not ext or not os.path.isfile(ext):
        sys.exit(f"EXECMEM_ARENA_EXT={ext!r}: _execmem_arena was not built (python3-dev?)")
    plain_processes()
    in_a_worker()
    finish()
