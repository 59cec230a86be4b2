"""The execmem worker plugin: spill hook, trim on pressure and when idle,
metrics, reports.

Threads. Dask's spill buffer (worker.data, a zict-based SpillBuffer) is not
thread-safe: only the worker's event loop touches it. execmem calls a spill
hook on whatever thread allocates, so the hook

  - on a task thread (or any thread but the loop): hands the request to the
    loop (IOLoop.add_callback) and waits for it, at most `timeout` seconds,
    with the GIL released; the loop evicts the oldest keys to disk between
    two of its own callbacks, never inside a buffer operation, and frees
    LOOP_HEADROOM beyond the request;
  - on the loop thread: returns 0 without touching the buffer (the loop may be
    in the middle of a buffer operation: reading a spilled key back, say), and
    schedules an eviction to run on the loop after the current callback.
    Instead, before the buffer reads a spilled key back, the guard makes room
    for it (evicts other keys) when execmem's headroom is short, and after
    the buffer stores a key the guard evicts until LOOP_HEADROOM is left
    under max: the loop's own allocations (comm buffers) must always fit.

Every buffer operation goes through a guard (the buffer's class is swapped for
a subclass) that counts entries while another is in progress (`reentries`)
and entries from other threads than the loop (`foreign_entries`): both stay 0.

Caveat: the hook runs Python code inside malloc. While it waits, other threads
run; an object whose allocation triggered the hook is in the middle of being
built or resized by the waiting thread, which CPython never expects to happen
with the GIL released. Dask's own threads do not share such objects with task
threads, but C extensions that keep Python objects across a malloc might.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time

from distributed import WorkerPlugin
from distributed.core import Status

from execmem_dask import _arena, _lib

logger = logging.getLogger("execmem_dask")

HOOK_NAME = "dask-spill-buffer"
MIB = 1 << 20
UNSPILL_MARGIN = 8 * MIB
# What the hook frees for a task thread beyond its shortfall: room for the
# event loop's own allocations (comm buffers: msgpack's Packer, frames), which
# the hook cannot serve (on the loop it returns 0), so that a worker filled by
# its tasks is never left a few MiB under max with its comms refused memory.
LOOP_HEADROOM = 16 * MIB
# Idle trim (docs/python-arenas.md, "Trim when the worker goes idle"): a worker
# that has forgotten its last task, or has run none for a whole tick of
# IDLE_TICK_MS with nothing executing, ready, waiting or being fetched, gives
# the pool's cached pages back to the OS (execmem_trim) when they are at least
# $EXECMEM_DASK_IDLE_TRIM_MIB (default IDLE_TRIM_MIB; 0: never).
IDLE_TRIM_MIB = 4
IDLE_TICK_MS = 25
IDLE_TRIM_CALLBACK = "execmem-idle-trim"


class _Guard:
    """Counts entries into the buffer; see the module's docstring."""

    def __init__(self, loop_thread: int) -> None:
        self.loop_thread = loop_thread
        self.depth = 0
        self.entries = 0
        self.reentries = 0
        self.foreign_entries = 0
        self.before_unspill = None  # callable(buffer, key) run before an entry that reads back
        self.after_store = None  # callable(buffer) run after a key is stored

    def enter(self) -> None:
        if self.depth:
            self.reentries += 1
        if threading.get_ident() != self.loop_thread:
            self.foreign_entries += 1
        self.depth += 1
        self.entries += 1

    def leave(self) -> None:
        self.depth -= 1


def _guarded(cls):
    def wrap(name):
        original = getattr(cls, name)

        def method(self, *args, **kwargs):
            guard = self._execmem_guard
            if name == "__getitem__" and guard.before_unspill and not guard.depth:
                guard.before_unspill(self, args[0])
            guard.enter()
            try:
                result = original(self, *args, **kwargs)
            finally:
                guard.leave()
            if name == "__setitem__" and guard.after_store and not guard.depth:
                guard.after_store(self)
            return result

        method.__name__ = name
        return method

    names = ("__getitem__", "__setitem__", "__delitem__", "evict")
    return type("Guarded" + cls.__name__, (cls,), {n: wrap(n) for n in names})


class _Request:
    __slots__ = ("nbytes", "freed", "done", "cancelled")

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.freed = 0
        self.done = threading.Event()
        self.cancelled = False


# ---- the MemoryError of a task carries execmem's report -------------------------
_plugin_of_process: "ExecmemPlugin | None" = None
_original_apply_function_simple = None
_refusal: str | None = None  # set when the worker must run execmem but does not
_exit_writer_registered = False


def _report(before: _lib.ExecutorStats, shim: _lib.Shim) -> str:
    text = shim.last_error()
    if "out of memory" in text:
        return text
    s = shim.executor_stats()
    plugin = _plugin_of_process
    hook = (f"; spill hook: {plugin.hook_calls} calls, {plugin.evicted >> 20} MiB evicted"
            if plugin else "")
    return (f"execmem: out of memory in executor '{s.name.decode()}': "
            f"{s.oom_count - before.oom_count} allocation(s) refused during this task; "
            f"used {s.used} / max {s.max}, footprint {s.footprint} / max+overhead "
            f"{s.max + s.overhead}, peak used {s.peak_used}{hook} "
            "(execmem_last_error() was empty on this thread)")


def _with_report(function):
    def run(*args, **kwargs):
        shim = _lib.shim()
        before = shim.executor_stats()
        try:
            return function(*args, **kwargs)
        except MemoryError as e:
            if shim.executor_stats().oom_count == before.oom_count:
                raise  # not refused by execmem
            raise MemoryError(f"{e}\n{_report(before, shim)}") from e

    return run


def _refuse(*args, **kwargs):
    raise RuntimeError(_refusal)


def _apply_function_simple(function, args, kwargs, time_delay):
    function = _refuse if _refusal else _with_report(function)
    return _original_apply_function_simple(function, args, kwargs, time_delay)


def _write_active_stats() -> None:
    """At exit, the active plugin's report. Registered once per process: a
    plugin torn down (its report written then) and replaced under its name
    must not write over its successor's."""
    if _plugin_of_process is not None:
        _plugin_of_process._write_stats()


def _register_exit_writer() -> None:
    global _exit_writer_registered
    if not _exit_writer_registered:
        _exit_writer_registered = True
        atexit.register(_write_active_stats)


def refuse_tasks(message: str) -> None:
    """Every task on this worker fails with `message`: for a worker started
    with --preload execmem_dask but without the shim (exiting instead would
    make the nanny restart it forever)."""
    global _refusal
    _refusal = message
    _install_task_wrapper()


def _install_task_wrapper() -> None:
    """distributed.worker.apply_function_simple runs every task on its thread
    (apply_function calls it too); 2022.12 has no task-error hook."""
    global _original_apply_function_simple
    import distributed.worker as dw

    if _original_apply_function_simple is None:
        _original_apply_function_simple = dw.apply_function_simple
        dw.apply_function_simple = _apply_function_simple


def _remove_task_wrapper() -> None:
    global _original_apply_function_simple
    import distributed.worker as dw

    if _original_apply_function_simple is not None:
        dw.apply_function_simple = _original_apply_function_simple
        _original_apply_function_simple = None


class ExecmemPlugin(WorkerPlugin):
    """Register with client.register_worker_plugin(ExecmemPlugin()), or run
    workers with --preload execmem_dask (dask_setup adds it).

    One per worker: the process has one shim, one spill buffer, one hook. A
    registration under the same name replaces the plugin (Dask tears the old
    one down first). One under another name while an ExecmemPlugin is set up
    on the worker shares that one: its setup and teardown change nothing, its
    metrics are the active plugin's; when the active one is torn down, it
    takes over (sets itself up).

    require: raise in setup when the shim is not loaded (default: always).
    timeout: seconds a task thread waits for the loop to spill for it
        (default: $EXECMEM_DASK_SPILL_TIMEOUT in the worker, else 30).
    spill_hook: register the spill hook (default: unless the worker's
        $EXECMEM_DASK_SPILL_HOOK is 0)."""

    name = "execmem"

    def __init__(self, require: bool = True, timeout: float | None = None,
                 spill_hook: bool | None = None, priority: int = 0) -> None:
        self.require = require
        self.timeout = timeout
        self.spill_hook = spill_hook
        self.priority = priority

    # WorkerPlugin pickles the object to the workers: state is made in setup.
    def setup(self, worker) -> None:
        global _plugin_of_process
        self.loaded = _lib.shim_loaded()
        self.hook_calls = self.hook_calls_on_loop = self.hook_timeouts = 0
        self.evicted = self.evictions = self.trims = self.pauses = 0
        self.unspill_evictions = self.headroom_evictions = 0
        self.idle_trims = self.idle_trimmed = self.idle_thread_trims = 0
        self._idle_mark = None
        self._emptied = False
        self.idle_trim_threshold = 0
        self._closed = False
        self._worker = worker
        self._guard = None
        self._hooked = False
        self._deferred = False
        self._shares = None  # the active ExecmemPlugin this one defers to
        if not self.loaded:
            message = _lib.not_loaded_message()
            logger.error(message)
            if self.require:
                raise RuntimeError(message)
            return
        active = _plugin_of_process
        if active is not None and active is not self and not active._closed:
            # Two would wrap the buffer twice (each entry counted as a
            # reentry), fail on the hook's name, and each one's teardown would
            # stop the other's idle tick (one key in periodic_callbacks).
            self._shares = active
            logger.info("execmem: a second ExecmemPlugin on this worker shares the one "
                        "already set up")
            return
        if self.timeout is None:
            self.timeout = float(os.environ.get("EXECMEM_DASK_SPILL_TIMEOUT", "30"))
        if self.spill_hook is None:
            self.spill_hook = os.environ.get("EXECMEM_DASK_SPILL_HOOK", "1") != "0"
        self._shim = _lib.shim()
        self._install_arenas()
        self._loop = worker.loop
        self._loop_thread = threading.get_ident()  # setup runs on the worker's loop
        data = worker.data
        if hasattr(data, "fast") and hasattr(data, "evict") and hasattr(data, "slow"):
            self._guard = _Guard(self._loop_thread)
            self._guard.before_unspill = self._make_room
            self._guard.after_store = self._keep_loop_headroom
            data._execmem_guard = self._guard
            self._buffer_class = type(data)
            data.__class__ = _guarded(type(data))
            self._buffer = data
        self.set_spill_hook(bool(self.spill_hook))
        self._wrap_memory_manager(worker)
        self._start_idle_trim(worker)
        worker.metrics["execmem"] = self.metrics
        _plugin_of_process = self
        _install_task_wrapper()
        _register_exit_writer()
        logger.info("execmem: shim loaded, max %d MiB, spill hook %s, Python arenas %s",
                    self._shim.executor_stats().max >> 20, "on" if self._hooked else "off",
                    self.python_arenas)

    def teardown(self, worker) -> None:
        global _plugin_of_process
        if not getattr(self, "loaded", False) or self._closed:
            return
        self._closed = True
        if self._shares is not None:
            return
        if self._hooked:
            self._shim.remove_spill_hook(HOOK_NAME)
        worker.metrics.pop("execmem", None)
        idle = worker.periodic_callbacks.pop(IDLE_TRIM_CALLBACK, None)
        if idle is not None:
            idle.stop()
        mm = worker.memory_manager
        for name in ("_maybe_pause_or_unpause", "_maybe_spill"):
            mm.__dict__.pop(name, None)
        if self._guard is not None:
            self._buffer.__class__ = self._buffer_class
        if _plugin_of_process is self:
            _plugin_of_process = None
            _remove_task_wrapper()
        self._write_stats()
        # Unregistered (Dask removed this one from worker.plugins before
        # calling teardown; a closing worker tears down every plugin in it):
        # a registration that shared this one takes over, any others share it.
        plugins = list(worker.plugins.values())
        heirs = [p for p in plugins if getattr(p, "_shares", None) is self and not p._closed]
        if heirs and not any(p is self for p in plugins):
            heirs[0].setup(worker)
            for p in heirs[1:]:
                p._shares = heirs[0]

    # ---- CPython's arenas from execmem (docs/python-arenas.md) -------------------
    def _install_arenas(self) -> None:
        """pymalloc's arenas from execmem, unless $EXECMEM_DASK_PYTHON_ARENAS is 0.
        When it is 1 (worker_env's default) a module that cannot load is an
        error (the budget would miss Python's objects); unset, a warning."""
        self.python_arenas = "off"
        switch = os.environ.get(_arena.ENV_SWITCH, "")
        if switch == "0":
            return
        if os.environ.get("PYTHONMALLOC", "").startswith("malloc"):
            self.python_arenas = "PYTHONMALLOC=malloc"  # pymalloc is not in use
            return
        try:
            _arena.install()
            self.python_arenas = "execmem"
        except (ImportError, OSError, RuntimeError) as e:
            message = f"execmem: Python's arenas stay outside the budget: {e}"
            if switch == "1":
                logger.error(message)
                raise RuntimeError(message) from e
            logger.warning(message)

    # ---- the spill hook --------------------------------------------------------
    def set_spill_hook(self, on: bool) -> None:
        """Registers or removes the hook (client.run can switch it)."""
        if on and not self._hooked and self._guard is not None:
            self._shim.add_spill_hook(HOOK_NAME, self.priority, self._spill)
            self._hooked = True
        elif not on and self._hooked:
            self._shim.remove_spill_hook(HOOK_NAME)
            self._hooked = False

    def _spill(self, nbytes: int) -> int:
        try:
            if self._closed:
                return 0
            self.hook_calls += 1
            if threading.get_ident() == self._loop_thread:
                # Never into the buffer from here; evict after this callback.
                self.hook_calls_on_loop += 1
                if not self._deferred:
                    self._deferred = True
                    self._loop.add_callback(self._evict_on_loop, _Request(nbytes))
                return 0
            request = _Request(nbytes + LOOP_HEADROOM)
            self._loop.add_callback(self._evict_on_loop, request)
            if not request.done.wait(self.timeout):
                request.cancelled = True
                self.hook_timeouts += 1
                return 0
            return request.freed
        except BaseException:  # never let an exception cross into C
            return _lib.SPILL_FAILED

    def _evict(self, nbytes: int) -> int:
        """Evicts the oldest keys until nbytes (by sizeof) are out and execmem's
        used has fallen by nbytes, or twice nbytes by sizeof are out: a key whose
        value something else still references frees nothing when evicted (seen
        in dask.spill_hook: the hook claimed 64 MiB, used did not fall); on the
        loop only."""
        freed = 0
        buffer = self._buffer
        used_before = self._shim.executor_stats().used
        while len(buffer.fast):
            if freed >= nbytes and (freed >= 2 * nbytes or
                                    used_before - self._shim.executor_stats().used >= nbytes):
                break
            weight = buffer.evict()
            if weight < 0:
                break
            freed += weight
            self.evictions += 1
        self.evicted += freed
        return freed

    def _evict_on_loop(self, request: _Request) -> None:
        self._deferred = False
        try:
            if not request.cancelled and not self._closed and not self._guard.depth:
                request.freed = self._evict(request.nbytes)
        finally:
            request.done.set()

    def _make_room(self, buffer, key) -> None:
        """Before a spilled key is read back on the loop: evict others when
        execmem's headroom cannot hold it (its pickled and its loaded copy)."""
        if self._closed or not self._hooked or key in buffer.fast:
            return
        slow = getattr(buffer, "_slow_uncached", None)
        size = getattr(slow, "weight_by_key", {}).get(key) if slow is not None else None
        if size is None:
            return
        need = size.memory + size.disk + UNSPILL_MARGIN
        s = self._shim.executor_stats()
        headroom = s.max - min(s.used, s.max)
        if headroom < need:
            self.unspill_evictions += 1
            self._evict(need - headroom)

    def _keep_loop_headroom(self, buffer) -> None:
        """After the buffer stores a key (on the loop, outside any buffer
        operation): evict the oldest keys when less than LOOP_HEADROOM is left
        under max. A task's allocation that fits without the hook can leave
        the worker a few MiB under max, where the loop's next comm buffer is
        refused and the hook cannot help it (it never evicts on the loop)."""
        if self._closed or not self._hooked or threading.get_ident() != self._loop_thread:
            return  # a store off the loop is a bug the guard counts: never evict there
        s = self._shim.executor_stats()
        headroom = s.max - min(s.used, s.max)
        if headroom < LOOP_HEADROOM:
            self.headroom_evictions += 1
            self._evict(LOOP_HEADROOM - headroom)

    # ---- Dask's memory monitor: trim execmem's cache before spilling or pausing --
    def _wrap_memory_manager(self, worker) -> None:
        mm = worker.memory_manager
        pause_or_unpause = mm._maybe_pause_or_unpause
        maybe_spill = mm._maybe_spill
        fresh = {}

        def above(memory: int) -> bool:
            fractions = [f for f in (mm.memory_spill_fraction, mm.memory_pause_fraction) if f]
            return bool(mm.memory_limit and fractions and
                        memory > mm.memory_limit * min(fractions))

        def wrapped_pause(worker, memory):
            if above(memory):
                self._shim.trim()
                self.trims += 1
                memory = fresh["memory"] = worker.monitor.get_process_memory()
            was = worker.status
            pause_or_unpause(worker, memory)
            if was == Status.running and worker.status == Status.paused:
                self.pauses += 1
                self._shim.trim()
                self.trims += 1

        async def wrapped_spill(worker, memory):
            await maybe_spill(worker, fresh.pop("memory", memory))

        mm._maybe_pause_or_unpause = wrapped_pause
        mm._maybe_spill = wrapped_spill

    # ---- the idle trim: the pool's cached pages back to the OS between workloads --
    def _start_idle_trim(self, worker) -> None:
        """A tick on the worker's loop (setup runs there); stopped by the
        worker's close with its other periodic callbacks, or by teardown."""
        from distributed.compatibility import PeriodicCallback

        value = os.environ.get("EXECMEM_DASK_IDLE_TRIM_MIB", str(IDLE_TRIM_MIB))
        try:
            mib = int(value)
        except ValueError:
            logger.error("execmem: EXECMEM_DASK_IDLE_TRIM_MIB=%r is not a whole number of MiB "
                         "(0: no idle trim); using %d", value, IDLE_TRIM_MIB)
            mib = IDLE_TRIM_MIB
        self.idle_trim_threshold = max(mib, 0) * MIB
        if mib <= 0:
            return
        pc = PeriodicCallback(self._idle_tick, IDLE_TICK_MS)
        worker.periodic_callbacks[IDLE_TRIM_CALLBACK] = pc
        if not pc.is_running():
            pc.start()

    @staticmethod
    def _busy(state) -> bool:
        """A task executing (or seceded), ready, waiting for its data, or data
        being fetched for one."""
        return bool(state.executing or state.long_running or state.ready or
                    state.constrained or state.waiting or state.in_flight_tasks)

    def transition(self, key, start, finish, **kwargs) -> None:
        """WorkerPlugin's hook, on the loop after each task's transition. When
        the worker forgets its last task (the client released the workload's
        keys: nothing is executing, waiting or held), it is idle now: the trim
        runs after the current batch of releases, without waiting for ticks."""
        if finish == "forgotten" and self.idle_trim_threshold and not self._emptied \
                and not self._closed and not self._worker.state.tasks:
            self._emptied = True
            self._loop.add_callback(self._trim_emptied)

    def _trim_emptied(self) -> None:
        self._emptied = False
        if not self._closed and not self._worker.state.tasks:
            self._idle_mark = self._worker.state.executed_count  # idle: no need to wait
            self._idle_tick()

    def _idle_tick(self) -> None:
        """Trims when the worker was idle at the previous tick and is now, no
        task having run in between (idle for a tick at least: the gaps
        between the tasks of a running workload are not idle periods), and
        the pool caches at least the threshold. A trim empties the cache, so
        the next one in the same idle period needs that much freed again:
        once per idle period, unless its releases free more."""
        if self._closed:
            return
        state = self._worker.state
        mark = None if self._busy(state) else state.executed_count
        if mark is None or mark != self._idle_mark:
            self._idle_mark = mark
            return
        cached = self._shim.pool_stats().cached
        if cached < self.idle_trim_threshold:
            return
        self._shim.trim()  # the loop thread's caches and the pool's
        self.idle_trims += 1
        self.idle_trimmed += max(cached - self._shim.pool_stats().cached, 0)
        # execmem_trim gives back the calling thread's cached spans only (a
        # heap is its owner's): the task thread's (~1.5 MiB after a workload)
        # need a trim run there. One idle thread of the pool takes it.
        executor = getattr(self._worker, "executors", {}).get("default")
        if executor is not None:
            try:
                executor.submit(self._shim.trim)
                self.idle_thread_trims += 1
            except RuntimeError:  # shut down: the worker is closing
                pass

    # ---- metrics -----------------------------------------------------------------
    def metrics(self, worker=None) -> dict:
        """execmem's figures, as Worker.metrics["execmem"] (sent to the
        scheduler with each heartbeat) and for client.run."""
        if not self.loaded:
            return {"loaded": False}
        if self._shares is not None:
            return self._shares.metrics()
        s = self._shim.executor_stats()
        p = self._shim.pool_stats()
        g = self._guard
        return {
            "loaded": True,
            "used": s.used, "peak_used": s.peak_used, "footprint": s.footprint,
            "peak_footprint": s.peak_footprint, "budget": s.max, "max": s.max,
            "initial": s.initial, "overhead": s.overhead, "refusals": s.oom_count,
            "spill_calls": s.spill_calls, "bytes_spilled": s.bytes_spilled,
            "emergency_uses": s.emergency_uses, "emergency_active": s.emergency_active,
            "pool_cached": p.cached, "pool_held": p.held, "resident": p.resident,
            "peak_resident": p.peak_resident, "untracked": p.untracked,
            "hook_calls": self.hook_calls, "hook_calls_on_loop": self.hook_calls_on_loop,
            "hook_timeouts": self.hook_timeouts, "evicted_by_hook": self.evicted,
            "evictions_by_hook": self.evictions, "unspill_evictions": self.unspill_evictions,
            "headroom_evictions": self.headroom_evictions,
            "trims": self.trims, "pauses": self.pauses,
            "idle_trims": self.idle_trims, "idle_trimmed": self.idle_trimmed,
            "idle_thread_trims": self.idle_thread_trims,
            "buffer_entries": g.entries if g else 0,
            "buffer_reentries": g.reentries if g else 0,
            "buffer_foreign_entries": g.foreign_entries if g else 0,
            "python_arenas": self.python_arenas,
            **{"python_" + k: v for k, v in _arena.stats().items()},
        }

    def _write_stats(self) -> None:
        directory = os.environ.get("EXECMEM_DASK_STATS_DIR")
        if not directory or not self.loaded:
            return
        path = os.path.join(directory, f"execmem-{os.getpid()}.json")
        try:
            report = json.loads(self._shim.stats_json())
            report["dask"] = self.metrics()
            report["dask"]["written"] = time.time()
            tmp = f"{path}.tmp"
            with open(tmp, "w") as f:
                json.dump(report, f)
            os.replace(tmp, path)
        except (OSError, ValueError, MemoryError) as e:
            logger.warning("execmem: cannot write %s: %s", path, e)
