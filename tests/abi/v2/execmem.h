/* tests/abi/v2/execmem.h: include/execmem.h as of commit 5d9108f (EXECMEM_STATS_VERSION 2),
 * kept unchanged as a program built against version 2 saw it (git show 5d9108f:include/execmem.h). */
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
 *    have been given the chance to free memory;
 *  - execmem_free() of a pointer execmem did not allocate prints
 *    "execmem: free(): pointer 0x... not allocated by execmem" and aborts;
 *  - functions returning int return 0 on success or an errno value; the
 *    thread's last error message is then available from execmem_last_error().
 */
#ifndef EXECMEM_H_
#define EXECMEM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EXECMEM_API __attribute__((visibility("default")))

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
EXECMEM_API void execmem_free(void* ptr);
/* free with the size (and alignment) given at allocation; checked in debug builds. */
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

/* Creates an executor. On error returns EINVAL (bad setting) or ENOMEM (the
 * pool cannot reserve initial) and leaves nothing half-created. */
EXECMEM_API int execmem_executor_create(const execmem_executor_options_t* options,
                                        execmem_executor_t** out);
/* Destroys an executor. EBUSY while a thread is still bound to it. Blocks it
 * still owns stay valid and are accounted to nobody once freed. */
EXECMEM_API int execmem_executor_destroy(execmem_executor_t* executor);
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

/* ---- stats ----------------------------------------------------------------
 * Version 2 appended resident, peak_resident, metadata, tracked and untracked
 * to execmem_pool_stats_t. */
#define EXECMEM_STATS_VERSION 2
typedef struct execmem_executor_stats {
  uint32_t version; /* EXECMEM_STATS_VERSION */
  char name[64];
  /* settings */
  uint64_t initial, max, overhead;
  /* gauges */
  uint64_t used, peak_used, footprint, peak_footprint, overhead_in_use;
  /* counters */
  uint64_t allocations, frees, spill_calls, spill_failures, bytes_spilled, oom_count;
  uint64_t ns_above_initial;
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
 *
 * version is written by execmem_pool_stats, never read: the struct grew in
 * version 2, so a program built against version 1 must be rebuilt. */
typedef struct execmem_pool_stats {
  uint32_t version;
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
} execmem_pool_stats_t;

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
/* The calling thread's last error message ("" if none). */
EXECMEM_API const char* execmem_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* EXECMEM_H_ */
