/* A program built against an earlier include/execmem.h (tests/abi/vN/) calls
 * the stats functions of today's library, linked (ABI_PRELOADED undefined)
 * or under the LD_PRELOAD shim (ABI_PRELOADED: the C API is found with
 * dlsym, as a program that does not link libexecmem.so finds it).
 *
 * Each struct sits in a box followed by guard bytes; everything is filled
 * with a pattern first. The call must write the layout of the version it
 * serves and not one byte more (docs/abi.md): the version the caller asked
 * for, or 1 for 0 (a zeroed struct, as ctypes makes) and for a version the
 * library does not know (one never set). The fields the header knows must
 * be right. Exits 0 when all holds, else prints each failure. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "execmem.h"

#ifndef ABI_HEADER_VERSION
#error "ABI_HEADER_VERSION: the EXECMEM_STATS_VERSION of the header this program is built against"
#endif
#if EXECMEM_STATS_VERSION != ABI_HEADER_VERSION
#error "included the wrong execmem.h"
#endif

enum { kPattern = 0x5a, kGuardBytes = 256 };

/* The layouts' sizes, known to the test independently of any header: what a
 * version writes. Version 1: a uint32 version (padded to 8), then 64 bytes
 * of name and 15 counters (executor) or 8 counters (pool). */
static size_t executor_bytes(uint32_t version) { return version >= 3 ? 216 : 192; }
static size_t pool_bytes(uint32_t version) {
  /* version 4: + 13 counters of the shared pool and its 192-byte name */
  return version >= 4 ? 408 : version >= 2 ? 112 : 72;
}

typedef int (*executor_stats_fn)(execmem_executor_t*, execmem_executor_stats_t*);
typedef void (*pool_stats_fn)(execmem_pool_stats_t*);
typedef execmem_executor_t* (*default_executor_fn)(void);
typedef void* (*malloc_fn)(size_t);
typedef void (*free_fn)(void*);

static executor_stats_fn executor_stats;
static pool_stats_fn pool_stats;
static default_executor_fn default_executor;
static malloc_fn alloc;
static free_fn release;
static int failures;

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "FAIL v%d %s: ", ABI_HEADER_VERSION, mode);          \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, "\n");                                               \
      ++failures;                                                          \
    }                                                                      \
  } while (0)

#ifdef ABI_PRELOADED
static const char* mode = "preloaded";
static void* find(const char* name) {
  void* sym = dlsym(RTLD_DEFAULT, name);
  if (sym == NULL) {
    fprintf(stderr, "stats_caller: %s is not in this process: run it with "
                    "LD_PRELOAD=libexecmem_preload.so\n", name);
    exit(2);
  }
  return sym;
}
static void resolve(void) {
  executor_stats = (executor_stats_fn)find("execmem_executor_stats");
  pool_stats = (pool_stats_fn)find("execmem_pool_stats");
  default_executor = (default_executor_fn)find("execmem_default_executor");
  alloc = malloc; /* the shim's */
  release = free;
}
#else
static const char* mode = "linked";
static void resolve(void) {
  executor_stats = execmem_executor_stats;
  pool_stats = execmem_pool_stats;
  default_executor = execmem_default_executor;
  alloc = execmem_malloc;
  release = execmem_free;
}
#endif

/* The version a call must serve for `asked`. */
static uint32_t served(uint32_t asked) { return asked >= 1 && asked <= 4 ? asked : 1; }

/* Bytes from `from` to `end` must still hold the pattern. */
static void check_untouched(const unsigned char* box, size_t from, size_t end, const char* what,
                            uint32_t asked) {
  for (size_t i = from; i < end; ++i) {
    if (box[i] != kPattern) {
      CHECK(0, "%s asked as version %u: byte %zu (of %zu written at most) changed to 0x%02x",
            what, (unsigned)asked, i, from, box[i]);
      return;
    }
  }
}

static void check_executor(uint32_t asked, size_t held_bytes) {
  union {
    execmem_executor_stats_t s;
    unsigned char bytes[sizeof(execmem_executor_stats_t) + kGuardBytes];
  } box;
  memset(&box, kPattern, sizeof box);
  box.s.version = asked;
  CHECK(executor_stats(default_executor(), &box.s) == 0, "execmem_executor_stats failed");
  const uint32_t want = served(asked);
  CHECK(box.s.version == want, "executor stats asked as version %u: version %u, want %u",
        (unsigned)asked, (unsigned)box.s.version, (unsigned)want);
  check_untouched(box.bytes, executor_bytes(want), sizeof box.bytes, "executor stats", asked);
  CHECK(strcmp(box.s.name, "default") == 0, "executor name '%.64s', want 'default'", box.s.name);
  CHECK(box.s.max > 0 && box.s.max >= box.s.initial, "max %llu, initial %llu",
        (unsigned long long)box.s.max, (unsigned long long)box.s.initial);
  CHECK(box.s.used >= held_bytes && box.s.peak_used >= box.s.used,
        "used %llu (holding %zu), peak %llu", (unsigned long long)box.s.used, held_bytes,
        (unsigned long long)box.s.peak_used);
  CHECK(box.s.footprint >= box.s.used, "footprint %llu below used %llu",
        (unsigned long long)box.s.footprint, (unsigned long long)box.s.used);
  CHECK(box.s.allocations >= 1, "allocations %llu", (unsigned long long)box.s.allocations);
#if ABI_HEADER_VERSION >= 3
  if (want >= 3) {
    CHECK(box.s.emergency_active <= 1 && box.s.emergency_uses == 0 && box.s.emergency_bytes == 0,
          "emergency_active %llu, uses %llu, bytes %llu (no emergency here)",
          (unsigned long long)box.s.emergency_active, (unsigned long long)box.s.emergency_uses,
          (unsigned long long)box.s.emergency_bytes);
  }
#endif
}

static void check_pool(uint32_t asked) {
  union {
    execmem_pool_stats_t s;
    unsigned char bytes[sizeof(execmem_pool_stats_t) + kGuardBytes];
  } box;
  memset(&box, kPattern, sizeof box);
  box.s.version = asked;
  pool_stats(&box.s);
  const uint32_t want = served(asked);
  CHECK(box.s.version == want, "pool stats asked as version %u: version %u, want %u",
        (unsigned)asked, (unsigned)box.s.version, (unsigned)want);
  check_untouched(box.bytes, pool_bytes(want), sizeof box.bytes, "pool stats", asked);
  CHECK(box.s.capacity > 0 && box.s.arenas >= 1, "capacity %llu, arenas %llu",
        (unsigned long long)box.s.capacity, (unsigned long long)box.s.arenas);
  CHECK(box.s.held > 0 && box.s.cached <= box.s.held && box.s.mapped > 0,
        "held %llu, cached %llu, mapped %llu", (unsigned long long)box.s.held,
        (unsigned long long)box.s.cached, (unsigned long long)box.s.mapped);
#if ABI_HEADER_VERSION >= 2
  if (want >= 2) {
    CHECK(box.s.peak_resident >= box.s.resident, "peak_resident %llu below resident %llu",
          (unsigned long long)box.s.peak_resident, (unsigned long long)box.s.resident);
    CHECK(box.s.tracked == box.s.held + box.s.metadata, "tracked %llu != held %llu + metadata %llu",
          (unsigned long long)box.s.tracked, (unsigned long long)box.s.held,
          (unsigned long long)box.s.metadata);
    CHECK(box.s.untracked ==
              (box.s.resident > box.s.tracked ? box.s.resident - box.s.tracked : 0),
          "untracked %llu, resident %llu, tracked %llu", (unsigned long long)box.s.untracked,
          (unsigned long long)box.s.resident, (unsigned long long)box.s.tracked);
  }
#endif
#if ABI_HEADER_VERSION >= 4
  if (want >= 4) { /* not a member of a shared pool: zeros and "" */
    CHECK(box.s.shared_capacity == 0 && box.s.shared_members == 0 && box.s.member_granted == 0 &&
              box.s.member_answered == 0 && box.s.shared_name[0] == '\0',
          "shared_capacity %llu, members %llu, name '%.16s' outside any shared pool",
          (unsigned long long)box.s.shared_capacity, (unsigned long long)box.s.shared_members,
          box.s.shared_name);
  }
#endif
}

int main(void) {
  resolve();
  CHECK(sizeof(execmem_executor_stats_t) == executor_bytes(ABI_HEADER_VERSION) &&
            sizeof(execmem_pool_stats_t) == pool_bytes(ABI_HEADER_VERSION),
        "the header's structs are %zu and %zu bytes, not the layouts of version %d",
        sizeof(execmem_executor_stats_t), sizeof(execmem_pool_stats_t), ABI_HEADER_VERSION);
  const size_t held_bytes = (size_t)1 << 20;
  char* block = (char*)alloc(held_bytes);
  CHECK(block != NULL, "allocating %zu bytes failed", held_bytes);
  if (block == NULL) return 1;
  memset(block, 1, held_bytes);
  /* The header's own version (what an old program sets), each earlier one,
   * 0 (a zeroed struct) and values the library does not know (never set). */
  const uint32_t asked[] = {ABI_HEADER_VERSION, 1, 2, 3, 0, 5, 0xa5a5a5a5u};
  for (size_t i = 0; i < sizeof asked / sizeof asked[0]; ++i) {
    if (asked[i] > ABI_HEADER_VERSION && asked[i] <= 4) continue; /* a layout this header lacks */
    check_executor(asked[i], held_bytes);
    check_pool(asked[i]);
  }
  release(block);
  if (failures == 0) {
    printf("stats_caller v%d %s: executor and pool stats of versions up to %d, 0 and unknown "
           "versions: nothing written past the layout served, fields right\n",
           ABI_HEADER_VERSION, mode, ABI_HEADER_VERSION);
  }
  return failures == 0 ? 0 : 1;
}
