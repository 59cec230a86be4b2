// glibc's malloc introspection calls, answered from execmem's own accounting
// so that a program asking "how much memory do I use?" under the shim gets
// execmem's numbers, not glibc's idle arena.
//
//   mallinfo2 / mallinfo  arena    = pool held (committed: in use or cached)
//                         uordblks = live bytes of the default executor
//                         fordblks = arena - uordblks (caches, fragmentation)
//                         every other field 0: execmem has no bins, no top
//                         chunk and no separately mmapped chunks, so glibc's
//                         "arena + hblkhd = total" still adds up
//   malloc_trim(pad)      execmem_trim(); 1 when pages went back to the OS
//   malloc_stats()        the execmem_stats_text() report on stderr
//   mallopt(param, value) 0 ("not applied") for every parameter: none of
//                         glibc's knobs (arenas, mmap threshold, trim
//                         threshold, top pad, perturb, check action) has a
//                         meaning here; budgets and decay come from EXECMEM_*.
//
// Only the default executor's live bytes are counted: under the shim every
// thread allocates for it unless the program binds threads to executors of
// its own through the C API.
#include <limits.h>
#include <malloc.h>
#include <string.h>

#include <algorithm>
#include <cstdint>

#include "execmem.h"
#include "platform/os.h"

namespace {

struct Usage {
  uint64_t held;
  uint64_t used;
};

Usage ReadUsage() {
  execmem_pool_stats_t pool = {};
  pool.version = EXECMEM_STATS_VERSION;
  execmem_pool_stats(&pool);
  execmem_executor_stats_t executor = {};
  executor.version = EXECMEM_STATS_VERSION;
  uint64_t used = 0;
  if (execmem_executor_stats(execmem_default_executor(), &executor) == 0) used = executor.used;
  return Usage{pool.held, std::min(used, pool.held)};
}

int ClampToInt(uint64_t value) {
  return static_cast<int>(std::min<uint64_t>(value, static_cast<uint64_t>(INT_MAX)));
}

}  // namespace

extern "C" {

EXECMEM_API struct mallinfo2 mallinfo2() noexcept {
  const Usage usage = ReadUsage();
  struct mallinfo2 info = {};
  info.arena = usage.held;
  info.uordblks = usage.used;
  info.fordblks = usage.held - usage.used;
  return info;
}

// Deprecated by glibc for its int fields; clamped rather than wrapped so that
// a program still calling it sees "a lot", never a negative number.
EXECMEM_API struct mallinfo mallinfo() noexcept {
  const Usage usage = ReadUsage();
  struct mallinfo info = {};
  info.arena = ClampToInt(usage.held);
  info.uordblks = ClampToInt(usage.used);
  info.fordblks = ClampToInt(usage.held - usage.used);
  return info;
}

// pad asks glibc to keep that much at the top of the heap; execmem returns
// whole empty pages and keeps none, which no caller can observe as less.
EXECMEM_API int malloc_trim(size_t /*pad*/) noexcept {
  execmem_pool_stats_t before = {};
  before.version = EXECMEM_STATS_VERSION;
  execmem_pool_stats(&before);
  execmem_trim();
  execmem_pool_stats_t after = {};
  after.version = EXECMEM_STATS_VERSION;
  execmem_pool_stats(&after);
  return after.returned_to_os > before.returned_to_os ? 1 : 0;
}

EXECMEM_API void malloc_stats() noexcept {
  char* text = execmem_stats_text();
  if (text == nullptr) {
    constexpr char kFailed[] = "execmem: malloc_stats: cannot build the report (out of memory)\n";
    execmem::os::WriteStderr(kFailed, sizeof(kFailed) - 1);
    return;
  }
  execmem::os::WriteStderr(text, strlen(text));
  execmem_free(text);
}

EXECMEM_API int mallopt(int /*param*/, int /*value*/) noexcept { return 0; }

}  // extern "C"
