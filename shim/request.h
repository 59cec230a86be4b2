// Request sizes as the shim passes them to execmem: rounded so that every
// block of 16 bytes or more is 16-byte aligned, as glibc's are.
//
// Why: execmem's classes between 64 and 128 bytes step by 8 (72, 88, ...),
// which is enough for any C object of that size, but GCC and Clang compile
// code that assumes __STDCPP_DEFAULT_NEW_ALIGNMENT__ (16) for every
// operator new, and programs built against glibc assume the same of malloc:
// Debian's clang 14 initialises the 88-byte result of `new StoredDeclsMap`
// with movaps and crashes on an 8-aligned block. Rounding such requests up to
// the next multiple of 16 picks a class that is a multiple of 16 (checked
// below), whose blocks are 16-aligned; sized frees need no rounding because
// execmem finds the class from the pointer.
#ifndef EXECMEM_SHIM_REQUEST_H_
#define EXECMEM_SHIM_REQUEST_H_

#include <cstddef>

#include "cache/cache.h"

namespace execmem::shim {

inline constexpr size_t kGlibcAlignment = 16;
// Classes above this size are all multiples of 16: only smaller requests
// need rounding.
inline constexpr size_t kRoundUpTo = 128;

namespace request_internal {
constexpr bool ClassesKeepGlibcAlignment() {
  for (size_t n = kGlibcAlignment; n <= kRoundUpTo; n += kGlibcAlignment) {
    if (kSizeClasses.size[kSizeClasses.small_lookup[(n + 7) >> 3]] != n) return false;
  }
  for (size_t c = 0; c < kNumClasses; ++c) {
    const size_t s = kSizeClasses.size[c];
    if (s > kRoundUpTo && s % kGlibcAlignment != 0) return false;
  }
  return true;
}
static_assert(ClassesKeepGlibcAlignment(),
              "a request rounded to a multiple of 16 must get a class that is a multiple of 16");
}  // namespace request_internal

[[gnu::always_inline]] constexpr size_t GlibcRequest(size_t size) {
  return size <= kRoundUpTo ? (size + kGlibcAlignment - 1) & ~(kGlibcAlignment - 1) : size;
}

// malloc(size) as execmem::Malloc(GlibcRequest(size)): up to 1 KiB the class
// of GlibcRequest(size) is lookup16's entry (classes above kRoundUpTo are
// multiples of 16, so rounding a larger size up to 16 does not change its
// class), read from the heap's copy of the table (Heap::lookup16). Only the
// slow path rounds (GlibcMallocSlow), so that the fast path does not.
[[gnu::noinline]] inline void* GlibcMallocSlow(size_t size) {
  return MallocSlow(GlibcRequest(size), false);
}
[[gnu::always_inline]] inline void* GlibcMalloc(size_t size) {
  if (size <= 1024) [[likely]] {
    Heap* h = tls_heap;
    return MallocOfClass<GlibcMallocSlow>(h, h->lookup16[(size + kGlibcAlignment - 1) >> 4], size);
  }
  return Malloc(size);
}

namespace request_internal {
constexpr bool Lookup16IsTheRoundedClass() {
  for (size_t n = 0; n <= 1024; ++n) {
    const size_t r = GlibcRequest(n);
    const size_t cls = r == 0 ? kZeroClass : kSizeClasses.small_lookup[(r + 7) >> 3];
    if (kSizeClasses.lookup16[(n + kGlibcAlignment - 1) >> 4] != cls) return false;
  }
  return true;
}
static_assert(Lookup16IsTheRoundedClass(), "lookup16 must give GlibcRequest(n)'s class");
}  // namespace request_internal

// Aligned requests of 0 bytes are served as 1 byte: glibc never hands out an
// empty block (its minimum chunk holds 24 bytes), a unique pointer needs at
// least one byte, and execmem's aligned path gives an empty request a
// zero-sized block that later calls may not recognise.
[[gnu::always_inline]] inline size_t NonEmpty(size_t size) { return size == 0 ? 1 : size; }

}  // namespace execmem::shim

#endif  // EXECMEM_SHIM_REQUEST_H_
