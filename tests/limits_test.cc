// Reservations (execmem_reserve), run-time limits (execmem_executor_set_limits)
// and the failure report in execmem_last_error(), through the C API.
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "execmem.h"
#include "executor/runtime.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kMiB = uint64_t{1} << 20;
using execmem::test_support::Blocks;
using execmem::test_support::StatsOf;

using execmem::test_support::PoolStats;

execmem_executor_t* Make(const char* name, const char* initial, const char* max,
                         const char* overhead = "4m", execmem_executor_t* parent = nullptr) {
  execmem_executor_options_t o{};
  o.name = name;
  o.initial = initial;
  o.max = max;
  o.overhead = overhead;
  execmem_executor_t* e = nullptr;
  const int err = parent == nullptr ? execmem_executor_create(&o, &e)
                                    : execmem_executor_create_child(parent, &o, &e);
  EXPECT_EQ(err, 0) << execmem_last_error();
  return e;
}

int SetLimits(execmem_executor_t* e, const char* initial, const char* max,
              const char* overhead = nullptr) {
  execmem_executor_options_t o{};
  o.initial = initial;
  o.max = max;
  o.overhead = overhead;
  return execmem_executor_set_limits(e, &o);
}

size_t CountingHook(void* calls, size_t) {
  ++*static_cast<int*>(calls);
  return 0;
}

class LimitsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    execmem_bind(nullptr);
    execmem_trim();
  }
};

// ---- reservations ----

TEST_F(LimitsTest, ReservedBytesCountInUsedAndFootprintUpTheTree) {
  execmem_executor_t* root = Make("res-root", "0", "64m");
  execmem_executor_t* op = Make("res-op", nullptr, "32m", nullptr, root);
  ASSERT_EQ(execmem_reserve(op, 8 * kMiB), 0) << execmem_last_error();
  EXPECT_EQ(execmem_reserved(op), 8 * kMiB);
  EXPECT_EQ(StatsOf(op).used, 8 * kMiB);
  EXPECT_EQ(StatsOf(op).footprint, 8 * kMiB);
  EXPECT_EQ(StatsOf(root).used, 8 * kMiB);
  EXPECT_GE(StatsOf(root).footprint, 8 * kMiB);
  ASSERT_EQ(execmem_reserve(op, 4 * kMiB), 0);
  EXPECT_EQ(StatsOf(op).used, 12 * kMiB);
  // An executor holding reservations cannot be destroyed.
  EXPECT_EQ(execmem_executor_destroy(op), EBUSY);
  EXPECT_THAT(execmem_last_error(), HasSubstr("reserved"));
  // More than reserved is refused, and nothing changes.
  errno = 0;
  execmem_unreserve(op, 13 * kMiB);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("more than"));
  EXPECT_THAT(execmem_last_error(), HasSubstr("12 MiB"));
  EXPECT_EQ(execmem_reserved(op), 12 * kMiB);
  EXPECT_EQ(StatsOf(op).used, 12 * kMiB);
  execmem_unreserve(op, 12 * kMiB);
  EXPECT_EQ(execmem_reserved(op), 0u);
  EXPECT_EQ(StatsOf(op).used, 0u);
  EXPECT_EQ(StatsOf(root).used, 0u);
  execmem_unreserve(op, 1);  // nothing left
  EXPECT_EQ(StatsOf(op).used, 0u);
  EXPECT_EQ(execmem_reserve(nullptr, 1), EINVAL);
  EXPECT_EQ(execmem_executor_destroy(op), 0);
  EXPECT_EQ(execmem_executor_destroy(root), 0);
}

TEST_F(LimitsTest, AnImpossibleReservationFailsAtOnceWithTheReport) {
  execmem_executor_t* e = Make("res-big", "0", "32m");
  int calls = 0;
  ASSERT_EQ(execmem_executor_add_spill_hook(e, "counted", 0, CountingHook, &calls), 0);
  for (size_t bytes : {size_t{SIZE_MAX}, size_t{SIZE_MAX / 2}, size_t{64 * kMiB}}) {
    SCOPED_TRACE(bytes);
    EXPECT_EQ(execmem_reserve(e, bytes), ENOMEM);
    EXPECT_THAT(execmem_last_error(), HasSubstr("'res-big'"));
    EXPECT_THAT(execmem_last_error(), HasSubstr("never fit"));
    EXPECT_EQ(execmem_reserved(e), 0u);
    EXPECT_EQ(StatsOf(e).used, 0u);
    EXPECT_EQ(StatsOf(e).footprint, 0u);
  }
  EXPECT_EQ(calls, 0) << "no hook is asked for what can never fit";
  EXPECT_THAT(execmem_last_error(), HasSubstr("64 MiB"));
  EXPECT_THAT(execmem_last_error(), HasSubstr("max (32 MiB)"));
  EXPECT_EQ(execmem_executor_destroy(e), 0);
}

TEST_F(LimitsTest, AReservationTakesTheSpillPath) {
  execmem_executor_t* e = Make("res-spill", "0", "16m");
  Blocks b;
  ASSERT_TRUE(b.Fill(e, 12));
  ASSERT_EQ(execmem_executor_add_spill_hook(e, "blocks", 0, Blocks::Hook, &b), 0);
  ASSERT_EQ(execmem_reserve(e, 6 * kMiB), 0) << execmem_last_error();
  EXPECT_EQ(b.calls, 1);
  EXPECT_EQ(b.held.size(), 10u) << "asked for the 2 MiB short";
  EXPECT_EQ(StatsOf(e).used, 16 * kMiB);
  // Nothing left to spill within the rules: refused, with the hook named.
  b.Free(SIZE_MAX);
  ASSERT_EQ(execmem_reserve(e, 10 * kMiB), 0);
  EXPECT_EQ(execmem_reserve(e, 1 * kMiB), ENOMEM);
  EXPECT_THAT(execmem_last_error(), HasSubstr("reservation of 1 MiB"));
  EXPECT_THAT(execmem_last_error(), HasSubstr("'blocks' freed 0 B"));
  EXPECT_THAT(execmem_last_error(), HasSubstr("used 16 MiB / max 16 MiB"));
  execmem_unreserve(e, 16 * kMiB);
  EXPECT_EQ(execmem_executor_destroy(e), 0);
}

// ---- the report in execmem_last_error ----

TEST_F(LimitsTest, ARefusedMallocLeavesItsReportInLastError) {
  execmem_executor_t* e = Make("report-me", "0", "8m");
  int calls = 0;
  ASSERT_EQ(execmem_executor_add_spill_hook(e, "counted", 0, CountingHook, &calls), 0);
  execmem_executor_t* prev = execmem_bind(e);
  errno = 0;
  EXPECT_EQ(execmem_malloc(1024 * kMiB), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  const std::string big = execmem_last_error();
  EXPECT_THAT(big, HasSubstr("'report-me'"));
  EXPECT_THAT(big, HasSubstr("1 GiB"));
  EXPECT_THAT(big, HasSubstr("never fit"));
  EXPECT_EQ(calls, 0) << "a request above max fails at once";
  // Within max but not beside what is held: the hook is asked.
  Blocks b;
  ASSERT_TRUE(b.Fill(e, 6));
  EXPECT_EQ(execmem_malloc(3 * kMiB), nullptr);
  EXPECT_EQ(calls, 1);
  const std::string report = execmem_last_error();
  EXPECT_THAT(report, HasSubstr("used (6 MiB) plus this request would pass max (8 MiB)"));
  EXPECT_THAT(report, HasSubstr("used 6 MiB / max 8 MiB"));
  EXPECT_THAT(report, HasSubstr("'counted' freed 0 B"));
  EXPECT_THAT(report, Not(HasSubstr("EXECMEM_MAX"))) << "not the shim's executor";
  execmem_bind(prev);
  b.Free(SIZE_MAX);
  execmem_trim();
  EXPECT_EQ(execmem_executor_destroy(e), 0);
}

TEST_F(LimitsTest, TheProcesssExecutorsReportNamesTheVariables) {
  execmem_executor_stats_t old = StatsOf(execmem_default_executor());
  ASSERT_TRUE(execmem::internal::ConfigureDefaultExecutor(0, 64 * kMiB, 4 * kMiB).ok());
  errno = 0;
  EXPECT_EQ(execmem_malloc(100 * kMiB), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  const std::string report = execmem_last_error();
  EXPECT_THAT(report, HasSubstr("'default'"));
  EXPECT_THAT(report, HasSubstr("100 MiB"));
  EXPECT_THAT(report, HasSubstr("max (64 MiB)"));
  EXPECT_THAT(report, HasSubstr("EXECMEM_MAX"));
  EXPECT_THAT(report, Not(HasSubstr("Live data exceeds max")));
  ASSERT_TRUE(execmem::internal::ConfigureDefaultExecutor(old.initial, old.max, old.overhead).ok());
}

// ---- run-time limits ----

TEST_F(LimitsTest, RaisingTakesEffectAtOnceAndEmptyFieldsKeepTheirValue) {
  execmem_executor_t* e = Make("limits-raise", "2m", "8m");
  const uint64_t reserved = PoolStats().reserved;
  Blocks b;
  ASSERT_TRUE(b.Fill(e, 8));
  EXPECT_FALSE(b.Fill(e, 1));
  ASSERT_EQ(SetLimits(e, nullptr, "16m"), 0) << execmem_last_error();
  EXPECT_EQ(StatsOf(e).max, 16 * kMiB);
  EXPECT_EQ(StatsOf(e).initial, 2 * kMiB) << "NULL keeps initial";
  EXPECT_EQ(StatsOf(e).overhead, 4 * kMiB);
  EXPECT_TRUE(b.Fill(e, 8)) << execmem_last_error();
  // A larger initial is reserved from the pool; a smaller one given back.
  ASSERT_EQ(SetLimits(e, "6m", "", "2m"), 0) << execmem_last_error();
  EXPECT_EQ(StatsOf(e).initial, 6 * kMiB);
  EXPECT_EQ(StatsOf(e).max, 16 * kMiB) << "\"\" keeps max";
  EXPECT_EQ(PoolStats().reserved, reserved + 2 * kMiB);
  ASSERT_EQ(SetLimits(e, "1m", nullptr, "10%"), 0);
  EXPECT_EQ(StatsOf(e).overhead, (kMiB + 9) / 10) << "a fraction of the new initial";
  EXPECT_LT(PoolStats().reserved, reserved);
  // Bad values change nothing.
  EXPECT_EQ(SetLimits(e, nullptr, "lots"), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("lots"));
  EXPECT_EQ(SetLimits(e, "32m", nullptr), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("above max"));
  EXPECT_EQ(SetLimits(e, nullptr, "0"), EINVAL);
  EXPECT_EQ(execmem_executor_set_limits(e, nullptr), EINVAL);
  EXPECT_EQ(StatsOf(e).max, 16 * kMiB);
  EXPECT_EQ(StatsOf(e).initial, kMiB);
  b.Free(SIZE_MAX);
  execmem_trim();
  EXPECT_EQ(execmem_executor_destroy(e), 0);
}

TEST_F(LimitsTest, LoweringMaxBelowUsedSpillsOrIsRefusedWithNothingChanged) {
  execmem_executor_t* e = Make("limits-lower", "0", "32m");
  Blocks b;
  ASSERT_TRUE(b.Fill(e, 20));
  // No hook: EBUSY, max unchanged, and allocations still see the old max.
  EXPECT_EQ(SetLimits(e, nullptr, "16m"), EBUSY);
  EXPECT_THAT(execmem_last_error(), HasSubstr("used is 20 MiB"));
  EXPECT_EQ(StatsOf(e).max, 32 * kMiB);
  EXPECT_TRUE(b.Fill(e, 1));
  // With a hook that frees: the hook is asked for the difference.
  ASSERT_EQ(execmem_executor_add_spill_hook(e, "blocks", 0, Blocks::Hook, &b), 0);
  ASSERT_EQ(SetLimits(e, nullptr, "16m"), 0) << execmem_last_error();
  EXPECT_EQ(b.calls, 1);
  EXPECT_EQ(StatsOf(e).used, 16 * kMiB);
  EXPECT_EQ(StatsOf(e).max, 16 * kMiB);
  EXPECT_LE(StatsOf(e).used, StatsOf(e).max);
  b.Free(SIZE_MAX);
  execmem_trim();
  EXPECT_EQ(execmem_executor_destroy(e), 0);
}

TEST_F(LimitsTest, TheTreesRuleHoldsThroughSetLimits) {
  execmem_executor_t* root = Make("limits-root", "0", "64m");
  execmem_executor_t* child = Make("limits-child", "4m", "32m", nullptr, root);
  EXPECT_EQ(SetLimits(child, nullptr, "128m"), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("parent 'limits-root'"));
  EXPECT_EQ(SetLimits(root, nullptr, "16m"), EINVAL);
  EXPECT_THAT(execmem_last_error(), HasSubstr("child"));
  EXPECT_EQ(StatsOf(root).max, 64 * kMiB);
  EXPECT_EQ(StatsOf(child).max, 32 * kMiB);
  // A child's larger initial is reserved from its parent's footprint.
  const uint64_t fp = StatsOf(root).footprint;
  ASSERT_EQ(SetLimits(child, "8m", nullptr), 0) << execmem_last_error();
  EXPECT_EQ(StatsOf(root).footprint, fp + 4 * kMiB);
  EXPECT_EQ(SetLimits(child, "100m", "32m"), EINVAL);
  EXPECT_EQ(StatsOf(child).initial, 8 * kMiB);
  // The parent's limit (64 + 4 MiB) cannot lend 22 MiB more beside a
  // sibling's 40 MiB: refused, nothing changed.
  execmem_executor_t* sib = Make("limits-sib", "40m", "64m", nullptr, root);
  EXPECT_EQ(SetLimits(child, "30m", nullptr), ENOMEM);
  EXPECT_THAT(execmem_last_error(), HasSubstr("parent 'limits-root'"));
  EXPECT_EQ(StatsOf(child).initial, 8 * kMiB);
  EXPECT_EQ(StatsOf(root).footprint, fp + 44 * kMiB);
  EXPECT_EQ(execmem_executor_destroy(sib), 0);
  EXPECT_EQ(StatsOf(root).footprint, fp + 4 * kMiB);
  EXPECT_EQ(execmem_executor_destroy(child), 0);
  EXPECT_EQ(StatsOf(root).footprint, fp - 4 * kMiB);
  EXPECT_EQ(execmem_executor_destroy(root), 0);
}

TEST_F(LimitsTest, SetLimitsWhileOtherThreadsAllocate) {
  // Four threads keep about 8 MiB each live (16 MiB at most); limits change
  // under them. The new max never goes below what they and the reservation
  // can hold (64 + 40 MiB), so none of them may fail;
  // lowering below a 40 MiB reservation is refused every time.
  execmem_executor_t* e = Make("limits-busy", "8m", "160m", "128m");
  ASSERT_EQ(execmem_reserve(e, 40 * kMiB), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      execmem_bind(e);
      std::vector<void*> live(64, nullptr);
      uint32_t x = 12345u + static_cast<uint32_t>(t);
      for (int i = 0; !stop.load(std::memory_order_relaxed) || i < 2000; ++i) {
        x = x * 1103515245u + 12345u;
        const size_t slot = (x >> 8) % live.size();
        execmem_free(live[slot]);
        live[slot] = execmem_malloc(16 + (x >> 12) % (256 * 1024));  // ~8 MiB live on average
        if (live[slot] == nullptr) failures.fetch_add(1);
      }
      for (void* p : live) execmem_free(p);
      execmem_bind(nullptr);
    });
  }
  const char* maxes[] = {"160m", "256m", "192m", "512m"};
  const char* initials[] = {"4m", "16m", "8m", "0"};
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(SetLimits(e, initials[i % 4], maxes[i % 4]), 0) << execmem_last_error();
    if (i % 10 == 0) {
      const uint64_t before = StatsOf(e).max;
      EXPECT_EQ(SetLimits(e, "0", "8m"), EBUSY);
      EXPECT_EQ(StatsOf(e).max, before) << "a refused lowering changes nothing";
    }
  }
  stop = true;
  for (auto& w : workers) w.join();
  EXPECT_EQ(failures.load(), 0) << execmem_last_error();
  execmem_unreserve(e, 40 * kMiB);
  const execmem_executor_stats_t s = StatsOf(e);
  EXPECT_EQ(s.used, 0u);
  EXPECT_LE(s.peak_used, 512 * kMiB);
  execmem_trim();
  EXPECT_EQ(execmem_executor_destroy(e), 0);
}

}  // namespace
