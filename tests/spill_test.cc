// Spill hooks: a hook that frees enough, one that frees too little, one that
// throws or fails, one that allocates (and registers hooks, reads stats)
// inside, one that lies; priority order; the out-of-memory report; hook
// management through both APIs.
//
// The executor under test ("spiller") has max 4 MiB. Hooks free 512 KiB large
// blocks, charged exactly, so every figure below is exact: with 3 MiB live a
// 2 MiB request needs 1 MiB to be freed.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cache/large.h"
#include "execmem.h"
#include "execmem.hpp"
#include "executor/runtime.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool/page.h"
#include "tests/executor_fixture.h"
#include "tests/testing.h"

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr size_t kBlock = 512 * kKiB;
constexpr uint64_t kPage = execmem::kPageSize;

using execmem::test_support::OomMessage;
using execmem::test_support::PoolStats;

// Blocks a hook can free. Thread-safe; never allocates under its lock, so a
// hook running inside one of Fill's allocations cannot deadlock on it.
class Hoard {
 public:
  // Allocates n blocks of `size` for the calling thread's executor.
  bool Fill(int n, size_t size) {
    for (int i = 0; i < n; ++i) {
      void* p = execmem_malloc(size);
      if (p == nullptr) return false;
      memset(p, 0x5a, size);
      std::lock_guard<std::mutex> lock(mu_);
      blocks_.push_back(p);
    }
    return true;
  }
  // Frees blocks until their usable sizes add up to `bytes`; returns the sum.
  size_t FreeAtLeast(size_t bytes) {
    size_t freed = 0;
    std::lock_guard<std::mutex> lock(mu_);
    while (freed < bytes && !blocks_.empty()) {
      freed += execmem_usable_size(blocks_.back());
      execmem_free(blocks_.back());
      blocks_.pop_back();
    }
    return freed;
  }
  size_t FreeOne() { return FreeAtLeast(1); }
  void FreeAll() { FreeAtLeast(SIZE_MAX); }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return blocks_.size();
  }

 private:
  std::mutex mu_;
  std::vector<void*> blocks_;
};

// The executor fixture (tests/executor_fixture.h) with an executor to spill.
class SpillTest : public execmem::test_support::PoolCapacityTest {
 protected:
  void SetUp() override {
    PoolCapacityTest::SetUp();
    if (HasFatalFailure()) return;
    execmem::ExecutorConfig c;
    c.name = "spiller";
    c.initial = "1m";
    c.max = "4m";
    c.overhead = "512k";
    auto e = execmem::Executor::Create(c);
    ASSERT_TRUE(e.ok()) << e.status();
    exec_ = std::make_unique<execmem::Executor>(std::move(*e));
  }
  void TearDown() override {
    hoard_.FreeAll();
    if (exec_ != nullptr) {
      execmem::ExecutorScope scope(*exec_);
      execmem_trim();
    }
    exec_.reset();
    PoolCapacityTest::TearDown();
  }
  // Fills the executor with 3 MiB of 512 KiB blocks.
  void FillThreeMiB() { ASSERT_TRUE(hoard_.Fill(6, kBlock)); }
  execmem_executor_stats_t Stats() { return exec_->Stats(); }

  std::unique_ptr<execmem::Executor> exec_;
  Hoard hoard_;
};

TEST_F(SpillTest, HookThatFreesEnoughIsAskedForTheShortfallOnTheAllocatingThread) {
  execmem::ExecutorScope scope(*exec_);
  FillThreeMiB();
  int calls = 0;
  size_t asked = 0;
  std::thread::id where;
  ASSERT_TRUE(exec_
                  ->AddSpillHook("enough", 0,
                                 [&](size_t bytes) {
                                   ++calls;
                                   asked = bytes;
                                   where = std::this_thread::get_id();
                                   return hoard_.FreeAtLeast(bytes);
                                 })
                  .ok());
  void* p = execmem_malloc(2 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(asked, 1 * kMiB);
  EXPECT_EQ(where, std::this_thread::get_id());
  execmem_executor_stats_t s = Stats();
  EXPECT_EQ(s.used, 4 * kMiB);
  EXPECT_EQ(s.spill_calls, 1u);
  EXPECT_EQ(s.spill_failures, 0u);
  EXPECT_EQ(s.bytes_spilled, 1 * kMiB);
  EXPECT_EQ(s.oom_count, 0u);

  // From another thread bound to the same executor, the hook runs there.
  std::thread::id worker;
  void* q = nullptr;
  std::thread t([&] {
    execmem::ExecutorScope inner(*exec_);
    worker = std::this_thread::get_id();
    q = execmem_malloc(kMiB);
  });
  t.join();
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(where, worker);
  execmem_free(q);
  execmem_free(p);
}

TEST_F(SpillTest, HooksAreNotCalledWithoutPressure) {
  execmem::ExecutorScope scope(*exec_);
  int calls = 0;
  ASSERT_TRUE(exec_
                  ->AddSpillHook("idle", 0,
                                 [&](size_t) {
                                   ++calls;
                                   return size_t{0};
                                 })
                  .ok());
  FillThreeMiB();
  void* p = execmem_malloc(kMiB);  // exactly max
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(Stats().spill_calls, 0u);
  execmem_free(p);
}

TEST_F(SpillTest, HooksAreAskedInPriorityOrderUntilEnoughIsFreed) {
  execmem::ExecutorScope scope(*exec_);
  FillThreeMiB();
  std::vector<std::string> order;
  std::vector<size_t> asked;
  auto add = [&](const char* name, int priority, bool frees_all_asked) {
    ASSERT_TRUE(exec_
                    ->AddSpillHook(name, priority,
                                   [&, name, frees_all_asked](size_t bytes) {
                                     order.push_back(name);
                                     asked.push_back(bytes);
                                     return frees_all_asked ? hoard_.FreeAtLeast(bytes)
                                                            : hoard_.FreeOne();
                                   })
                    .ok());
  };
  add("low", 1, true);
  add("high", 10, false);
  add("mid", 5, true);
  add("mid-later", 5, true);
  void* p = execmem_malloc(2 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_THAT(order, ElementsAre("high", "mid"));
  EXPECT_THAT(asked, ElementsAre(1 * kMiB, kBlock));
  const execmem_executor_stats_t s = Stats();
  EXPECT_EQ(s.spill_calls, 2u);
  EXPECT_EQ(s.bytes_spilled, 1 * kMiB);

  // Equal priorities keep the order of registration.
  order.clear();
  asked.clear();
  ASSERT_TRUE(exec_->RemoveSpillHook("high").ok());
  void* q = execmem_malloc(kBlock);  // used 4 MiB: needs one block back
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(order, ElementsAre("mid"));
  execmem_free(q);
  execmem_free(p);
}

TEST_F(SpillTest, HookThatFreesTooLittleEndsInAnOomThatReportsIt) {
  execmem::ExecutorScope scope(*exec_);
  FillThreeMiB();
  ASSERT_TRUE(exec_->AddSpillHook("stingy", 0, [&](size_t) { return hoard_.FreeOne(); }).ok());
  // 3 MiB live, 2 MiB asked: the hook frees 512 KiB, 1 MiB was needed.
  const std::string msg = OomMessage(2 * kMiB);
  ASSERT_FALSE(msg.empty()) << "the allocation succeeded";
  EXPECT_THAT(msg, HasSubstr("'spiller'"));
  EXPECT_THAT(msg, HasSubstr(std::to_string(2 * kMiB)));
  // Sizes in units (kBlock is 512 KiB).
  EXPECT_THAT(msg, HasSubstr("used 2.5 MiB"));
  EXPECT_THAT(msg, HasSubstr("max 4 MiB"));
  EXPECT_THAT(msg, HasSubstr("footprint 2.5 MiB"));
  EXPECT_THAT(msg, HasSubstr("'stingy' freed 512 KiB"));
  execmem_executor_stats_t s = Stats();
  EXPECT_EQ(s.oom_count, 1u);
  EXPECT_EQ(s.spill_calls, 1u);
  EXPECT_EQ(s.bytes_spilled, kBlock);
  EXPECT_EQ(s.used, 2 * kMiB + kBlock);

  // The C API: NULL and ENOMEM (2.5 MiB live, 3 MiB asked, 512 KiB freed).
  errno = 0;
  EXPECT_EQ(execmem_malloc(3 * kMiB), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  s = Stats();
  EXPECT_EQ(s.oom_count, 2u);
  EXPECT_EQ(s.spill_calls, 2u);
  EXPECT_EQ(s.used, 2 * kMiB);
  EXPECT_THAT(execmem::internal::LastOomReport(), HasSubstr("'stingy' freed"));
}

TEST_F(SpillTest, ThrowingAndFailingHooksAreCountedAndTheNextHookIsTried) {
  execmem::ExecutorScope scope(*exec_);
  FillThreeMiB();
  std::vector<std::string> order;
  size_t good_asked = 0;
  ASSERT_TRUE(exec_
                  ->AddSpillHook("throws-std", 10,
                                 [&](size_t) -> size_t {
                                   order.push_back("throws-std");
                                   throw std::runtime_error("disk full");
                                 })
                  .ok());
  ASSERT_TRUE(exec_
                  ->AddSpillHook("throws-int", 9,
                                 [&](size_t) -> size_t {
                                   order.push_back("throws-int");
                                   throw 42;
                                 })
                  .ok());
  ASSERT_TRUE(exec_
                  ->AddSpillHook("fails", 8,
                                 [&](size_t) {
                                   order.push_back("fails");
                                   return EXECMEM_SPILL_FAILED;
                                 })
                  .ok());
  ASSERT_TRUE(exec_
                  ->AddSpillHook("frees-then-throws", 7,
                                 [&](size_t) -> size_t {
                                   order.push_back("frees-then-throws");
                                   hoard_.FreeOne();
                                   throw std::bad_alloc();
                                 })
                  .ok());
  ASSERT_TRUE(exec_
                  ->AddSpillHook("good", 1,
                                 [&](size_t bytes) {
                                   order.push_back("good");
                                   good_asked = bytes;
                                   return hoard_.FreeAtLeast(bytes);
                                 })
                  .ok());
  void* p = execmem_malloc(2 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_THAT(order, ElementsAre("throws-std", "throws-int", "fails", "frees-then-throws", "good"));
  // What the failed hook did free still counts.
  EXPECT_EQ(good_asked, kBlock);
  const execmem_executor_stats_t s = Stats();
  EXPECT_EQ(s.spill_calls, 5u);
  EXPECT_EQ(s.spill_failures, 4u);
  EXPECT_EQ(s.bytes_spilled, 1 * kMiB);
  EXPECT_EQ(s.oom_count, 0u);
  execmem_free(p);
}

TEST_F(SpillTest, FailedHooksAreNamedInTheOomReport) {
  execmem::ExecutorScope scope(*exec_);
  FillThreeMiB();
  ASSERT_TRUE(
      exec_->AddSpillHook("thrower", 0, [&](size_t) -> size_t { throw std::runtime_error("no"); })
          .ok());
  const std::string msg = OomMessage(2 * kMiB);
  EXPECT_THAT(msg, HasSubstr("'thrower' freed 0"));
  EXPECT_THAT(msg, HasSubstr("failed"));
  EXPECT_EQ(Stats().spill_failures, 1u);
}

TEST_F(SpillTest, HookMayAllocateFreeAndUseTheApiWithoutRecursingIntoItself) {
  execmem::ExecutorScope scope(*exec_);
  FillThreeMiB();
  std::atomic<int> depth{0}, max_depth{0}, calls{0};
  void* inner_too_big = reinterpret_cast<void*>(1);
  bool scratch_ok = false;
  uint64_t used_seen_inside = 0;
  ASSERT_TRUE(exec_
                  ->AddSpillHook("allocator", 0,
                                 [&](size_t bytes) {
                                   const int d = ++depth;
                                   max_depth = std::max(max_depth.load(), d);
                                   ++calls;
                                   // Still over budget: this must fail, not call this hook again.
                                   inner_too_big = execmem_malloc(2 * kMiB);
                                   const size_t freed = hoard_.FreeAtLeast(bytes);
                                   // Now a scratch buffer and small blocks fit; use and free them.
                                   void* scratch = execmem_malloc(300 * kKiB);
                                   std::vector<void*> small;
                                   for (int i = 0; i < 100; ++i)
                                     small.push_back(execmem_malloc(100));
                                   scratch_ok = scratch != nullptr;
                                   for (void* s : small) scratch_ok = scratch_ok && s != nullptr;
                                   if (scratch != nullptr) memset(scratch, 1, 300 * kKiB);
                                   for (void* s : small) execmem_free(s);
                                   execmem_free(scratch);
                                   // No allocator lock is held: the API is usable in here.
                                   used_seen_inside = exec_->Stats().used;
                                   (void)exec_->AddSpillHook("added-inside", -1,
                                                             [](size_t) { return size_t{0}; });
                                   (void)execmem::StatsJson();
                                   --depth;
                                   return freed;
                                 })
                  .ok());
  void* p = execmem_malloc(2 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(max_depth.load(), 1);
  EXPECT_EQ(inner_too_big, nullptr);
  EXPECT_TRUE(scratch_ok);
  EXPECT_EQ(used_seen_inside, 2 * kMiB);
  EXPECT_TRUE(exec_->RemoveSpillHook("added-inside").ok());
  const execmem_executor_stats_t s = Stats();
  EXPECT_EQ(s.used, 4 * kMiB);
  EXPECT_EQ(s.bytes_spilled, 1 * kMiB);
  execmem_free(p);
}

// The allocation that needs spilling is a small one taking a new span, and
// the hook allocates small blocks of the same class and keeps them: the span
// the hook left behind is used, and nothing is charged twice.
TEST_F(SpillTest, SmallAllocationAfterAHookThatAllocatedTheSameClass) {
  execmem::ExecutorScope scope(*exec_);
  ASSERT_TRUE(hoard_.Fill(8, kBlock));  // exactly max
  std::vector<void*> kept;
  ASSERT_TRUE(exec_
                  ->AddSpillHook("keeper", 0,
                                 [&](size_t) {
                                   const size_t freed = hoard_.FreeOne();
                                   for (int i = 0; i < 10; ++i)
                                     kept.push_back(execmem_malloc(1000));
                                   return freed;
                                 })
                  .ok());
  void* p = execmem_malloc(1000);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(kept.size(), 10u);
  for (void* k : kept) EXPECT_NE(k, nullptr);
  execmem_executor_stats_t s = Stats();
  EXPECT_EQ(s.used, 7 * kBlock + 11 * 1024);
  EXPECT_EQ(s.footprint, 7 * kBlock + kPage);  // the 1000-byte blocks' one-page span
  execmem_free(p);
  for (void* k : kept) execmem_free(k);
  hoard_.FreeAll();
  execmem_trim();
  s = Stats();
  EXPECT_EQ(s.used, 0u);
  EXPECT_EQ(s.footprint, 0u);
  EXPECT_EQ(s.allocations, s.frees);
}

TEST_F(SpillTest, WhatAHookClaimsIsNotTrusted) {
  execmem::ExecutorScope scope(*exec_);
  FillThreeMiB();
  // Claims far more than it freed (nothing): the allocation still fails.
  ASSERT_TRUE(exec_->AddSpillHook("liar", 10, [](size_t) { return size_t{100} * kMiB; }).ok());
  errno = 0;
  EXPECT_EQ(execmem_malloc(2 * kMiB), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  execmem_executor_stats_t s = Stats();
  EXPECT_EQ(s.bytes_spilled, 0u);
  EXPECT_EQ(s.used, 3 * kMiB);
  const std::string msg = OomMessage(2 * kMiB);
  EXPECT_THAT(msg, HasSubstr("'liar' freed 0"));
  EXPECT_THAT(msg, HasSubstr("claimed"));

  // With an honest hook after it, the honest one is still asked.
  int honest_calls = 0;
  ASSERT_TRUE(exec_
                  ->AddSpillHook("modest", 1,
                                 [&](size_t bytes) {
                                   ++honest_calls;
                                   hoard_.FreeAtLeast(bytes);
                                   return size_t{0};  // freed, but says it did not
                                 })
                  .ok());
  void* p = execmem_malloc(2 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(honest_calls, 1);
  s = Stats();
  EXPECT_EQ(s.bytes_spilled, 1 * kMiB);
  EXPECT_EQ(s.used, 4 * kMiB);
  execmem_free(p);
}

TEST_F(SpillTest, HookFreeingSmallBlocksIsCreditedByAccounting) {
  execmem::ExecutorScope scope(*exec_);
  Hoard small;
  ASSERT_TRUE(small.Fill(3000, 1000));  // 3000 blocks of 1024 bytes
  size_t asked = 0;
  ASSERT_TRUE(exec_
                  ->AddSpillHook("small", 0,
                                 [&](size_t bytes) {
                                   asked = bytes;
                                   return small.FreeAtLeast(bytes);
                                 })
                  .ok());
  void* p = execmem_malloc(2 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(asked, 3000 * 1024 + 2 * kMiB - 4 * kMiB);
  const execmem_executor_stats_t s = Stats();
  EXPECT_GE(s.bytes_spilled, asked);
  EXPECT_LT(s.bytes_spilled, asked + 1024);
  EXPECT_LE(s.used, 4 * kMiB);
  execmem_free(p);
  small.FreeAll();
}

TEST_F(SpillTest, FootprintPressureAsksHooksForTheFootprintShortfall) {
  // n blocks of 260 KiB (4 KiB above the largest small class, each in a
  // span of a large class: cache/large.h) take footprint to max + overhead with used under max
  // by more than a block: one more needs its span's worth of footprint back.
  constexpr uint64_t kSize = 260 * kKiB;
  constexpr uint64_t kSpan = uint64_t{execmem::LargeClassPages(kSize)} * kPage;
  constexpr uint64_t n = kSize / (kSpan - kSize) + 2;
  constexpr uint64_t max = (n + 1) * kSize;
  execmem::ExecutorConfig c;
  c.name = "fragmented";
  c.initial = "1m";
  c.max = std::to_string(max);
  c.overhead = std::to_string(n * kSpan - max) + "b";
  auto e = execmem::Executor::Create(c);
  ASSERT_TRUE(e.ok()) << e.status();
  execmem::ExecutorScope scope(*e);
  Hoard h;
  ASSERT_TRUE(h.Fill(static_cast<int>(n), kSize));
  size_t asked = 0;
  ASSERT_TRUE(e->AddSpillHook("fp", 0, [&](size_t bytes) {
                 asked = bytes;
                 return h.FreeOne();
               }).ok());
  void* p = execmem_malloc(kSize);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(asked, kSpan);
  const execmem_executor_stats_t s = e->Stats();
  EXPECT_EQ(s.footprint, n * kSpan);
  EXPECT_EQ(s.used, n * kSize);
  EXPECT_EQ(s.oom_count, 0u);
  execmem_free(p);
  h.FreeAll();
}

TEST_F(SpillTest, HookManagement) {
  auto nop = [](size_t) { return size_t{0}; };
  ASSERT_TRUE(exec_->AddSpillHook("a", 0, nop).ok());
  EXPECT_EQ(exec_->AddSpillHook("a", 5, nop).code(), EEXIST);
  EXPECT_EQ(exec_->AddSpillHook("null", 0, execmem::SpillFn()).code(), EINVAL);
  for (int i = 1; i < 32; ++i) {
    ASSERT_TRUE(exec_->AddSpillHook("h" + std::to_string(i), i, nop).ok()) << i;
  }
  EXPECT_EQ(exec_->AddSpillHook("one-too-many", 0, nop).code(), ENOSPC);
  EXPECT_TRUE(exec_->RemoveSpillHook("h7").ok());
  EXPECT_EQ(exec_->RemoveSpillHook("h7").code(), ENOENT);
  EXPECT_TRUE(exec_->AddSpillHook("one-too-many", 0, nop).ok());
  for (int i = 1; i < 32; ++i) (void)exec_->RemoveSpillHook("h" + std::to_string(i));
  EXPECT_TRUE(exec_->RemoveSpillHook("a").ok());
  EXPECT_TRUE(exec_->RemoveSpillHook("one-too-many").ok());

  // A removed hook is not called; the report then says none is registered.
  int calls = 0;
  ASSERT_TRUE(exec_
                  ->AddSpillHook("removed", 0,
                                 [&](size_t) {
                                   ++calls;
                                   return size_t{0};
                                 })
                  .ok());
  ASSERT_TRUE(exec_->RemoveSpillHook("removed").ok());
  execmem::ExecutorScope scope(*exec_);
  FillThreeMiB();
  const std::string msg = OomMessage(2 * kMiB);
  EXPECT_EQ(calls, 0);
  EXPECT_THAT(msg, HasSubstr("none registered"));
  EXPECT_EQ(Stats().spill_calls, 0u);
}

size_t CHook(void* context, size_t bytes) {
  return static_cast<Hoard*>(context)->FreeAtLeast(bytes);
}
size_t CFailingHook(void*, size_t) { return EXECMEM_SPILL_FAILED; }

TEST_F(SpillTest, CApiHooksGetTheirContext) {
  execmem_executor_t* e = exec_->get();
  EXPECT_EQ(execmem_executor_add_spill_hook(nullptr, "x", 0, CHook, &hoard_), EINVAL);
  EXPECT_EQ(execmem_executor_add_spill_hook(e, nullptr, 0, CHook, &hoard_), EINVAL);
  EXPECT_EQ(execmem_executor_add_spill_hook(e, "x", 0, nullptr, &hoard_), EINVAL);
  ASSERT_EQ(execmem_executor_add_spill_hook(e, "c-fails", 5, CFailingHook, nullptr), 0);
  ASSERT_EQ(execmem_executor_add_spill_hook(e, "c-hook", 0, CHook, &hoard_), 0);
  EXPECT_EQ(execmem_executor_add_spill_hook(e, "c-hook", 0, CHook, &hoard_), EEXIST);
  EXPECT_THAT(execmem_last_error(), HasSubstr("c-hook"));
  execmem::ExecutorScope scope(*exec_);
  FillThreeMiB();
  void* p = execmem_malloc(2 * kMiB);
  ASSERT_NE(p, nullptr);
  execmem_executor_stats_t s;
  ASSERT_EQ(execmem_executor_stats(e, &s), 0);
  EXPECT_EQ(s.spill_calls, 2u);
  EXPECT_EQ(s.spill_failures, 1u);
  EXPECT_EQ(s.bytes_spilled, 1 * kMiB);
  EXPECT_EQ(execmem_executor_remove_spill_hook(e, "c-hook"), 0);
  EXPECT_EQ(execmem_executor_remove_spill_hook(e, "c-hook"), ENOENT);
  EXPECT_THAT(execmem_last_error(), HasSubstr("c-hook"));
  EXPECT_EQ(execmem_executor_remove_spill_hook(e, nullptr), EINVAL);
  execmem_free(p);
}

}  // namespace
