// Blocks a thread frees into spans of another thread of its executor, kept
// for its own next allocations of the class (cache/heap.h: Heap::foreign;
// issue 20, docs/performance.md "Larson's resident memory, third pass"). The
// owner is idle (blocked, alive) meanwhile, as larson's owners are when the
// threads outnumber the cores; before the foreign lists those blocks waited
// on the owner's span for it to run again, and the freeing thread took a new
// span. The threads hand over with notifications: no timing, no scheduling luck.
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

constexpr size_t kBlock = 1024;  // a class with a foreign list (at least kForeignMinSize)
static_assert(kBlock >= execmem::kForeignMinSize);
constexpr size_t kBlocks = 8;  // within the list's bound (kForeignBytes)
static_assert(kBlocks * kBlock <= execmem::kForeignBytes);

// An owner thread of `owner_exec` allocates kBlocks blocks and stays alive and
// idle until the test is done; `freer` runs on another thread meanwhile with
// the blocks, then the owner exits.
template <typename Freer>
void WithIdleOwner(execmem::Executor& owner_exec, Freer freer) {
  std::vector<void*> blocks(kBlocks);
  absl::Notification allocated, done;
  std::thread owner([&] {
    execmem::ExecutorScope scope(owner_exec);
    for (void*& p : blocks) p = execmem_malloc(kBlock);
    allocated.Notify();
    done.WaitForNotification();
  });
  allocated.WaitForNotification();
  std::thread(freer, std::cref(blocks)).join();
  done.Notify();
  owner.join();
}

TEST(ForeignBlocks, TheFreeingThreadReusesBlocksItFreedIntoAnIdleOwnersSpans) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("foreign-reuse"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  WithIdleOwner(e, [&](const std::vector<void*>& blocks) {
    execmem::ExecutorScope scope(e);
    for (void* p : blocks) ASSERT_NE(p, nullptr);
    const uint64_t footprint = e.Stats().footprint;
    for (void* p : blocks) execmem_free(p);
    const std::set<void*> freed(blocks.begin(), blocks.end());
    std::vector<void*> mine;
    for (size_t i = 0; i < kBlocks; ++i) {
      mine.push_back(execmem_malloc(kBlock));
      // Without the foreign lists: a block of a new span of this thread.
      EXPECT_TRUE(freed.count(mine.back()) == 1) << "block " << i << " not one freed here";
    }
    EXPECT_EQ(e.Stats().footprint, footprint) << "the freeing thread took a span of its own";
    for (void* p : mine) execmem_free(p);
  });
  // Both threads gone: whatever waited on the freer's foreign list went home
  // at its exit, and the span emptied.
  const execmem_executor_stats_t s = e.Stats();
  EXPECT_EQ(s.used, 0u);
  EXPECT_EQ(s.footprint, 0u);
}

TEST(ForeignBlocks, AreKeptOnlyForTheirOwnExecutor) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created_a = execmem::Executor::Create(execmem::test_support::RoomyConfig("foreign-a"));
  auto created_b = execmem::Executor::Create(execmem::test_support::RoomyConfig("foreign-b"));
  ASSERT_TRUE(created_a.ok() && created_b.ok());
  execmem::Executor& a = *created_a;
  execmem::Executor& b = *created_b;
  WithIdleOwner(a, [&](const std::vector<void*>& blocks) {
    execmem::ExecutorScope scope(b);  // bound to another executor than the blocks'
    // blocks[0] stays until the end, so that their span stays a's: a span
    // emptied goes back to the pool (at once if the threads share it,
    // cache/heap_internal.h), and may be anyone's next.
    for (size_t i = 1; i < blocks.size(); ++i) execmem_free(blocks[i]);
    const std::set<void*> freed(blocks.begin() + 1, blocks.end());
    void* q = execmem_malloc(kBlock);
    // Charged to b: it cannot be one of a's blocks.
    EXPECT_EQ(freed.count(q), 0u);
    execmem_free(q);
    execmem_free(blocks[0]);
  });
  EXPECT_EQ(a.Stats().used, 0u);
  EXPECT_EQ(b.Stats().used, 0u);
}

// Another thread's free checks the block against what the owner's span has
// carved (cache/heap.cc: CarvedEnd, a relaxed load of `bump`), so that a
// block never handed out is reported. Every block the owner handed out must
// pass it: the owner carves a span and a block of the next (every carve
// batch's first and last block among them) while it stays alive and idle,
// and hands them over through a notification (the program's synchronisation,
// which orders the owner's store of `bump` before the freeing thread's
// load); a thread that never allocated (no heap: the remote list) frees the
// first half, a thread of the executor (foreign lists, shared spans) the
// rest, half of them sized. A refused block would abort ("not allocated by
// execmem").
TEST(ForeignBlocks, EveryBlockTheOwnerHandedOutIsTakenFromAnotherThread) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("foreign-carved"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  for (const size_t size : {size_t{16}, size_t{48}, size_t{496}, size_t{512}, size_t{2048},
                            size_t{16} << 10, size_t{72} << 10, size_t{200} << 10}) {
    const size_t n = execmem::kSizeClasses.capacity[execmem::SizeClassOf(size)] + 1u;
    std::vector<void*> blocks(n);
    absl::Notification allocated, done;
    std::thread owner([&] {
      execmem::ExecutorScope scope(e);
      for (void*& p : blocks) p = execmem_malloc(size);
      allocated.Notify();
      done.WaitForNotification();
    });
    allocated.WaitForNotification();
    for (void* p : blocks) ASSERT_NE(p, nullptr) << size;
    std::thread([&] {
      for (size_t i = 0; i < n / 2; ++i) execmem_free(blocks[i]);
    }).join();
    std::thread([&] {
      execmem::ExecutorScope scope(e);
      for (size_t i = n / 2; i < n; ++i) {
        if (i % 2 == 0) {
          execmem_free(blocks[i]);
        } else {
          execmem_free_sized(blocks[i], size);
        }
      }
    }).join();
    done.Notify();
    owner.join();
    EXPECT_EQ(e.Stats().used, 0u) << size;
  }
}

}  // namespace

namespace {

// A thread keeps at most kForeignBytes of other threads' blocks of a class on
// its foreign list: free blocks only it can hand out, while it may be off the
// CPU (larson: one thread of 8 on 2 cores). A block of a shared span that does
// not fit goes back to its span at once, where any thread of the executor
// takes it. (The bound was 32 KiB: the 8 blocks freed here all waited on the
// freeing thread's list, and the next thread carved new ones.)
TEST(ForeignBlocks, ABlockPastTheListsBoundGoesBackToItsSharedSpanForAnyThread) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("foreign-bound"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  constexpr size_t kShared = 2048;  // a shared class: 4 blocks in 8 KiB
  constexpr size_t kFreed = 8;      // 16 KiB
  const size_t c = execmem::SizeClassOf(kShared);
  ASSERT_TRUE(execmem::IsSharedClass(c));
  std::vector<void*> blocks(kFreed);
  absl::Notification allocated, done;
  std::thread owner([&] {  // takes them from the executor's shared span, then idles
    execmem::ExecutorScope scope(e);
    for (void*& p : blocks) p = execmem_malloc(kShared);
    allocated.Notify();
    done.WaitForNotification();
  });
  allocated.WaitForNotification();
  for (void* p : blocks) {
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(execmem::SpanHeadOf(p)->shared);
  }
  size_t kept = 0;
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    for (void* p : blocks) execmem_free(p);
    kept = execmem::tls_heap->foreign_count[c];
    // Still alive: its list is not sent home by an exit while the next
    // thread allocates.
    std::thread([&] {
      execmem::ExecutorScope inner(e);
      const std::set<void*> freed(blocks.begin(), blocks.end());
      std::vector<void*> mine;
      for (size_t i = 0; i < kFreed - kept; ++i) {
        mine.push_back(execmem_malloc(kShared));
        EXPECT_EQ(freed.count(mine.back()), 1u) << "block " << i << " is not one of the "
                                                << kFreed - kept << " freed past the list's bound";
      }
      for (void* p : mine) execmem_free(p);
    }).join();
  }).join();
  EXPECT_LE(kept * kShared, execmem::kForeignBytes);
  EXPECT_LT(kept, kFreed) << "every freed block kept on the freeing thread's list";
  done.Notify();
  owner.join();
  EXPECT_EQ(e.Stats().used, 0u);
  EXPECT_EQ(e.Stats().footprint, 0u);
}

}  // namespace
