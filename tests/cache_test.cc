// The pool's cache of committed free pages (pool/pool.h, pool/purge.cc): its
// size bound under churn of mixed lengths, the budget limit, and decay in a
// process that has stopped allocating (the background purger).
#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "execmem.h"
#include "executor/runtime.h"
#include "gtest/gtest.h"
#include "pool/page.h"
#include "pool/pool.h"
#include "tests/testing.h"

namespace {

using execmem::DescriptorAfter;
using execmem::kPageSize;
using execmem::PageKind;
using execmem::PoolCounters;
using execmem::PoolPage;
namespace pool = execmem::pool;

using execmem::test_support::CacheFreedSpans;
using execmem::test_support::DecayGuard;
using execmem::test_support::kDefaultDecayMs;
using execmem::test_support::kHour;
constexpr uint64_t kMiB = uint64_t{1} << 20;

class BudgetLimitGuard {
 public:
  explicit BudgetLimitGuard(uint64_t bytes) { pool::SetBudgetLimit(bytes); }
  ~BudgetLimitGuard() { pool::SetBudgetLimit(UINT64_MAX); }
};

struct Run {
  PoolPage* head;
  uint32_t pages;
};

// Replaces runs of random lengths (1 page to 30 MiB) many times, as
// executors replace buffers, checking after every free that the cache is
// within its bound and that the pool commits no more than is in use plus it.
void Churn(int rounds, uint64_t* peak_held, uint64_t* peak_in_use) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint32_t> len(1, 480);
  std::vector<Run> live;
  for (int i = 0; i < rounds; ++i) {
    if (live.size() >= 12 || (!live.empty() && rng() % 3 == 0)) {
      const size_t victim = rng() % live.size();
      pool::FreeSpan(live[victim].head);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(victim));
      const PoolCounters c = pool::Counters();
      ASSERT_LE(c.cached, pool::CacheBound()) << "round " << i;
    }
    bool zeroed = false;
    const uint32_t n = len(rng);
    PoolPage* head = pool::AllocSpan(n, &zeroed);
    ASSERT_NE(head, nullptr);
    live.push_back({head, n});
    const PoolCounters c = pool::Counters();
    *peak_held = std::max(*peak_held, c.held);
    *peak_in_use = std::max(*peak_in_use, c.held - c.cached);
  }
  for (const Run& r : live) pool::FreeSpan(r.head);
}

TEST(Cache, MixedLengthChurnStaysWithinTheBound) {
  DecayGuard decay(kHour);  // only the size bound acts
  pool::Purge(true);
  uint64_t peak_held = 0, peak_in_use = 0;
  Churn(3000, &peak_held, &peak_in_use);
  // The pool never commits more than what is handed out plus the bound (at
  // its largest, while in use peaked), whatever lengths come and go.
  EXPECT_LE(peak_held, peak_in_use + pool::CacheBound() + 30 * kMiB)
      << "peak held " << peak_held / kMiB << " MiB, peak in use " << peak_in_use / kMiB << " MiB";
  EXPECT_LE(pool::Counters().cached, pool::CacheBound());
  EXPECT_TRUE(pool::IsValid());
  pool::Purge(true);
}

TEST(Cache, TheBudgetLimitCapsTheCache) {
  DecayGuard decay(kHour);
  pool::Purge(true);
  const PoolCounters start = pool::Counters();
  const uint64_t in_use = start.held - start.cached;
  // Budgets that allow 40 MiB more than is in use: the cache may keep no
  // more than that headroom (and never less than 32 MiB).
  BudgetLimitGuard limit(in_use + 40 * kMiB);
  EXPECT_LE(pool::CacheBound(), 40 * kMiB);
  EXPECT_GE(pool::CacheBound(), 32 * kMiB);
  std::vector<PoolPage*> spans;
  for (int i = 0; i < 6; ++i) {
    bool zeroed = false;
    spans.push_back(pool::AllocSpan(160, &zeroed));  // 10 MiB each
    ASSERT_NE(spans.back(), nullptr);
  }
  for (PoolPage* p : spans) pool::FreeSpan(p);
  EXPECT_LE(pool::Counters().cached, pool::CacheBound());
  EXPECT_LT(pool::Counters().cached, 60 * kMiB) << "60 MiB freed; the bound kept part of it";
  EXPECT_TRUE(pool::IsValid());
  pool::Purge(true);
}

TEST(Cache, AFreedRunOfAnotherLengthServesTheNextLargeRequest) {
  DecayGuard decay(kHour);
  pool::Purge(true);
  // A clean free hole (x, purged) below a committed one (y, freed last): a
  // longer request fits in neither alone and must take the window over both
  // that holds all of y's committed pages, not the hole's lowest address.
  bool zeroed = false;
  PoolPage* x = nullptr;
  PoolPage* y = nullptr;
  std::vector<PoolPage*> apart;  // pairs that did not land side by side
  for (int attempt = 0; attempt < 8 && (x == nullptr || y != DescriptorAfter(x, 400)); ++attempt) {
    if (x != nullptr) apart.insert(apart.end(), {x, y});
    x = pool::AllocSpan(400, &zeroed);
    y = pool::AllocSpan(300, &zeroed);
    ASSERT_NE(x, nullptr);
    ASSERT_NE(y, nullptr);
  }
  for (PoolPage* p : apart) pool::FreeSpan(p);
  ASSERT_EQ(y, DescriptorAfter(x, 400)) << "lowest address first puts y right after x";
  pool::FreeSpan(x);
  pool::Purge(true);
  pool::FreeSpan(y);
  const uint64_t cached = pool::Counters().cached;
  ASSERT_EQ(cached, 300 * kPageSize);
  PoolPage* z = pool::AllocSpan(350, &zeroed);
  ASSERT_NE(z, nullptr);
  EXPECT_FALSE(zeroed);
  EXPECT_EQ(pool::Counters().cached, 0u) << "every committed page of y serves z";
  pool::FreeSpan(z);
  EXPECT_TRUE(pool::IsValid());
  pool::Purge(true);
}

TEST(Cache, WhatIsFreedBelowTheRecentPeakStaysCommitted) {
  DecayGuard decay(kHour);  // only the size bound acts
  pool::Purge(true);
  pool::ForgetPeak();
  // 240 MiB in use, then all of it freed: more than the size term (96 MiB)
  // but below the recent peak, so all of it stays for the next requests.
  ASSERT_TRUE(CacheFreedSpans(12, 320));  // 20 MiB each
  EXPECT_EQ(pool::Counters().cached, 240 * kMiB);
  EXPECT_LE(pool::Counters().cached, pool::CacheBound());
  EXPECT_TRUE(pool::IsValid());
  {
    // Under budgets the headroom they leave still caps the bound.
    const PoolCounters c = pool::Counters();
    BudgetLimitGuard limit(c.held - c.cached + 40 * kMiB);
    EXPECT_LE(pool::CacheBound(), 40 * kMiB);
  }
  pool::Purge(true);
}

TEST(Cache, APeakStaysThroughAWindowOfChurnBelowItAndGoesAfterTwo) {
  // 240 MiB in use, all of it freed, then one 20 MiB block replaced over and
  // over from the cache. The peak is kept for one to two windows of frees (4
  // peaks each): the cache keeps what was freed below it. Before, it fell at
  // the end of the first window to the in-use of that moment (the churn's
  // trough), the bound with it, and the cache was purged for the next
  // requests to refault (docs/large-blocks.md, 2026-12-07).
  DecayGuard decay(kHour);  // only the size bound acts
  pool::Purge(true);
  pool::ForgetPeak();
  PoolCounters c = pool::Counters();
  const uint64_t peak = c.held - c.cached + 240 * kMiB;
  ASSERT_TRUE(CacheFreedSpans(12, 320));  // 20 MiB each
  ASSERT_EQ(pool::Counters().cached, 240 * kMiB);
  uint64_t freed = 240 * kMiB;
  const uint64_t window = 4 * peak;
  auto churn_until = [&](uint64_t total) {
    while (freed < total) {
      bool zeroed = false;
      PoolPage* p = pool::AllocSpan(320, &zeroed);
      ASSERT_NE(p, nullptr);
      EXPECT_FALSE(zeroed) << "served from the cache";
      pool::FreeSpan(p);
      freed += 20 * kMiB;
    }
  };
  churn_until(window + window / 2);
  c = pool::Counters();
  EXPECT_EQ(c.cached, 240 * kMiB) << "a window after the peak, the cache still holds it";
  churn_until(2 * window + window / 2);
  c = pool::Counters();
  EXPECT_LT(c.cached, 240 * kMiB) << "two windows after the peak, it is forgotten";
  EXPECT_LE(c.cached, pool::CacheBound());
  EXPECT_TRUE(pool::IsValid());
  pool::Purge(true);
}

TEST(Cache, AnIdleProcessGivesItsCacheBack) {
  // A short decay; the process then stops allocating: only the background
  // purger can return the cache.
  execmem::internal::SetDecayMilliseconds(200);
  void* big = execmem_malloc(24 * kMiB);  // beyond the thread's large-span cache
  ASSERT_NE(big, nullptr);
  memset(big, 1, 24 * kMiB);
  execmem_free(big);
  // (A purger already running from an earlier test may have begun on it.)
  ASSERT_GE(pool::Counters().cached, 16 * kMiB);
  void* large = execmem_malloc(512 * 1024);  // always the slow path: the purger starts
  execmem_free(large);
  EXPECT_TRUE(pool::PurgerRunning());
  // Poll without allocating; the deadline only bounds a broken purger.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (pool::Counters().cached >= kPageSize * 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LT(pool::Counters().cached, kPageSize * 4) << "the cache of an idle process decays";
  execmem::internal::SetDecayMilliseconds(kDefaultDecayMs);
}

}  // namespace
