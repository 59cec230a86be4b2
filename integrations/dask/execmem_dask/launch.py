"""The environment of a Dask worker under execmem, derived from its memory_limit.

Dask watches a worker's RSS against its memory_limit M: above spill (0.7 M) it
spills, above pause (0.8 M) it stops running tasks, above terminate (0.95 M)
the nanny kills the worker. execmem's budget is set so that the heap it manages
cannot take the worker past pause:

    max + overhead + 32 MiB (pool cache slack) + untracked  <=  pause * M

where `untracked` is what a worker's RSS holds outside execmem (the
interpreter, code of numpy and pandas, thread stacks): 96 MiB by default.
An allocation that would pass max calls the spill hook (execmem_dask.plugin),
which spills Dask's buffer; only then is it refused (MemoryError in the task).

The shim must be loaded when the worker process starts: LD_PRELOAD set in the
worker's os.environ afterwards (LocalCluster(env=...), distributed.nanny.environ)
is never seen by the dynamic loader. distributed.nanny.pre-spawn-environ is set
in the nanny's environment before it spawns the worker, which works.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import re
import subprocess
import tempfile
import weakref

import dask.config
from dask.utils import parse_bytes

from execmem_dask._lib import PRELOAD_NAME

MIB = 1 << 20
UNTRACKED_DEFAULT = 96 * MIB  # measured: an idle 2022.12 worker under the shim, 22 MiB
CACHE_SLACK = 32 * MIB  # the pool may cache this much beyond in_use (README, "The promise")
OVERHEAD_FRACTION = 0.1  # of max
MIN_MAX = 64 * MIB

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REPO = os.path.dirname(os.path.dirname(PACKAGE_DIR))


def _installed_next_to_package() -> list[str]:
    """Where `make install PREFIX=P` put the shim, seen from this package
    installed under P/lib/python3/dist-packages: P/lib/ (relocatable: no path
    is written at install time)."""
    found, d = [], PACKAGE_DIR
    for _ in range(4):
        d = os.path.dirname(d)
        found += [os.path.join(d, PRELOAD_NAME), os.path.join(d, "lib", PRELOAD_NAME)]
    return found


def find_preload(preload: str | None = None) -> str:
    """The shim's path: the argument, $EXECMEM_PRELOAD, the repository's build/
    (this package run from a checkout), the prefix this package is installed
    in, or /usr/local/lib, /usr/lib."""
    candidates = [preload, os.environ.get("EXECMEM_PRELOAD"),
                  os.path.join(_REPO, "build", "lib", PRELOAD_NAME),
                  *_installed_next_to_package(),
                  os.path.join("/usr/local/lib", PRELOAD_NAME),
                  os.path.join("/usr/lib", PRELOAD_NAME)]
    for path in candidates:
        if path and os.path.isfile(path):
            return os.path.abspath(path)
    if preload:
        raise FileNotFoundError(f"execmem: preload {preload!r} does not exist")
    raise FileNotFoundError(
        f"execmem: cannot find {PRELOAD_NAME}: pass preload=..., set EXECMEM_PRELOAD, "
        "or build it (make build)")


def _fraction(key: str) -> float | None:
    value = dask.config.get(key)
    return None if value is False or value is None else float(value)


def budgets(memory_limit, *, untracked: int | str = UNTRACKED_DEFAULT) -> dict[str, int]:
    """initial / max / overhead in bytes for a worker with this memory_limit.

    The ceiling is Dask's pause threshold (or terminate, or 0.95, whichever is
    set, lowest first); ValueError when it leaves less than 64 MiB for max."""
    limit = parse_bytes(memory_limit) if isinstance(memory_limit, str) else int(memory_limit)
    if limit <= 0:
        raise ValueError(f"execmem: memory_limit={memory_limit!r}: a positive size is needed")
    untracked = parse_bytes(untracked) if isinstance(untracked, str) else int(untracked)
    fractions = [f for f in (_fraction("distributed.worker.memory.pause"),
                             _fraction("distributed.worker.memory.terminate")) if f]
    ceiling = int(limit * min(fractions + [0.95]))
    heap = ceiling - untracked - CACHE_SLACK
    max_bytes = int(heap / (1 + OVERHEAD_FRACTION))
    if max_bytes < MIN_MAX:
        raise ValueError(
            f"execmem: memory_limit={memory_limit!r} is too small: its ceiling of "
            f"{ceiling // MIB} MiB (the pause threshold) minus {untracked // MIB} MiB untracked "
            f"and {CACHE_SLACK // MIB} MiB of cache leaves {max(max_bytes, 0) // MIB} MiB, "
            f"below the {MIN_MAX // MIB} MiB minimum; raise memory_limit or lower the "
            f"untracked estimate (--untracked on the command line, untracked= in Python)")
    # Whole MiB, rounded down (never past the ceiling), so that the variables
    # read as users write them: EXECMEM_MAX=924m, not 969028812.
    overhead = (heap - max_bytes) // MIB * MIB
    max_bytes = max_bytes // MIB * MIB
    target = _fraction("distributed.worker.memory.target") or 0.6
    initial = min(max_bytes, int(limit * target * 0.5) // MIB * MIB)
    return {"initial": initial, "max": max_bytes, "overhead": overhead}


@functools.lru_cache(maxsize=None)
def stats_path_expands_pid(preload: str) -> bool:
    """Whether this shim expands %p in EXECMEM_STATS (one file per process)."""
    with tempfile.TemporaryDirectory(prefix="execmem-probe-") as d:
        env = dict(os.environ, LD_PRELOAD=preload, EXECMEM_STATS=os.path.join(d, "s-%p.json"))
        try:
            subprocess.run(["/bin/true"], env=env, check=False, timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return any(name.startswith("s-") and "%p" not in name for name in os.listdir(d))


PYTHON_OBJECTS = ("arenas", "malloc", "pymalloc")


def _python_objects(python_objects: str | None, python_malloc: bool | None) -> str:
    if python_objects is None:
        python_objects = {None: "arenas", True: "malloc", False: "pymalloc"}[python_malloc]
    if python_objects not in PYTHON_OBJECTS:
        raise ValueError(f"execmem: python_objects={python_objects!r}: one of "
                         f"{', '.join(PYTHON_OBJECTS)}")
    return python_objects


POOL_NAME = re.compile(r"[A-Za-z0-9._-]{1,190}")


def check_pool_name(name: str) -> str:
    """The name of a shared pool (/dev/shm/execmem.NAME); ValueError otherwise."""
    if not isinstance(name, str) or not POOL_NAME.fullmatch(name):
        raise ValueError(f"execmem: shared pool name {name!r}: 1 to 190 of A-Z a-z 0-9 . _ -")
    return name


def unique_pool_name() -> str:
    return f"dask-{os.getpid()}-{os.urandom(4).hex()}"


def worker_env(memory_limit, *, preload: str | None = None, stats_dir: str | None = None,
               untracked: int | str = UNTRACKED_DEFAULT, python_objects: str | None = None,
               python_malloc: bool | None = None, shared: str | None = None,
               shared_capacity: int | str | None = None) -> dict[str, str]:
    """Environment variables for a worker process started with them.

    stats_dir: each worker writes its execmem report there when it exits,
    as execmem-<pid>.json (EXECMEM_STATS with %p where the shim supports it,
    else the plugin writes it).
    python_objects: where Python's small objects live, all but the last in the budget:
        "arenas" (default): pymalloc, its 1 MiB arenas from execmem (the plugin
            loads _execmem_arena at start; docs/python-arenas.md);
        "malloc": PYTHONMALLOC=malloc, each object a malloc (the opt-out);
        "pymalloc": CPython's own mmap'd arenas, outside the budget.
    python_malloc: the former switch; True is "malloc", False is "pymalloc".
    shared: the name of a shared pool (docs/shared-pool.md) the worker joins:
        every worker of the host given the same name borrows from one
        capacity instead of a static share. memory_limit is then what one
        worker may use at most (its budget is derived from it), and
        EXECMEM_INITIAL is 0: a worker reserves nothing, it borrows what it uses.
    shared_capacity: the pool's capacity (bytes or "8GB"; fixed by the first
        worker to join); None: the shim's default (the cgroup's limit, else
        the machine's memory)."""
    python_objects = _python_objects(python_objects, python_malloc)
    untracked_bytes = parse_bytes(untracked) if isinstance(untracked, str) else int(untracked)
    path = find_preload(preload)
    b = budgets(memory_limit, untracked=untracked)
    env = {
        "LD_PRELOAD": path,
        # m is MiB here (EXECMEM_* sizes are powers of 1024), while Dask's
        # memory_limit "1.5GB" is 1.5 x 10^9 bytes.
        "EXECMEM_INITIAL": f"{b['initial'] // MIB}m",
        "EXECMEM_MAX": f"{b['max'] // MIB}m",
        "EXECMEM_OVERHEAD": f"{b['overhead'] // MIB}m",  # a bare number would be a fraction
        "EXECMEM_DASK": "1",  # the plugin fails loudly when the shim is not loaded
    }
    if shared is not None:
        env["EXECMEM_SHARED"] = check_pool_name(shared)
        # Nothing held for a worker that does not use it: no initial, and an
        # overhead (reserved from the pool at start, like the initial) of
        # 16 MiB instead of a tenth of max.
        env["EXECMEM_INITIAL"] = "0"
        env["EXECMEM_OVERHEAD"] = "16m"
        if shared_capacity is not None:
            capacity = (parse_bytes(shared_capacity) if isinstance(shared_capacity, str)
                        else int(shared_capacity))
            if capacity <= 0:
                raise ValueError(f"execmem: shared_capacity={shared_capacity!r}: a positive "
                                 "size is needed")
            env["EXECMEM_SHARED_CAPACITY"] = str(capacity)
            # One worker may use all the pool holds: the pool, not a static
            # budget, bounds it (Dask's terminate threshold stays above it).
            env["EXECMEM_MAX"] = f"{max(b['max'], capacity - untracked_bytes) // MIB}m"
        for key, value in SHARED_DASK_CONFIG.items():  # a worker without a nanny
            env["DASK_" + key.upper().replace(".", "__").replace("-", "_")] = str(value)
    env["EXECMEM_DASK_PYTHON_ARENAS"] = "1" if python_objects == "arenas" else "0"
    if python_objects == "arenas":
        from execmem_dask._arena import ENV_PATH, MODULE, find_extension

        extension = find_extension(path)
        if extension is None:
            raise FileNotFoundError(
                f"execmem: cannot find {MODULE} (Python's arenas from execmem) beside {path} "
                "or in build/lib: build it (make build, with python3-dev), set "
                f"{ENV_PATH}, or choose python_objects='malloc' (--python-objects malloc)")
        env[ENV_PATH] = extension
    if python_objects == "malloc":
        env["PYTHONMALLOC"] = "malloc"
    if stats_dir:
        stats_dir = os.path.abspath(stats_dir)
        os.makedirs(stats_dir, exist_ok=True)
        if stats_path_expands_pid(path):
            env["EXECMEM_STATS"] = os.path.join(stats_dir, "execmem-%p.json")
        else:
            env["EXECMEM_DASK_STATS_DIR"] = stats_dir
    # The worker must import execmem_dask (--preload): from a checkout, add it.
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if PACKAGE_DIR not in pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([PACKAGE_DIR] + pythonpath)
    return env


def cluster_config(memory_limit, **env_kwargs) -> dict:
    """Dask configuration under which nannies spawn workers with the shim loaded
    and the execmem plugin preloaded: use with dask.config.set(...) around the
    creation of the cluster (a Nanny reads both when it is created)."""
    config = {
        "distributed.nanny.pre-spawn-environ": worker_env(memory_limit, **env_kwargs),
        "distributed.worker.preload": ["execmem_dask"],
    }
    if env_kwargs.get("shared") is not None:
        config.update(SHARED_DASK_CONFIG)
    return config


# In a shared pool a worker's memory_limit is the host's, so Dask's own
# thresholds on managed memory (target 0.6) and process memory (spill 0.7)
# and pausing (0.8) would be static shares of it again: they are off, and a
# worker spills only when the pool refuses it a grant (the plugin's spill
# hook). Terminate (0.95 of the host's memory) stays as a backstop.
SHARED_DASK_CONFIG = {"distributed.worker.memory.target": False,
                      "distributed.worker.memory.spill": False,
                      "distributed.worker.memory.pause": False}


def nanny_environ(memory_limit, **env_kwargs) -> dict[str, str]:
    """Environment for a `dask worker` (nanny) process on any host: Dask reads
    these DASK_* variables as the configuration of cluster_config()."""
    env = worker_env(memory_limit, **env_kwargs)
    out = {
        "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON": json.dumps(env),
        "DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps(["execmem_dask"]),
    }
    if "PYTHONPATH" in env:  # the nanny imports the worker's preload too
        out["PYTHONPATH"] = env["PYTHONPATH"]
    if env_kwargs.get("shared") is not None:
        for key, value in SHARED_DASK_CONFIG.items():
            out["DASK_" + key.upper().replace(".", "__").replace("-", "_")] = str(value)
    return out


def local_cluster(memory_limit="auto", *, n_workers: int | None = None,
                  threads_per_worker: int | None = None, preload: str | None = None,
                  stats_dir: str | None = None, untracked: int | str = UNTRACKED_DEFAULT,
                  python_objects: str | None = None, python_malloc: bool | None = None,
                  shared: bool | str = False, **kwargs):
    """A distributed.LocalCluster of worker processes under execmem.

    shared=False: each worker its own static budget from memory_limit (per
    worker, as Dask's). shared=True (or a pool name): the workers share one
    pool on this host (docs/shared-pool.md); memory_limit is then the
    cluster's total and the pool's capacity ("auto": Dask's memory limit of
    the machine, which reads the cgroup), every worker may use up to all of
    it, and the pool's name is unique to the cluster (its /dev/shm segment is
    removed when the cluster is closed or collected).

    Its nannies set the worker environment in this process's os.environ before
    each spawn (that is how pre-spawn-environ works); this function restores
    os.environ once the workers are up, but a nanny restarting a worker sets
    it again."""
    from distributed import LocalCluster
    from distributed.system import MEMORY_LIMIT
    from distributed.worker_memory import parse_memory_limit

    if kwargs.get("processes") is False:
        raise ValueError("execmem: LocalCluster(processes=False) runs workers in this "
                         "process, which the shim cannot be preloaded into")
    if kwargs.get("asynchronous"):
        raise ValueError("execmem: local_cluster(asynchronous=True) is not supported: the "
                         "nannies read the configuration when the cluster starts")
    if "env" in kwargs:
        raise ValueError("execmem: LocalCluster(env=...) sets variables after the worker "
                         "started, too late for LD_PRELOAD; local_cluster sets them itself")
    nthreads = threads_per_worker or 1
    pool = None
    if shared:
        pool = check_pool_name(shared) if isinstance(shared, str) else unique_pool_name()
        if memory_limit == "auto":
            memory_limit = MEMORY_LIMIT
        # parse_memory_limit would cap a worker's limit at the machine's
        # share for its threads: the pool's total is not one worker's share.
        limit = (parse_bytes(memory_limit) if isinstance(memory_limit, str)
                 else int(memory_limit))
        limit = min(limit, MEMORY_LIMIT)
    else:
        if memory_limit == "auto":
            workers = n_workers or max(1, (os.cpu_count() or 1) // nthreads)
            memory_limit = MEMORY_LIMIT // workers
        limit = parse_memory_limit(memory_limit, nthreads,
                                   logger=logging.getLogger("execmem_dask"))
    config = cluster_config(limit, preload=preload, stats_dir=stats_dir, untracked=untracked,
                            python_objects=python_objects, python_malloc=python_malloc,
                            shared=pool, shared_capacity=limit if pool else None)
    saved = {k: os.environ.get(k) for k in config["distributed.nanny.pre-spawn-environ"]}
    try:
        with dask.config.set(config):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=nthreads,
                                   memory_limit=limit, processes=True, **kwargs)
        if pool:
            cluster.execmem_pool = pool
            weakref.finalize(cluster, remove_pool, pool)
            close = cluster.close

            def close_and_remove(*args, **kw):
                try:
                    return close(*args, **kw)
                finally:
                    remove_pool(pool)

            cluster.close = close_and_remove
        return cluster
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def remove_pool(name: str) -> None:
    """Removes the pool's /dev/shm segment (its members keep their mapping)."""
    try:
        os.unlink(f"/dev/shm/execmem.{name}")
    except OSError:
        pass
