"""Two worker processes under the shim (execmem_dask.local_cluster) run the
four workloads; results equal Dask's synchronous scheduler without the shim;
every worker has the shim loaded, publishes execmem's metrics, never entered
its buffer twice, and writes its own stats file."""
import glob
import json
import os
import tempfile

from common import check, finish, preload_path

import execmem_dask
from execmem_dask import workloads
from distributed import Client

WORKER_EXIT_TIMEOUT = 120  # seconds


def keep_plugin(dask_worker):
    dask_worker.execmem_test_old_plugin = dask_worker.plugins[execmem_dask.ExecmemPlugin.name]


# What replacing the plugin guarantees, on each worker, whatever the worker
# does meanwhile. (Not that the new plugin's buffer counters are 0: the keys
# of the workloads are released asynchronously, and a release that reaches
# the worker after the new plugin's setup is an entry its guard counts.)
REPLACED = {"new instance": True, "old torn down": True, "loaded": True, "spill hook": True,
            "buffer guarded once, by the new plugin": True, "reentries": 0, "foreign entries": 0}


def replacement(dask_worker):
    old = dask_worker.execmem_test_old_plugin
    new = dask_worker.plugins[execmem_dask.ExecmemPlugin.name]
    data = dask_worker.data
    layers = [c for c in type(data).__mro__ if c.__name__.startswith("Guarded")]
    metrics = new.metrics()
    return {"new instance": new is not old, "old torn down": old._closed,
            "loaded": metrics["loaded"], "spill hook": new._hooked,
            "buffer guarded once, by the new plugin":
                len(layers) == 1 and data._execmem_guard is new._guard,
            "reentries": metrics["buffer_reentries"],
            "foreign entries": metrics["buffer_foreign_entries"]}


if __name__ == "__main__":
    preload = preload_path()
    references = {name: workloads.reference(name, 1) for name in workloads.WORKLOADS}
    stats_dir = tempfile.mkdtemp(prefix="execmem-dask-stats-")
    cluster = execmem_dask.local_cluster("1GB", n_workers=2, threads_per_worker=1,
                                         preload=preload, stats_dir=stats_dir,
                                         dashboard_address=":0")
    client = Client(cluster)
    check("LD_PRELOAD" not in os.environ or "execmem" not in os.environ["LD_PRELOAD"],
          "the client's own environment is left as it was")
    loaded = execmem_dask.check_workers(client)
    check(len(loaded) == 2 and all(path and path.endswith("libexecmem_preload.so")
                                   for path in loaded.values()),
          f"check_workers: the shim is loaded in both workers: {loaded}")
    maxes = client.run(lambda: open("/proc/self/environ", "rb").read().count(b"EXECMEM_MAX="))
    check(all(n == 1 for n in maxes.values()), "EXECMEM_MAX reached the workers' start-up")
    for name in workloads.WORKLOADS:
        got = workloads.run(name, client, 1)
        check(workloads.same(name, got, references[name]),
              f"{name}: result equals the run without the shim")
    metrics = client.run(execmem_dask.worker_stats)
    for addr, m in metrics.items():
        check(m["loaded"] and m["max"] == execmem_dask.budgets("1GB")["max"],
              f"{addr}: plugin reports the budget {m.get('max')} = EXECMEM_MAX")
        check(0 < m["used"] <= m["max"] and m["peak_used"] >= m["used"],
              f"{addr}: used {m['used']} within max, peak {m['peak_used']}")
        check(m["buffer_entries"] > 0 and m["buffer_reentries"] == 0
              and m["buffer_foreign_entries"] == 0,
              f"{addr}: buffer entered {m['buffer_entries']} times, "
              f"{m['buffer_reentries']} nested, {m['buffer_foreign_entries']} off the loop")
    info = client.scheduler_info()["workers"]
    published = [w["metrics"].get("execmem", {}).get("max") for w in info.values()]
    check(published == [execmem_dask.budgets("1GB")["max"]] * 2,
          f"the scheduler sees execmem's metrics of both workers: {published}")
    client.run(keep_plugin)
    client.register_worker_plugin(execmem_dask.ExecmemPlugin())  # replaces the preloaded one
    replaced = client.run(replacement)
    check(len(replaced) == 2 and all(r == REPLACED for r in replaced.values()),
          "client.register_worker_plugin(ExecmemPlugin()) replaces the preloaded plugin: "
          f"{replaced}")
    pids = set(client.run(os.getpid).values())
    client.close()
    # Each worker writes its stats file when its process exits normally. The
    # nannies' default close gives a worker 4 s to exit, then kills it (no
    # file), which a loaded machine overruns: close them first, waiting for
    # the processes to exit (the timeout only guards against a hang).
    for nanny in list(cluster.workers.values()):
        cluster.sync(nanny.close, timeout=WORKER_EXIT_TIMEOUT, reason="test-done")
    cluster.close()
    files = {os.path.basename(p) for p in glob.glob(os.path.join(stats_dir, "execmem-*.json"))}
    # Every process under the shim writes its own file (%p): the workers, and
    # any program a worker runs (Python's platform module runs uname).
    check({f"execmem-{p}.json" for p in pids} <= files,
          f"one stats file per worker process: {sorted(files)} for workers {sorted(pids)}")
    for path in glob.glob(os.path.join(stats_dir, "execmem-*.json")):
        with open(path) as f:
            report = json.load(f)
        name = os.path.basename(path)
        check("pool" in report and report.get("pid") == int(name[len("execmem-"):-len(".json")]),
              f"{name} is a report of its own process (pid {report.get('pid')})")
    finish()
