// Arbitration: when the pool's capacity is exhausted, executors above their
// initial reservation are asked to spill, largest excess first, never below
// their reservation; an executor within its reservation is never starved.
//
// Every test sets a small pool capacity (64 MiB) and uses 1 MiB large blocks,
// charged exactly, so that excesses and shortfalls are exact. Victims' hooks
// run on the starving thread: they free blocks that another executor's thread
// allocated, under the hoard's lock.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "execmem.h"
#include "execmem.hpp"
#include "executor/runtime.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

using execmem::test_support::PoolStats;

uint64_t Unreserved() {
  const execmem_pool_stats_t s = PoolStats();
  return s.capacity - s.reserved - s.granted;
}

// 1 MiB blocks of one executor that its spill hook (or the test) frees.
class Hoard {
 public:
  // Allocates until n blocks are held or an allocation fails; returns whether all succeeded.
  bool Fill(size_t n) {
    while (size() < n) {
      void* p = execmem_malloc(kMiB);
      if (p == nullptr) return false;
      std::lock_guard<std::mutex> lock(mu_);
      blocks_.push_back(p);
    }
    return true;
  }
  // Allocates until the executor refuses; returns the blocks held.
  size_t FillUntilRefused(size_t limit) {
    while (size() < limit && Fill(size() + 1)) {
    }
    return size();
  }
  size_t FreeAtLeast(size_t bytes) {
    size_t freed = 0;
    std::lock_guard<std::mutex> lock(mu_);
    while (freed < bytes && !blocks_.empty()) {
      execmem_free(blocks_.back());
      blocks_.pop_back();
      freed += kMiB;
    }
    return freed;
  }
  void FreeAll() { FreeAtLeast(SIZE_MAX); }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return blocks_.size();
  }

 private:
  std::mutex mu_;
  std::vector<void*> blocks_;
};

// Names of the hooks called, in order, with what each was asked for.
struct CallLog {
  std::mutex mu;
  std::vector<std::string> names;
  std::vector<size_t> asked;
  void Add(const std::string& name, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu);
    names.push_back(name);
    asked.push_back(bytes);
  }
};

class ArbitrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    execmem_trim();
    ASSERT_EQ(execmem_set_pool_capacity("64m"), 0) << execmem_last_error();
    start_ = PoolStats();
  }
  void TearDown() override {
    for (auto& h : hoards_) h->FreeAll();
    executors_.clear();
    EXPECT_EQ(PoolStats().reserved, start_.reserved);
    EXPECT_EQ(PoolStats().granted, start_.granted);
    EXPECT_TRUE(execmem::internal::SetPoolCapacity(0).ok());
  }

  // An executor with a 1 MiB overhead reservation and a hoard of blocks.
  execmem::Executor* Add(const std::string& name, const std::string& initial,
                         const std::string& max) {
    execmem::ExecutorConfig c;
    c.name = name;
    c.initial = initial;
    c.max = max;
    c.overhead = "1m";
    auto e = execmem::Executor::Create(c);
    EXPECT_TRUE(e.ok()) << e.status();
    if (!e.ok()) return nullptr;
    executors_.push_back(std::make_unique<execmem::Executor>(std::move(*e)));
    hoards_.push_back(std::make_unique<Hoard>());
    return executors_.back().get();
  }
  Hoard& HoardOf(size_t i) { return *hoards_[i]; }
  // A hook on executor i that logs its call and frees at least what it is asked.
  void AddGreedyHook(size_t i, CallLog* log) {
    execmem::Executor* e = executors_[i].get();
    Hoard* h = hoards_[i].get();
    const std::string name(e->name());
    ASSERT_TRUE(e->AddSpillHook(name + "-hook", 0, [log, h, name](size_t bytes) {
                   log->Add(name, bytes);
                   return h->FreeAtLeast(bytes);
                 }).ok());
  }

  execmem_pool_stats_t start_{};
  // Hoards are freed before their executors are destroyed (TearDown).
  std::vector<std::unique_ptr<Hoard>> hoards_;
  std::vector<std::unique_ptr<execmem::Executor>> executors_;
};

// A: grows until the pool is full. B: takes its reservation, then one more
// block, which the pool can only supply after A gives back a MiB.
TEST_F(ArbitrationTest, TwoExecutorsTheStarvedOneGetsWhatTheOtherSpills) {
  execmem::Executor* a = Add("A", "8m", "60m");
  execmem::Executor* b = Add("B", "8m", "60m");
  ASSERT_TRUE(a && b);
  {
    execmem::ExecutorScope scope(*a);
    const size_t n = HoardOf(0).FillUntilRefused(64);
    EXPECT_GE(n, 54u);  // 64 MiB less B's 9 MiB reservation, less < 1 MiB
    EXPECT_LT(Unreserved(), kMiB);
  }
  const execmem_executor_stats_t a_full = a->Stats();
  CallLog log;
  AddGreedyHook(0, &log);

  execmem::ExecutorScope scope(*b);
  // Within its reservation B needs nobody.
  ASSERT_TRUE(HoardOf(1).Fill(9));
  EXPECT_TRUE(log.names.empty()) << "an executor within its reservation had to arbitrate";
  // Above it, A (the only one above its reservation) is asked for the shortfall.
  void* p = execmem_malloc(kMiB);
  EXPECT_THAT(log.names, ElementsAre("A"));
  EXPECT_THAT(log.asked, ElementsAre(kMiB));
  EXPECT_NE(p, nullptr) << "A spilled 1 MiB but B still could not get it: "
                        << execmem::internal::LastOomReport() << "\npool granted "
                        << PoolStats().granted << ", unreserved " << Unreserved()
                        << ", A footprint " << a->Stats().footprint;
  const execmem_executor_stats_t a_after = a->Stats();
  EXPECT_EQ(a_after.bytes_spilled, kMiB);
  EXPECT_EQ(a_after.used, a_full.used - kMiB);
  EXPECT_EQ(b->Stats().oom_count, 0u);
  EXPECT_LE(PoolStats().reserved + PoolStats().granted, PoolStats().capacity);
  execmem_free(p);
}

// C needs more than A and B together have above their reservations: each is
// asked for at most its excess, largest first, and neither goes below its
// reservation; C then fails with a report naming the arbitration.
TEST_F(ArbitrationTest, NobodyIsPushedBelowItsReservation) {
  execmem::Executor* a = Add("A", "4m", "60m");
  execmem::Executor* b = Add("B", "4m", "60m");
  execmem::Executor* c = Add("C", "4m", "60m");
  ASSERT_TRUE(a && b && c);
  {
    execmem::ExecutorScope scope(*a);
    ASSERT_TRUE(HoardOf(0).Fill(5 + 20));  // excess 20 MiB
  }
  {
    execmem::ExecutorScope scope(*b);
    ASSERT_TRUE(HoardOf(1).Fill(5 + 10));  // excess 10 MiB
  }
  CallLog log;
  AddGreedyHook(0, &log);
  AddGreedyHook(1, &log);
  execmem::ExecutorScope scope(*c);
  // 64 - 15 reserved - 30 granted leaves 19 MiB; with everything A and B can
  // give, 49 MiB. C asks for 55 MiB on top of nothing.
  errno = 0;
  void* p = execmem_malloc(55 * kMiB);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(errno, ENOMEM);
  ASSERT_EQ(log.names.size(), 2u);
  EXPECT_THAT(log.names, ElementsAre("A", "B"));
  EXPECT_EQ(log.asked[0], 20 * kMiB);
  EXPECT_EQ(log.asked[1], 10 * kMiB);
  for (size_t i : {0, 1}) {
    const execmem_executor_stats_t s = executors_[i]->Stats();
    SCOPED_TRACE(s.name);
    EXPECT_GE(s.used, s.initial);
    EXPECT_GE(s.footprint, s.initial + s.overhead);
  }
  const std::string report = execmem::internal::LastOomReport();
  EXPECT_THAT(report, HasSubstr("'C'"));
  EXPECT_THAT(report, HasSubstr("arbitration"));
  EXPECT_THAT(report, HasSubstr("'A'"));
  EXPECT_THAT(report, HasSubstr("pool"));
  EXPECT_EQ(c->Stats().oom_count, 1u);
  if (p != nullptr) execmem_free(p);
}

// Three executors: C's shortfall is met by A (largest excess, asked first and
// for all of it) and then B (for the rest).
TEST_F(ArbitrationTest, ThreeExecutorsLargestExcessIsAskedFirst) {
  execmem::Executor* a = Add("A", "4m", "60m");
  execmem::Executor* b = Add("B", "4m", "60m");
  execmem::Executor* c = Add("C", "4m", "60m");
  ASSERT_TRUE(a && b && c);
  // B grows first so that registration order is not the answer.
  {
    execmem::ExecutorScope scope(*b);
    ASSERT_TRUE(HoardOf(1).Fill(5 + 12));  // excess 12 MiB
  }
  {
    execmem::ExecutorScope scope(*a);
    ASSERT_TRUE(HoardOf(0).Fill(5 + 24));  // excess 24 MiB
  }
  CallLog log;
  AddGreedyHook(0, &log);
  AddGreedyHook(1, &log);
  execmem::ExecutorScope scope(*c);
  ASSERT_TRUE(HoardOf(2).Fill(5));  // C's reservation: nobody asked
  EXPECT_TRUE(log.names.empty());
  // 64 - 15 reserved - 36 granted = 13 MiB unreserved; C wants 40 MiB above
  // its reservation. A can give 24 MiB, B 12 MiB: together enough.
  void* p = execmem_malloc(40 * kMiB);
  ASSERT_EQ(log.names.size(), 2u);
  EXPECT_THAT(log.names, ElementsAre("A", "B"));
  EXPECT_EQ(log.asked[0], 24 * kMiB);  // min(its excess, the shortfall)
  EXPECT_LE(log.asked[1], 12 * kMiB);  // at most its excess
  EXPECT_GE(log.asked[1], 3 * kMiB);   // at least what A could not give
  EXPECT_NE(p, nullptr) << execmem::internal::LastOomReport();
  for (size_t i : {0, 1}) {
    const execmem_executor_stats_t s = executors_[i]->Stats();
    SCOPED_TRACE(s.name);
    EXPECT_GE(s.used, s.initial);
    EXPECT_GT(s.bytes_spilled, 0u);
  }
  EXPECT_EQ(c->Stats().used, 5 * kMiB + 40 * kMiB);
  EXPECT_LE(PoolStats().reserved + PoolStats().granted, PoolStats().capacity);
  if (p != nullptr) execmem_free(p);
}

// B stays within its reservation while A exhausts the pool: B's allocations
// up to its reservation succeed and B is never asked to spill.
TEST_F(ArbitrationTest, AnExecutorWithinItsReservationIsNeverStarvedNorAsked) {
  execmem::Executor* a = Add("A", "4m", "60m");
  execmem::Executor* b = Add("B", "8m", "60m");
  ASSERT_TRUE(a && b);
  CallLog log;
  AddGreedyHook(1, &log);
  {
    execmem::ExecutorScope scope(*b);
    ASSERT_TRUE(HoardOf(1).Fill(4));  // half its initial
  }
  {
    execmem::ExecutorScope scope(*a);
    HoardOf(0).FillUntilRefused(64);
    EXPECT_LT(Unreserved(), kMiB);
    const std::string report = execmem::internal::LastOomReport();
    EXPECT_THAT(report, HasSubstr("'A'"));
    EXPECT_THAT(report, HasSubstr("pool"));
  }
  EXPECT_TRUE(log.names.empty()) << "B, under its reservation, was asked to spill";
  EXPECT_EQ(b->Stats().used, 4 * kMiB);
  {
    execmem::ExecutorScope scope(*b);
    // Up to initial + overhead = 9 MiB of footprint, whatever A did.
    EXPECT_TRUE(HoardOf(1).Fill(9));
  }
  EXPECT_EQ(b->Stats().used, 9 * kMiB);
  EXPECT_EQ(b->Stats().oom_count, 0u);
}

// The starving executor's own hooks are asked before anybody else's.
TEST_F(ArbitrationTest, OwnHooksRunBeforeOthersAreAsked) {
  execmem::Executor* a = Add("A", "4m", "60m");
  execmem::Executor* b = Add("B", "4m", "60m");
  ASSERT_TRUE(a && b);
  {
    execmem::ExecutorScope scope(*b);
    ASSERT_TRUE(HoardOf(1).Fill(10));
  }
  {
    execmem::ExecutorScope scope(*a);
    HoardOf(0).FillUntilRefused(64);
  }
  CallLog log;
  AddGreedyHook(0, &log);
  AddGreedyHook(1, &log);
  execmem::ExecutorScope scope(*b);
  void* p = execmem_malloc(2 * kMiB);
  ASSERT_FALSE(log.names.empty());
  EXPECT_EQ(log.names[0], "B");
  EXPECT_EQ(log.asked[0], 2 * kMiB);
  // B freed 2 MiB of its own: its budget now covers the request without A.
  EXPECT_NE(p, nullptr) << execmem::internal::LastOomReport();
  EXPECT_EQ(log.names.size(), 1u);
  if (p != nullptr) execmem_free(p);
}

// Arbitration collects its victims, then calls their hooks one by one. An
// executor destroyed in between must not have its hooks called after its
// destroy returned: its owner has every right to free what the hook uses.
TEST_F(ArbitrationTest, HooksOfAnExecutorDestroyedDuringArbitrationAreNotCalled) {
  execmem::Executor* a = Add("A", "4m", "60m");
  execmem::Executor* b = Add("B", "4m", "60m");
  execmem::Executor* c = Add("C", "4m", "60m");
  ASSERT_TRUE(a && b && c);
  {
    execmem::ExecutorScope scope(*a);
    ASSERT_TRUE(HoardOf(0).Fill(5 + 20));  // the largest excess: asked first
  }
  {
    execmem::ExecutorScope scope(*b);
    ASSERT_TRUE(HoardOf(1).Fill(5 + 10));
  }
  std::mutex mu;
  std::condition_variable cv;
  bool a_entered = false, b_destroyed = false, b_called_after_destroy = false;
  Hoard* a_hoard = &HoardOf(0);
  ASSERT_TRUE(a->AddSpillHook("A-hook", 0, [&, a_hoard](size_t) {
                 std::unique_lock<std::mutex> lock(mu);
                 a_entered = true;
                 cv.notify_all();
                 cv.wait_for(lock, std::chrono::seconds(5), [&] { return b_destroyed; });
                 lock.unlock();
                 return a_hoard->FreeAtLeast(kMiB);  // too little: B is asked next
               }).ok());
  ASSERT_TRUE(b->AddSpillHook("B-hook", 0, [&](size_t) {
                 std::lock_guard<std::mutex> lock(mu);
                 b_called_after_destroy = b_called_after_destroy || b_destroyed;
                 return size_t{0};
               }).ok());
  void* p = nullptr;
  std::thread starving([&] {
    execmem::ExecutorScope scope(*c);
    p = execmem_malloc(50 * kMiB);
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    // No ASSERT while the thread runs: it must be joined whatever happens.
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return a_entered; }))
        << "A was never asked";
  }
  const execmem::Status st = b->Destroy();
  EXPECT_TRUE(st.ok()) << st;
  {
    std::lock_guard<std::mutex> lock(mu);
    b_destroyed = true;
  }
  cv.notify_all();
  starving.join();
  EXPECT_FALSE(b_called_after_destroy) << "a hook ran after its executor's destroy returned";
  if (p != nullptr) execmem_free(p);
}

// What the pool grants is never more than its capacity, whoever asks, and
// destroying a grown executor gives its grant and reservation back at once.
TEST_F(ArbitrationTest, DestroyingAGrownExecutorFreesThePoolForOthers) {
  execmem::Executor* a = Add("A", "4m", "60m");
  execmem::Executor* b = Add("B", "4m", "60m");
  ASSERT_TRUE(a && b);
  {
    execmem::ExecutorScope scope(*a);
    HoardOf(0).FillUntilRefused(64);
  }
  {
    execmem::ExecutorScope scope(*b);
    ASSERT_TRUE(HoardOf(1).Fill(5));
    EXPECT_EQ(execmem_malloc(kMiB), nullptr);
  }
  HoardOf(0).FreeAll();
  ASSERT_TRUE(a->Destroy().ok());
  {
    execmem::ExecutorScope scope(*b);
    EXPECT_TRUE(HoardOf(1).Fill(5 + 40));
  }
  EXPECT_LE(PoolStats().reserved + PoolStats().granted, PoolStats().capacity);
}

}  // namespace
