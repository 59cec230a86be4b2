// Size classes: the table is computed at compile time.
//
//   16 32 48 64 | 72 80 ... 128 (step 8) | then 8 classes per doubling up to 256 KiB
//
// Invariants (checked by static_asserts and tests):
//  * internal waste (class - request) / request <= 12.5 % for requests > 64 B;
//  * a class that is a multiple of 16 serves every request that is a multiple
//    of 16, so such requests get 16-byte-aligned blocks; the 8-byte steps
//    between 64 and 128 serve only requests of 65..127 bytes that are not
//    multiples of 16, whose objects need at most 8-byte alignment;
//  * every power of two is a class, so a block of a power-of-two class up to
//    kPageSize (64 KiB) is aligned to its size (spans are page-aligned; used for aligned
//    allocation);
//  * each class has a span length (pages of kPageSize) whose tail waste is
//    <= 12.5 % (with 16 KiB pages that let Redis at EXECMEM_MAX waste its
//    footprint in mid-size spans: tests/soak/redis_oom.sh needed 1/16).
#ifndef EXECMEM_CACHE_SIZE_CLASS_H_
#define EXECMEM_CACHE_SIZE_CLASS_H_

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "pool/pool.h"

namespace execmem {

inline constexpr size_t kMaxSmallSize = size_t{256} << 10;
inline constexpr size_t kMinAlign = 16;

namespace size_class_internal {

constexpr size_t CountClasses() {
  size_t n = 4 + 8;  // 16..64, 72..128
  for (size_t base = 128; base < kMaxSmallSize; base *= 2) n += 8;
  return n;
}

}  // namespace size_class_internal

inline constexpr size_t kNumClasses = size_class_internal::CountClasses();
// malloc(0) has no class: SizeClassOf(0) is kZeroClass, one past the last,
// whose current span is the empty page in every heap (heap.h), so that a
// zero-size request always reaches the slow path and gets a zero-size block
// (zero_size.h) at no cost to the fast path. Nothing else uses the index.
inline constexpr size_t kZeroClass = kNumClasses;

struct SizeClassTable {
  std::array<uint32_t, kNumClasses> size{};
  std::array<uint16_t, kNumClasses> span_pages{};
  std::array<uint32_t, kNumClasses> capacity{};  // blocks per span
  // Divisibility test constant (see Page::div_magic).
  std::array<uint64_t, kNumClasses> div_magic{};
  std::array<uint8_t, 129> small_lookup{};  // (n + 7) / 8 -> class, n <= 1024
  // (n + 15) / 16 -> the class of n rounded up to a multiple of 16, n <= 1024:
  // the shim's malloc (shim/request.h), one shift and no rounding.
  std::array<uint8_t, 65> lookup16{};
};

constexpr SizeClassTable MakeSizeClassTable() {
  SizeClassTable t{};
  size_t i = 0;
  for (size_t s = 16; s <= 64; s += 16) t.size[i++] = static_cast<uint32_t>(s);
  for (size_t s = 72; s <= 128; s += 8) t.size[i++] = static_cast<uint32_t>(s);
  for (size_t base = 128; base < kMaxSmallSize; base *= 2) {
    for (size_t j = 1; j <= 8; ++j) t.size[i++] = static_cast<uint32_t>(base + j * (base / 8));
  }
  for (size_t c = 0; c < kNumClasses; ++c) {
    const size_t s = t.size[c];
    size_t pages = 1;
    while (pages < 64) {
      const size_t span = pages * kPageSize;
      if (span >= s && (span % s) * 8 <= span) break;
      ++pages;
    }
    t.span_pages[c] = static_cast<uint16_t>(pages);
    t.capacity[c] = static_cast<uint32_t>(pages * kPageSize / s);
    // ceil(2^64 / s): IsBlockOffset.
    t.div_magic[c] = UINT64_MAX / s + 1;
  }
  size_t c = 0;
  for (size_t k = 0; k <= 128; ++k) {
    const size_t n = k * 8;
    while (t.size[c] < n) ++c;
    t.small_lookup[k] = static_cast<uint8_t>(c);
  }
  t.small_lookup[0] = static_cast<uint8_t>(kZeroClass);  // n == 0 only
  for (size_t k = 0; k <= 64; ++k) t.lookup16[k] = t.small_lookup[2 * k];
  return t;
}

inline constexpr SizeClassTable kSizeClasses = MakeSizeClassTable();

// The class for a request of n bytes, 0 < n <= kMaxSmallSize (n == 0 ->
// kZeroClass, which has no size, span or blocks).
[[gnu::always_inline]] inline size_t SizeClassOf(size_t n) {
  if (n <= 1024) [[likely]]
    return kSizeClasses.small_lookup[(n + 7) >> 3];
  // n in (2^k, 2^(k+1)], k >= 10: classes 2^k + j * 2^(k-3), j = 1..8.
  const unsigned k = static_cast<unsigned>(std::bit_width(n - 1)) - 1;
  const size_t j = ((n - 1 - (size_t{1} << k)) >> (k - 3)) + 1;
  return 12 + (k - 7) * 8 + (j - 1);
}

[[gnu::always_inline]] inline size_t ClassSize(size_t c) { return kSizeClasses.size[c]; }

// True when offset x (< 2^32) is a multiple of the class size whose
// div_magic is `magic` (ceil(2^64 / size)): x * magic wraps below magic
// exactly for multiples (Lemire, Kaser, Kurz, "Faster Remainder by Direct
// Computation", 2019: exact for 32-bit x and divisor with a 64-bit magic).
constexpr bool IsBlockOffset(uint32_t x, uint64_t magic) { return uint64_t{x} * magic < magic; }

// The same for an offset into a page (x < kPageSize) and a class's magic (not
// 0): compared with a constant rather than with the magic again, one load
// fewer. A multiple q * size gives q * (size * magic - 2^64) < x, anything
// else at least magic >= 2^64 / kMaxSmallSize, far above kPageSize.
constexpr bool IsBlockOffsetInPage(uint32_t x, uint64_t magic) {
  return uint64_t{x} * magic < kPageSize;
}

namespace size_class_internal {
constexpr bool CheckTable() {
  for (size_t c = 1; c < kNumClasses; ++c) {
    if (kSizeClasses.size[c] <= kSizeClasses.size[c - 1]) return false;
    if (kSizeClasses.size[c - 1] >= 64 &&
        (kSizeClasses.size[c] - kSizeClasses.size[c - 1] - 1) * 8 > kSizeClasses.size[c - 1] + 1) {
      return false;
    }
  }
  for (size_t c = 0; c < kNumClasses; ++c) {
    const uint32_t s = kSizeClasses.size[c];
    for (uint32_t x : {0u, s, 2 * s, 7 * s, s - 8, s + 8, 1u, 3 * s + 16}) {
      if (IsBlockOffset(x, kSizeClasses.div_magic[c]) != (x % s == 0)) return false;
      if (x < kPageSize && IsBlockOffsetInPage(x, kSizeClasses.div_magic[c]) != (x % s == 0)) {
        return false;
      }
    }
  }
  return kSizeClasses.size[kNumClasses - 1] == kMaxSmallSize;
}
static_assert(CheckTable(), "size classes must be increasing with <= 12.5 % waste above 64 B");
static_assert(kNumClasses < 256, "class index fits Page::size_class");
static_assert(kZeroClass < 256, "kZeroClass fits small_lookup");
}  // namespace size_class_internal

}  // namespace execmem

#endif  // EXECMEM_CACHE_SIZE_CLASS_H_
