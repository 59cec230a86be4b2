"""The env= trap: LocalCluster(env=...) puts LD_PRELOAD into the worker's
os.environ after it started, so the shim is not loaded. The plugin and
check_workers must say so loudly; local_cluster refuses env=."""
import dask
from common import check, finish, preload_path

import execmem_dask
from distributed import Client, LocalCluster

if __name__ == "__main__":
    preload = preload_path()
    env = execmem_dask.worker_env("1GB", preload=preload)
    try:
        execmem_dask.local_cluster("1GB", n_workers=1, env=env)
        check(False, "local_cluster(env=...) is refused")
    except ValueError as e:
        check("too late for LD_PRELOAD" in str(e), f"local_cluster(env=...) is refused: {e}")

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, memory_limit="1GB",
                           processes=True, env=env, dashboard_address=":0")
    client = Client(cluster)
    seen = client.run(lambda: __import__("os").environ.get("LD_PRELOAD"))
    check(list(seen.values()) == [env["LD_PRELOAD"]],
          "the trap is real: LD_PRELOAD is in the worker's os.environ")
    check(list(client.run(execmem_dask.shim_loaded).values()) == [False],
          "the trap is real: the shim is not mapped in the worker")
    try:
        execmem_dask.check_workers(client)
        check(False, "check_workers raises")
    except RuntimeError as e:
        check("set after the process started" in str(e), f"check_workers raises: {str(e)[:160]}...")
    try:
        client.register_worker_plugin(execmem_dask.ExecmemPlugin())
        check(False, "register_worker_plugin(ExecmemPlugin()) raises")
    except RuntimeError as e:
        check("is not loaded" in str(e) and "pre-spawn-environ" in str(e),
              "register_worker_plugin(ExecmemPlugin()) raises and names the remedy")
    client.close()
    cluster.close()

    # --preload execmem_dask in the same trap: every task fails with the reason.
    with dask.config.set({"distributed.worker.preload": ["execmem_dask"]}):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, memory_limit="1GB",
                               processes=True, env=env, dashboard_address=":0")
    client = Client(cluster)
    try:
        client.submit(sum, [1, 2]).result()
        check(False, "with --preload execmem_dask and no shim, a task fails")
    except RuntimeError as e:
        check("set after the process started" in str(e),
              "with --preload execmem_dask and no shim, a task fails with the reason")
    client.close()
    cluster.close()
    finish()
