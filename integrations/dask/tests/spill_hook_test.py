"""Under a tight EXECMEM_MAX (320 MiB) one worker makes eight 64 MiB blocks
that all stay referenced, then sums each one. Dask's own memory thresholds are
off, so only execmem's spill hook can make room.

  spill_hook_test.py hook    the hook spills the buffer through the loop: every
                             block is made and summed correctly; the buffer was
                             never entered twice nor off the loop; no refusal.
  spill_hook_test.py nohook  no hook: a block's allocation is refused, the task
                             fails with MemoryError carrying execmem's report,
                             and the worker survives to run the next task.
"""
import sys

import dask
import numpy as np
from common import check, finish, preload_path

import execmem_dask
from distributed import Client, LocalCluster, wait

BLOCKS, BLOCK_FLOATS = 8, 8 << 20  # 64 MiB each, 512 MiB in all


def make_block(seed):
    return np.random.default_rng(seed).random(BLOCK_FLOATS)


def block_sum(block):
    return float(block.sum())


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("hook", "nohook"):
        sys.exit("usage: spill_hook_test.py hook|nohook")
    env = execmem_dask.worker_env("4GB", preload=preload_path())
    env.update(EXECMEM_INITIAL="128m", EXECMEM_MAX="320m", EXECMEM_OVERHEAD="32m",
               EXECMEM_DASK_SPILL_HOOK="1" if mode == "hook" else "0",
               EXECMEM_DASK_SPILL_TIMEOUT="300")
    config = {
        "distributed.nanny.pre-spawn-environ": env,
        "distributed.worker.preload": ["execmem_dask"],
        # A SpillBuffer that never spills by itself, and no RSS thresholds.
        "distributed.worker.memory.target": 0.99,
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.pause": False,
        "distributed.worker.memory.terminate": False,
    }
    with dask.config.set(config):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, memory_limit="4GB",
                               processes=True, dashboard_address=":0")
    client = Client(cluster)
    execmem_dask.check_workers(client)
    blocks = client.map(make_block, range(BLOCKS), pure=False)
    wait(blocks)
    errors = [b.exception() for b in blocks]
    (stats,) = client.run(execmem_dask.worker_stats).values()
    if mode == "hook":
        check(all(e is None for e in errors), f"all {BLOCKS} blocks made under the hook: {errors}")
        sums = client.gather(client.map(block_sum, blocks, pure=False))
        want = [block_sum(make_block(i)) for i in range(BLOCKS)]
        check(sums == want, "every block read back from disk sums as made locally")
        (stats,) = client.run(execmem_dask.worker_stats).values()
        print({k: v for k, v in stats.items() if "hook" in k or "buffer" in k or "evict" in k})
        check(stats["hook_calls"] > 0 and stats["evicted_by_hook"] >= 64 << 20,
              f"the hook ran ({stats['hook_calls']} calls) and evicted "
              f"{stats['evicted_by_hook'] >> 20} MiB")
        check(stats["hook_timeouts"] == 0, "no hook call timed out")
        check(stats["buffer_reentries"] == 0, "the buffer was never entered twice")
        check(stats["buffer_foreign_entries"] == 0, "the buffer was entered only on the loop")
        check(stats["refusals"] == 0, f"execmem refused nothing ({stats['refusals']})")
        check(stats["peak_used"] <= stats["max"], "used stayed within max")
    else:
        failed = [e for e in errors if e is not None]
        check(len(failed) > 0 and all(isinstance(e, MemoryError) for e in failed),
              f"{len(failed)} of {BLOCKS} blocks failed with MemoryError")
        text = str(failed[0]) if failed else ""
        print(text)
        check("execmem: out of memory" in text and "max" in text,
              "the task's MemoryError carries execmem's report")
        check(stats["refusals"] >= len(failed) and stats["hook_calls"] == 0,
              f"the worker counted {stats['refusals']} refusals, no hook calls")
        del blocks
        check(client.submit(block_sum, np.ones(4)).result() == 4.0,
              "the worker survives and runs the next task")
    client.close()
    cluster.close()
    finish()
