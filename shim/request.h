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

[[gnu::always_inline]] inline size_t GlibcRequest(size_t size) {
  return size <= kRoundUpTo ? (size + kGlibcAlignment - 1) & ~(kGlibcAlignment - 1) : size;
}

// Aligned requests of 0 bytes are served as 1 byte: glibc never hands out an
// empty block (its minimum chunk holds 24 bytes), a unique pointer needs at
// least one byte, and execmem's aligned path gives an empty request a
// zero-sized block that later calls may not recognise.
[[gnu::always_inline]] inline size_t NonEmpty(size_t size) { return size == 0 ? 1 : size; }

}  // namespace execmem::shim

#endif  // EXECMEM_SHIM_REQUEST_H_
