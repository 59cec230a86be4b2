"""local_cluster(shared=True): four worker processes in one pool of 2 GB for
the host. A skewed partition that needs three times a worker's static share
(2 GB / 4) is held whole on one worker: the result equals the reference, and
no worker paused, restarted or spilled to disk. Every worker is a member of
the cluster's pool (execmem-top --json), which never passes its capacity; the
pool's segment is removed when the cluster closes. Not timed."""
import json
import os
import subprocess

from common import check, finish, preload_path

import execmem_dask
from execmem_dask import workloads
from distributed import Client

TOTAL = 2 << 30
N_WORKERS = 4


def environ_of(name):
    return os.environ.get(name)


if __name__ == "__main__":
    preload = preload_path()
    top = os.environ.get("EXECMEM_TOP") or os.path.join(
        os.path.dirname(os.path.dirname(preload)), "bin", "execmem-top")
    check(os.access(top, os.X_OK), f"execmem-top is built beside the shim ({top})")
    cluster = execmem_dask.local_cluster(TOTAL, n_workers=N_WORKERS, threads_per_worker=1,
                                         preload=preload, shared=True, dashboard_address=":0")
    pool = cluster.execmem_pool
    segment = f"/dev/shm/execmem.{pool}"
    try:
        client = Client(cluster)
        client.wait_for_workers(N_WORKERS, timeout=300)
        execmem_dask.check_workers(client)
        client.register_worker_plugin(workloads.PauseCounter())
        pools = client.run(environ_of, "EXECMEM_SHARED")
        check(set(pools.values()) == {pool}, f"every worker joins the cluster's pool: {pools}")
        pids = client.run(os.getpid)
        limits = {w["memory_limit"] for w in client.scheduler_info()["workers"].values()}
        check(limits == {TOTAL}, f"each worker may use the host's total ({limits})")

        plan = workloads.skewed_plan(TOTAL, N_WORKERS)
        before = json.loads(subprocess.run([top, "--json", pool], capture_output=True,
                                           text=True, check=True, timeout=60).stdout)
        print(f"     the pool before: granted {before['granted'] >> 20} MiB + reserved "
              f"{before['reserved'] >> 20} MiB of {before['capacity'] >> 20} MiB", flush=True)
        got = workloads.run_skewed(client, plan)
        want = workloads.skewed_reference(plan, N_WORKERS)
        check(got == want, f"the skewed workload's result ({got}) equals the reference ({want}); "
              f"the hot partition: {plan['hot_chunks']} x {plan['chunk_bytes'] >> 20} MiB = 3 x "
              f"the static share of {plan['share'] >> 20} MiB")

        snap = json.loads(subprocess.run([top, "--json", pool], capture_output=True, text=True,
                                         check=True, timeout=60).stdout)
        members = {m["pid"] for m in snap["members"]}
        check(set(pids.values()) <= members, f"every worker is a member ({members})")
        check(snap["capacity"] == TOTAL, f"the pool's capacity is the total ({snap['capacity']})")
        check(snap["reserved"] + snap["granted"] <= snap["capacity"],
              f"the pool never passes its capacity ({snap['reserved']} + {snap['granted']})")

        paused = client.run(workloads.pauses)
        spilled = client.run(workloads.spilled_bytes)
        check(all(v == 0 for v in paused.values()), f"no worker paused ({paused})")
        check(all(v == 0 for v in spilled.values()), f"nothing spilled to disk ({spilled})")
        check(client.run(os.getpid) == pids, "no worker restarted (the same processes)")
        client.close()
    finally:
        cluster.close()
    check(not os.path.exists(segment), f"closing the cluster removes {segment}")
    finish()
