"""execmem for Dask workers: launch them under the shim, and the worker plugin.

    import execmem_dask
    cluster = execmem_dask.local_cluster("1.5GB", n_workers=2, threads_per_worker=1)
    client = distributed.Client(cluster)
    execmem_dask.check_workers(client)          # raises unless every worker runs execmem

On other hosts: `python3 -m execmem_dask worker SCHEDULER --memory-limit 4GB`
(or `python3 -m execmem_dask env --memory-limit 4GB` for the variables), and
`dask worker --preload execmem_dask` loads the plugin (dask_setup below).
"""
from __future__ import annotations

from execmem_dask._lib import shim_loaded
from execmem_dask.launch import (budgets, cluster_config, find_preload, local_cluster,
                                 nanny_environ, worker_env)
from execmem_dask.plugin import ExecmemPlugin

__all__ = ["ExecmemPlugin", "budgets", "check_workers", "cluster_config", "dask_setup",
           "find_preload", "local_cluster", "nanny_environ", "shim_loaded", "worker_env",
           "worker_stats"]


async def dask_setup(worker) -> None:
    """`--preload execmem_dask`: adds the plugin. On a worker without the shim
    every task fails with the reason (a preload cannot stop a worker: Dask
    logs its errors, and a worker that exits is restarted by its nanny)."""
    response = await worker.plugin_add(ExecmemPlugin(), name=ExecmemPlugin.name)
    if response.get("status") != "OK":
        from execmem_dask.plugin import refuse_tasks

        refuse_tasks(str(response.get("exception_text") or response))


def worker_stats(dask_worker=None) -> dict:
    """execmem's metrics in a worker: client.run(execmem_dask.worker_stats)."""
    plugin = dask_worker.plugins.get(ExecmemPlugin.name) if dask_worker else None
    if plugin is not None:
        return plugin.metrics()
    return {"loaded": shim_loaded()}


def check_workers(client) -> dict:
    """{worker address: path of the libexecmem_preload.so it runs under};
    raises RuntimeError naming the workers where the shim is not loaded."""

    def probe():
        from execmem_dask._lib import mapped_preload, not_loaded_message, shim_loaded

        if shim_loaded():
            return {"ok": True, "preload": mapped_preload()}
        return {"ok": False, "message": not_loaded_message()}

    results = client.run(probe)
    bad = {addr: r["message"] for addr, r in results.items() if not r["ok"]}
    if bad:
        raise RuntimeError("execmem is not loaded in %d of %d workers: %s" % (
            len(bad), len(results), "; ".join(f"{a}: {m}" for a, m in bad.items())))
    return {addr: r["preload"] for addr, r in results.items()}
