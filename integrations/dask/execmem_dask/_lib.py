"""The execmem C API (include/execmem.h) reached with ctypes, in a process
that runs under the LD_PRELOAD shim (libexecmem_preload.so).

Nothing here loads the library: a shim that is not preloaded cannot be loaded
later (the process already allocated with glibc), so every function looks its
symbols up in what is already mapped (``ctypes.CDLL(None)``, RTLD_DEFAULT) and
``shim_loaded()`` tells whether that is execmem.
"""
from __future__ import annotations

import ctypes
import os

PRELOAD_NAME = "libexecmem_preload.so"
SPILL_FAILED = ctypes.c_size_t(-1).value  # EXECMEM_SPILL_FAILED

# size_t (*execmem_spill_fn)(void* context, size_t bytes)
SPILL_FN = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t)

_u64 = ctypes.c_uint64


# The stats structs grow by appending fields. The caller's `version` says which
# layout it has and the library writes only that version's fields, then sets
# `version` to the version it wrote (docs/abi.md): 1 from a library older than
# the version asked for. The spare room at the end guards against a library
# from before that rule (it wrote its whole struct).
STATS_VERSION = 3  # EXECMEM_STATS_VERSION of the layouts below
_SPARE = ("_spare", _u64 * 32)


class ExecutorStats(ctypes.Structure):
    """execmem_executor_stats_t, version 3 (emergency_* are 0 before it)."""

    _fields_ = [
        ("version", ctypes.c_uint32),
        ("name", ctypes.c_char * 64),
        ("initial", _u64), ("max", _u64), ("overhead", _u64),
        ("used", _u64), ("peak_used", _u64), ("footprint", _u64),
        ("peak_footprint", _u64), ("overhead_in_use", _u64),
        ("allocations", _u64), ("frees", _u64), ("spill_calls", _u64),
        ("spill_failures", _u64), ("bytes_spilled", _u64), ("oom_count", _u64),
        ("ns_above_initial", _u64),
        ("emergency_uses", _u64), ("emergency_bytes", _u64), ("emergency_active", _u64),
        _SPARE,
    ]


class PoolStats(ctypes.Structure):
    """execmem_pool_stats_t, version 2 (the same in version 3)."""

    _fields_ = [
        ("version", ctypes.c_uint32),
        ("capacity", _u64), ("reserved", _u64), ("granted", _u64), ("held", _u64),
        ("cached", _u64), ("returned_to_os", _u64), ("arenas", _u64), ("mapped", _u64),
        ("resident", _u64), ("peak_resident", _u64), ("metadata", _u64),
        ("tracked", _u64), ("untracked", _u64),
        _SPARE,
    ]


def mapped_preload(maps_path: str = "/proc/self/maps") -> str | None:
    """The path of the mapped libexecmem_preload.so, or None."""
    try:
        with open(maps_path) as f:
            for line in f:
                if PRELOAD_NAME in line:
                    return line.split(None, 5)[-1].strip()
    except OSError:
        return None
    return None


class Shim:
    """The shim's C API in this process. Construct only when shim_loaded()."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(None)
        self._lib = lib
        lib.execmem_default_executor.restype = ctypes.c_void_p
        lib.execmem_default_executor.argtypes = []
        lib.execmem_executor_add_spill_hook.restype = ctypes.c_int
        lib.execmem_executor_add_spill_hook.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, SPILL_FN, ctypes.c_void_p]
        lib.execmem_executor_remove_spill_hook.restype = ctypes.c_int
        lib.execmem_executor_remove_spill_hook.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.execmem_executor_stats.restype = ctypes.c_int
        lib.execmem_executor_stats.argtypes = [ctypes.c_void_p, ctypes.POINTER(ExecutorStats)]
        lib.execmem_pool_stats.restype = None
        lib.execmem_pool_stats.argtypes = [ctypes.POINTER(PoolStats)]
        lib.execmem_trim.restype = None
        lib.execmem_trim.argtypes = []
        lib.execmem_last_error.restype = ctypes.c_char_p
        lib.execmem_last_error.argtypes = []
        lib.execmem_stats_json.restype = ctypes.c_void_p
        lib.execmem_stats_json.argtypes = []
        lib.execmem_free.restype = None
        lib.execmem_free.argtypes = [ctypes.c_void_p]
        self.executor = lib.execmem_default_executor()
        self._hooks: dict[str, object] = {}  # keeps the callbacks alive

    def executor_stats(self) -> ExecutorStats:
        out = ExecutorStats(version=STATS_VERSION)
        rc = self._lib.execmem_executor_stats(self.executor, ctypes.byref(out))
        if rc != 0:
            raise OSError(rc, f"execmem_executor_stats: {os.strerror(rc)}")
        return out

    def pool_stats(self) -> PoolStats:
        out = PoolStats(version=STATS_VERSION)
        self._lib.execmem_pool_stats(ctypes.byref(out))
        return out

    def trim(self) -> None:
        self._lib.execmem_trim()

    def last_error(self) -> str:
        raw = self._lib.execmem_last_error()
        return raw.decode("utf-8", "replace") if raw else ""

    def stats_json(self) -> str:
        ptr = self._lib.execmem_stats_json()
        if not ptr:
            raise MemoryError("execmem_stats_json: out of memory")
        try:
            return ctypes.string_at(ptr).decode("utf-8", "replace")
        finally:
            self._lib.execmem_free(ptr)

    def add_spill_hook(self, name: str, priority: int, fn) -> None:
        """fn(bytes) -> bytes it believes it freed, or SPILL_FAILED.

        Registered through _execmem_arena's C trampoline when it loads (it
        declines inside an arena allocation, where Python code must not run:
        docs/python-arenas.md), else through a ctypes callback."""
        from execmem_dask import _arena

        trampoline = _arena.spill_trampoline()
        if trampoline is not None:
            callback, context = SPILL_FN(trampoline), ctypes.c_void_p(id(fn))
            keep = (callback, fn)
        else:
            callback, context = SPILL_FN(lambda _context, nbytes: fn(nbytes)), None
            keep = callback
        rc = self._lib.execmem_executor_add_spill_hook(
            self.executor, name.encode(), priority, callback, context)
        if rc != 0:
            raise OSError(rc, f"execmem_executor_add_spill_hook({name!r}): {os.strerror(rc)}"
                          f" {self.last_error()}".rstrip())
        self._hooks[name] = keep

    def remove_spill_hook(self, name: str) -> None:
        rc = self._lib.execmem_executor_remove_spill_hook(self.executor, name.encode())
        if rc != 0:
            raise OSError(rc, f"execmem_executor_remove_spill_hook({name!r}): {os.strerror(rc)}")
        # The callback object stays referenced: a hook call admitted before the
        # removal may still be running on another thread.


_shim: Shim | None = None


def shim_loaded() -> bool:
    """True when libexecmem_preload.so is mapped and its malloc is the process's."""
    if mapped_preload() is None:
        return False
    try:
        return hasattr(ctypes.CDLL(None), "execmem_default_executor")
    except OSError:
        return False


def shim() -> Shim:
    """The shim of this process; RuntimeError when it is not loaded."""
    global _shim
    if _shim is None:
        if not shim_loaded():
            raise RuntimeError(not_loaded_message())
        _shim = Shim()
    return _shim


def not_loaded_message() -> str:
    preload = os.environ.get("LD_PRELOAD", "")
    msg = f"execmem: {PRELOAD_NAME} is not loaded in this process (pid {os.getpid()})"
    if PRELOAD_NAME in preload:
        msg += (f": LD_PRELOAD={preload!r} is in os.environ but was set after the process "
                "started, which the dynamic loader never sees. Dask's LocalCluster(env=...) "
                "and distributed.nanny.environ do exactly that; use "
                "execmem_dask.local_cluster(...) or execmem_dask.cluster_config(...) "
                "(distributed.nanny.pre-spawn-environ), or start `dask worker` with "
                "`python3 -m execmem_dask worker ...`")
    else:
        msg += ": start the worker with LD_PRELOAD=.../libexecmem_preload.so (see "
        msg += "`python3 -m execmem_dask env --help`)"
    return msg
