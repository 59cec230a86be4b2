// Shared spans (cache/heap_internal.h: IsSharedClass) under threads that
// take blocks of the shared classes, hand some to each other, free them in
// any order and exit in waves. Whatever the interleaving: no block is handed
// out to two holders at once (each holder's mark survives until its free),
// and once every block is freed the executor holds nothing, reports nothing
// used, and its shared spans' lists and counts (Tenant::shared_spans,
// Tenant::shared_used) are empty. Only invariants are asserted: no timing,
// no scheduling luck.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

#include "cache/heap_internal.h"
#include "execmem.h"
#include "execmem.hpp"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

// An executor of the test's own, quotas far above what it allocates.
execmem::Executor RoomyExecutor(const char* name) {
  auto created = execmem::Executor::Create(execmem::test_support::RoomyConfig(name));
  EXPECT_TRUE(created.ok()) << created.status();
  return std::move(*created);
}

struct Held {
  void* p;
  size_t size;
  uint64_t mark;
};

uint64_t MarkOf(const void* p, uint64_t salt) {
  return (reinterpret_cast<uintptr_t>(p) * 0x9E3779B97F4A7C15ull) ^ salt;
}

void Stamp(const Held& h) {
  memcpy(h.p, &h.mark, sizeof h.mark);
  memcpy(static_cast<char*>(h.p) + h.size - sizeof h.mark, &h.mark, sizeof h.mark);
}

// Whether h's block still holds its holder's mark at both ends.
bool Intact(const Held& h) {
  uint64_t a = 0;
  uint64_t b = 0;
  memcpy(&a, h.p, sizeof a);
  memcpy(&b, static_cast<char*>(h.p) + h.size - sizeof b, sizeof b);
  return a == h.mark && b == h.mark;
}

// Sizes of the shared classes: 512 B to just below 64 KiB.
size_t SharedSize(std::mt19937_64& rng) {
  static constexpr size_t kSizes[] = {512, 640, 1024, 2048, 3000, 4096, 8192, 16384, 40000};
  return kSizes[rng() % std::size(kSizes)];
}

TEST(SharedSpansStress, HandOffsAndExitsLeaveNothingBehind) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  execmem::Executor e = RoomyExecutor("shared-stress");
  execmem::Tenant* tenant = nullptr;
  std::mutex mu;
  std::vector<Held> handed;  // blocks any thread may free (guarded by mu)
  constexpr int kWaves = 6;
  constexpr int kThreads = 4;
  constexpr int kSteps = 4000;
  std::atomic<int> broken{0};
  for (int wave = 0; wave < kWaves; ++wave) {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, seed = uint64_t(wave * kThreads + i + 1)] {
        execmem::ExecutorScope scope(e);
        {
          std::lock_guard<std::mutex> lock(mu);
          tenant = execmem::tls_heap->exec;
        }
        std::mt19937_64 rng(seed);
        std::vector<Held> mine;
        auto free_one = [&](const Held& h) {
          if (!Intact(h)) broken.fetch_add(1);
          execmem_free(h.p);
        };
        for (int step = 0; step < kSteps; ++step) {
          switch (rng() % 6) {
            case 0:
            case 1:
            case 2: {
              Held h{nullptr, SharedSize(rng), 0};
              h.p = execmem_malloc(h.size);
              if (h.p == nullptr) {
                broken.fetch_add(1);
                break;
              }
              h.mark = MarkOf(h.p, rng());
              Stamp(h);
              mine.push_back(h);
              break;
            }
            case 3:
            case 4:
              if (!mine.empty()) {
                const size_t k = rng() % mine.size();
                free_one(mine[k]);
                mine[k] = mine.back();
                mine.pop_back();
              }
              break;
            case 5: {
              std::lock_guard<std::mutex> lock(mu);
              if (!mine.empty() && rng() % 2 == 0) {
                handed.push_back(mine.back());
                mine.pop_back();
              } else if (!handed.empty()) {
                const size_t k = rng() % handed.size();
                free_one(handed[k]);
                handed[k] = handed.back();
                handed.pop_back();
              }
              break;
            }
          }
        }
        // Half left to the others, live at this thread's exit.
        std::lock_guard<std::mutex> lock(mu);
        for (size_t k = 0; k < mine.size(); ++k) {
          if (k % 2 == 0) {
            handed.push_back(mine[k]);
          } else {
            free_one(mine[k]);
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
  }
  ASSERT_NE(tenant, nullptr);
  ASSERT_TRUE(execmem::SharedSpansValid(tenant));
  // The rest freed by a thread of the executor that never allocated.
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    for (const Held& h : handed) {
      if (!Intact(h)) broken.fetch_add(1);
      execmem_free(h.p);
    }
  }).join();
  EXPECT_EQ(broken.load(), 0) << "blocks overwritten by another holder, or refused";
  EXPECT_TRUE(execmem::SharedSpansValid(tenant));
  for (size_t c = 0; c < execmem::kNumClasses; ++c) {
    EXPECT_EQ(tenant->shared_used[c], 0u) << "class " << c;
    EXPECT_EQ(tenant->shared_spans[c], nullptr) << "class " << c;
  }
  const execmem_executor_stats_t stats = e.Stats();
  EXPECT_EQ(stats.used, 0u);
  EXPECT_EQ(stats.footprint, 0u);
}

}  // namespace

namespace {

// A free of a block of a shared span that the span never handed out (past
// its carved blocks, below its end) is an invalid pointer, whether or not
// the freeing thread's foreign list has room: else the block waits there,
// is handed out to this thread, and again by the span when it carves it.
TEST(SharedSpansDeathTest, AFreeOfABlockNeverHandedOutIsAnInvalidPointer) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto created =
            execmem::Executor::Create(execmem::test_support::RoomyConfig("shared-never"));
        execmem::Executor& e = *created;
        execmem::ExecutorScope scope(e);
        void* p = execmem_malloc(1024);  // 64 blocks a span, a few carved
        const execmem::Page* span = execmem::SpanHeadOf(p);
        if (!span->shared) abort();  // (not the message expected)
        char* never = static_cast<char*>(p) + 1024 * (span->capacity - 2);
        execmem_free(never);
        _exit(0);
      },
      "not allocated by execmem");
}

}  // namespace

namespace {

// A class's shared spans remember the heap that took their last block to
// count its run of takes (kSharedRun). A thread's heap is made in the memory
// of one that went away (meta.cc reuses it first): the new thread's first
// take must start a run of its own, not continue the old thread's and be
// promoted at once (a span of its own for a class it took one block of).
TEST(SharedSpansStress, ANewThreadDoesNotContinueAnExitedThreadsRunOfTakes) {
  execmem::test_support::DecayGuard no_purge(execmem::test_support::kHour);
  execmem::Executor e = RoomyExecutor("shared-new-run");
  constexpr size_t kKiB = 1024;
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    std::vector<void*> blocks;
    // A run of kSharedRun takes alone, and more: promoted.
    for (size_t i = 0; i < execmem::kSharedRun + 8; ++i) blocks.push_back(execmem_malloc(kKiB));
    for (void* p : blocks) execmem_free(p);
  }).join();
  bool shared[2] = {false, false};
  std::thread([&] {
    execmem::ExecutorScope scope(e);
    void* p[2] = {execmem_malloc(kKiB), execmem_malloc(kKiB)};
    for (int i = 0; i < 2; ++i) {
      shared[i] = p[i] != nullptr && execmem::SpanHeadOf(p[i])->shared;
      execmem_free(p[i]);
    }
  }).join();
  EXPECT_TRUE(shared[0]);
  EXPECT_TRUE(shared[1]) << "a thread that took one block promoted by another's run";
  EXPECT_EQ(e.Stats().footprint, 0u);
}

}  // namespace
