/* Spill hooks registered from outside: a program that is not linked to
 * execmem finds the C API with dlsym under the preload, registers a hook on
 * the default executor, and allocates well past EXECMEM_MAX.
 *
 *  1. The hook frees cached blocks: every allocation succeeds, the hook was
 *     called, and execmem counted the spills.
 *  2. The hook gives up (EXECMEM_SPILL_FAILED): the next allocation past the
 *     budget is NULL with ENOMEM, after the hook was asked.
 *  3. Hook removed and everything freed: the budget is available again.
 *
 * Run with EXECMEM_MAX=64m EXECMEM_INITIAL=16m. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "execmem.h" /* types only */

#define BLOCK ((size_t)1 << 20)
#define CACHE_SLOTS 4096

typedef execmem_executor_t* (*default_fn)(void);
typedef int (*add_hook_fn)(execmem_executor_t*, const char*, int, execmem_spill_fn, void*);
typedef int (*remove_hook_fn)(execmem_executor_t*, const char*);
typedef int (*stats_fn)(execmem_executor_t*, execmem_executor_stats_t*);

/* Blocks the program could recompute: what the hook may free. */
static void* cache[CACHE_SLOTS];
static int cache_count;
static int hook_enabled = 1;
static int hook_calls;
static size_t hook_freed;

static size_t spill(void* context, size_t bytes) {
  ++hook_calls;
  CHECK(context == (void*)&cache, "hook got context %p", context);
  if (!hook_enabled) return EXECMEM_SPILL_FAILED;
  size_t freed = 0;
  while (freed < bytes && cache_count > 0) {
    free(cache[--cache_count]);
    freed += BLOCK;
  }
  hook_freed += freed;
  return freed;
}

static execmem_executor_stats_t read_stats(stats_fn stats, execmem_executor_t* executor) {
  execmem_executor_stats_t s;
  memset(&s, 0, sizeof(s));
  s.version = EXECMEM_STATS_VERSION;
  CHECK(stats(executor, &s) == 0, "execmem_executor_stats failed");
  return s;
}

int main(void) {
  default_fn default_executor = (default_fn)dlsym(RTLD_DEFAULT, "execmem_default_executor");
  add_hook_fn add_hook = (add_hook_fn)dlsym(RTLD_DEFAULT, "execmem_executor_add_spill_hook");
  remove_hook_fn remove_hook =
      (remove_hook_fn)dlsym(RTLD_DEFAULT, "execmem_executor_remove_spill_hook");
  stats_fn stats = (stats_fn)dlsym(RTLD_DEFAULT, "execmem_executor_stats");
  if (default_executor == NULL || add_hook == NULL || remove_hook == NULL || stats == NULL) {
    fprintf(stderr,
            "spill_hook: the execmem C API is not in this process (run it under "
            "LD_PRELOAD=libexecmem_preload.so)\n");
    return 1;
  }
  execmem_executor_t* executor = default_executor();
  const execmem_executor_stats_t start = read_stats(stats, executor);
  CHECK(start.max == ((uint64_t)64 << 20),
        "default executor max is %llu, EXECMEM_MAX=64m not applied", (unsigned long long)start.max);
  CHECK(add_hook(executor, "test-cache", 10, spill, &cache) == 0, "add_spill_hook failed");

  /* 1. 200 MiB through a 64 MiB budget, the hook freeing cached blocks. */
  int allocated = 0;
  for (int i = 0; i < 200; ++i) {
    void* p = malloc(BLOCK);
    if (p == NULL) break;
    memset(p, i, BLOCK);
    cache[cache_count++] = p;
    ++allocated;
  }
  CHECK(allocated == 200, "only %d of 200 blocks allocated with a spill hook that frees",
        allocated);
  CHECK(hook_calls > 0, "the spill hook was never called");
  CHECK(hook_freed >= ((size_t)120 << 20), "the hook freed only %zu bytes", hook_freed);
  const execmem_executor_stats_t spilled = read_stats(stats, executor);
  CHECK(spilled.spill_calls > start.spill_calls, "execmem counted no spill calls");
  CHECK(spilled.used <= spilled.max, "used %llu above max %llu", (unsigned long long)spilled.used,
        (unsigned long long)spilled.max);
  printf("phase 1: %d blocks, hook called %d times, freed %zu MiB\n", allocated, hook_calls,
         hook_freed >> 20);

  /* 2. The hook gives up: the allocation fails, after asking it. */
  hook_enabled = 0;
  const int calls_before = hook_calls;
  int refused = 0;
  for (int i = 0; i < 100 && cache_count < CACHE_SLOTS; ++i) {
    errno = 0;
    void* p = malloc(BLOCK);
    if (p == NULL) {
      CHECK(errno == ENOMEM, "refused with errno %d, want ENOMEM", errno);
      refused = 1;
      break;
    }
    cache[cache_count++] = p;
  }
  CHECK(refused, "allocations past the budget succeeded with a failing hook");
  CHECK(hook_calls > calls_before, "the hook was not asked before refusing");
  const execmem_executor_stats_t failed = read_stats(stats, executor);
  CHECK(failed.oom_count > spilled.oom_count, "execmem counted no out-of-memory");

  /* 3. Without the hook, freeing makes the budget available again. */
  CHECK(remove_hook(executor, "test-cache") == 0, "remove_spill_hook failed");
  while (cache_count > 0) free(cache[--cache_count]);
  const int calls_after_remove = hook_calls;
  void* again[32];
  int ok = 0;
  for (int i = 0; i < 32; ++i) {
    again[i] = malloc(BLOCK);
    ok += again[i] != NULL;
  }
  for (int i = 0; i < 32; ++i) free(again[i]);
  CHECK(ok == 32, "after freeing, only %d of 32 blocks allocated", ok);
  CHECK(hook_calls == calls_after_remove, "a removed hook was called");
  return check_summary("spill_hook");
}
