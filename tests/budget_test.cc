// The budget layer (budget/budget.h): the ledger against the pool's
// capacity, and an account's verdicts at each boundary. No heap is involved:
// charges here are plain numbers, as a thread cache would make them.
#include "budget/budget.h"

#include <cstdint>

#include "gtest/gtest.h"
#include "tests/testing.h"
#include "pool/pool.h"

namespace {

namespace budget = execmem::budget;
namespace pool = execmem::pool;
using Kind = budget::Verdict::Kind;
using budget::Shortfall;

constexpr uint64_t kMiB = uint64_t{1} << 20;

using execmem::test_support::CapacityGuard;

// Gives back whatever an account still holds in the ledger.
struct AccountGuard {
  budget::Account& a;
  uint64_t reservation;
  ~AccountGuard() {
    a.footprint.store(0);
    a.MaybeReleaseGrant(true);
    budget::Unreserve(reservation);
  }
};

TEST(Budget, TheLedgerNeverPassesTheCapacity) {
  CapacityGuard restore;
  const budget::LedgerCounters before = budget::Counters();
  ASSERT_TRUE(
      budget::SetCapacity(pool::Counters().held + before.reserved + before.granted + 64 * kMiB));
  const uint64_t room = budget::Unallocated();
  ASSERT_GE(room, 64 * kMiB);
  ASSERT_TRUE(budget::Reserve(room - kMiB));
  EXPECT_FALSE(budget::Reserve(2 * kMiB));
  ASSERT_TRUE(budget::Grant(kMiB));
  EXPECT_EQ(budget::Unallocated(), 0u);
  EXPECT_FALSE(budget::Grant(1));
  EXPECT_FALSE(budget::Reserve(1));
  // Below what is reserved + granted is refused and changes nothing.
  const uint64_t cap = pool::Capacity();
  EXPECT_FALSE(budget::SetCapacity(cap - 1));
  EXPECT_EQ(pool::Capacity(), cap);
  budget::Ungrant(kMiB);
  budget::Unreserve(room - kMiB);
  EXPECT_EQ(budget::Unallocated(), room);
  const budget::LedgerCounters after = budget::Counters();
  EXPECT_EQ(after.reserved, before.reserved);
  EXPECT_EQ(after.granted, before.granted);
}

TEST(Budget, SetCapacityZeroIsThePoolsDefault) {
  CapacityGuard restore;
  ASSERT_TRUE(budget::SetCapacity(0));
  EXPECT_EQ(pool::Capacity(), pool::DefaultCapacity());
}

TEST(Budget, QuantaGrowWithTheGrant) {
  EXPECT_EQ(budget::Quantum(0), kMiB);
  EXPECT_EQ(budget::Quantum(16 * kMiB - 1), kMiB);
  EXPECT_EQ(budget::Quantum(16 * kMiB), 4 * kMiB);
  EXPECT_EQ(budget::Quantum(64 * kMiB - 1), 4 * kMiB);
  EXPECT_EQ(budget::Quantum(64 * kMiB), 8 * kMiB);
}

TEST(Budget, ChargeAnswersWithAVerdictAtEachBoundary) {
  budget::Account a;
  a.initial = 2 * kMiB;
  a.max = 8 * kMiB;
  a.overhead = kMiB;
  ASSERT_TRUE(budget::Reserve(a.initial + a.overhead));
  AccountGuard guard{a, a.initial + a.overhead};

  // Within the reservation: granted, footprint charged, no grant.
  budget::Verdict v = a.Charge(kMiB, kMiB);
  EXPECT_EQ(v.kind, Kind::kGranted);
  EXPECT_TRUE(v.granted());
  EXPECT_EQ(a.footprint.load(), kMiB);
  EXPECT_EQ(a.grant.load(), 0u);

  // Past the reservation: the grant grows by a whole quantum.
  v = a.Charge(3 * kMiB, 3 * kMiB);
  EXPECT_EQ(v.kind, Kind::kGranted);
  EXPECT_EQ(a.footprint.load(), 4 * kMiB);
  EXPECT_EQ(a.grant.load(), kMiB);
  EXPECT_EQ(a.peak_footprint.load(), 4 * kMiB);

  // used would pass max: spill the excess, nothing charged.
  a.AddUsed(7 * kMiB, 7, 7);
  v = a.Charge(kMiB, 2 * kMiB);
  EXPECT_EQ(v.kind, Kind::kSpill);
  EXPECT_EQ(v.reason, Shortfall::kUsed);
  EXPECT_EQ(v.bytes, kMiB);
  EXPECT_EQ(a.footprint.load(), 4 * kMiB);

  // used fits, footprint would pass max + overhead: trim first.
  v = a.Charge(6 * kMiB, kMiB);
  EXPECT_EQ(v.kind, Kind::kTrimFirst);
  EXPECT_EQ(v.reason, Shortfall::kFootprint);
  EXPECT_EQ(v.bytes, kMiB);

  // Sizes no account could hold are refused outright.
  v = a.Charge(budget::kMaxCharge + 1, 1);
  EXPECT_EQ(v.kind, Kind::kRefused);
  EXPECT_EQ(a.footprint.load(), 4 * kMiB);

  // Giving back lowers the footprint and releases the grant's slack.
  a.AddUsed(-7 * kMiB, -7, 0);
  a.Uncharge(4 * kMiB);
  EXPECT_EQ(a.footprint.load(), 0u);
  a.MaybeReleaseGrant(true);
  EXPECT_EQ(a.grant.load(), 0u);
}

TEST(Budget, AnEmptyLedgerMeansTheAccountCannotGrow) {
  CapacityGuard restore;
  budget::Account a;
  a.initial = kMiB;
  a.max = 64 * kMiB;
  ASSERT_TRUE(budget::Reserve(a.initial));
  AccountGuard guard{a, a.initial};
  // Leave the ledger 512 KiB of room: a 1 MiB quantum does not fit, the
  // exact amount does, a larger charge does not.
  const budget::LedgerCounters l = budget::Counters();
  ASSERT_TRUE(budget::SetCapacity(l.reserved + l.granted + kMiB / 2));
  const uint64_t room = budget::Unallocated();
  ASSERT_LE(room, kMiB / 2);
  budget::Verdict v = a.Charge(a.initial + room, 0);
  EXPECT_EQ(v.kind, Kind::kGranted);
  EXPECT_EQ(a.grant.load(), room);
  v = a.Charge(kMiB, 0);
  EXPECT_EQ(v.kind, Kind::kTrimFirst);
  EXPECT_EQ(v.reason, Shortfall::kPool);
  EXPECT_EQ(v.bytes, kMiB);
  a.Uncharge(a.initial + room);
}

}  // namespace
