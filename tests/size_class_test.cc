// Size classes (cache/size_class.h): the table's promises, checked over
// every request size rather than at a few points, then checked again on real
// blocks handed out by execmem_malloc.
#include "cache/size_class.h"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

#include "execmem.h"
#include "gtest/gtest.h"
#include "pool/page.h"

namespace {

using execmem::ClassSize;
using execmem::kMaxSmallSize;
using execmem::kNumClasses;
using execmem::kPageSize;
using execmem::kSizeClasses;
using execmem::SizeClassOf;

TEST(SizeClass, TableIsStrictlyIncreasingAndEndsAtTheLargestSmallSize) {
  ASSERT_GT(kNumClasses, 1u);
  ASSERT_LT(kNumClasses, 256u) << "the class index must fit Page::size_class";
  EXPECT_EQ(ClassSize(0), 16u);
  for (size_t c = 1; c < kNumClasses; ++c) {
    EXPECT_GT(ClassSize(c), ClassSize(c - 1)) << "class " << c;
  }
  EXPECT_EQ(ClassSize(kNumClasses - 1), kMaxSmallSize);
}

TEST(SizeClass, EverySizeMapsToTheSmallestClassThatHoldsIt) {
  for (size_t n = 1; n <= kMaxSmallSize; ++n) {
    const size_t c = SizeClassOf(n);
    ASSERT_LT(c, kNumClasses) << "size " << n;
    ASSERT_GE(ClassSize(c), n) << "size " << n << " got class " << c;
    if (c > 0) {
      ASSERT_LT(ClassSize(c - 1), n) << "size " << n << " fits class " << c - 1;
    }
  }
  // Zero has no class: malloc(0) takes the slow path (allocator/zero_size.h).
  EXPECT_EQ(SizeClassOf(0), execmem::kZeroClass);
  EXPECT_EQ(execmem::kZeroClass, execmem::kNumClasses);
}

TEST(SizeClass, WasteIsAtMostAnEighthAbove64Bytes) {
  size_t worst_n = 0;
  double worst = 0;
  for (size_t n = 65; n <= kMaxSmallSize; ++n) {
    const size_t waste = ClassSize(SizeClassOf(n)) - n;
    ASSERT_LE(waste * 8, n) << "size " << n << " wastes " << waste << " bytes in class "
                            << ClassSize(SizeClassOf(n));
    const double w = static_cast<double>(waste) / static_cast<double>(n);
    if (w > worst) {
      worst = w;
      worst_n = n;
    }
  }
  // The bound is tight enough to matter: some size comes close to it.
  EXPECT_GT(worst, 0.10) << "worst at " << worst_n;
}

TEST(SizeClass, MultiplesOf16GetClassesThatAreMultiplesOf16) {
  for (size_t n = 16; n <= kMaxSmallSize; n += 16) {
    ASSERT_EQ(ClassSize(SizeClassOf(n)) % 16, 0u) << "size " << n;
  }
  // The 8-byte steps exist only between 64 and 128.
  for (size_t c = 0; c < kNumClasses; ++c) {
    if (ClassSize(c) % 16 != 0) {
      EXPECT_GT(ClassSize(c), 64u);
      EXPECT_LT(ClassSize(c), 128u);
    }
  }
}

TEST(SizeClass, EveryPowerOfTwoIsAClass) {
  std::set<size_t> sizes;
  for (size_t c = 0; c < kNumClasses; ++c) sizes.insert(ClassSize(c));
  for (size_t p = 16; p <= kMaxSmallSize; p *= 2) {
    EXPECT_TRUE(sizes.count(p)) << p << " is not a class";
    EXPECT_EQ(ClassSize(SizeClassOf(p)), p);
  }
}

TEST(SizeClass, SpansHoldWholeBlocksWithAtMostAnEighthLeftOver) {
  for (size_t c = 0; c < kNumClasses; ++c) {
    const size_t s = ClassSize(c);
    const size_t pages = kSizeClasses.span_pages[c];
    const size_t span = pages * kPageSize;
    ASSERT_GE(pages, 1u) << "class " << s;
    ASSERT_LE(pages, size_t{execmem::kMaxSpanPages}) << "class " << s;
    EXPECT_GE(span, s) << "class " << s;
    EXPECT_LE((span % s) * 8, span) << "class " << s << " leaves " << span % s << " of " << span;
    EXPECT_EQ(kSizeClasses.capacity[c], span / s) << "class " << s;
  }
}

// The fast free path decides "is this a block start" with a multiply and a
// compare (Page::div_magic); the slow path with %. They must agree on every
// offset into a head page, which is where the fast path uses it.
TEST(SizeClass, DivisibilityTestAgreesWithModuloOnEveryOffsetOfAPage) {
  for (size_t c = 0; c < kNumClasses; ++c) {
    const uint32_t s = static_cast<uint32_t>(ClassSize(c));
    for (uint32_t x = 0; x < kPageSize; ++x) {
      ASSERT_EQ(execmem::IsBlockOffset(x, kSizeClasses.div_magic[c]), x % s == 0)
          << "class " << s << " offset " << x;
      ASSERT_EQ(execmem::IsBlockOffsetInPage(x, kSizeClasses.div_magic[c]), x % s == 0)
          << "class " << s << " offset " << x;
    }
    // And beyond the first page, up to the end of the class's span.
    const uint32_t span = static_cast<uint32_t>(kSizeClasses.span_pages[c] * kPageSize);
    for (uint32_t x = kPageSize; x < span; x += 8) {
      ASSERT_EQ(execmem::IsBlockOffset(x, kSizeClasses.div_magic[c]), x % s == 0)
          << "class " << s << " offset " << x;
    }
    // The test is exact for every 32-bit offset: the multiples and their
    // neighbours up to 2^32, and the largest offsets.
    for (uint64_t m = 0; m * s <= UINT32_MAX; m += 1 + m / 64) {
      const uint32_t x = static_cast<uint32_t>(m * s);
      ASSERT_TRUE(execmem::IsBlockOffset(x, kSizeClasses.div_magic[c]))
          << "class " << s << " " << x;
      if (x <= UINT32_MAX - 8) {
        ASSERT_FALSE(execmem::IsBlockOffset(x + 8, kSizeClasses.div_magic[c])) << s;
      }
      if (x != 0) {
        ASSERT_FALSE(execmem::IsBlockOffset(x - 1, kSizeClasses.div_magic[c])) << s;
      }
    }
    for (uint32_t x = UINT32_MAX; x > UINT32_MAX - 4096; --x) {
      ASSERT_EQ(execmem::IsBlockOffset(x, kSizeClasses.div_magic[c]), x % s == 0) << "class " << s;
    }
  }
}

// The table seen through real blocks: each class's usable size is the class,
// and blocks sit at whole multiples of it from their 64 KiB-aligned span start.
TEST(SizeClass, RealBlocksHaveTheirClassSizeAndAlignment) {
  for (size_t c = 0; c < kNumClasses; ++c) {
    const size_t s = ClassSize(c);
    std::vector<void*> blocks;
    for (int i = 0; i < 3; ++i) {
      void* p = execmem_malloc(s);
      ASSERT_NE(p, nullptr) << "class " << s;
      blocks.push_back(p);
      EXPECT_EQ(execmem_usable_size(p), s);
      const uintptr_t a = reinterpret_cast<uintptr_t>(p);
      if (s % 16 == 0) {
        EXPECT_EQ(a % 16, 0u) << "class " << s;
      }
      EXPECT_EQ(a % 8, 0u) << "class " << s;
      // Spans start 64 KiB-aligned: power-of-two classes up to that are
      // aligned to their size (aligned allocation relies on it).
      if (std::has_single_bit(s) && s <= kPageSize) {
        EXPECT_EQ(a % s, 0u) << "class " << s;
      }
      // Every usable byte is writable.
      static_cast<volatile char*>(p)[0] = 1;
      static_cast<volatile char*>(p)[s - 1] = 1;
    }
    // A request one byte above the previous class lands in this class.
    const size_t n = c == 0 ? 1 : ClassSize(c - 1) + 1;
    void* q = execmem_malloc(n);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(execmem_usable_size(q), s) << "request " << n;
    execmem_free(q);
    for (void* p : blocks) execmem_free(p);
  }
}

}  // namespace
