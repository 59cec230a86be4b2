"""The four Dask workloads of issue 13, for the tests and the benchmark.

Each `run_<name>(client, scale)` computes on the cluster and returns a value
that `reference(name, scale)` (Dask's synchronous scheduler in this process,
no cluster, no shim) must equal. scale 1 is the tests' size (seconds on 2 cores);
the benchmark uses 10, which is issue 13's size (2.6 M rows, 10k x 10k, 55 MB
frames).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

WORKLOADS = ("groupby", "shuffle", "array", "frames")


# ---- data -----------------------------------------------------------------------
def _timeseries(scale: int):
    import dask.datasets

    days = 3 * scale  # 86 400 rows a day, one partition a day
    end = pd.Timestamp("2000-01-01") + pd.Timedelta(days=days)
    return dask.datasets.timeseries(start="2000-01-01", end=end.strftime("%Y-%m-%d"),
                                    freq="1s", partition_freq="1d", seed=42)


def _array(scale: int):
    import dask.array as da

    n = 1000 * scale
    return da.random.RandomState(42).random((n, n), chunks=(max(500, n // 10),) * 2)


def frame_rows(scale: int) -> int:
    return 170_000 * scale  # 4 float64 columns: 5.4 MB at scale 1, 54 MB at 10


def make_frame(seed: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.random((rows, 4)), columns=list("abcd"))


def frame_sum(frame: pd.DataFrame) -> float:
    return float(frame.to_numpy().sum())


def _frame_plan(scale: int):
    batches, per_batch = 6, 6  # half of each batch kept: 18 frames live at the end
    return batches, per_batch, frame_rows(scale)


# ---- results compared ------------------------------------------------------------
def _groupby(df):
    return df.groupby("name").agg({"x": "sum", "y": "mean", "id": "count"})


def _normalize_groupby(result: pd.DataFrame) -> pd.DataFrame:
    return result.sort_index()


def _partition_digest(part: pd.DataFrame) -> tuple:
    """(hash sum, rows, sorted, first, last) of one partition."""
    if len(part) == 0:
        return 0, 0, True, None, None
    h = pd.util.hash_pandas_object(part, index=True).to_numpy(dtype=np.uint64)
    with np.errstate(over="ignore"):
        s = int(h.sum(dtype=np.uint64))
    return s, len(part), bool(part.index.is_monotonic_increasing), part.index[0], part.index[-1]


def _combine_digests(digests) -> tuple:
    total, rows, ordered, last = 0, 0, True, None
    for s, n, mono, first, end in digests:
        if n == 0:
            continue
        total = (total + s) % (1 << 64)
        rows += n
        ordered &= mono and (last is None or first >= last)
        last = end
    return total, rows, ordered


def _collection(name: str, scale: int):
    """The result of a collection workload, computed by the current scheduler."""
    import dask

    if name == "groupby":
        return _normalize_groupby(_groupby(_timeseries(scale)).compute())
    if name == "shuffle":
        parts = _timeseries(scale).set_index("x", shuffle="tasks").to_delayed()
        return _combine_digests(dask.compute(*[dask.delayed(_partition_digest)(p)
                                               for p in parts]))
    if name == "array":
        x = _array(scale)
        return float((x + x.T).mean().compute())
    raise ValueError(f"unknown workload {name!r}; expected one of {WORKLOADS}")


def run(name: str, client, scale: int):
    """The workload on the cluster of `client`."""
    if name != "frames":
        return _collection(name, scale)
    batches, per_batch, rows = _frame_plan(scale)
    kept = []
    for b in range(batches):
        batch = client.map(make_frame, [b * per_batch + i for i in range(per_batch)],
                           rows=rows, pure=False)
        sums = client.gather(client.map(frame_sum, batch, pure=False))
        assert len(sums) == per_batch
        kept += batch[::2]  # the other half is released with `batch`
    return client.gather(client.map(frame_sum, kept, pure=False))


def reference(name: str, scale: int):
    """The same result without a cluster (Dask's synchronous scheduler)."""
    import dask

    if name == "frames":
        batches, per_batch, rows = _frame_plan(scale)
        seeds = [b * per_batch + i for b in range(batches) for i in range(0, per_batch, 2)]
        return [frame_sum(make_frame(s, rows)) for s in seeds]
    with dask.config.set(scheduler="sync"):
        return _collection(name, scale)


def same(name: str, got, want) -> bool:
    if name == "groupby":
        try:
            pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9)
            return True
        except AssertionError:
            return False
    if name == "array":
        return abs(got - want) <= 1e-12 * max(1.0, abs(want))
    if name == "frames":
        return len(got) == len(want) and all(abs(a - b) <= 1e-9 * max(1, abs(b))
                                             for a, b in zip(got, want))
    return got == want


# ---- the skewed partition (issue 18: one pool for a host) -------------------------------
CHUNK_BYTES = 32 << 20


def make_chunk(i: int, nbytes: int = CHUNK_BYTES):
    """A chunk of a partition: nbytes of uint8, every page written."""
    return np.full(nbytes, i % 251 + 1, dtype=np.uint8)


def chunk_sum(chunk) -> int:
    return int(chunk.sum(dtype=np.uint64))


def skewed_plan(total_bytes: int, n_workers: int, factor: float = 3.0,
                chunk_bytes: int = CHUNK_BYTES) -> dict:
    """One partition needs `factor` times a worker's static share (total /
    n_workers), all of it held at once; each other worker gets a sixteenth of
    a share (at least one chunk)."""
    share = total_bytes // n_workers
    return {"share": share, "hot_chunks": int(factor * share) // chunk_bytes,
            "even_chunks": max(1, share // 16 // chunk_bytes), "chunk_bytes": chunk_bytes}


def run_skewed(client, plan: dict) -> int:
    """The hot partition's chunks are computed on one worker (a hot key after
    a shuffle) and all held at once; the others' chunks are spread over the
    other workers; then every chunk is summed where it lives. Returns the
    total, which skewed_reference(plan) must equal."""
    from distributed import wait

    workers = sorted(client.scheduler_info()["workers"])
    hot, others = workers[0], workers[1:] or workers
    n_hot, n_even = plan["hot_chunks"], plan["even_chunks"]
    nbytes = plan["chunk_bytes"]
    hot_chunks = client.map(make_chunk, range(n_hot), nbytes=nbytes, workers=[hot],
                            allow_other_workers=False, key=[f"hot-{i}" for i in range(n_hot)])
    even = []
    for w, addr in enumerate(others):
        ids = range(10_000 + w * n_even, 10_000 + (w + 1) * n_even)
        even += client.map(make_chunk, ids, nbytes=nbytes, workers=[addr],
                           allow_other_workers=False, key=[f"even-{i}" for i in ids])
    wait(hot_chunks + even)  # the hot partition is held whole
    # Each chunk summed where it lives (no transfer: the skew stays put).
    where = client.who_has(hot_chunks + even)
    sums = [client.submit(chunk_sum, f, key=f"sum-{f.key}", workers=list(where[f.key]),
                          allow_other_workers=False) for f in hot_chunks + even]
    total = sum(client.gather(sums))
    del hot_chunks, even, sums
    return total


def skewed_reference(plan: dict, n_workers: int) -> int:
    nbytes, n_hot, n_even = plan["chunk_bytes"], plan["hot_chunks"], plan["even_chunks"]
    ids = list(range(n_hot)) + [10_000 + i for i in range(max(1, n_workers - 1) * n_even)]
    return sum(nbytes * (i % 251 + 1) for i in ids)


def spilled_bytes(dask_worker) -> int:
    """Bytes this worker has written to disk so far (its spill buffer's total)."""
    data = dask_worker.data
    metrics = data.get_metrics() if hasattr(data, "get_metrics") else {}
    if "disk_write_bytes_total" in metrics:
        return int(metrics["disk_write_bytes_total"])
    total = getattr(data, "spilled_total", None)
    return int(total.disk) if total is not None else 0


from distributed import WorkerPlugin  # noqa: E402


class PauseCounter(WorkerPlugin):
    """A worker plugin counting the memory monitor's running -> paused moves."""

    name = "execmem-pauses"

    def setup(self, worker):
        from distributed.core import Status

        self.pauses = 0
        mm = worker.memory_manager
        inner = mm._maybe_pause_or_unpause

        def counted(worker, memory):
            was = worker.status
            inner(worker, memory)
            if was == Status.running and worker.status == Status.paused:
                self.pauses += 1

        mm._maybe_pause_or_unpause = counted


def pauses(dask_worker) -> int:
    plugin = dask_worker.plugins.get(PauseCounter.name)
    return plugin.pauses if plugin is not None else -1
