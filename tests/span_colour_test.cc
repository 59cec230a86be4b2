// Span colouring (cache/span.h): every small span starts at a 64 KiB
// boundary, so without it the first block of every span sits at page offset
// 0, and a thread holding a few blocks of several classes keeps them all in
// the same few L1 sets (ownobjects' write loop ran up to 3 x slower in one
// round of ten; docs/performance.md, "Span colouring"). Spans of blocks of at
// most kColorMaxBlock bytes skip their first blocks so that the first one
// starts at one of the 64 line offsets of the first 4 KiB; a free of a
// skipped block is an invalid pointer.
#include <cstdint>
#include <cstring>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/heap_internal.h"
#include "cache/size_class.h"
#include "cache/span.h"
#include "execmem.h"
#include "execmem.hpp"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

constexpr uintptr_t kOsPage = 4096;
constexpr uintptr_t kLine = 64;

uintptr_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

execmem::Executor NewExecutor(const std::string& name) {
  auto e = execmem::Executor::Create(execmem::test_support::RoomyConfig(name));
  EXPECT_TRUE(e.ok()) << e.status();
  return std::move(*e);
}

// The block sizes of the coloured classes.
std::vector<size_t> ColouredClassSizes() {
  std::vector<size_t> sizes;
  for (size_t c = 0; c < execmem::kNumClasses; ++c) {
    if (execmem::kSizeClasses.size[c] <= execmem::kColorMaxBlock) {
      sizes.push_back(execmem::kSizeClasses.size[c]);
    }
  }
  return sizes;
}

TEST(SpanColour, FirstBlocksOfAThreadsClassesSpreadOverTheL1Sets) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  execmem::Executor e = NewExecutor("span-colour");
  const std::vector<size_t> sizes = ColouredClassSizes();
  ASSERT_GE(sizes.size(), 20u);
  std::vector<void*> firsts;
  // A new thread of a new executor: each malloc below takes a new span.
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    for (size_t size : sizes) firsts.push_back(execmem_malloc(size));
  }).join();
  std::set<uintptr_t> sets;  // the line offset within a 4 KiB page: an L1 set
  for (size_t i = 0; i < firsts.size(); ++i) {
    ASSERT_NE(firsts[i], nullptr);
    const uintptr_t in_span = Addr(firsts[i]) & (execmem::kPageSize - 1);
    EXPECT_EQ(in_span % sizes[i], 0u) << "blocks stay multiples of their size from the span start";
    EXPECT_LT(in_span, kOsPage + sizes[i]) << "the colour lies within the first 4 KiB";
    sets.insert((Addr(firsts[i]) % kOsPage) / kLine);
  }
  // Uncoloured, every first block is at offset 0: one set for all of them.
  EXPECT_GE(sets.size(), sizes.size() / 2)
      << sizes.size() << " first blocks on " << sets.size() << " L1 sets";
  for (void* p : firsts) execmem_free(p);
  EXPECT_EQ(e.Stats().used, 0u);
}

// The rule, whatever the layout: blocks two live threads allocate at
// the same time never share a 64-byte line (passes without colouring too: a
// guard).
TEST(SpanColour, BlocksOfTwoThreadsNeverShareALine) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  execmem::Executor e = NewExecutor("span-colour-lines");
  constexpr size_t kPerThread = 256;
  std::vector<std::pair<void*, size_t>> blocks[2];
  // Neither thread exits before both are done: a span of an exited thread
  // goes to the orphanage and the other may adopt it, with its live blocks.
  std::latch start(2), done(2);
  auto run = [&](int t) {
    execmem::ExecutorScope scope(e);
    start.arrive_and_wait();
    for (size_t j = 0; j < kPerThread; ++j) {
      const size_t size = 8 + 8 * (j % 8);
      blocks[t].emplace_back(execmem_malloc(size), size);
    }
    done.arrive_and_wait();
  };
  std::thread a(run, 0), b(run, 1);
  a.join();
  b.join();
  std::set<uintptr_t> lines0;
  for (auto [p, size] : blocks[0]) {
    ASSERT_NE(p, nullptr);
    for (uintptr_t l = Addr(p) / kLine; l <= (Addr(p) + size - 1) / kLine; ++l) lines0.insert(l);
  }
  for (auto [p, size] : blocks[1]) {
    ASSERT_NE(p, nullptr);
    for (uintptr_t l = Addr(p) / kLine; l <= (Addr(p) + size - 1) / kLine; ++l) {
      EXPECT_EQ(lines0.count(l), 0u) << p << " shares a line with the other thread's blocks";
    }
  }
  for (auto& v : blocks) {
    for (auto [p, size] : v) execmem_free(p);
  }
}

class SpanColourDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// A block the colour skipped was never handed out: its free is reported on
// the owner's fast path too (the skipped blocks hold the free key), and so is
// its realloc, in its class (the inline path keeps a block of its class:
// realloc returned it as live until 2026-12-08) or to another.
TEST_F(SpanColourDeathTest, AFreeOrReallocOfASkippedBlockIsAnInvalidPointer) {
  execmem::Executor e = NewExecutor("span-colour-death");
  // A new executor: the thread's heap for it is new, so that each malloc
  // below takes the first block of a new span.
  execmem::ExecutorScope scope(e);
  std::vector<void*> held;
  void* skipped = nullptr;
  size_t size = 0;
  for (size_t s : ColouredClassSizes()) {
    void* p = execmem_malloc(s);
    ASSERT_NE(p, nullptr);
    held.push_back(p);
    if ((Addr(p) & (execmem::kPageSize - 1)) >= s) {
      skipped = static_cast<char*>(p) - s;  // the block before the first
      size = s;
      break;
    }
  }
  ASSERT_NE(skipped, nullptr) << "no coloured span among " << held.size() << " classes";
  EXPECT_DEATH(execmem_free(skipped), "not allocated by execmem");
  const char* report = "realloc\\(\\): pointer 0x[0-9a-f]+ not allocated by execmem";
  EXPECT_DEATH(execmem_realloc(skipped, size), report);
  EXPECT_DEATH(execmem_realloc(skipped, size * 4), report);
  for (void* p : held) execmem_free(p);
}

// The same on the owner's slow path: a full span (its frees leave the fast
// path) whose skipped block lost its free key to an overflow from below.
TEST_F(SpanColourDeathTest, AFreeOfASkippedBlockWithoutItsKeyIntoAFullSpanIsAnInvalidPointer) {
  execmem::Executor e = NewExecutor("span-colour-death-full");
  execmem::ExecutorScope scope(e);
  std::vector<void*> held;
  void* first = nullptr;
  size_t size = 0;
  for (size_t s : ColouredClassSizes()) {
    if (s >= execmem::kSharedMinSize) continue;  // the thread's own spans
    void* p = execmem_malloc(s);
    ASSERT_NE(p, nullptr);
    held.push_back(p);
    if ((Addr(p) & (execmem::kPageSize - 1)) >= s) {
      first = p;
      size = s;
      break;
    }
  }
  ASSERT_NE(first, nullptr) << "no coloured span among " << held.size() << " classes";
  const execmem::Page* span = execmem::SpanHeadOf(first);
  // Fill the span, and one more: it is no longer current, and full.
  for (uint32_t i = 0; i < span->capacity; ++i) {
    void* p = execmem_malloc(size);
    ASSERT_NE(p, nullptr);
    held.push_back(p);
  }
  ASSERT_NE(execmem::SpanHeadOf(held.back()), span);
  char* skipped = static_cast<char*>(first) - size;
  std::memset(skipped, 0x5a, size);  // an overflow from the block below
  EXPECT_DEATH(execmem_free(skipped), "not allocated by execmem");
  for (void* p : held) execmem_free(p);
}

}  // namespace
