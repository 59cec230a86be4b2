// The thread caches' span handling (cache/heap.h, issue 9): frees into
// any span the thread owns, per-span remote free lists collected at the
// owner's next slow path, spans of exited threads taken over by the thread
// that frees into them, the partial span with the most free blocks reused
// first, and blocks of
// different threads never sharing a cache line.
//
// Each test runs in an executor of its own and counts the spans handed out
// by the pool (held - cached), which execmem_pool_stats() reads without
// syncing any thread cache (execmem_executor_stats() would sync, and so
// collect remote frees itself). Only this test's execmem calls take spans
// meanwhile, and the decay is held off so that no purge runs between the two
// counters' reads.
#include <cstdint>
#include <latch>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/heap_internal.h"
#include "execmem.h"
#include "execmem.hpp"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

constexpr size_t kSpan = execmem::kPageSize;
// 256-byte blocks: a one-page span of them, the thread's own (the classes
// of 512 B to 64 KiB take blocks of spans shared by the executor's threads
// first: cache/heap_internal.h, tests/shared_spans_test.cc).
// A span of blocks of at most 512 B is coloured (cache/span.h: ColorBlocks):
// it skips up to 4 KiB of blocks at its start, so its capacity is read from
// the span, at most kPerSpan.
constexpr size_t kBlock = 256;
constexpr size_t kPerSpan = kSpan / kBlock;
size_t Capacity(const void* p) { return execmem::SpanHeadOf(p)->capacity; }

uint64_t Held() {
  execmem_pool_stats_t s;
  execmem_pool_stats(&s);
  return s.held - s.cached;
}

uintptr_t SpanOf(const void* p) { return reinterpret_cast<uintptr_t>(p) & ~uintptr_t{kSpan - 1}; }

class ThreadCache : public ::testing::Test {
 protected:
  execmem::test_support::DecayGuard no_purge_{execmem::test_support::kHour};
};

execmem::Executor NewExecutor(const std::string& name) {
  execmem::ExecutorConfig c;
  c.name = name;
  c.initial = "4m";
  c.max = "64m";
  auto e = execmem::Executor::Create(c);
  EXPECT_TRUE(e.ok()) << e.status();
  return std::move(*e);
}

// n whole spans of kBlock blocks, then one block more (so that the last of
// them is not the current span); blocks grouped by span, in address order.
std::map<uintptr_t, std::vector<void*>> FillSpans(size_t n, void** extra) {
  std::map<uintptr_t, std::vector<void*>> spans;
  *extra = nullptr;
  for (size_t i = 0; i <= n * kPerSpan; ++i) {
    void* p = execmem_malloc(kBlock);
    EXPECT_NE(p, nullptr);
    if (p == nullptr) break;
    if (spans.size() == n && spans.count(SpanOf(p)) == 0) {
      *extra = p;
      break;
    }
    spans[SpanOf(p)].push_back(p);
  }
  EXPECT_NE(*extra, nullptr) << n << " spans never filled";
  for (const auto& [span, blocks] : spans) {
    EXPECT_EQ(blocks.size(), Capacity(blocks.front()))
        << "256-byte blocks fill one-page spans in order";
  }
  return spans;
}

void FreeAll(const std::map<uintptr_t, std::vector<void*>>& spans) {
  for (const auto& [span, blocks] : spans) {
    for (void* p : blocks) execmem_free(p);
  }
}

// Allocates until a block comes from another span than `extra`'s (the
// current span used up): the blocks, the last one from the span made current.
std::vector<void*> UseUpCurrentSpan(const void* extra) {
  std::vector<void*> more;
  while (true) {
    void* p = execmem_malloc(kBlock);
    if (p == nullptr) {
      ADD_FAILURE() << "malloc failed";
      break;
    }
    more.push_back(p);
    if (SpanOf(p) != SpanOf(extra)) break;
    if (more.size() >= kPerSpan) {
      ADD_FAILURE() << "the current span never ran out";
      break;
    }
  }
  return more;
}

// Frees what FillSpans left and checks that nothing of the executor is used.
void FreeTheRest(execmem::Executor& e, const std::map<uintptr_t, std::vector<void*>>& spans,
                 void* extra) {
  EXPECT_TRUE(execmem::tls_heap->IsValid()) << "the heap's span lists and counts";
  FreeAll(spans);
  execmem_free(extra);
  execmem_trim();
  EXPECT_EQ(e.Stats().used, 0u);
  EXPECT_TRUE(execmem::tls_heap->IsValid());
}

TEST_F(ThreadCache, ASpanThatEmptiesGoesBackAtOnce) {
  execmem::Executor e = NewExecutor("tc-empties");
  execmem::ExecutorScope scope(e);
  void* extra;
  auto spans = FillSpans(3, &extra);
  const uint64_t held = Held();
  // Free the first span's blocks: it is full and not current, so the first
  // free takes it off the full list and the last one gives it back.
  auto first = spans.begin();
  for (void* p : first->second) execmem_free(p);
  EXPECT_EQ(Held(), held - kSpan) << "the emptied span went back to the pool";
  spans.erase(first);
  // Half of another span: it stays.
  auto second = spans.begin();
  const size_t half = second->second.size() / 2;
  for (size_t i = 0; i < half; ++i) execmem_free(second->second[i]);
  second->second.erase(second->second.begin(),
                       second->second.begin() + static_cast<std::ptrdiff_t>(half));
  EXPECT_EQ(Held(), held - kSpan);
  FreeTheRest(e, spans, extra);
}

TEST_F(ThreadCache, BlocksAnotherThreadFreesIntoAnySpanComeBackAtTheNextSlowPath) {
  execmem::Executor e = NewExecutor("tc-remote");
  execmem::ExecutorScope scope(e);
  void* extra;
  auto spans = FillSpans(3, &extra);
  const uint64_t held = Held();
  std::thread([&] { FreeAll(spans); }).join();
  EXPECT_EQ(Held(), held) << "nothing is given back before the owner looks";
  // A class this thread has no span of: the slow path, which takes back
  // what the other thread freed first. The three spans empty and go back;
  // the new class takes one.
  void* other = execmem_malloc(400);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(Held(), held - 3 * kSpan + kSpan);
  execmem_free(other);
  FreeTheRest(e, {}, extra);
}

TEST_F(ThreadCache, RemoteFreesIntoTheCurrentSpanAreReusedBeforeNewMemory) {
  execmem::Executor e = NewExecutor("tc-current");
  execmem::ExecutorScope scope(e);
  std::vector<void*> blocks{execmem_malloc(kBlock)};
  const size_t capacity = Capacity(blocks[0]);
  while (blocks.size() < capacity / 2) blocks.push_back(execmem_malloc(kBlock));
  const uintptr_t span = SpanOf(blocks[0]);
  std::thread([&] {
    for (void* p : blocks) execmem_free(p);
  }).join();
  // The current span hands out its never-used half, then what the other
  // thread freed, all before a second span.
  const uint64_t held = Held();
  std::vector<void*> again;
  for (size_t i = 0; i < capacity; ++i) {
    again.push_back(execmem_malloc(kBlock));
    EXPECT_EQ(SpanOf(again.back()), span) << "block " << i;
  }
  EXPECT_EQ(Held(), held);
  for (void* p : again) execmem_free(p);
}

TEST_F(ThreadCache, TheFreeingThreadTakesOverASpanOfAnExitedThread) {
  execmem::Executor e = NewExecutor("tc-adopt");
  std::vector<void*> blocks;
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    blocks.push_back(execmem_malloc(kBlock));
    const size_t capacity = Capacity(blocks[0]);
    while (blocks.size() < capacity) blocks.push_back(execmem_malloc(kBlock));
  }).join();
  const uint32_t orphans = execmem::g_orphan_spans.load();
  ASSERT_GE(orphans, 1u) << "the exited thread left its span to the orphanage";
  execmem::ExecutorScope scope(e);
  const uint64_t held = Held();
  execmem_free(blocks[0]);
  EXPECT_EQ(execmem::g_orphan_spans.load(), orphans - 1) << "the first free took the span over";
  for (size_t i = 1; i < blocks.size(); ++i) execmem_free(blocks[i]);
  EXPECT_EQ(Held(), held - kSpan) << "its last block freed, the span went back";
  EXPECT_EQ(e.Stats().used, 0u);
}

TEST_F(ThreadCache, ThePartialSpanWithTheMostFreeBlocksIsReusedFirst) {
  execmem::Executor e = NewExecutor("tc-fullest");
  execmem::ExecutorScope scope(e);
  void* extra;
  auto spans = FillSpans(4, &extra);
  // Live blocks left per span: 2, 7/8 of the span, half, and the fourth stays full.
  std::vector<uintptr_t> order;
  size_t k = 0;
  for (auto& [span, blocks] : spans) {
    const size_t n = blocks.size();
    const size_t to_free[] = {n - 2, n / 8, n / 2, 0};
    order.push_back(span);
    for (size_t i = 0; i < to_free[k]; ++i) execmem_free(blocks[i]);
    blocks.erase(blocks.begin(), blocks.begin() + static_cast<std::ptrdiff_t>(to_free[k]));
    ++k;
  }
  // Use up the current span (the one `extra` is in), then the next block
  // comes from the partial span with the most free blocks (cache/heap.cc:
  // FindPartial says why not the fullest).
  std::vector<void*> more = UseUpCurrentSpan(extra);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(SpanOf(more.back()), order[0]) << "not the partial span with the most free blocks";
  for (void* p : more) execmem_free(p);
  FreeTheRest(e, spans, extra);
}

TEST_F(ThreadCache, SpansAreReusedInTheOrderTheyGotABlockBack) {
  // More spans than FindPartial scans each get one block back, in address
  // order; then the first of them gets half its blocks back. A span unfulled
  // by a free waits behind those before it (cache/heap.cc: Unfull), so the
  // first is at the front and is the next current span; pushed to the front
  // instead, it would be the last of the list, past the scan.
  execmem::Executor e = NewExecutor("tc-fifo");
  execmem::ExecutorScope scope(e);
  void* extra;
  auto spans = FillSpans(12, &extra);
  std::vector<uintptr_t> order;
  for (auto& [span, blocks] : spans) {
    order.push_back(span);
    execmem_free(blocks.front());
    blocks.erase(blocks.begin());
  }
  auto& first = spans[order[0]];
  const size_t half = first.size() / 2;
  for (size_t i = 0; i < half; ++i) execmem_free(first[i]);
  first.erase(first.begin(), first.begin() + static_cast<std::ptrdiff_t>(half));
  std::vector<void*> more = UseUpCurrentSpan(extra);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(SpanOf(more.back()), order[0]) << "not the span that got a block back first";
  for (void* p : more) execmem_free(p);
  FreeTheRest(e, spans, extra);
}

TEST_F(ThreadCache, BlocksOfTwoThreadsNeverShareACacheLine) {
  constexpr int kBlocksPerThread = 4000;
  std::vector<void*> got[2];
  std::latch ready(2);
  std::latch done(2);
  auto run = [&](int t) {
    ready.arrive_and_wait();
    uint32_t x = 12345u + static_cast<uint32_t>(t);
    for (int i = 0; i < kBlocksPerThread; ++i) {
      x = x * 1103515245u + 12345u;
      got[t].push_back(execmem_malloc(8 + (x >> 8) % 57));  // 8..64 bytes
      // Free some as we go, so spans are reused while the other thread runs.
      if (i % 3 == 2) {
        execmem_free(got[t][got[t].size() - 2]);
        got[t].erase(got[t].end() - 2);
      }
    }
    // Both threads stay until both are done: a thread that exits leaves its
    // spans to the orphanage, where the other may take them over (then the
    // blocks of a thread that is gone sit beside the new owner's).
    done.arrive_and_wait();
  };
  std::thread a(run, 0), b(run, 1);
  a.join();
  b.join();
  std::set<uintptr_t> lines;
  for (void* p : got[0]) {
    const uintptr_t first = reinterpret_cast<uintptr_t>(p) / 64;
    const uintptr_t last = (reinterpret_cast<uintptr_t>(p) + execmem_usable_size(p) - 1) / 64;
    for (uintptr_t l = first; l <= last; ++l) lines.insert(l);
  }
  size_t shared = 0;
  for (void* p : got[1]) {
    const uintptr_t first = reinterpret_cast<uintptr_t>(p) / 64;
    const uintptr_t last = (reinterpret_cast<uintptr_t>(p) + execmem_usable_size(p) - 1) / 64;
    for (uintptr_t l = first; l <= last; ++l) shared += lines.count(l);
  }
  EXPECT_EQ(shared, 0u) << "cache lines holding blocks of both threads";
  for (auto& v : got) {
    for (void* p : v) execmem_free(p);
  }
}

}  // namespace
