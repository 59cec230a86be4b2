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
