// The allocation API's contract (include/execmem.h, execmem.hpp): aligned
// allocation at every power of two, errors (EINVAL, ENOMEM) that leave the
// caller's state alone, usable sizes, ownership queries, and the C++ entry
// points' exceptions.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "cache/size_class.h"
#include "execmem.h"
#include "execmem.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;
constexpr size_t kImpossible = size_t{1} << 62;

// Sizes to try with an alignment: below it, not a multiple of it, above it.
std::vector<size_t> SizesFor(size_t alignment) {
  std::vector<size_t> v = {
      1, 8, 24, alignment / 2 + 1, alignment, alignment + 8, 3 * alignment + 5};
  if (alignment > 8 * kMiB) v = {1, 100, alignment / 2 + 1, alignment + 8};
  return v;
}

void TouchEnds(void* p, size_t size) {
  auto* c = static_cast<volatile char*>(p);
  c[0] = 1;
  c[size - 1] = 2;
}

TEST(Api, AlignedAllocAlignsAtEveryPowerOfTwo) {
  for (size_t a = 1; a <= 64 * kMiB; a *= 2) {
    for (size_t size : SizesFor(a)) {
      void* p = execmem_aligned_alloc(a, size);
      ASSERT_NE(p, nullptr) << "alignment " << a << " size " << size;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % a, 0u) << "alignment " << a << " size " << size;
      EXPECT_GE(execmem_usable_size(p), size) << "alignment " << a << " size " << size;
      EXPECT_TRUE(execmem_owns(p));
      TouchEnds(p, size);
      execmem_free(p);
    }
  }
}

TEST(Api, HugeBlocksHonourAlignmentsAboveAnArena) {
  // Alignments of 128 MiB .. 1 GiB on huge blocks: their mapping starts at a
  // multiple of the alignment, and the block's header is not in the block.
  for (size_t a = 128 * kMiB; a <= 1024 * kMiB; a *= 2) {
    void* p = nullptr;
    ASSERT_EQ(execmem_posix_memalign(&p, a, 72 * kMiB), 0) << "alignment " << a;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % a, 0u) << "alignment " << a;
    EXPECT_GE(execmem_usable_size(p), 72 * kMiB);
    memset(p, 0x5a, 72 * kMiB);
    EXPECT_GE(execmem_usable_size(p), 72 * kMiB) << "writing the block kept its size";
    EXPECT_TRUE(execmem_owns(p));
    execmem_free(p);
  }
}

TEST(Api, PosixMemalignAlignsAtEveryPowerOfTwoAndKeepsErrno) {
  for (size_t a = sizeof(void*); a <= 64 * kMiB; a *= 2) {
    for (size_t size : SizesFor(a)) {
      void* p = nullptr;
      errno = 1234;
      ASSERT_EQ(execmem_posix_memalign(&p, a, size), 0) << "alignment " << a << " size " << size;
      EXPECT_EQ(errno, 1234) << "posix_memalign must not set errno on success";
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % a, 0u) << "alignment " << a << " size " << size;
      EXPECT_GE(execmem_usable_size(p), size);
      TouchEnds(p, size);
      execmem_free(p);
    }
  }
}

TEST(Api, AlignedBlocksOfManySizesDoNotOverlap) {
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
  std::vector<void*> blocks;
  for (size_t a : {16ul, 32ul, 64ul, 256ul, 4096ul, 65536ul, 1ul << 20}) {
    for (size_t size : {1ul, 40ul, 1000ul, 5000ul, 70000ul}) {
      for (int i = 0; i < 3; ++i) {
        void* p = execmem_aligned_alloc(a, size);
        ASSERT_NE(p, nullptr);
        memset(p, 0x3c, size);
        blocks.push_back(p);
        const uintptr_t s = reinterpret_cast<uintptr_t>(p);
        ranges.emplace_back(s, s + execmem_usable_size(p));
      }
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) ASSERT_LE(ranges[i - 1].second, ranges[i].first);
  for (void* p : blocks) execmem_free(p);
}

TEST(Api, BadAlignmentsAreEinvalAndTouchNothing) {
  for (size_t a : {size_t{0}, size_t{3}, size_t{24}, size_t{48}, size_t{4097},
                   EXECMEM_MAX_ALIGNMENT * 2, SIZE_MAX}) {
    void* out = reinterpret_cast<void*>(0xdeadbeef);
    EXPECT_EQ(execmem_posix_memalign(&out, a, 64), EINVAL) << "alignment " << a;
    EXPECT_EQ(out, reinterpret_cast<void*>(0xdeadbeef)) << "out was written for alignment " << a;
    errno = 0;
    EXPECT_EQ(execmem_aligned_alloc(a, 64), nullptr) << "alignment " << a;
    EXPECT_EQ(errno, EINVAL) << "alignment " << a;
  }
  // posix_memalign also wants a multiple of sizeof(void*).
  for (size_t a : {size_t{1}, size_t{2}, size_t{4}}) {
    void* out = reinterpret_cast<void*>(0xdeadbeef);
    EXPECT_EQ(execmem_posix_memalign(&out, a, 64), EINVAL) << "alignment " << a;
    EXPECT_EQ(out, reinterpret_cast<void*>(0xdeadbeef));
  }
}

TEST(Api, ImpossibleSizesAreEnomemAndTouchNothing) {
  for (size_t size : {kImpossible, SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX / 2 + 1}) {
    errno = 0;
    EXPECT_EQ(execmem_malloc(size), nullptr) << size;
    EXPECT_EQ(errno, ENOMEM) << size;
    errno = 0;
    EXPECT_EQ(execmem_aligned_alloc(4096, size), nullptr) << size;
    EXPECT_EQ(errno, ENOMEM) << size;
    void* out = reinterpret_cast<void*>(0xdeadbeef);
    EXPECT_EQ(execmem_posix_memalign(&out, 64, size), ENOMEM) << size;
    EXPECT_EQ(out, reinterpret_cast<void*>(0xdeadbeef));
  }
}

TEST(Api, CallocOverflowIsEnomem) {
  const size_t pairs[][2] = {{SIZE_MAX, 2},
                             {2, SIZE_MAX},
                             {size_t{1} << 32, size_t{1} << 32},
                             {(SIZE_MAX / 16) + 1, 16},
                             {SIZE_MAX, SIZE_MAX}};
  for (const auto& pr : pairs) {
    errno = 0;
    EXPECT_EQ(execmem_calloc(pr[0], pr[1]), nullptr) << pr[0] << " x " << pr[1];
    EXPECT_EQ(errno, ENOMEM);
  }
  // Zero of anything is a real, freeable block.
  void* z = execmem_calloc(0, SIZE_MAX);
  ASSERT_NE(z, nullptr);
  EXPECT_TRUE(execmem_owns(z));
  execmem_free(z);
}

TEST(Api, ZeroBytesIsAUniqueFreeableBlock) {
  void* a = execmem_malloc(0);
  void* b = execmem_malloc(0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  // A zero-size block (allocator/zero_size.h): no usable byte, but ours.
  EXPECT_EQ(execmem_usable_size(a), 0u);
  EXPECT_TRUE(execmem_owns(a));
  void* grown = execmem_realloc(b, 100);  // nothing to copy; b is freed
  ASSERT_NE(grown, nullptr);
  EXPECT_GE(execmem_usable_size(grown), 100u);
  execmem_free(grown);
  execmem_free(a);
  // Freed zero-size blocks are handed out again, each once while live.
  std::vector<void*> zeros;
  for (int i = 0; i < 1000; ++i) zeros.push_back(execmem_malloc(0));
  std::sort(zeros.begin(), zeros.end());
  EXPECT_EQ(std::adjacent_find(zeros.begin(), zeros.end()), zeros.end());
  for (void* z : zeros) execmem_free(z);
  execmem_free(nullptr);  // a no-op
  execmem_free_sized(nullptr, 0);
}

TEST(Api, UsableSizeIsTheClassForSmallAndPageRoundedForLarge) {
  EXPECT_EQ(execmem_usable_size(nullptr), 0u);
  for (size_t size = 1; size <= execmem::kMaxSmallSize; size += (size < 4096 ? 1 : 997)) {
    void* p = execmem_malloc(size);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(execmem_usable_size(p), execmem::ClassSize(execmem::SizeClassOf(size))) << size;
    execmem_free(p);
  }
  for (size_t size : {256 * kKiB + 1, 300 * kKiB + 17, 1 * kMiB, 5 * kMiB + 3, 90 * kMiB + 1}) {
    void* p = execmem_malloc(size);
    ASSERT_NE(p, nullptr);
    const size_t u = execmem_usable_size(p);
    EXPECT_GE(u, size);
    EXPECT_EQ(u % 4096, 0u) << size;
    EXPECT_LT(u - size, 4096u) << size;
    execmem_free(p);
  }
}

// Writing every usable byte of a block leaves its neighbours alone.
TEST(Api, TheWholeUsableSizeIsTheCallersToWrite) {
  for (size_t size : {1ul, 17ul, 100ul, 1000ul, 3000ul, 50000ul, 300 * kKiB}) {
    std::vector<void*> blocks;
    for (int i = 0; i < 16; ++i) blocks.push_back(execmem_malloc(size));
    for (size_t i = 0; i < blocks.size(); ++i) {
      memset(blocks[i], static_cast<int>(i + 1), execmem_usable_size(blocks[i]));
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      auto* c = static_cast<unsigned char*>(blocks[i]);
      const size_t u = execmem_usable_size(blocks[i]);
      for (size_t j = 0; j < u; ++j) ASSERT_EQ(c[j], i + 1) << "size " << size << " block " << i;
      execmem_free(blocks[i]);
    }
  }
}

TEST(Api, OwnsOnlyBlockStartsOfLiveBlocksAndNeverAborts) {
  void* small = execmem_malloc(48);
  void* large = execmem_malloc(2 * kMiB);
  void* huge = execmem_malloc(80 * kMiB);
  void* aligned = execmem_aligned_alloc(1 << 20, 3000);
  for (void* p : {small, large, huge, aligned}) {
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(execmem_owns(p));
    EXPECT_FALSE(execmem_owns(static_cast<char*>(p) + 8)) << "interior pointer";
    EXPECT_FALSE(execmem_owns(static_cast<char*>(p) + 3 * 4096 + 8)) << "interior pointer";
  }
  int on_stack = 0;
  void* from_libc = malloc(64);
  EXPECT_FALSE(execmem_owns(nullptr));
  EXPECT_FALSE(execmem_owns(&on_stack));
  EXPECT_FALSE(execmem_owns(from_libc));
  EXPECT_FALSE(execmem_owns(reinterpret_cast<void*>(uintptr_t{1} << 60)));
  EXPECT_FALSE(execmem_owns(reinterpret_cast<void*>(16)));
  // An arena's own metadata is not a block.
  const uintptr_t arena = reinterpret_cast<uintptr_t>(small) & ~((uintptr_t{64} << 20) - 1);
  EXPECT_FALSE(execmem_owns(reinterpret_cast<void*>(arena)));
  EXPECT_FALSE(execmem_owns(reinterpret_cast<void*>(arena + 64)));
  free(from_libc);
  execmem_free(large);
  execmem_free(huge);
  EXPECT_FALSE(execmem_owns(large)) << "a freed large block";
  EXPECT_FALSE(execmem_owns(huge)) << "an unmapped huge block";
  execmem_free(small);
  execmem_free(aligned);
}

TEST(Api, SizedFreesFreeLikeFree) {
  const size_t sizes[] = {24, 700, 300 * kKiB};
  for (size_t size : sizes) {
    void* p = execmem_malloc(size);
    execmem_free_sized(p, size);
    EXPECT_EQ(execmem_malloc(size), p) << "the block was freed";
    execmem_free(p);
    void* a = execmem_aligned_alloc(256, size);
    execmem_free_aligned_sized(a, 256, size);
    void* b = execmem_aligned_alloc(256, size);
    EXPECT_EQ(b, a);
    execmem_free(b);
  }
}

// ---- C++ --------------------------------------------------------------------------

TEST(CppApi, AllocateThrowsOutOfMemoryWhichIsABadAlloc) {
  EXPECT_THROW(execmem::allocate(kImpossible), execmem::OutOfMemory);
  try {
    execmem::allocate(kImpossible);
    FAIL() << "no exception";
  } catch (const std::bad_alloc& e) {
    EXPECT_THAT(e.what(), HasSubstr("out of memory"));
    EXPECT_THAT(e.what(), HasSubstr(std::to_string(kImpossible))) << "names the request";
  }
  EXPECT_THROW(execmem::allocate_aligned(kImpossible, 64), execmem::OutOfMemory);
  EXPECT_THROW(execmem::allocate_aligned(64, 3), std::bad_alloc) << "bad alignment";
}

TEST(CppApi, TryAllocateReturnsNullInsteadOfThrowing) {
  errno = 0;
  EXPECT_EQ(execmem::try_allocate(kImpossible), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* p = execmem::try_allocate(100);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(execmem::usable_size(p), 100u);
  execmem::deallocate(p, 100);
}

TEST(CppApi, ReallocateKeepsTheBlockWhenItThrows) {
  auto* p = static_cast<char*>(execmem::allocate(64));
  memcpy(p, "still here", 11);
  EXPECT_THROW(execmem::reallocate(p, kImpossible), execmem::OutOfMemory);
  EXPECT_STREQ(p, "still here");
  p = static_cast<char*>(execmem::reallocate(p, 5000));
  EXPECT_STREQ(p, "still here");
  void* q = execmem::allocate_aligned(1000, 4096);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q) % 4096, 0u);
  execmem::deallocate(q);
  execmem::deallocate(p);
}

// The message belongs to the failure at hand, not to an earlier one on the
// same thread: a refused request after an executor's OOM names its own size.
TEST(CppApi, TheOutOfMemoryMessageDescribesThisFailureNotAnEarlierOne) {
  execmem::ExecutorConfig config;
  config.name = "tiny";
  config.initial = "1m";
  config.max = "2m";
  config.overhead = "1m";
  auto e = execmem::Executor::Create(config);
  ASSERT_TRUE(e.ok()) << e.status();
  {
    execmem::ExecutorScope scope(*e);
    try {
      execmem::allocate(8 * kMiB);
      FAIL() << "8 MiB fit a 2 MiB max";
    } catch (const execmem::OutOfMemory& oom) {
      EXPECT_THAT(oom.what(), HasSubstr("tiny"));
    }
  }
  try {
    execmem::allocate(kImpossible);
    FAIL() << "no exception";
  } catch (const execmem::OutOfMemory& oom) {
    EXPECT_THAT(oom.what(), HasSubstr(std::to_string(kImpossible)));
    EXPECT_THAT(oom.what(), Not(HasSubstr("tiny")));
  }
}

}  // namespace
