// The C malloc family of the LD_PRELOAD shim (libexecmem_preload.so).
//
// Call graph: every interposed name is a thin frame over the execmem C API,
//
//   malloc, calloc, realloc, free, ...  ─┐
//   __libc_malloc, __libc_free, ...     ─┼─> execmem_* (allocator/) ─> pool/
//   cfree, free_sized, ...              ─┘
//
// and adds only what the C / POSIX / glibc contracts ask beyond execmem's own:
// glibc's choices where the standard leaves one (realloc(p, 0) frees p and
// returns NULL), the overflow check of reallocarray, and free keeping errno.
// The __libc_* names are aliases, not wrappers: code that calls glibc's
// internal names (old leak checkers, some runtimes) must reach the same heap.
//
// The aligned forms are in shim/memalign.cc, C++ operators in
// shim/new_delete.cc, introspection in shim/introspect.cc and the start-up
// configuration in shim/startup.cc.
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include "cache/heap-inl.h"
#include "execmem.h"
#include "shim/request.h"

// C23 names that glibc 2.36's headers do not declare yet, and cfree, which
// glibc stopped declaring in 2.26 but old binaries still call.
extern "C" {
void free_sized(void* ptr, size_t size) noexcept;
void free_aligned_sized(void* ptr, size_t alignment, size_t size) noexcept;
void cfree(void* ptr) noexcept;
void* __libc_malloc(size_t size) noexcept;
void* __libc_calloc(size_t count, size_t size) noexcept;
void* __libc_realloc(void* ptr, size_t size) noexcept;
void __libc_free(void* ptr) noexcept;
}

namespace {

using execmem::shim::GlibcRequest;

// glibc >= 2.33 promises that free keeps errno, and programs rely on it
// (perror after cleanup). execmem's free never writes errno: the fast path
// touches nothing but the free list, and the platform seam (os.h) saves and
// restores errno around every system call the slow paths make.
inline void FreeKeepingErrno(void* ptr) { execmem::Free(ptr); }

// glibc builds with REALLOC_ZERO_BYTES_FREES: realloc(p, 0) frees p and
// returns NULL without touching errno; realloc(NULL, 0) is malloc(0).
// Out of line, so that realloc's own frame stays that of its fast path (no
// registers saved before the growth within a span).
[[gnu::noinline]] void* FreeForEmptyRealloc(void* ptr) {
  FreeKeepingErrno(ptr);
  return nullptr;
}

[[gnu::always_inline]] inline void* Realloc(void* ptr, size_t size) {
  if (size == 0 && ptr != nullptr) [[unlikely]] {
    return FreeForEmptyRealloc(ptr);
  }
  // The growth within a large block's span inline (cache/heap-inl.h).
  return execmem::ReallocFast(ptr, GlibcRequest(size));
}

}  // namespace

extern "C" {

// The fast paths are inlined here (cache/heap-inl.h): no call into
// execmem_malloc, no errno access.
EXECMEM_API void* malloc(size_t size) noexcept { return execmem::shim::GlibcMalloc(size); }

EXECMEM_API void* calloc(size_t count, size_t size) noexcept {
  size_t bytes;
  if (!__builtin_mul_overflow(count, size, &bytes) && bytes <= execmem::shim::kRoundUpTo) {
    return execmem_calloc(1, GlibcRequest(bytes));
  }
  return execmem_calloc(count, size);  // reports an overflow itself
}

EXECMEM_API void free(void* ptr) noexcept { FreeKeepingErrno(ptr); }

EXECMEM_API void* realloc(void* ptr, size_t size) noexcept { return Realloc(ptr, size); }

// On overflow the block is left as it was, as realloc leaves it on failure.
EXECMEM_API void* reallocarray(void* ptr, size_t count, size_t size) noexcept {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) [[unlikely]] {
    errno = ENOMEM;
    return nullptr;
  }
  return Realloc(ptr, bytes);
}

// Inlined (cache/heap-inl.h) for a small block: Redis calls it at every
// allocation and free.
EXECMEM_API size_t malloc_usable_size(void* ptr) noexcept { return execmem::UsableSizeFast(ptr); }

EXECMEM_API void free_sized(void* ptr, size_t size) noexcept {
  if (ptr == nullptr) return;
  int* const err = &errno;
  const int saved = *err;
  execmem_free_sized(ptr, GlibcRequest(size));
  *err = saved;
}

EXECMEM_API void free_aligned_sized(void* ptr, size_t alignment, size_t size) noexcept {
  if (ptr == nullptr) return;
  int* const err = &errno;
  const int saved = *err;
  execmem_free_aligned_sized(ptr, alignment, execmem::shim::NonEmpty(size));
  *err = saved;
}

EXECMEM_API void cfree(void* ptr) noexcept __attribute__((alias("free")));
EXECMEM_API void* __libc_malloc(size_t size) noexcept
    __attribute__((alias("malloc"), copy(malloc)));
EXECMEM_API void* __libc_calloc(size_t count, size_t size) noexcept
    __attribute__((alias("calloc"), copy(calloc)));
EXECMEM_API void* __libc_realloc(void* ptr, size_t size) noexcept
    __attribute__((alias("realloc"), copy(realloc)));
EXECMEM_API void __libc_free(void* ptr) noexcept __attribute__((alias("free")));

}  // extern "C"
