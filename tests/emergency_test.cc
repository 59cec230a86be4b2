// The emergency reserve (budget/emergency.h): after a refusal small requests
// are served, within the reserve and within max + overhead; the refused
// request stays refused; the reserve refills when used is back under max.
//
// First on an account alone (every figure exact), then through the
// allocator: an executor filled with 512 KiB blocks (charged exactly) until
// one is refused.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "budget/budget.h"
#include "execmem.h"
#include "execmem.hpp"
#include "executor/runtime.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace execmem {
namespace {

using budget::Verdict;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kSpan = 64 * kKiB;

using ReserveGuard = test_support::EmergencyReserveGuard;

// An account with max 4 MiB and overhead 1 MiB, all of it reserved by its
// initial (no ledger grant is needed), holding `used` live bytes in a
// footprint of `footprint`.
struct FullAccount : budget::Account {
  FullAccount(uint64_t used_bytes, uint64_t footprint_bytes) {
    initial = 4 * kMiB;
    max = 4 * kMiB;
    overhead = 1 * kMiB;
    EXPECT_TRUE(Charge(footprint_bytes, used_bytes).granted());
    AddUsed(static_cast<int64_t>(used_bytes), 1, 1);
  }
};

TEST(EmergencyAccount, ServesNothingBeforeARefusal) {
  ReserveGuard guard(64 * kKiB);
  FullAccount a(4 * kMiB, 4 * kMiB);
  EXPECT_EQ(a.Charge(kSpan, 100).kind, Verdict::Kind::kSpill);
  EXPECT_FALSE(a.ChargeEmergency(kSpan, 100).granted());
  EXPECT_EQ(a.footprint.load(), 4 * kMiB);
  EXPECT_EQ(a.emergency.uses.load(), 0u);
}

TEST(EmergencyAccount, AfterARefusalServesSmallRequestsUpToTheReserve) {
  ReserveGuard guard(64 * kKiB);
  FullAccount a(4 * kMiB, 4 * kMiB);
  a.emergency.Enter();
  EXPECT_EQ(a.emergency.entries.load(), 1u);
  // Never a request larger than the reserve.
  EXPECT_FALSE(a.ChargeEmergency(kSpan, 64 * kKiB + 1).granted());
  // Eight 8 KiB requests fill the 64 KiB reserve; the ninth is refused.
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(a.ChargeEmergency(kSpan, 8 * kKiB).granted()) << i;
  }
  EXPECT_FALSE(a.ChargeEmergency(kSpan, 1).granted());
  EXPECT_EQ(a.emergency.uses.load(), 8u);
  EXPECT_EQ(a.emergency.bytes.load(), 64 * kKiB);
  EXPECT_EQ(a.emergency.served.load(), 64 * kKiB);
  // The spans came out of the overhead: footprint grew, used is the
  // thread caches' to report.
  EXPECT_EQ(a.footprint.load(), 4 * kMiB + 8 * kSpan);
  EXPECT_LE(a.footprint.load(), a.Limit());
  // The ordinary check still refuses.
  EXPECT_EQ(a.Charge(kSpan, 100).kind, Verdict::Kind::kSpill);
}

TEST(EmergencyAccount, NeverPassesMaxPlusOverhead) {
  ReserveGuard guard(64 * kKiB);
  FullAccount a(4 * kMiB, 5 * kMiB - kSpan);  // one span of overhead left
  a.emergency.Enter();
  EXPECT_TRUE(a.ChargeEmergency(kSpan, 100).granted());
  EXPECT_EQ(a.footprint.load(), a.Limit());
  const Verdict v = a.ChargeEmergency(kSpan, 100);
  EXPECT_EQ(v.kind, Verdict::Kind::kRefused);
  EXPECT_EQ(v.reason, budget::Shortfall::kFootprint);
  EXPECT_EQ(a.footprint.load(), a.Limit());
  // What the refused charge took from the reserve was given back.
  EXPECT_EQ(a.emergency.served.load(), 100u);
  EXPECT_EQ(a.emergency.uses.load(), 1u);
  EXPECT_EQ(a.emergency.bytes.load(), 100u);
}

TEST(EmergencyAccount, RefillsWhenUsedIsBackUnderMaxByTheReserve) {
  ReserveGuard guard(64 * kKiB);
  FullAccount a(4 * kMiB, 4 * kMiB);
  a.emergency.Enter();
  ASSERT_TRUE(a.ChargeEmergency(kSpan, 8 * kKiB).granted());
  a.AddUsed(static_cast<int64_t>(8 * kKiB), 1, 1);  // the thread cache reports it
  // 32 KiB freed: used is under max, but not by the reserve: still active.
  a.AddUsed(-static_cast<int64_t>(40 * kKiB), -1, 0);
  EXPECT_TRUE(a.emergency.active.load());
  EXPECT_EQ(a.emergency.served.load(), 8 * kKiB);
  // 64 KiB under max: the state ends and the reserve is whole again.
  a.AddUsed(-static_cast<int64_t>(32 * kKiB), -1, 0);
  EXPECT_FALSE(a.emergency.active.load());
  EXPECT_EQ(a.emergency.served.load(), 0u);
  EXPECT_FALSE(a.ChargeEmergency(kSpan, 100).granted()) << "no refusal since";
  // Counters are not reset.
  EXPECT_EQ(a.emergency.uses.load(), 1u);
  // Back at max, a second refusal starts a second state.
  a.AddUsed(static_cast<int64_t>(64 * kKiB), 1, 1);
  a.emergency.Enter();
  EXPECT_EQ(a.emergency.entries.load(), 2u);
  EXPECT_TRUE(a.ChargeEmergency(kSpan, 8 * kKiB).granted());
  EXPECT_EQ(a.emergency.served.load(), 8 * kKiB);
}

TEST(EmergencyAccount, ZeroReserveServesNothing) {
  ReserveGuard guard(0);
  FullAccount a(4 * kMiB, 4 * kMiB);
  a.emergency.Enter();
  EXPECT_FALSE(a.ChargeEmergency(kSpan, 1).granted());
  EXPECT_EQ(a.footprint.load(), 4 * kMiB);
}

// ---- through the allocator ----------------------------------------------------

class EmergencyExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ExecutorConfig c;
    c.name = "failing";
    c.initial = "4m";
    c.max = "4m";
    c.overhead = "1m";
    auto e = Executor::Create(c);
    ASSERT_TRUE(e.ok()) << e.status();
    exec_ = std::make_unique<Executor>(std::move(*e));
  }
  void TearDown() override {
    {
      ExecutorScope scope(*exec_);
      for (void* p : blocks_) execmem_free(p);
      execmem_trim();
    }
    exec_.reset();
  }
  // Fills max with 512 KiB blocks; the next one is refused.
  void FillUntilRefused() {
    for (;;) {
      void* p = execmem_malloc(512 * kKiB);
      if (p == nullptr) break;
      blocks_.push_back(p);
      ASSERT_LE(blocks_.size(), 8u);
    }
    ASSERT_EQ(errno, ENOMEM);
    ASSERT_EQ(blocks_.size(), 8u);
  }
  execmem_executor_stats_t Stats() { return exec_->Stats(); }

  std::unique_ptr<Executor> exec_;
  std::vector<void*> blocks_;
};

TEST_F(EmergencyExecutorTest, SmallRequestsAfterARefusalAreServedTheRefusedOneIsNot) {
  ReserveGuard guard(64 * kKiB);
  ExecutorScope scope(*exec_);
  EXPECT_EQ(Stats().emergency_active, 0u);
  FillUntilRefused();
  execmem_executor_stats_t s = Stats();
  EXPECT_EQ(s.oom_count, 1u);
  EXPECT_EQ(s.emergency_active, 1u);
  EXPECT_EQ(s.emergency_uses, 0u);

  // The failure path: a log line and an error message.
  char* line = static_cast<char*>(execmem_malloc(200));
  ASSERT_NE(line, nullptr);
  snprintf(line, 200, "out of memory allocating %d bytes", 512 * 1024);
  char* message = static_cast<char*>(execmem_malloc(4000));
  ASSERT_NE(message, nullptr);
  memset(message, 'm', 4000);
  s = Stats();
  EXPECT_EQ(s.emergency_uses, 2u);
  EXPECT_EQ(s.emergency_bytes, 200u + 4000u);
  EXPECT_LE(s.footprint, s.max + s.overhead);

  // The refused request and other large ones stay refused.
  errno = 0;
  EXPECT_EQ(execmem_malloc(512 * kKiB), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(execmem_malloc(61 * kKiB), nullptr) << "more than is left of the reserve";
  EXPECT_EQ(Stats().emergency_uses, 2u);
  execmem_free(line);
  execmem_free(message);

  // Freeing data brings used under max by more than the reserve: refilled.
  execmem_free(blocks_.back());
  blocks_.pop_back();
  s = Stats();
  EXPECT_EQ(s.emergency_active, 0u);
  EXPECT_EQ(s.emergency_uses, 2u) << "counters are kept";
  void* again = execmem_malloc(512 * kKiB);
  EXPECT_NE(again, nullptr) << "within max again";
  if (again != nullptr) blocks_.push_back(again);
}

TEST_F(EmergencyExecutorTest, WithoutAReserveTheFailurePathFailsToo) {
  ReserveGuard guard(0);
  ExecutorScope scope(*exec_);
  FillUntilRefused();
  EXPECT_EQ(execmem_malloc(200), nullptr);
  EXPECT_EQ(execmem_malloc(4000), nullptr);
  EXPECT_EQ(Stats().emergency_uses, 0u);
}

TEST_F(EmergencyExecutorTest, StatsJsonAndTextShowTheReserve) {
  ReserveGuard guard(64 * kKiB);
  void* p = nullptr;
  {
    ExecutorScope scope(*exec_);
    FillUntilRefused();
    p = execmem_malloc(300);
    ASSERT_NE(p, nullptr);
  }
  // Outside the scope: the reports' own buffers are the default executor's.
  char* json = execmem_stats_json();
  ASSERT_NE(json, nullptr);
  EXPECT_NE(strstr(json, "\"emergency_uses\":1,\"emergency_bytes\":300,\"emergency_active\":1}"),
            nullptr)
      << json;
  char* text = execmem_stats_text();
  ASSERT_NE(text, nullptr);
  EXPECT_NE(strstr(text,
                   "emergency reserve of failing: served 1 request(s), 300 B after a "
                   "refusal (in the emergency state now)"),
            nullptr)
      << text;
  execmem_free(json);
  execmem_free(text);
  ExecutorScope scope(*exec_);
  execmem_free(p);
}

}  // namespace
}  // namespace execmem
