// What the thread caches hold beyond the live bytes under a larson-like churn
// (issue 20, docs/performance.md "Larson's resident memory"): worker threads
// replace random slots with blocks of larson's sizes, hand one block in eight
// to the other worker to free, and exit after every epoch while fresh threads
// take over their slots. The threads run one at a time (each joined before
// the next starts), so the run is the same every time: no timing, no
// scheduling luck. The decay is held off, so no purge runs meanwhile.
//
// The bound: when no worker runs, every span the executor holds is an orphan
// with a live block, or a span the main thread holds (none here but what the
// harness allocates). A span that empties goes back at once, and a thread
// takes an orphan of its class before a new span, so the footprint stays
// within the live bytes plus one span of every class a block may get:
// footprint <= live + sum over those classes of the class's span bytes
// (6.4 MiB here with 64 KiB pages; measured 2026-12-07: footprint - live
// 3.5-4.5 MiB over the 24 epochs, for 2.0-2.7 MiB live). Spans of exited
// threads that nobody reused, or emptied spans kept, pass it within an epoch
// or two (with the reuse switched off: 9.1-11.8 MiB from the first epoch).
#include <cstdint>
#include <thread>
#include <vector>

#include "bench/workloads/larson.h"
#include "cache/heap_internal.h"
#include "execmem.h"
#include "execmem.hpp"
#include "gtest/gtest.h"
#include "platform/os.h"
#include "tests/testing.h"

namespace {

constexpr size_t kSlots = 1000;
constexpr int kWorkers = 2;
constexpr int kEpochs = 24;
constexpr int kOpsPerEpoch = 6000;
constexpr int kDrainEvery = 64;

// larson's sizes, generator and hand-off rate (bench/workloads/larson.h): 90 %
// 16-512 B, 9 % up to 4 KiB, 1 % up to 64 KiB; one block in 8 handed over.
struct Worker {
  explicit Worker(uint64_t seed) : rng(seed) {}
  bench::Rng rng;
  std::vector<void*> slots = std::vector<void*>(kSlots, nullptr);
  std::vector<void*> inbox;  // blocks the other worker handed over
};

// The bytes of one span of every class a block of `size` may get.
uint64_t SpanBytesOfClassesUpTo(size_t size) {
  uint64_t bytes = 0;
  for (size_t c = 0; c <= execmem::SizeClassOf(size); ++c) {
    bytes += uint64_t{execmem::kSizeClasses.span_pages[c]} << execmem::kPageShift;
  }
  return bytes;
}

TEST(LarsonFootprint, ThreadsComingAndGoingHoldAtMostTheLiveBytesAndASpanAClass) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("larson-footprint"));
  ASSERT_TRUE(created.ok()) << created.status();
  execmem::Executor& e = *created;
  std::vector<Worker> workers;
  for (int w = 0; w < kWorkers; ++w) workers.emplace_back(0x1a750 + w);

  const uint64_t per_class = SpanBytesOfClassesUpTo(65536);
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    for (int w = 0; w < kWorkers; ++w) {
      std::thread([&] {
        execmem::ExecutorScope scope(e);
        Worker& me = workers[w];
        Worker& next = workers[(w + 1) % kWorkers];
        for (int op = 0; op < kOpsPerEpoch; ++op) {
          void*& slot = me.slots[me.rng.Next() % kSlots];
          if (slot != nullptr) {
            if (me.rng.Next() % larson::kHandOffOneIn == 0) {
              next.inbox.push_back(slot);
            } else {
              execmem_free(slot);
            }
          }
          slot = execmem_malloc(larson::PickSize(me.rng));
          ASSERT_NE(slot, nullptr);
          if (op % kDrainEvery == 0) {
            for (void* p : me.inbox) execmem_free(p);
            me.inbox.clear();
          }
        }
      }).join();
    }
    uint64_t live = 0;
    for (const Worker& w : workers) {
      for (void* p : w.slots) live += execmem_usable_size(p);
      for (void* p : w.inbox) live += execmem_usable_size(p);
    }
    const execmem_executor_stats_t s = e.Stats();
    EXPECT_EQ(s.used, live) << "epoch " << epoch;
    EXPECT_LE(s.footprint, live + per_class)
        << "epoch " << epoch << ": footprint " << s.footprint << " for " << live
        << " live bytes (one span a class: " << per_class << ")";
  }
  for (Worker& w : workers) {
    for (void* p : w.slots) execmem_free(p);
    for (void* p : w.inbox) execmem_free(p);
  }
}

// The start of the pool page (64 KiB) p lies in.
uintptr_t PageOf(const void* p) {
  return reinterpret_cast<uintptr_t>(p) & ~(execmem::kPageSize - 1);
}

// In a thread of a new executor: fills a span of a 480-byte class (every page
// of it written) and frees its blocks, so that it goes back to the pool with
// all its pages committed, as the pool's most recent run, which the thread's
// next span of one page is; then allocates one block of `size`, whose span
// must be that page. Returns how many bytes of the page past its first `head`
// bytes are resident then. One thread, the decay held off: the same every run.
size_t ResidentPastHeadOfAWrittenPage(size_t size, size_t head) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig("written-page"));
  EXPECT_TRUE(created.ok()) << created.status();
  if (!created.ok()) return execmem::kPageSize;
  constexpr size_t kHeavy = 480;  // a class of the thread's own, carved whole
  static_assert(kHeavy > execmem::kLightClassMaxSize && kHeavy < execmem::kSharedMinSize);
  size_t resident = execmem::kPageSize;
  std::thread([&] {
    execmem::ExecutorScope scope(*created);
    std::vector<void*> first;
    void* next = nullptr;  // the first block of the next span
    while (next == nullptr) {
      void* p = execmem_malloc(kHeavy);
      ASSERT_NE(p, nullptr);
      if (first.empty() || PageOf(p) == PageOf(first[0])) {
        first.push_back(p);
      } else {
        next = p;
      }
    }
    const uintptr_t page = PageOf(first[0]);
    ASSERT_EQ(execmem::os::ResidentBytesIn(reinterpret_cast<void*>(page), execmem::kPageSize),
              execmem::kPageSize);
    for (void* p : first) execmem_free(p);
    void* block = execmem_malloc(size);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(PageOf(block), page) << "the span of the " << size << "-byte block is not the page "
                                   << "just freed: the test no longer checks what it should";
    resident = execmem::os::ResidentBytesIn(reinterpret_cast<void*>(page + head),
                                            execmem::kPageSize - head);
    execmem_free(block);
    execmem_free(next);
  }).join();
  return resident;
}

// A thread's first span of a small class (at most kLightClassMaxSize bytes),
// given pages an earlier span wrote whole, keeps only its head resident:
// larson's threads hold a few KiB of each such class, and the tails of their
// spans, written by the pages' earlier users, were resident for nothing
// (docs/performance.md, seventh pass).
TEST(LarsonFootprint, AThreadsFirstSpanOfASmallClassKeepsOnlyItsHeadResident) {
  constexpr size_t kLight = 64;
  static_assert(kLight <= execmem::kLightClassMaxSize);
  EXPECT_EQ(ResidentPastHeadOfAWrittenPage(kLight, execmem::kLightSpanKeep), 0u)
      << "a thread's first span of a " << kLight << "-byte class keeps the pages past its first "
      << execmem::kLightSpanKeep << " bytes, which an earlier span wrote, resident";
}

}  // namespace
