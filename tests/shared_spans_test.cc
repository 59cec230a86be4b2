// Spans shared by an executor's threads for the classes of few blocks a span
// (cache/heap_internal.h: IsSharedClass; issue 20, docs/performance.md
// "Larson's resident memory, fourth pass"). A thread that holds a block or two
// of such a class takes it from a span the executor's threads share rather
// than from a span of its own: before, every thread held at least one span of
// every class it had used. The threads run one at a time, handing over with
// notifications: no timing, no scheduling luck.
#include <algorithm>
#include <cstddef>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "cache/heap_internal.h"
#include "execmem.h"
#include "execmem.hpp"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

constexpr size_t kBlock = size_t{16} << 10;  // 4 blocks a one-page span
static_assert(kBlock >= execmem::kSharedMinSize && kBlock <= execmem::kSharedMaxSize);
constexpr int kThreads = 4;

uint64_t SpanBytes() {
  const size_t c = execmem::SizeClassOf(kBlock);
  return uint64_t{execmem::kSizeClasses.span_pages[c]} << execmem::kPageShift;
}

// kThreads threads of `e`, one after the other, each allocating one block and
// staying alive and idle; `check` runs while all of them are; then each frees
// the block the next one allocated (blocks freed across threads) and they exit.
template <typename Check>
void WithThreadsHoldingABlockEach(execmem::Executor& e, Check check) {
  std::vector<void*> blocks(kThreads);
  std::vector<std::unique_ptr<absl::Notification>> allocated(kThreads);
  std::vector<std::unique_ptr<absl::Notification>> may_free(kThreads);
  std::vector<std::unique_ptr<absl::Notification>> freed(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    allocated[i] = std::make_unique<absl::Notification>();
    may_free[i] = std::make_unique<absl::Notification>();
    freed[i] = std::make_unique<absl::Notification>();
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      execmem::ExecutorScope scope(e);
      blocks[i] = execmem_malloc(kBlock);
      allocated[i]->Notify();
      may_free[i]->WaitForNotification();
      execmem_free(blocks[(i + 1) % kThreads]);
      freed[i]->Notify();
    });
    allocated[i]->WaitForNotification();  // one thread at a time
  }
  check(blocks);
  for (int i = 0; i < kThreads; ++i) {
    may_free[i]->Notify();
    freed[i]->WaitForNotification();
  }
  for (std::thread& t : threads) t.join();
}

TEST(SharedSpans, ThreadsHoldingABlockOfAClassEachShareOneSpan) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("shared-spans"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  WithThreadsHoldingABlockEach(e, [&](const std::vector<void*>& blocks) {
    for (void* p : blocks) ASSERT_NE(p, nullptr);
    const execmem_executor_stats_t s = e.Stats();
    // Without shared spans: a span each, kThreads spans.
    EXPECT_LE(s.footprint, SpanBytes())
        << kThreads << " threads holding one " << kBlock << "-byte block each hold "
        << s.footprint / SpanBytes() << " spans";
  });
  // Every block freed by another thread than its own: the shared span emptied
  // and went back.
  const execmem_executor_stats_t s = e.Stats();
  EXPECT_EQ(s.used, 0u);
  EXPECT_EQ(s.footprint, 0u);
}

TEST(SharedSpans, AreSharedOnlyWithinTheirExecutor) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created_a = execmem::Executor::Create(execmem::test_support::RoomyConfig("shared-a"));
  auto created_b = execmem::Executor::Create(execmem::test_support::RoomyConfig("shared-b"));
  ASSERT_TRUE(created_a.ok() && created_b.ok());
  execmem::Executor& a = *created_a;
  execmem::Executor& b = *created_b;
  void* pa = nullptr;
  std::thread([&] {
    execmem::ExecutorScope scope(a);
    pa = execmem_malloc(kBlock);
  }).join();
  void* pb = nullptr;
  std::thread([&] {
    execmem::ExecutorScope scope(b);
    pb = execmem_malloc(kBlock);
  }).join();
  ASSERT_NE(pa, nullptr);
  ASSERT_NE(pb, nullptr);
  // Each charged for a span of its own: b's block is not in a's span.
  EXPECT_EQ(a.Stats().footprint, SpanBytes());
  EXPECT_EQ(b.Stats().footprint, SpanBytes());
  EXPECT_NE(execmem::SpanHeadOf(pa), execmem::SpanHeadOf(pb));
  execmem_free(pb);
  execmem_free(pa);
  EXPECT_EQ(a.Stats().footprint, 0u);
  EXPECT_EQ(b.Stats().footprint, 0u);
}

}  // namespace

namespace {

// TakeSharedLocked (cache/orphanage.cc) looks at the first kSharedScan (16)
// spans of a class's list, which holds the shared spans of every executor.
// With 17 executors taking a block each in turn, an executor's span with free
// blocks is always behind 16 others': each of its blocks takes a new span
// (and a new span's worth of its budget).
TEST(SharedSpans, AnExecutorsSpanWithFreeBlocksIsReusedWhateverOtherExecutorsDo) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  constexpr size_t kSmall = 1024;  // 64 blocks a span
  static_assert(kSmall >= execmem::kSharedMinSize && kSmall <= execmem::kSharedMaxSize);
  const size_t c = execmem::SizeClassOf(kSmall);
  const uint64_t span = uint64_t{execmem::kSizeClasses.span_pages[c]} << execmem::kPageShift;
  constexpr int kExecutors = 17;
  constexpr int kRounds = 8;  // below kSharedPromote: every block from the shared spans
  std::vector<execmem::Executor> executors;
  for (int i = 0; i < kExecutors; ++i) {
    execmem::ExecutorConfig config;
    config.name = "scan-" + std::to_string(i);
    config.initial = "0";
    config.max = "64m";
    auto created = execmem::Executor::Create(config);
    ASSERT_TRUE(created.ok()) << created.status();
    executors.push_back(std::move(*created));
  }
  std::vector<void*> blocks;
  std::thread([&] {
    for (int r = 0; r < kRounds; ++r) {
      for (execmem::Executor& e : executors) {
        execmem::ExecutorScope scope(e);
        blocks.push_back(execmem_malloc(kSmall));
      }
    }
  }).join();
  for (void* p : blocks) ASSERT_NE(p, nullptr);
  for (int i = 0; i < kExecutors; ++i) {
    EXPECT_LE(executors[i].Stats().footprint, span)
        << "executor " << i << " holds " << kRounds << " blocks of " << kSmall << " bytes in "
        << executors[i].Stats().footprint / span << " spans";
  }
  for (void* p : blocks) execmem_free(p);
}

}  // namespace

namespace {

// A refused span of a shared class: NewSharedSpan's charge is refused, then
// SmallMalloc's own path (NewSpan) asks for the same span again: one
// malloc, the spill hooks asked twice and two refusals counted.
TEST(SharedSpans, ARefusedMallocIsRefusedOnce) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  execmem::ExecutorConfig config;
  config.name = "shared-refused";
  config.initial = "0";
  config.max = "64k";
  auto created = execmem::Executor::Create(config);
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  int hook_calls = 0;
  ASSERT_TRUE(e.AddSpillHook("count", 0, [&](size_t) -> size_t {
                 ++hook_calls;
                 return 0;
               }).ok());
  std::vector<void*> blocks;
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    for (int i = 0; i < 16; ++i) {
      void* p = execmem_malloc(kBlock);
      if (p == nullptr) break;
      blocks.push_back(p);
    }
  }).join();
  ASSERT_LT(blocks.size(), 16u);  // refused
  const execmem_executor_stats_t s = e.Stats();
  EXPECT_EQ(s.oom_count, 1u) << "one malloc refused, " << hook_calls << " spill hook calls";
  EXPECT_LE(hook_calls, 1);
  for (void* p : blocks) execmem_free(p);
}

}  // namespace

namespace {

// A thread holding a shared block frees it onto its foreign list, counted off
// Heap::shared_live there; when the list goes home (SyncAll) it is not
// counted off again: shared_live stays the blocks the thread holds, so that
// the thread stops sharing at kSharedPromote held, not later.
TEST(SharedSpans, ABlockGoingHomeFromAForeignListIsCountedOffOnce) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("shared-count"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  const size_t c = execmem::SizeClassOf(kBlock);
  constexpr int kHeld = 12;  // below kSharedPromote and kSharedRun
  constexpr int kFreed = 1;  // within the class's foreign list (kForeignMax)
  ASSERT_LE(kFreed, execmem::kForeignMax[c]);
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    std::vector<void*> blocks;
    for (int i = 0; i < kHeld + kFreed; ++i) blocks.push_back(execmem_malloc(kBlock));
    for (void* p : blocks) ASSERT_NE(p, nullptr);
    ASSERT_TRUE(execmem::SpanHeadOf(blocks[0])->shared);
    for (int i = 0; i < kFreed; ++i) execmem_free(blocks[kHeld + i]);
    execmem::tls_heap->SyncAll();  // the foreign list goes home
    EXPECT_EQ(execmem::tls_heap->shared_live[c], kHeld)
        << "holding " << kHeld << " shared blocks after " << kFreed
        << " went home through the foreign list";
    for (int i = 0; i < kHeld; ++i) execmem_free(blocks[i]);
  }).join();
  EXPECT_EQ(e.Stats().footprint, 0u);
}

}  // namespace

namespace {

constexpr size_t kKiB = 1024;  // 64 blocks a span, 8 on a foreign list (kForeignMax)
static_assert(kKiB >= execmem::kSharedMinSize && kKiB <= execmem::kSharedMaxSize);

uint64_t SpanBytesOf(size_t size) {
  return uint64_t{execmem::kSizeClasses.span_pages[execmem::SizeClassOf(size)]}
         << execmem::kPageShift;
}

// An exited thread's span with free blocks (the orphanage) is taken by a
// thread that needs a block of its class before a shared span is: else the
// shared path takes a new span while the orphan's free blocks wait.
TEST(SharedSpans, AnOrphanIsAdoptedBeforeASharedSpanIsTaken) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("shared-orphan"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  const uint64_t span = SpanBytesOf(kKiB);
  void* left = nullptr;  // a block of the exited thread's own span
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    std::vector<void*> blocks;
    // kSharedRun shared blocks (a run of takes alone: promoted), then the
    // thread's own span's.
    for (size_t i = 0; i < execmem::kSharedRun + 4; ++i) blocks.push_back(execmem_malloc(kKiB));
    for (void* p : blocks) ASSERT_NE(p, nullptr);
    left = blocks.back();
    ASSERT_FALSE(execmem::SpanHeadOf(left)->shared);
    blocks.pop_back();
    for (void* p : blocks) execmem_free(p);
  }).join();  // its span, one block live, to the orphanage; the shared one emptied
  ASSERT_EQ(e.Stats().footprint, span);
  void* taken = nullptr;
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    taken = execmem_malloc(kKiB);
  }).join();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(execmem::SpanHeadOf(taken), execmem::SpanHeadOf(left));
  EXPECT_EQ(e.Stats().footprint, span) << "a new span beside the orphan";
  execmem_free(taken);
  execmem_free(left);
  EXPECT_EQ(e.Stats().footprint, 0u);
}

}  // namespace

namespace {

// e's footprint read on a thread of its own.
uint64_t FootprintSeenElsewhere(execmem::Executor& e) {
  uint64_t footprint = 0;
  std::thread([&] { footprint = e.Stats().footprint; }).join();
  return footprint;
}

// A thread that stopped sharing a class (it took kSharedRun of its blocks in
// a row, alone) frees its shared blocks onto its foreign list, where they wait
// unused; its next slow malloc of the class sends them home, so that the
// shared span they hold empties and goes back rather than staying held
// beside the thread's own span.
TEST(SharedSpans, APromotedThreadsSharedBlocksGoHomeAtItsNextRefill) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("shared-promoted"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  const uint64_t span = SpanBytesOf(kKiB);
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    std::vector<void*> shared;
    for (size_t i = 0; i < execmem::kSharedRun; ++i) shared.push_back(execmem_malloc(kKiB));
    for (void* p : shared) ASSERT_NE(p, nullptr);
    ASSERT_TRUE(execmem::SpanHeadOf(shared.back())->shared);
    ASSERT_EQ(e.Stats().footprint, span);
    for (void* p : shared) execmem_free(p);  // onto the foreign list
    void* own = execmem_malloc(kKiB);
    ASSERT_NE(own, nullptr);
    EXPECT_FALSE(execmem::SpanHeadOf(own)->shared);
    // (read on another thread: this one's Stats() would send its foreign
    // lists home first)
    const uint64_t footprint = FootprintSeenElsewhere(e);
    EXPECT_EQ(footprint, span) << "a promoted thread's freed shared blocks kept their span ("
                               << footprint / span << " spans held)";
    EXPECT_EQ(execmem::tls_heap->foreign_count[execmem::SizeClassOf(kKiB)], 0u);
    execmem_free(own);
  }).join();
  EXPECT_EQ(e.Stats().footprint, 0u);
}

}  // namespace

namespace {

// TakeSharedLocked looks at the head of its executor's list of a class's
// shared spans only: the spans with a free block must come before the full
// ones whatever order blocks are taken and freed in (SharedSpansValid).
TEST(SharedSpans, SpansWithAFreeBlockComeFirstInTheirList) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("shared-order"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    execmem::Tenant* t = execmem::tls_heap->exec;
    std::mt19937 rng(20);  // a fixed order
    std::vector<void*> blocks;
    // Takes below kSharedRun and kSharedPromote: every block from the shared spans.
    for (int i = 0; i < 20; ++i) {
      blocks.push_back(execmem_malloc(kBlock));
      ASSERT_NE(blocks.back(), nullptr);
      ASSERT_TRUE(execmem::SpanHeadOf(blocks.back())->shared);
      ASSERT_TRUE(execmem::SharedSpansValid(t)) << "after take " << i;
    }
    std::shuffle(blocks.begin(), blocks.end(), rng);
    for (int i = 0; i < 12; ++i) {
      execmem_free(blocks.back());
      blocks.pop_back();
      ASSERT_TRUE(execmem::SharedSpansValid(t)) << "after free " << i;
    }
    for (int i = 0; i < 10; ++i) {
      blocks.push_back(execmem_malloc(kBlock));
      ASSERT_NE(blocks.back(), nullptr);
      ASSERT_TRUE(execmem::SharedSpansValid(t)) << "after take " << 20 + i;
    }
    for (void* p : blocks) execmem_free(p);
  }).join();
  EXPECT_EQ(e.Stats().footprint, 0u);
}

}  // namespace

namespace {

// A thread taking rounds of shared blocks of kBlock and freeing them, more
// than kSharedRun takes in a row, holding fewer than kSharedPromote; then
// whether its next block is a shared span's.
bool NextBlockSharedAfterARunOfTakes(execmem::Executor& e) {
  bool shared = false;
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    for (int round = 0; round < 3; ++round) {
      std::vector<void*> blocks;
      for (int i = 0; i < 20; ++i) blocks.push_back(execmem_malloc(kBlock));
      for (void* p : blocks) execmem_free(p);
    }
    void* p = execmem_malloc(kBlock);
    shared = execmem::SpanHeadOf(p)->shared;
    execmem_free(p);
  }).join();
  return shared;
}

// A run of takes with no other thread taking one is what a thread of a
// loaded machine gets in a time slice of its own: it stops sharing the class
// only when it also holds every block the shared spans handed out
// (Tenant::shared_used), not while another thread holds one.
TEST(SharedSpans, ARunOfTakesPromotesOnlyAThreadHoldingEveryBlockOfTheClass) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("shared-run"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  EXPECT_FALSE(NextBlockSharedAfterARunOfTakes(e)) << "alone in the class: not promoted";
  void* other = nullptr;
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    other = execmem_malloc(kBlock);  // another thread's live block of the class
  }).join();
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(NextBlockSharedAfterARunOfTakes(e)) << "promoted by a run while another holds one";
  execmem_free(other);
  EXPECT_EQ(e.Stats().footprint, 0u);
}

}  // namespace

namespace {

// A thread holding a few dozen blocks of a shared class, while another thread
// holds one too, keeps taking them from the shared spans: it stopped sharing
// at 32 before (kSharedPromote), which larson's threads reached in the classes
// of 2-4 KiB (counting blocks they handed to other threads), and then each
// held spans of its own there (docs/performance.md, sixth pass).
TEST(SharedSpans, AThreadHoldingFourDozenBlocksOfAClassStillSharesIt) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("shared-dozens"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  constexpr size_t kShared = 2048;  // 32 blocks a one-page span
  constexpr size_t kHeld = 48;
  ASSERT_TRUE(execmem::IsSharedClass(execmem::SizeClassOf(kShared)));
  void* other = nullptr;
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    other = execmem_malloc(kShared);  // another thread's live block: not alone in the class
  }).join();
  ASSERT_NE(other, nullptr);
  std::vector<void*> blocks;
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    for (size_t i = 0; i < kHeld; ++i) {
      blocks.push_back(execmem_malloc(kShared));
      ASSERT_NE(blocks.back(), nullptr);
      EXPECT_TRUE(execmem::SpanHeadOf(blocks.back())->shared)
          << "block " << i << " from a span of the thread's own";
    }
    // 49 blocks, 32 a span: two shared spans (three with a span of its own).
    EXPECT_EQ(FootprintSeenElsewhere(e), 2 * SpanBytesOf(kShared));
    for (void* p : blocks) execmem_free(p);
  }).join();
  execmem_free(other);
  EXPECT_EQ(e.Stats().used, 0u);
  EXPECT_EQ(e.Stats().footprint, 0u);
}

}  // namespace
