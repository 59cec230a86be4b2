// Pointers execmem did not hand out: freeing (or asking about) one prints
// "execmem: <op>(): pointer 0x... not allocated by execmem" and aborts, whether
// the pointer is foreign, inside a block, inside the allocator's metadata, or
// a block already given back whose memory the allocator no longer uses.
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

#include "execmem.h"
#include "gtest/gtest.h"

namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;
constexpr char kNotOurs[] = "not allocated by execmem";

class InvalidPointerDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

char* At(void* p, size_t offset) { return static_cast<char*>(p) + offset; }

TEST_F(InvalidPointerDeathTest, TheMessageNamesTheOperationAndThePointer) {
  int on_stack = 0;
  EXPECT_DEATH(execmem_free(&on_stack), "execmem: free\\(\\): pointer 0x[0-9a-f]+ not allocated by execmem");
}

TEST_F(InvalidPointerDeathTest, FreeOfAStackAddress) {
  char buf[64];
  EXPECT_DEATH(execmem_free(buf + 16), kNotOurs);
}

TEST_F(InvalidPointerDeathTest, FreeOfALibcPointer) {
  void* small = malloc(32);
  void* big = malloc(4 * kMiB);  // glibc mmaps this one
  EXPECT_DEATH(execmem_free(small), kNotOurs);
  EXPECT_DEATH(execmem_free(big), kNotOurs);
  free(small);
  free(big);
}

TEST_F(InvalidPointerDeathTest, FreeOfAnInteriorPointerOfASmallBlock) {
  void* p = execmem_malloc(48);  // in this thread's current span: the fast path sees it
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(execmem_free(At(p, 8)), kNotOurs);
  EXPECT_DEATH(execmem_free(At(p, 1)), kNotOurs);
  // A span that is not current (the slow path), and a block whose class spans
  // two pages, pointed into past its first page.
  std::vector<void*> fill;
  for (int i = 0; i < 3000; ++i) fill.push_back(execmem_malloc(48));
  EXPECT_DEATH(execmem_free(At(fill[0], 16)), kNotOurs);
  std::vector<void*> wide;
  void* past_first_page = nullptr;
  for (int i = 0; i < 11 && past_first_page == nullptr; ++i) {
    wide.push_back(execmem_malloc(11 * kKiB));  // class 11264: two-page spans
    ASSERT_NE(wide.back(), nullptr);
    if (reinterpret_cast<uintptr_t>(wide.back()) % (64 * kKiB) > 64 * kKiB - 11 * kKiB) {
      past_first_page = At(wide.back(), 11 * kKiB - 16);
    }
  }
  ASSERT_NE(past_first_page, nullptr);
  EXPECT_DEATH(execmem_free(past_first_page), kNotOurs);
  for (void* q : fill) execmem_free(q);
  for (void* q : wide) execmem_free(q);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, FreeOfAnInteriorPointerOfALargeBlock) {
  void* p = execmem_malloc(1 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(execmem_free(At(p, 16)), kNotOurs);
  EXPECT_DEATH(execmem_free(At(p, 4096)), kNotOurs);
  EXPECT_DEATH(execmem_free(At(p, 512 * kKiB)), kNotOurs);  // a tail page
  void* aligned = execmem_aligned_alloc(1 * kMiB, 600 * kKiB);
  ASSERT_NE(aligned, nullptr);
  EXPECT_DEATH(execmem_free(At(aligned, 64 * kKiB)), kNotOurs);
  execmem_free(aligned);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, FreeOfAnInteriorPointerOfAHugeBlock) {
  void* p = execmem_malloc(80 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(execmem_free(At(p, 64)), kNotOurs);
  EXPECT_DEATH(execmem_free(At(p, 70 * kMiB)), kNotOurs);
  EXPECT_DEATH(execmem_free(At(p, -4096)), kNotOurs);  // the mapping's header
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, DoubleFreeOfALargeBlock) {
  void* p = execmem_malloc(2 * kMiB);
  ASSERT_NE(p, nullptr);
  execmem_free(p);  // its span is back in the pool
  EXPECT_DEATH(execmem_free(p), kNotOurs);
}

TEST_F(InvalidPointerDeathTest, DoubleFreeOfAHugeBlock) {
  void* p = execmem_malloc(100 * kMiB);
  ASSERT_NE(p, nullptr);
  execmem_free(p);  // unmapped
  EXPECT_DEATH(execmem_free(p), kNotOurs);
}

TEST_F(InvalidPointerDeathTest, FreeOfASmallBlockWhoseSpanWentBackToThePool) {
  void* p = execmem_malloc(5000);
  ASSERT_NE(p, nullptr);
  execmem_free(p);
  execmem_trim();  // the empty span goes back to the pool
  EXPECT_DEATH(execmem_free(p), kNotOurs);
}

TEST_F(InvalidPointerDeathTest, FreeOfABlockNeverHandedOut) {
  // A fresh span carves blocks as they are needed: the far end of it has not
  // been handed out yet.
  void* p = execmem_malloc(16);
  ASSERT_NE(p, nullptr);
  void* far = At(p, 16 * 3000);
  EXPECT_FALSE(execmem_owns(far));
  EXPECT_DEATH(execmem_free(far), kNotOurs);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, FreeOfArenaMetadata) {
  void* p = execmem_malloc(64);
  ASSERT_NE(p, nullptr);
  const uintptr_t arena = reinterpret_cast<uintptr_t>(p) & ~((uintptr_t{64} << 20) - 1);
  EXPECT_DEATH(execmem_free(reinterpret_cast<void*>(arena)), kNotOurs);
  EXPECT_DEATH(execmem_free(reinterpret_cast<void*>(arena + 128 * 5)), kNotOurs);
  EXPECT_DEATH(execmem_free(reinterpret_cast<void*>(arena + 64 * kKiB + 16)), kNotOurs);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, FreeFromAThreadThatNeverAllocated) {
  void* p = execmem_malloc(256);
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(std::thread([p] { execmem_free(At(p, 8)); }).join(), kNotOurs);
  execmem_free(p);
}

TEST_F(InvalidPointerDeathTest, UsableSizeAndReallocOfAForeignPointer) {
  void* foreign = malloc(64);
  EXPECT_DEATH(execmem_usable_size(foreign), "malloc_usable_size\\(\\): pointer 0x[0-9a-f]+ not allocated by execmem");
  EXPECT_DEATH(execmem_realloc(foreign, 128), "realloc\\(\\): .*not allocated by execmem");
  void* p = execmem_malloc(300 * kKiB);
  EXPECT_DEATH(execmem_usable_size(At(p, 32)), kNotOurs);
  EXPECT_DEATH(execmem_realloc(At(p, 32), 10), kNotOurs);
  execmem_free(p);
  free(foreign);
}

// The non-aborting query says no to all of the above.
TEST(InvalidPointer, OwnsAnswersWithoutAborting) {
  char buf[64];
  void* libc = malloc(32);
  void* small = execmem_malloc(48);
  void* large = execmem_malloc(1 * kMiB);
  EXPECT_FALSE(execmem_owns(buf));
  EXPECT_FALSE(execmem_owns(libc));
  EXPECT_FALSE(execmem_owns(At(small, 8)));
  EXPECT_FALSE(execmem_owns(At(large, 4096)));
  execmem_free(large);
  EXPECT_FALSE(execmem_owns(large));
  execmem_free(small);
  free(libc);
}

}  // namespace
