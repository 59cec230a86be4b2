/* _execmem_arena: CPython's small-object arenas from execmem.
 *
 * pymalloc keeps handling Python's small objects; only the arenas it carves
 * them from (ARENA_SIZE: 1 MiB on 64-bit CPython 3.10-3.12, 256 KiB on 32-bit
 * and before 3.10) come from execmem, through
 * PyObject_SetArenaAllocator. Each arena is then one large block of the
 * executor the allocating thread is bound to (the default executor in a Dask
 * worker), inside its budget like any other allocation.
 *
 * The process runs under the LD_PRELOAD shim: the execmem C API is looked up
 * in what is already mapped (dlsym(RTLD_DEFAULT)), never linked, so that the
 * module loads without the shim and install() says why it cannot work.
 *
 * Call graph (every call below holds the GIL: pymalloc's rule):
 *   PyObject_Malloc -> new_arena -> ArenaAlloc -> execmem_aligned_alloc
 *   PyObject_Free   -> ArenaFree -> execmem_owns ? execmem_free : previous.free
 *
 * Arenas mapped before install() (by CPython's default allocator, mmap) are
 * given back to that allocator: ArenaFree asks execmem_owns(), which reads
 * execmem's slot table (one load per 64 MiB region) and the block's page
 * header, never the memory at the pointer, and is false for memory execmem
 * does not manage. A live mapping of CPython's cannot lie inside a region
 * execmem has mapped, so an arena is execmem's exactly when execmem_owns says so.
 *
 * Spill hooks. new_arena has taken an arena object off pymalloc's lists when
 * it calls ArenaAlloc; Python code run from inside it (a spill hook written in
 * Python) would re-enter pymalloc in that state, and a hook that releases the
 * GIL would let other threads in. SpillTrampoline, the C function the Python
 * hooks are registered through (execmem_dask._lib), declines (returns 0) on a
 * thread inside ArenaAlloc; the refused arena makes pymalloc fall back to
 * malloc for that object, where the hook runs with pymalloc consistent.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>

/* pymalloc's pool size: an arena aligned to it loses no pool to alignment. */
enum { kPoolAlignment = 16 * 1024 };
static const size_t kSpillFailed = (size_t)-1; /* EXECMEM_SPILL_FAILED */

typedef struct {
  void* (*aligned_alloc)(size_t alignment, size_t size);
  void (*free)(void* ptr);
  int (*owns)(const void* ptr);
} ExecmemApi;

/* Guarded by the GIL: pymalloc calls the arena allocator only with it held. */
static ExecmemApi g_api;
static PyObjectArenaAllocator g_previous;
static int g_installed;
static unsigned long long g_arenas_live, g_arenas_allocated, g_arenas_freed;
static unsigned long long g_refused, g_previous_frees, g_hooks_declined;
static size_t g_arena_bytes_live;

/* Backoff after a refusal. A refused arena makes pymalloc serve the object
 * from malloc instead (PyObject_Malloc's fallback), which the budget may still
 * allow for small sizes (the emergency reserve, a span's free blocks), so
 * pymalloc asks for an arena again at its next allocation that needs a pool;
 * a refusal is execmem's slow path (spill hooks, trim, the report). After a
 * refusal the next g_backoff requests fail at once, doubling up to
 * kMaxBackoff while execmem keeps refusing; a success or any freed arena
 * resets it. The objects meanwhile go to malloc, inside the budget too. */
enum { kMaxBackoff = 1024 };
static unsigned g_skip, g_backoff = 1;
static unsigned long long g_skipped;

/* Set while this thread is inside ArenaAlloc (see Spill hooks above). */
static _Thread_local int t_in_arena_alloc;

static void* ArenaAlloc(void* context, size_t size) {
  (void)context;
  if (g_skip > 0) {
    --g_skip;
    ++g_skipped;
    return NULL;
  }
  t_in_arena_alloc = 1;
  void* p = g_api.aligned_alloc(kPoolAlignment, size);
  t_in_arena_alloc = 0;
  if (p == NULL) {
    ++g_refused;
    g_skip = g_backoff;
    g_backoff = g_backoff * 2 > kMaxBackoff ? kMaxBackoff : g_backoff * 2;
    return NULL;
  }
  g_backoff = 1;
  ++g_arenas_live;
  ++g_arenas_allocated;
  g_arena_bytes_live += size;
  return p;
}

static void ArenaFree(void* context, void* p, size_t size) {
  (void)context;
  if (p == NULL) return;
  g_skip = 0;
  g_backoff = 1;
  if (g_api.owns(p)) {
    g_api.free(p);
    --g_arenas_live;
    ++g_arenas_freed;
    g_arena_bytes_live -= size;
    return;
  }
  ++g_previous_frees;
  g_previous.free(g_previous.ctx, p, size);
}

/* size_t (*execmem_spill_fn)(void* context, size_t bytes); context: a Python
 * callable taking the bytes wanted and returning the bytes freed (or
 * EXECMEM_SPILL_FAILED), kept alive by whoever registered the hook. */
static size_t SpillTrampoline(void* context, size_t bytes) {
  if (t_in_arena_alloc) {
    ++g_hooks_declined; /* this thread holds the GIL */
    return 0;
  }
  if (_Py_IsFinalizing()) return 0;
  PyGILState_STATE gil = PyGILState_Ensure();
  PyObject *type, *value, *traceback; /* an allocation may run with an error set */
  PyErr_Fetch(&type, &value, &traceback);
  size_t freed = kSpillFailed;
  PyObject* result = PyObject_CallFunction((PyObject*)context, "n", (Py_ssize_t)bytes);
  if (result != NULL) {
    freed = PyLong_AsSize_t(result);
    Py_DECREF(result);
  }
  if (PyErr_Occurred()) {
    PyErr_WriteUnraisable((PyObject*)context);
    freed = kSpillFailed;
  }
  PyErr_Restore(type, value, traceback);
  PyGILState_Release(gil);
  return freed;
}

static int LookUp(void** out, const char* name) {
  *out = dlsym(RTLD_DEFAULT, name);
  if (*out != NULL) return 0;
  PyErr_Format(PyExc_RuntimeError,
               "_execmem_arena: %s is not in this process: it must run under the execmem "
               "shim (LD_PRELOAD=.../libexecmem_preload.so when the process starts)",
               name);
  return -1;
}

static PyObject* Install(PyObject* module, PyObject* unused) {
  (void)module;
  (void)unused;
  if (g_installed) Py_RETURN_FALSE;
  ExecmemApi api;
  if (LookUp((void**)&api.aligned_alloc, "execmem_aligned_alloc") < 0 ||
      LookUp((void**)&api.free, "execmem_free") < 0 ||
      LookUp((void**)&api.owns, "execmem_owns") < 0) {
    return NULL;
  }
  g_api = api;
  PyObject_GetArenaAllocator(&g_previous);
  PyObjectArenaAllocator mine = {NULL, ArenaAlloc, ArenaFree};
  PyObject_SetArenaAllocator(&mine);
  g_installed = 1;
  Py_RETURN_TRUE;
}

static PyObject* Stats(PyObject* module, PyObject* unused) {
  (void)module;
  (void)unused;
  return Py_BuildValue(
      "{s:O,s:K,s:K,s:K,s:n,s:K,s:K,s:K,s:K}", "installed", g_installed ? Py_True : Py_False,
      "arenas_live", g_arenas_live, "arenas_allocated", g_arenas_allocated, "arenas_freed",
      g_arenas_freed, "arena_bytes_live", (Py_ssize_t)g_arena_bytes_live, "refused", g_refused,
      "skipped", g_skipped, "previous_frees", g_previous_frees, "hooks_declined", g_hooks_declined);
}

static PyObject* SpillTrampolineAddress(PyObject* module, PyObject* unused) {
  (void)module;
  (void)unused;
  return PyLong_FromVoidPtr((void*)(uintptr_t)&SpillTrampoline);
}

static PyMethodDef kMethods[] = {
    {"install", Install, METH_NOARGS,
     "install() -> bool: pymalloc's arenas from execmem from now on (False: already "
     "installed). RuntimeError when the execmem shim is not in the process. Cannot be undone: "
     "arenas allocated from execmem must be freed by it."},
    {"stats", Stats, METH_NOARGS,
     "stats() -> dict: installed, arenas_live, arenas_allocated, arenas_freed, "
     "arena_bytes_live (execmem's arenas), refused (arenas execmem refused), skipped (arena "
     "requests failed at once after a refusal: the backoff), previous_frees "
     "(arenas mapped before install() given back to CPython's allocator), hooks_declined "
     "(spill hooks not run inside an arena allocation)."},
    {"spill_trampoline_address", SpillTrampolineAddress, METH_NOARGS,
     "The address of a C execmem_spill_fn whose context is a Python callable "
     "(bytes wanted -> bytes freed); it declines inside an arena allocation."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kModule = {
    PyModuleDef_HEAD_INIT,
    "_execmem_arena",
    "CPython's small-object arenas from execmem (PyObject_SetArenaAllocator).",
    -1,
    kMethods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__execmem_arena(void) { return PyModule_Create(&kModule); }
