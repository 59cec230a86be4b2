// The aligned forms of the malloc family for the LD_PRELOAD shim (see
// shim/malloc.cc for the call graph). Each checks its alignment the way its
// own standard says, then asks execmem_aligned_alloc / execmem_posix_memalign:
//
//   aligned_alloc   C17 (DR 460), glibc >= 2.38: not a power of two -> EINVAL
//   posix_memalign  POSIX: not a power-of-two multiple of sizeof(void*) ->
//                   returns EINVAL; *memptr is written only on success
//   memalign        glibc: 0 means malloc; otherwise rounded up to a power of
//                   two, EINVAL only when that would overflow
//   valloc/pvalloc  page-aligned; pvalloc also rounds the size up to whole
//                   pages, and pvalloc(0) is one page
//
// Alignments above EXECMEM_MAX_ALIGNMENT (1 GiB) fail with EINVAL where glibc
// would try to map them: no program asks for those.
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

#include <bit>

#include "execmem.h"
#include "platform/os.h"
#include "shim/request.h"

extern "C" {
void* __libc_memalign(size_t alignment, size_t size) noexcept;
void* __libc_valloc(size_t size) noexcept;
void* __libc_pvalloc(size_t size) noexcept;
int __posix_memalign(void** memptr, size_t alignment, size_t size) noexcept;
}

namespace {

inline void* PageAligned(size_t size) {
  return execmem_aligned_alloc(execmem::os::PageSize(), execmem::shim::NonEmpty(size));
}

}  // namespace

extern "C" {

EXECMEM_API void* aligned_alloc(size_t alignment, size_t size) noexcept {
  if (!std::has_single_bit(alignment)) [[unlikely]] {
    errno = EINVAL;
    return nullptr;
  }
  return execmem_aligned_alloc(alignment, execmem::shim::NonEmpty(size));
}

// POSIX says nothing of errno here; glibc leaves it ENOMEM on failure, and
// keeping it is the more useful of the two for callers that check the result.
EXECMEM_API int posix_memalign(void** memptr, size_t alignment, size_t size) noexcept {
  if (alignment % sizeof(void*) != 0 || !std::has_single_bit(alignment)) [[unlikely]] {
    return EINVAL;
  }
  int* const err = &errno;
  const int saved = *err;
  void* block = nullptr;
  const int rc = execmem_posix_memalign(&block, alignment, execmem::shim::NonEmpty(size));
  *err = saved;
  if (rc != 0) return rc;
  *memptr = block;
  return 0;
}

EXECMEM_API void* memalign(size_t alignment, size_t size) noexcept {
  if (alignment == 0) return execmem_malloc(execmem::shim::GlibcRequest(size));
  if (alignment > SIZE_MAX / 2 + 1) [[unlikely]] {
    errno = EINVAL;
    return nullptr;
  }
  return execmem_aligned_alloc(std::bit_ceil(alignment), execmem::shim::NonEmpty(size));
}

EXECMEM_API void* valloc(size_t size) noexcept { return PageAligned(size); }

EXECMEM_API void* pvalloc(size_t size) noexcept {
  const size_t page = execmem::os::PageSize();
  size_t rounded;
  if (__builtin_add_overflow(size, page - 1, &rounded)) [[unlikely]] {
    errno = ENOMEM;
    return nullptr;
  }
  rounded &= ~(page - 1);
  return PageAligned(rounded == 0 ? page : rounded);
}

EXECMEM_API void* __libc_memalign(size_t alignment, size_t size) noexcept
    __attribute__((alias("memalign"), copy(memalign)));
EXECMEM_API void* __libc_valloc(size_t size) noexcept
    __attribute__((alias("valloc"), copy(valloc)));
EXECMEM_API void* __libc_pvalloc(size_t size) noexcept
    __attribute__((alias("pvalloc"), copy(pvalloc)));
EXECMEM_API int __posix_memalign(void** memptr, size_t alignment, size_t size) noexcept
    __attribute__((alias("posix_memalign"), copy(posix_memalign)));

}  // extern "C"
