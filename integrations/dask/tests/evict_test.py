"""The plugin's eviction (`ExecmemPlugin._evict`) judged by what execmem's
`used` shows, not by what the buffer says it evicted — without a cluster.

Why: in `dask.spill_hook` (1 run in 20-40) the hook claimed 64 MiB and execmem
saw 0 B freed. Dask's SpillBuffer.evict binds the evicted value to a local
(`_, _, weight = self.fast.evict()`); the worker's profiler thread samples
the event loop's frames (`sys._current_frames`), and a frame object it still
holds when evict returns keeps that local — the 64 MiB array — alive. Any
other reference (a comm in flight) does the same. The plugin must then evict
on until `used` has fallen by the request, and must not empty the buffer when
nothing it evicts is freed.

A fake buffer (an ordered dict of values, evict() drops the oldest and
returns its sizeof) and a fake shim whose `used` is the bytes of the values
still alive (weak references), so "still referenced elsewhere" is a list
that holds some of them. Every case is deterministic.
"""
import gc
import weakref
from types import SimpleNamespace

from common import check, finish

from execmem_dask.plugin import ExecmemPlugin

MIB = 1 << 20


class Value:
    """A stand-in for an array of `nbytes` (sizeof says `weight`)."""

    def __init__(self, nbytes: int, weight: int) -> None:
        self.nbytes, self.weight = nbytes, weight


class FakeShim:
    def __init__(self, base: int) -> None:
        self.base = base
        self.alive: weakref.WeakSet[Value] = weakref.WeakSet()

    def executor_stats(self):
        gc.collect()  # a Value freed is freed now, as refcounting does for an array
        return SimpleNamespace(used=self.base + sum(v.nbytes for v in self.alive))


class FakeBuffer:
    def __init__(self) -> None:
        self.fast: dict[str, Value] = {}
        self.evicted: list[str] = []

    def evict(self) -> int:
        key = next(iter(self.fast))
        value = self.fast.pop(key)
        self.evicted.append(key)
        return value.weight


def plugin_with(values, held=()):
    """A plugin object with only what _evict reads; `held` are indexes of
    values something else keeps referencing."""
    shim, buffer = FakeShim(base=30 * MIB), FakeBuffer()
    others = []
    for i, (nbytes, weight) in enumerate(values):
        v = Value(nbytes, weight)
        shim.alive.add(v)
        buffer.fast[f"k{i}"] = v
        if i in held:
            others.append(v)
    plugin = ExecmemPlugin.__new__(ExecmemPlugin)
    plugin._shim, plugin._buffer = shim, buffer
    plugin.evicted = plugin.evictions = 0
    return plugin, shim, buffer, others


def case(name, values, request, held, want_evicted, want_fall):
    plugin, shim, buffer, others = plugin_with(values, held)
    before = shim.executor_stats().used
    claimed = plugin._evict(request)
    fall = before - shim.executor_stats().used
    check(buffer.evicted == want_evicted and fall == want_fall and claimed >= request,
          f"{name}: evicted {buffer.evicted} (want {want_evicted}), used fell "
          f"{fall // MIB} MiB (want {want_fall // MIB}), claimed {claimed // MIB} MiB")
    check(plugin.evictions == len(buffer.evicted) and plugin.evicted == claimed,
          f"{name}: the metrics count {plugin.evictions} evictions, {plugin.evicted // MIB} MiB")
    del others


blocks = [(64 * MIB, 64 * MIB)] * 5
# Nothing else holds the values: one block is enough, the next stay.
case("freed as claimed", blocks, 64 * MIB, held=(), want_evicted=["k0"], want_fall=64 * MIB)
# The oldest block is still referenced (a profiler's frame): its eviction frees
# nothing, so the plugin evicts the next one too — the dask.spill_hook failure.
case("first still referenced", blocks, 64 * MIB, held=(0,), want_evicted=["k0", "k1"],
     want_fall=64 * MIB)
# Everything evicted stays referenced: the plugin stops at twice the request by
# sizeof instead of emptying the buffer for nothing.
case("all referenced", blocks, 64 * MIB, held=(0, 1, 2, 3, 4), want_evicted=["k0", "k1"],
     want_fall=0)
# sizeof overestimates (a value holds half what it says): used falls by the
# request only after four; the plugin stops at twice the request by sizeof.
halves = [(32 * MIB, 64 * MIB)] * 5
case("sizeof overestimates", halves, 64 * MIB, held=(), want_evicted=["k0", "k1"],
     want_fall=64 * MIB)
# Small keys: as many as the request needs, no more.
small = [(8 * MIB, 8 * MIB)] * 10
case("small keys", small, 20 * MIB, held=(), want_evicted=["k0", "k1", "k2"],
     want_fall=24 * MIB)
# An empty buffer: nothing to evict, nothing claimed... and no loop forever.
plugin, shim, buffer, _ = plugin_with([])
check(plugin._evict(64 * MIB) == 0 and buffer.evicted == [], "an empty buffer: nothing evicted")
finish()
