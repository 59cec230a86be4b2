"""Under a tight EXECMEM_MAX (320 MiB) one worker makes eight 64 MiB blocks
that all stay referenced, then sums each one. Dask's own memory thresholds are
off, so only execmem's spill hook can make room.

First without the hook: a block's allocation is refused, the task fails with
MemoryError carrying execmem's report, and the worker survives to run the next
task. Then with the hook (switched on in the same worker), the same blocks
again: every block is made and summed correctly, the buffer was never entered
twice nor off the loop, execmem refused nothing, and the worker kept headroom
for its event loop (the hook frees LOOP_HEADROOM beyond a task's shortfall:
the loop's own allocations, its comm buffers, cannot be served by the hook).

No sleep synchronises anything: the test waits for the worker to hold no key
by polling that condition, with 120 s as a hang guard only.
"""
import time

import dask
import numpy as np
from common import check, finish, preload_path

import execmem_dask
from distributed import Client, LocalCluster, wait
from execmem_dask.plugin import LOOP_HEADROOM

BLOCKS, BLOCK_FLOATS = 8, 8 << 20  # 64 MiB each, 512 MiB in all


def make_block(seed):
    return np.random.default_rng(seed).random(BLOCK_FLOATS)


def block_sum(block):
    return float(block.sum())


def keys_held(dask_worker=None):
    return len(dask_worker.data)


def set_hook(on, dask_worker=None):
    dask_worker.plugins["execmem"].set_spill_hook(on)


def release(client, futures):
    """Drops the futures, then polls until the worker holds no key (the
    bound is a hang guard only)."""
    futures.clear()
    deadline = time.monotonic() + 120
    while any(client.run(keys_held).values()):
        if time.monotonic() > deadline:
            check(False, "the released blocks leave the worker within 120 s")
            return
        time.sleep(0.2)


def run_blocks(client, mode):
    blocks = client.map(make_block, range(BLOCKS), pure=False)
    wait(blocks)
    errors = [b.exception() for b in blocks]
    if mode == "nohook":
        # Held at its max without a hook, the worker has only what the last
        # block left (64 MiB minus its base): ask it nothing more until the
        # blocks are gone (refusals is a counter: it stays).
        release(client, blocks)
        (before,) = client.run(execmem_dask.worker_stats).values()
        failed = [e for e in errors if e is not None]
        check(len(failed) > 0 and all(isinstance(e, MemoryError) for e in failed),
              f"without the hook {len(failed)} of {BLOCKS} blocks failed with MemoryError")
        text = str(failed[0]) if failed else ""
        print(text)
        check("execmem: out of memory" in text and "max" in text,
              "the task's MemoryError carries execmem's report")
        check(before["refusals"] >= len(failed) and before["hook_calls"] == 0,
              f"the worker counted {before['refusals']} refusals, no hook calls")
        # With a base above 64 MiB - LOOP_HEADROOM the plugin's headroom
        # evictions would make room before any allocation needs the hook.
        check(before["used"] < (64 << 20) - LOOP_HEADROOM,
              f"the worker's base ({before['used'] / (1 << 20):.1f} MiB, blocks released) "
              "leaves the hook a block to make room for")
        return before
    check(all(e is None for e in errors), f"all {BLOCKS} blocks made under the hook: {errors}")
    (full,) = client.run(execmem_dask.worker_stats).values()
    headroom = full["max"] - full["used"]
    check(full["hook_calls"] > 0 and headroom >= LOOP_HEADROOM // 2,
          f"all blocks made: the hook ran ({full['hook_calls']} calls) and left "
          f"{headroom / (1 << 20):.1f} MiB under max for the event loop "
          f"(LOOP_HEADROOM {LOOP_HEADROOM >> 20} MiB)")
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
    check(stats["hook_calls_on_loop"] == 0,
          f"the event loop never ran short of memory ({stats['hook_calls_on_loop']} hook calls "
          "on the loop)")
    return stats


if __name__ == "__main__":
    env = execmem_dask.worker_env("4GB", preload=preload_path())
    env.update(EXECMEM_INITIAL="128m", EXECMEM_MAX="320m", EXECMEM_OVERHEAD="32m",
               EXECMEM_DASK_SPILL_HOOK="0", EXECMEM_DASK_SPILL_TIMEOUT="300")
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
    before = run_blocks(client, "nohook")
    check(client.submit(block_sum, np.ones(4)).result() == 4.0,
          "the worker survives and runs the next task")
    client.run(set_hook, True)
    after = run_blocks(client, "hook")
    check(after["refusals"] == before["refusals"],
          f"with the hook execmem refused nothing ({after['refusals'] - before['refusals']})")
    check(after["peak_used"] <= after["max"], "used stayed within max")
    client.close()
    cluster.close()
    finish()
