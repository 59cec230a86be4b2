/* execmem — C API.
 *
 * A memory runtime for executors: a fast general allocator whose every
 * allocation belongs to an executor with an initial reservation, a hard max
 * and an overhead reservation (see README.md, "Budgets").
 *
 * Contract of every function here:
 *  - thread-safe; the allocation functions never take a lock on their fast path;
 *  - an allocation that cannot be satisfied returns NULL and sets errno to
 *    ENOMEM (EINVAL for a bad alignment), after the executor's spill hooks
 *    have been given the chance to free memory — except a request that can
 *    never fit (larger than max, or than the pool's capacity), which fails
 *    at once; either way execmem_last_error() then holds the report;
 *  - execmem_free() of a pointer execmem did not allocate prints
 *    "execmem: free(): pointer 0x... not allocated by execmem" and aborts;
 *  - functions returning int return 0 on success or an errno value; the
 *    thread's last error message is then available from execmem_last_error().
 */
#ifndef EXECMEM_H_
#define EXECMEM_H_

#include <stddef.h>
#include <stdint.h>

#include "execmem_version.h" /* EXECMEM_VERSION_MAJOR, ..., EXECMEM_VERSION_STRING */

#ifdef __cplusplus
extern "C" {
#endif

#define EXECMEM_API __attribute__((visibility("default")))

/* The library's version, "MAJOR.MINOR.PATCH": EXECMEM_VERSION_STRING of the
 * build that made it (a program can compare it with the headers' own). */
EXECMEM_API const char* execmem_version(void);

/* ---- allocation ----------------------------------------------------------
 * Alignment: every block is 16-byte aligned except blocks of 65..127 bytes
 * whose requested size is not a multiple of 16, which are 8-byte aligned (the
 * size classes step by 8 there to keep waste under 12.5 %; no object of such
 * a size needs more). Ask execmem_aligned_alloc for more. The LD_PRELOAD shim
 * rounds such requests up, because compilers assume malloc and operator new
 * return 16-byte-aligned memory for any size. */
EXECMEM_API void* execmem_malloc(size_t size);
EXECMEM_API void* execmem_calloc(size_t count, size_t size);
EXECMEM_API void* execmem_realloc(void* ptr, size_t size);
/* Checked in every build: a double free (of any size), a pointer execmem did
 * not hand out and one inside a block print one line, e.g.
 *   execmem: free(): double free of 0x7f3a0c010030 (a 48-byte block of executor "q42")
 * and abort. A freed block that was handed out again may be freed again. */
EXECMEM_API void execmem_free(void* ptr);
/* free with the size (and alignment) given at allocation. Checked in every
 * build: a size the block cannot have been allocated (or realloc'ed) for —
 * larger than the block, or not more than half of it (for the aligned form:
 * larger than the block) — prints "execmem: free_sized(): wrong size ..."
 * and aborts. */
EXECMEM_API void execmem_free_sized(void* ptr, size_t size);
EXECMEM_API void execmem_free_aligned_sized(void* ptr, size_t alignment, size_t size);
/* alignment: a power of two up to EXECMEM_MAX_ALIGNMENT; size need not be a multiple. */
EXECMEM_API void* execmem_aligned_alloc(size_t alignment, size_t size);
EXECMEM_API int execmem_posix_memalign(void** out, size_t alignment, size_t size);
/* Bytes usable at ptr (>= the size asked for); 0 for NULL. */
EXECMEM_API size_t execmem_usable_size(const void* ptr);
/* Nonzero when ptr is the start of a block in memory execmem manages: a live
 * block, or (for small sizes) a block that was freed and is cached for reuse.
 * Zero for NULL, foreign and interior pointers. Never aborts. */
EXECMEM_API int execmem_owns(const void* ptr);

#define EXECMEM_MAX_ALIGNMENT ((size_t)1 << 30)

/* ---- executors -------------------------------------------------------- */
typedef struct execmem_executor execmem_executor_t;

/* Sizes as users write them: "512m", "4g", "1.5GiB", "1073741824".
 * overhead: a fraction of initial ("0.1", "10%") or a size ("256m").
 * NULL or "" takes the default (initial 1g, max 4g, overhead 10%, each capped
 * by the pool's capacity). */
typedef struct execmem_executor_options {
  const char* name;
  const char* initial;
  const char* max;
  const char* overhead;
  int prefault; /* touch the initial reservation at creation */
} execmem_executor_options_t;

/* Creates an executor. On error returns EINVAL (bad setting), EEXIST (a live
 * executor has that name) or ENOMEM (the pool cannot reserve initial) and
 * leaves nothing half-created. Names are unique among live executors, at
 * most 63 bytes, without control characters (else EINVAL); a NULL or "" name
 * gets a unique one ("executor-N"). */
EXECMEM_API int execmem_executor_create(const execmem_executor_options_t* options,
                                        execmem_executor_t** out);
/* Destroys an executor. EBUSY while a thread is still bound to it, while it
 * has live children or holds reserved bytes (execmem_reserve). Blocks it
 * still owns stay valid; a root's are accounted to nobody once freed, a
 * child's still count in its parent until they are freed. */
EXECMEM_API int execmem_executor_destroy(execmem_executor_t* executor);

/* ---- the budget tree --------------------------------------------------------
 * A child executor (a query in an executor, an operator in a query) has the
 * budgets of any executor, inside its parent's:
 *  - its initial is reserved from its parent's budget (the parent's spill
 *    hooks may be asked to make room; ENOMEM if they cannot);
 *  - its max may not exceed its parent's (EINVAL);
 *  - its used and footprint count in its parent's, up to the root, and the
 *    rules (used <= max, footprint <= max + overhead) hold at every level.
 *    A parent's footprint counts what it lent its children (their initial
 *    and the growth they were granted), at least their footprints.
 * Options left NULL or "" take, for a child: initial 0, max the parent's
 * max, overhead the parent's overhead (a child's overhead caps its
 * footprint; it is not reserved). Under pressure a child's own hooks are
 * asked first, then its siblings above their fair share, then above their
 * reservation (largest excess first), then its parent's hooks, and so on up
 * to where the limit was passed; then other roots, if the pool is short.
 * Threads bind to any node (execmem_bind). */
EXECMEM_API int execmem_executor_create_child(execmem_executor_t* parent,
                                              const execmem_executor_options_t* options,
                                              execmem_executor_t** out);
/* The parent of executor, or NULL for a root. */
EXECMEM_API execmem_executor_t* execmem_executor_parent(const execmem_executor_t* executor);
/* Fair shares among executor's active children (those holding memory, the
 * asking one included: N of them), as Spark shares execution memory among N
 * tasks: each child's used is capped at 1/N of executor's max, and when
 * executor is full a child under its share is served first by asking the
 * children above their share to spill. on: nonzero to turn on, 0 off. */
EXECMEM_API int execmem_executor_set_fair_shares(execmem_executor_t* executor, int on);

/* ---- run-time limits, lookup, iteration ------------------------------------
 * Changes initial, max and overhead while the executor runs; name and
 * prefault are ignored, NULL or "" fields keep their value (an overhead
 * written as a fraction is of the new initial). Raising takes effect at once.
 * Lowering max below used asks the executor's hooks (then its children's) to
 * spill and, if used still does not fit, returns EBUSY with nothing changed.
 * EINVAL: a bad value, initial above max, a child's max above its parent's
 * or below one of its children's; ENOMEM: a larger reservation does not fit
 * (nothing changed); EBUSY also while another thread changes the same
 * executor's limits. Safe while other threads allocate: an allocation sees
 * the old limits or the new ones. */
EXECMEM_API int execmem_executor_set_limits(execmem_executor_t* executor,
                                            const execmem_executor_options_t* limits);
/* The live executor named `name` (children included), or NULL (errno ENOENT).
 * The handle is like the one execmem_executor_create returned: valid until
 * the executor is destroyed, so a program that destroys executors from
 * other threads must order that itself (or use execmem_executor_for_each,
 * which keeps each executor alive while it is visited). */
EXECMEM_API execmem_executor_t* execmem_executor_find(const char* name);
/* Calls fn(executor, context) for each live root executor (parent NULL; the
 * default executor included) or each live child of parent, until fn returns
 * nonzero; returns that value, or 0. Guarantees under concurrent create and
 * destroy: every executor live for the whole call is visited exactly once;
 * one created or destroyed meanwhile may or may not be; a visited executor's
 * memory stays valid until fn returns even if another thread destroys it
 * (its name and stats can be read; binding to it then fails). fn may call
 * any execmem function, destroy included. */
typedef int (*execmem_executor_fn)(execmem_executor_t* executor, void* context);
EXECMEM_API int execmem_executor_for_each(execmem_executor_t* parent, execmem_executor_fn fn,
                                          void* context);

/* ---- reservations -----------------------------------------------------------
 * Accounts `bytes` that execmem did not allocate (an mmap'd file, another
 * allocator's buffers) to executor: counted in its used and footprint (and
 * its ancestors'), under the same rules as allocations. execmem_reserve
 * returns 0, or ENOMEM after the same spill and arbitration path as an
 * allocation, with the report in execmem_last_error(); a request that can
 * never fit (above max, SIZE_MAX) fails at once. EINVAL for a NULL or
 * destroyed executor. execmem_unreserve gives bytes back; more than the
 * executor holds reserved is refused (nothing changes, the reason is in
 * execmem_last_error()). An executor holding reserved bytes cannot be
 * destroyed (EBUSY). */
EXECMEM_API int execmem_reserve(execmem_executor_t* executor, size_t bytes);
EXECMEM_API void execmem_unreserve(execmem_executor_t* executor, size_t bytes);
/* Bytes executor holds reserved through execmem_reserve. */
EXECMEM_API size_t execmem_reserved(const execmem_executor_t* executor);
/* The executor every unbound thread allocates for ("default"). */
EXECMEM_API execmem_executor_t* execmem_default_executor(void);
EXECMEM_API const char* execmem_executor_name(const execmem_executor_t* executor);

/* Binds the calling thread to executor (NULL: the default executor); returns
 * the previous binding so that it can be restored. What the thread allocates
 * from now on is charged to executor. */
EXECMEM_API execmem_executor_t* execmem_bind(execmem_executor_t* executor);
EXECMEM_API execmem_executor_t* execmem_current_executor(void);

/* A spill hook is asked to free at least `bytes`; it returns what it believes
 * it freed (execmem trusts only its own accounting) or
 * EXECMEM_SPILL_FAILED. Called on the allocating thread with no allocator lock
 * held; it may allocate and free. Higher priority is asked first. */
#define EXECMEM_SPILL_FAILED ((size_t)-1)
typedef size_t (*execmem_spill_fn)(void* context, size_t bytes);
EXECMEM_API int execmem_executor_add_spill_hook(execmem_executor_t* executor, const char* name,
                                                int priority, execmem_spill_fn fn, void* context);
EXECMEM_API int execmem_executor_remove_spill_hook(execmem_executor_t* executor,
                                                   const char* name);
/* As execmem_executor_add_spill_hook, with flags:
 * EXECMEM_SPILL_ANY_THREAD: the hook may be called from any thread, not only
 *   the allocating one: in a shared pool (execmem_shared_join), the member's
 *   background thread calls it when another member asks this process to give
 *   memory back. It must then be safe to run concurrently with the program's
 *   threads (and be removed before what it frees is destroyed). Memory it
 *   frees in blocks above 256 KiB goes back at once; smaller blocks once the
 *   thread that allocated them next takes its slow path.
 * Unknown flags: EINVAL. */
#define EXECMEM_SPILL_ANY_THREAD 1u
EXECMEM_API int execmem_executor_add_spill_hook_flags(execmem_executor_t* executor,
                                                      const char* name, int priority,
                                                      execmem_spill_fn fn, void* context,
                                                      unsigned flags);

/* ---- shared pools (docs/shared-pool.md) ---------------------------------------
 * Makes this process a member of the shared pool `name`
 * (/dev/shm/execmem.NAME, made by its first member), as EXECMEM_SHARED does
 * under the LD_PRELOAD shim: the executors' reservations and grants are then
 * the pool's, shared with every other member's, and a background thread
 * answers the other members' requests to give back. Call it before the first
 * executor is created.
 * capacity: "1g"; NULL or "" for the creator's cgroup memory limit, else the
 *   machine's memory. Fixed by the pool's creator: a member asking for another
 *   gets 0 with a note in execmem_last_error() saying which holds.
 * flags: EXECMEM_SHARED_GROUP: a new pool's segment has mode 0660 (members of
 *   the owner's group may join) instead of 0600.
 * wait_ms: how long an allocation the pool refused waits for other members
 *   to give back before it fails (0 to 600000); -1: EXECMEM_SHARED_WAIT_MS
 *   (default 1000).
 * Returns 0, or (the reason in one line in execmem_last_error()): EINVAL a
 * bad name (1 to 190 of A-Z a-z 0-9 . _ -), capacity, flag or wait; EBUSY an
 * executor exists already, or the process is a member already; EACCES the
 * segment was refused (corrupt, another version, another user's, full): the
 * process keeps a pool of its own. */
#define EXECMEM_SHARED_GROUP 1u
EXECMEM_API int execmem_shared_join(const char* name, const char* capacity, unsigned flags,
                                    int wait_ms);

/* ---- stats ----------------------------------------------------------------
 * Version 2 appended resident, peak_resident, metadata, tracked and untracked
 * to execmem_pool_stats_t; version 3 appended the emergency_* fields to
 * execmem_executor_stats_t; version 4 appended the shared pool's figures
 * (shared_*, member_*) to execmem_pool_stats_t. Fields are only ever appended.
 *
 * version is read, then written (see docs/abi.md): set it to
 * EXECMEM_STATS_VERSION before the call (C++ does so by default;
 * C: execmem_pool_stats_t s = {.version = EXECMEM_STATS_VERSION};). It writes
 * only the fields of the version asked for, all of them, and sets version
 * to the version it wrote: what was asked, or 1 for 0 and for a version
 * this library does not know (a struct of version 1 is what every version
 * starts with), so a program built against an older header keeps working. */
#define EXECMEM_STATS_VERSION 4
typedef struct execmem_executor_stats {
#ifdef __cplusplus
  uint32_t version = EXECMEM_STATS_VERSION;
#else
  uint32_t version; /* EXECMEM_STATS_VERSION */
#endif
  char name[64];
  /* settings */
  uint64_t initial, max, overhead;
  /* gauges */
  uint64_t used, peak_used, footprint, peak_footprint, overhead_in_use;
  /* counters */
  uint64_t allocations, frees, spill_calls, spill_failures, bytes_spilled, oom_count;
  uint64_t ns_above_initial;
  /* version 3: the emergency reserve (requests served after a refusal, so
   * that the program can report it; see EXECMEM_EMERGENCY_RESERVE). uses and
   * bytes count every request it served (bytes: as requested); active is 1
   * while the executor is in the emergency state. */
  uint64_t emergency_uses, emergency_bytes, emergency_active;
} execmem_executor_stats_t;

/* The truth in the stats: what the OS says the process holds in RAM
 * (resident) beside what execmem accounts for (tracked), and the difference.
 *
 *   tracked   = held + metadata
 *   held      = footprints + cached, where footprints (held - cached) is what
 *               the executors' footprints add up to: spans and large and huge
 *               blocks they hold (blocks left by a destroyed executor
 *               included, which no executor reports any more)
 *   untracked = resident - tracked, or 0 when tracked is larger
 *
 * untracked is the process's memory that execmem does not manage: the
 * program's code and data, thread stacks, other mmaps, glibc's allocations
 * made before the shim took over. tracked can pass resident, because held
 * counts whole spans and pages never touched are not resident.
 * resident and peak_resident are 0 where /proc cannot be read.
 * version: as in execmem_executor_stats_t (EXECMEM_STATS_VERSION, read then
 * written); a version-1 struct ends at mapped, a version-2 or 3 one at
 * untracked. */
typedef struct execmem_pool_stats {
#ifdef __cplusplus
  uint32_t version = EXECMEM_STATS_VERSION;
#else
  uint32_t version; /* EXECMEM_STATS_VERSION */
#endif
  uint64_t capacity;      /* bytes the pool may hold at once */
  uint64_t reserved;      /* sum of executors' initial reservations */
  uint64_t granted;       /* growth above initial currently granted */
  uint64_t held;          /* committed bytes: in use or cached */
  uint64_t cached;        /* of held: empty pages kept hot for reuse */
  uint64_t returned_to_os;/* bytes given back with madvise, all time */
  uint64_t arenas, mapped;
  /* version 2 */
  uint64_t resident;      /* the process's resident set size (RSS), from the OS */
  uint64_t peak_resident; /* the process's peak RSS (VmHWM), >= resident */
  uint64_t metadata;      /* execmem's own metadata, an upper bound: the arenas'
                             descriptor pages, the allocator's heaps, threads and
                             executors, the touched pages of the page map */
  uint64_t tracked;       /* held + metadata */
  uint64_t untracked;     /* resident - tracked, 0 when tracked is larger */
  /* version 4: the shared pool this process is a member of (EXECMEM_SHARED,
   * docs/shared-pool.md): all 0 and shared_name "" when it is none. The
   * pool's figures are every member's together; member_* are this process's
   * slot. Read without the pool's lock: figures of one moment each. */
  uint64_t shared_capacity; /* the shared pool's capacity, fixed by its creator */
  uint64_t shared_reserved; /* the members' reservations (their executors' initial + overhead) */
  uint64_t shared_granted;  /* the members' grants above their reservations */
  uint64_t shared_peak;     /* the highest reserved + granted since the pool was made */
  uint64_t shared_members;  /* processes in the pool now */
  uint64_t shared_refusals; /* reservations and grants the pool refused, all time */
  uint64_t shared_reclaimed_members; /* dead members whose holdings were taken back */
  uint64_t shared_reclaimed_bytes;   /* what they held */
  uint64_t member_reserved;          /* this process's reservations in the pool */
  uint64_t member_granted;           /* this process's grants */
  uint64_t member_used;              /* this process's executors' footprints (held - cached) */
  uint64_t member_asked;             /* requests of other members to give back */
  uint64_t member_answered;          /* of them, answered */
  char shared_name[192];             /* the pool's NAME, NUL-terminated */
} execmem_pool_stats_t;

/* EINVAL for a NULL argument; execmem_pool_stats(NULL) does nothing. */
EXECMEM_API int execmem_executor_stats(execmem_executor_t* executor, execmem_executor_stats_t* out);
EXECMEM_API void execmem_pool_stats(execmem_pool_stats_t* out);
/* JSON of the pool and every executor. Returns a buffer from execmem_malloc
 * (free with execmem_free) or NULL. */
EXECMEM_API char* execmem_stats_json(void);
/* Human-readable report of the same. */
EXECMEM_API char* execmem_stats_text(void);

/* ---- control ---------------------------------------------------------- */
/* Returns cached empty pages of the calling thread and of the pool to the OS now. */
EXECMEM_API void execmem_trim(void);
/* Sets the pool's capacity ("8g"); EINVAL if bad or below what is reserved. */
EXECMEM_API int execmem_set_pool_capacity(const char* capacity);
/* The calling thread's last error message ("" if none): after a refused
 * allocation or reservation, the out-of-memory report (which executor, the
 * request, used / max / footprint in units, what each spill hook freed, and
 * what to raise). It stays until the next error on this thread. */
EXECMEM_API const char* execmem_last_error(void);

/* ---- observability: timeline and Prometheus (see README, "Observability") ---
 * Paths are patterns: %p is the process id, %t the process's start time
 * (UTC, 20261201T104512Z), %% a %; any other % is refused (EINVAL). A
 * relative path is taken from the current directory at the call. */

/* Starts the timeline: a JSON line of every executor's used, footprint,
 * budgets, spill and OOM counters, the pool's held and cached bytes and the
 * process's RSS, written to path now and then every interval_ms (> 0) by a
 * background thread, and a last one at exit or at
 * execmem_timeline_stop(). Replaces a timeline started before (a Prometheus
 * file set with EXECMEM_PROMETHEUS is kept). A forked child writes its own
 * file (use %p). Returns 0, or EINVAL (bad path or interval, or the file
 * cannot be written: execmem_last_error() says which). */
EXECMEM_API int execmem_timeline_start(const char* path, int interval_ms);
/* Writes the last sample and stops; EINVAL when no timeline is running. */
EXECMEM_API int execmem_timeline_stop(void);

/* The stats in the Prometheus text exposition format (# HELP and # TYPE
 * lines; gauges such as execmem_executor_used_bytes{executor="..."},
 * counters ending in _total; every sample labelled with pid and program).
 * Returns a buffer from execmem_malloc, NULL when out of memory: free it
 * with execmem_free() (under the LD_PRELOAD shim free() is the same). */
EXECMEM_API char* execmem_stats_prometheus(void);

#ifdef __cplusplus
}
#endif
#endif /* EXECMEM_H_ */
