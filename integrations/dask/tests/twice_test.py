"""ExecmemPlugin registered twice on one worker (the preload's, plus a
client's register_worker_plugin under another name): the second shares the
first, and removing either leaves the worker as one registration leaves it.

Before (2026-12-08): the second's setup wrapped the spill buffer a second
time (every buffer entry then counted as a reentry) and failed on the spill
hook's name (FileExistsError); unregistering it removed the first's idle
trim, its metrics and its memory-monitor wrappers (one key each). And a
plugin replaced under the same name left its stats writer registered at
exit, to overwrite the new one's report.

In a worker started as local_cluster starts them (the preload registers
"execmem"):
  1. register ExecmemPlugin() as "second": no error; one spill hook, the
     buffer wrapped once, the same metrics through either name, a stored
     key counts no reentry;
  2. unregister "second": the first keeps its idle trim (running), metrics,
     wrappers and hook;
  3. register "second" again, unregister "execmem": "second" takes over
     (sets itself up: idle trim, hook, wrappers, metrics);
  4. replace "second" by a new ExecmemPlugin under the same name: the
     process's at-exit callbacks do not grow.
"""
import os

from common import check, finish, preload_path

import execmem_dask
from execmem_dask.plugin import IDLE_TRIM_CALLBACK, ExecmemPlugin


def state(dask_worker):
    import atexit

    plugins = {k: v for k, v in dask_worker.plugins.items() if isinstance(v, ExecmemPlugin)}
    pc = dask_worker.periodic_callbacks.get(IDLE_TRIM_CALLBACK)
    mm = dask_worker.memory_manager.__dict__
    return {
        "plugins": sorted(plugins),
        "hooked": sorted(k for k, v in plugins.items() if getattr(v, "_hooked", False)),
        "idle_trim": pc is not None and pc.is_running(),
        "wrappers": "_maybe_pause_or_unpause" in mm and "_maybe_spill" in mm,
        "metrics": "execmem" in dask_worker.metrics,
        "guards": [c.__name__ for c in type(dask_worker.data).__mro__].count("GuardedSpillBuffer") +
                  [c.__name__ for c in type(dask_worker.data).__mro__].count(
                      "GuardedGuardedSpillBuffer"),
        "loaded": {k: v.metrics()["loaded"] for k, v in plugins.items()},
        "reentries": {k: v.metrics().get("buffer_reentries") for k, v in plugins.items()},
        "atexit": atexit._ncallbacks(),
    }


async def remove(name, dask_worker):
    """Worker.plugin_remove (the scheduler knows only the plugins a client
    registered, not the preload's)."""
    return await dask_worker.plugin_remove(name=name)


def unregister(client, name):
    (r,) = client.run(remove, name).values()
    check(r.get("status") == "OK", f"plugin_remove({name!r}): {r}")


def one(client):
    (s,) = client.run(state).values()
    return s


def main():
    from distributed import Client

    os.environ["EXECMEM_PRELOAD"] = preload_path()
    cluster = execmem_dask.local_cluster("1GB", n_workers=1, threads_per_worker=1,
                                         dashboard_address=":0")
    try:
        with Client(cluster) as client:
            s = one(client)
            check(s["plugins"] == ["execmem"] and s["hooked"] == ["execmem"] and s["idle_trim"]
                  and s["guards"] == 1, f"the preload's plugin alone: {s}")

            # 1.
            try:
                client.register_worker_plugin(ExecmemPlugin(), name="second")
                error = None
            except Exception as e:  # noqa: BLE001 - the failure is what is checked
                error = f"{type(e).__name__}: {e}"
            check(error is None, f"a second registration sets up without error: {error}")
            x = client.submit(lambda: bytearray(1 << 20), pure=False)
            x.result()
            s = one(client)
            check(s["plugins"] == ["execmem", "second"] and s["hooked"] == ["execmem"],
                  f"two registrations, one spill hook: {s['plugins']}, hooked {s['hooked']}")
            check(s["guards"] == 1, f"the spill buffer wrapped once: {s['guards']}")
            check(s["loaded"] == {"execmem": True, "second": True} and
                  s["reentries"] == {"execmem": 0, "second": 0},
                  f"metrics through either name, no reentry: {s['loaded']}, {s['reentries']}")

            # 2.
            unregister(client, "second")
            s = one(client)
            check(s["plugins"] == ["execmem"] and s["hooked"] == ["execmem"] and
                  s["idle_trim"] and s["wrappers"] and s["metrics"] and s["guards"] == 1,
                  f"unregistering the second leaves the first whole: {s}")

            # 3.
            client.register_worker_plugin(ExecmemPlugin(), name="second")
            unregister(client, "execmem")
            s = one(client)
            check(s["plugins"] == ["second"] and s["hooked"] == ["second"] and
                  s["idle_trim"] and s["wrappers"] and s["metrics"] and s["guards"] == 1,
                  f"unregistering the first: the second takes over: {s}")
            check(client.submit(sum, [1, 2]).result() == 3, "and the worker runs tasks")

            # 4.
            before = s["atexit"]
            client.register_worker_plugin(ExecmemPlugin(), name="second")
            s = one(client)
            check(s["plugins"] == ["second"] and s["hooked"] == ["second"] and
                  s["idle_trim"] and s["atexit"] == before,
                  f"replaced under its name: at-exit callbacks {before} -> {s['atexit']}")
    finally:
        cluster.close()
    finish()


if __name__ == "__main__":
    main()
