// Blocks freed by other threads into a thread's own spans (cache/heap.h:
// where remote frees go): each span's list carries its count in the
// thread_free word (cache/span.h), so that the owner takes a list home
// without walking it, and a notice taken while the span's free list still
// holds blocks leaves the list on the span and re-arms (TakeNotice): larson
// spent 12-14 % of its CPU walking those lists, a cache miss a block
// (docs/performance.md, "Remote frees without walks"). The owner is alive
// and idle while another thread frees; the threads hand over with
// notifications: no timing, no scheduling luck.
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "cache/heap_internal.h"
#include "cache/size_class.h"
#include "execmem.h"
#include "execmem.hpp"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

using execmem::Block;
using execmem::Page;

constexpr size_t kBlock = 64;  // a class whose remote frees go home (no foreign list, not shared)
static_assert(kBlock < execmem::kForeignMinSize && kBlock < execmem::kSharedMinSize);

uintptr_t ThreadFreeOf(const Page* pg) { return pg->thread_free.load(std::memory_order_acquire); }

size_t ListLength(const Block* b) {
  size_t n = 0;
  for (; b != nullptr; b = b->next) ++n;
  return n;
}

TEST(RemoteFrees, ANoticeLeavesTheBlocksOnASpanThatHasFreeBlocksAndReArms) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("remote-notice"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  constexpr size_t kOwned = 20, kFreedThere = 10;
  std::vector<void*> blocks(kOwned);
  absl::Notification allocated, freed, drained, freed_again, done;
  std::thread owner([&] {
    execmem::ExecutorScope scope(e);
    for (void*& p : blocks) p = execmem_malloc(kBlock);
    Page* pg = execmem::SpanHeadOf(blocks[0]);
    for (void* p : blocks) EXPECT_EQ(execmem::SpanHeadOf(p), pg);
    allocated.Notify();
    freed.WaitForNotification();
    execmem::Heap* h = execmem::tls_heap;
    // The first remote free told the owner through its heap's list; the
    // others wait on the span's list, counted in its word.
    uintptr_t tf = ThreadFreeOf(pg);
    EXPECT_EQ(h->remote.load(), reinterpret_cast<uintptr_t>(blocks[0]));
    EXPECT_NE(tf & execmem::kNotified, 0u);
    EXPECT_EQ(execmem::ThreadFreeCount(tf), kFreedThere - 1);
    EXPECT_EQ(ListLength(execmem::ThreadFreeHead(tf)), kFreedThere - 1);
    EXPECT_EQ(execmem::ThreadFreeHead(tf), blocks[kFreedThere - 1]);  // the last pushed
    execmem_free(blocks[kOwned - 1]);  // an own free: the span's free list holds blocks
    EXPECT_NE(pg->free, nullptr);
    h->DrainRemote();
    // The notice is free again (on top); the span's list stays, re-armed.
    tf = ThreadFreeOf(pg);
    EXPECT_EQ(pg->free, blocks[0]);
    EXPECT_EQ(execmem::ThreadFreeCount(tf), kFreedThere - 1) << "collected by a walk";
    EXPECT_EQ(tf & execmem::kNotified, 0u) << "the next remote free would not notify";
    EXPECT_EQ(h->remote.load(), 0u);
    EXPECT_TRUE(h->IsValid());
    drained.Notify();
    freed_again.WaitForNotification();
    // Re-armed: the next remote free was a notice again.
    tf = ThreadFreeOf(pg);
    EXPECT_EQ(h->remote.load(), reinterpret_cast<uintptr_t>(blocks[kFreedThere]));
    EXPECT_EQ(execmem::ThreadFreeCount(tf), kFreedThere - 1);
    EXPECT_NE(tf & execmem::kNotified, 0u);
    // Every block freed comes back: the free list, then the span's list
    // when it runs dry, then the notice from the heap's list.
    std::set<void*> want(blocks.begin(), blocks.begin() + kFreedThere + 1);
    want.insert(blocks[kOwned - 1]);
    std::vector<void*> got;
    for (size_t i = 0; i < 4096 && !want.empty(); ++i) {
      got.push_back(execmem_malloc(kBlock));
      want.erase(got.back());
    }
    EXPECT_TRUE(want.empty()) << want.size() << " freed blocks never handed out again";
    EXPECT_TRUE(h->IsValid());
    for (void* p : got) execmem_free(p);
    for (size_t i = kFreedThere + 1; i + 1 < kOwned; ++i) execmem_free(blocks[i]);
    done.WaitForNotification();
  });
  allocated.WaitForNotification();
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    for (size_t i = 0; i < kFreedThere; ++i) execmem_free(blocks[i]);
    freed.Notify();
    drained.WaitForNotification();
    execmem_free(blocks[kFreedThere]);
    freed_again.Notify();
  }).join();
  done.Notify();
  owner.join();
  EXPECT_EQ(e.Stats().used, 0u);
  EXPECT_EQ(e.Stats().footprint, 0u);
}

// A span that is not current, whose free list holds a block, gets every other
// block back from another thread: the notice brings them all home and the span
// goes back to the pool at once (a list left on the span would keep it until
// a sweep).
TEST(RemoteFrees, ANoticeThatBringsEveryBlockHomeGivesTheSpanBack) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("remote-empty"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  std::vector<void*> span_blocks;  // every block of the first span
  void* next_span_block = nullptr;
  absl::Notification allocated, freed, checked;
  std::thread owner([&] {
    execmem::ExecutorScope scope(e);
    void* first = execmem_malloc(kBlock);
    Page* pg = execmem::SpanHeadOf(first);
    span_blocks.push_back(first);
    // Fill the span: the next block is another span's, and pg is full.
    for (;;) {
      void* p = execmem_malloc(kBlock);
      if (p == nullptr || execmem::SpanHeadOf(p) != pg) {
        next_span_block = p;
        break;
      }
      span_blocks.push_back(p);
    }
    EXPECT_EQ(pg->in_full, 1u);
    execmem_free(span_blocks.back());  // an own free: partial, its free list holds it
    span_blocks.pop_back();
    EXPECT_EQ(pg->in_full, 0u);
    EXPECT_NE(pg->free, nullptr);
    allocated.Notify();
    freed.WaitForNotification();
    const uint32_t spans = execmem::tls_heap->spans;
    execmem::tls_heap->DrainRemote();
    EXPECT_EQ(execmem::tls_heap->spans + 1, spans)
        << "the emptied span stayed with its blocks on its list";
    EXPECT_EQ(execmem::OwnerHeap(pg), nullptr);
    EXPECT_TRUE(execmem::tls_heap->IsValid());
    execmem_free(next_span_block);
    checked.Notify();
  });
  allocated.WaitForNotification();
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    for (void* p : span_blocks) execmem_free(p);
    freed.Notify();
  }).join();
  checked.WaitForNotification();
  owner.join();
  EXPECT_EQ(e.Stats().used, 0u);
}

}  // namespace
