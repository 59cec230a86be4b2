// The arena pool (pool/pool.h): lock-free span get/put under contention,
// the held / cached / returned counters, decay and purging, capacity.
//
// Contention tests hold spans in several threads at once and mark every page
// of a held span twice: in an ownership table (an atomic per page: a span
// handed to two threads, or two spans that overlap, show up as a claim on a
// page already claimed) and in the span's memory (a tag per 64 KiB page,
// checked when the span is given back: a span handed out twice, or decommitted
// while held, loses its tags). Spans the pool says are zeroed must read zero.
//
// Tests that change process-wide settings (decay, capacity) restore them.
#include "pool/pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "budget/budget.h"
#include "gtest/gtest.h"
#include "platform/os.h"
#include "pool/arena.h"
#include "pool/page.h"
#include "pool/pool_internal.h"
#include "tests/testing.h"

namespace {

using execmem::test_support::kSanitized;

using execmem::DescriptorAfter;
using execmem::kPageSize;
using execmem::PageKind;
using execmem::PageStart;
using execmem::PoolCounters;
using execmem::PoolPage;
namespace pool = execmem::pool;
namespace budget = execmem::budget;

using execmem::test_support::CacheFreedSpans;
using execmem::test_support::CacheRunBeforeFence;
using execmem::test_support::CapacityGuard;
using execmem::test_support::DecayGuard;
using execmem::test_support::kDefaultDecayMs;
using execmem::test_support::kHour;

uint64_t Bytes(uint32_t pages) { return uint64_t{pages} * kPageSize; }

// Bytes of spans handed out and not given back (held counts the cache too).
uint64_t InUse(const PoolCounters& c) { return c.held - c.cached; }

TEST(Pool, SpansAreAlignedDescribeTheirLengthAndFreshOnesReadZero) {
  for (uint32_t pages : {1u, 2u, 5u, 64u, execmem::kMaxSpanPages}) {
    bool zeroed = false;
    PoolPage* head = pool::AllocSpan(pages, &zeroed);
    ASSERT_NE(head, nullptr) << pages << " pages";
    EXPECT_EQ(head->span_pages, pages);
    EXPECT_EQ(head->kind, PageKind::kFree);
    char* start = PageStart(head);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(start) % kPageSize, 0u);
    // The page map finds the span's arena from any byte of it.
    const uintptr_t base = reinterpret_cast<uintptr_t>(start) & ~(execmem::kArenaSize - 1);
    EXPECT_EQ(execmem::SlotLookup(start), base);
    EXPECT_EQ(execmem::SlotLookup(start + Bytes(pages) - 1), base);
    // Never inside the arena's metadata pages.
    EXPECT_GE(static_cast<size_t>(start - reinterpret_cast<char*>(base)),
              execmem::kMetaPages * kPageSize);
    if (zeroed) {
      for (size_t off = 0; off < Bytes(pages); off += 4096) {
        ASSERT_EQ(start[off], 0) << "zeroed span has a nonzero byte at " << off;
      }
    }
    memset(start, 0x5a, Bytes(pages));
    pool::FreeSpan(head);
  }
}

TEST(Pool, RejectsLengthsItCannotServe) {
  bool zeroed = false;
  const PoolCounters before = pool::Counters();
  EXPECT_EQ(pool::AllocSpan(0, &zeroed), nullptr);
  EXPECT_EQ(pool::AllocSpan(execmem::kMaxSpanPages + 1, &zeroed), nullptr);
  EXPECT_EQ(pool::AllocSpan(UINT32_MAX, &zeroed), nullptr);
  const PoolCounters after = pool::Counters();
  EXPECT_EQ(after.held, before.held);
  EXPECT_EQ(after.cached, before.cached);
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, FreedRunsAreReusedLowestAddressFirstBeforeFreshPages) {
  DecayGuard decay(kHour);
  pool::Purge(true);
  bool zeroed = false;
  PoolPage* a = pool::AllocSpan(3, &zeroed);
  PoolPage* b = pool::AllocSpan(3, &zeroed);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(a, b);
  memset(PageStart(a), 0x77, Bytes(3));
  memset(PageStart(b), 0x77, Bytes(3));
  pool::FreeSpan(b);
  pool::FreeSpan(a);
  PoolPage* first = std::min(a, b);
  PoolPage* c = pool::AllocSpan(3, &zeroed);
  EXPECT_EQ(c, first);
  EXPECT_FALSE(zeroed) << "a cached run keeps its old contents";
  PoolPage* d = pool::AllocSpan(3, &zeroed);
  EXPECT_EQ(d, std::max(a, b));
  EXPECT_FALSE(zeroed);
  pool::FreeSpan(c);
  pool::FreeSpan(d);
  EXPECT_TRUE(pool::IsValid());
}

// A span of n pages whose pages [keep, n) went back to the pool: after a
// full purge they are the only cached pages, so they are handed out next.
PoolPage* SpanWithFreeTail(uint32_t n, uint32_t keep) {
  bool zeroed = false;
  PoolPage* a = pool::AllocSpan(n, &zeroed);
  if (a == nullptr) return nullptr;
  for (uint32_t i = 1; i < n; ++i) DescriptorAfter(a, i)->kind = PageKind::kTail;
  pool::ShrinkSpan(a, keep);
  for (uint32_t i = 1; i < keep; ++i) DescriptorAfter(a, i)->kind = PageKind::kFree;
  return a;
}

TEST(Pool, AdjacentFreedRunsCoalesceAndServeTheirSumWithoutANewMapping) {
  DecayGuard decay(kHour);
  pool::Purge(true);
  bool zeroed = false;
  // Two neighbours, a (5 pages) and b (7 pages).
  PoolPage* a = SpanWithFreeTail(12, 5);
  ASSERT_NE(a, nullptr);
  PoolPage* b = pool::AllocSpan(7, &zeroed);
  ASSERT_EQ(b, DescriptorAfter(a, 5)) << "the only cached run is handed out first";
  EXPECT_FALSE(zeroed);
  memset(PageStart(a), 1, Bytes(5));
  memset(PageStart(b), 2, Bytes(7));
  pool::FreeSpan(a);
  pool::FreeSpan(b);
  const PoolCounters before = pool::Counters();
  PoolPage* sum = pool::AllocSpan(12, &zeroed);
  const PoolCounters after = pool::Counters();
  EXPECT_EQ(sum, a) << "the two freed runs serve a request of their sum";
  EXPECT_FALSE(zeroed);
  EXPECT_EQ(sum->span_pages, 12);
  EXPECT_EQ(after.mapped, before.mapped) << "no new mapping";
  EXPECT_EQ(after.arenas, before.arenas);
  EXPECT_EQ(after.held, before.held) << "reuse of cached pages commits nothing new";
  EXPECT_EQ(after.cached, before.cached - Bytes(12));
  // A part of a freed run serves a shorter request, and the rest stays free.
  pool::FreeSpan(sum);
  PoolPage* part = pool::AllocSpan(4, &zeroed);
  EXPECT_EQ(part, a);
  PoolPage* rest = pool::AllocSpan(8, &zeroed);
  EXPECT_EQ(rest, DescriptorAfter(a, 4)) << "a split strands no pages";
  pool::FreeSpan(part);
  pool::FreeSpan(rest);
  EXPECT_TRUE(pool::IsValid());
}

// An arena (4096 pages) holds more than the longest span (kMaxSpanPages,
// what a 64 MiB arena held): growing stops there, as AllocSpan does, even
// when the pages after are free.
TEST(Pool, ASpanGrowsToTheLongestSpanAndNoFurther) {
  DecayGuard decay(kHour);
  PoolPage* a = SpanWithFreeTail(execmem::kMaxSpanPages, 1);
  ASSERT_NE(a, nullptr);
  // The page past the longest span.
  const uint32_t after = execmem::PageIndexOf(a) + execmem::kMaxSpanPages;
  ASSERT_LT(after, execmem::kPagesPerArena) << "an arena has room past the longest span";
  const pool::ArenaMeta* m = pool::MetaOfArena(execmem::ArenaBaseOfPage(a));
  if (((m->free[after / 64].load() >> (after % 64)) & 1) == 0) {
    pool::FreeSpan(a);
    GTEST_SKIP() << "the page past the longest span is taken: nothing to test";
  }
  EXPECT_FALSE(pool::GrowSpan(a, execmem::kMaxSpanPages + 1)) << "longer than kMaxSpanPages";
  EXPECT_EQ(a->span_pages, 1);
  ASSERT_TRUE(pool::GrowSpan(a, execmem::kMaxSpanPages));
  EXPECT_EQ(a->span_pages, execmem::kMaxSpanPages);
  for (uint32_t i = 1; i < a->span_pages; ++i) DescriptorAfter(a, i)->kind = PageKind::kFree;
  pool::FreeSpan(a);
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, SpansGrowOverFreePagesAfterThemAndShrinkBack) {
  DecayGuard decay(kHour);
  pool::Purge(true);
  bool zeroed = false;
  PoolPage* a = SpanWithFreeTail(8, 4);
  ASSERT_NE(a, nullptr);
  PoolPage* b = pool::AllocSpan(4, &zeroed);
  ASSERT_EQ(b, DescriptorAfter(a, 4));
  EXPECT_FALSE(pool::GrowSpan(a, 6)) << "the pages after it are taken";
  EXPECT_EQ(a->span_pages, 4);
  pool::FreeSpan(b);
  // Free pages after the span, cached (b's) or fresh, extend it.
  ASSERT_TRUE(pool::GrowSpan(a, 10));
  EXPECT_EQ(a->span_pages, 10);
  for (uint32_t i = 1; i < 10; ++i) DescriptorAfter(a, i)->kind = PageKind::kTail;
  pool::ShrinkSpan(a, 3);
  EXPECT_EQ(a->span_pages, 3);
  DescriptorAfter(a, 1)->kind = DescriptorAfter(a, 2)->kind =
      PageKind::kFree;  // as the allocator does before FreeSpan
  PoolPage* c = pool::AllocSpan(7, &zeroed);
  EXPECT_EQ(c, DescriptorAfter(a, 3)) << "the pages a shrink gave back are free again";
  pool::FreeSpan(c);
  pool::FreeSpan(a);
  EXPECT_TRUE(pool::IsValid());
}

// The VmFlags of the mapping holding address a (/proc/self/smaps), as " f1 f2 ... ".
std::string VmFlagsAt(uintptr_t a) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (line.find(':') > line.find(' ') && (head >> std::hex >> lo >> dash >> hi) && dash == '-') {
      inside = lo <= a && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line.substr(8) + " ";
    }
  }
  return "";
}

TEST(Pool, ALargeBlockAsksForHugePagesOnlyWhenOnAndAPurgeTakesTheAdviceBack) {
  if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").fail()) {
    GTEST_SKIP() << "the kernel has no transparent huge pages";
  }
  DecayGuard decay(kHour);
  pool::Purge(true);
  constexpr uint32_t kChunk = (2u << 20) / kPageSize;  // pages of a 2 MiB huge page
  bool zeroed = false;
  // 96 pages (6 MiB) cover at least two whole 2 MiB chunks wherever they start.
  PoolPage* a = pool::AllocSpan(96, &zeroed);
  ASSERT_NE(a, nullptr);
  const uintptr_t base = execmem::ArenaBaseOfPage(a);
  const uint32_t start = execmem::PageIndexOf(a);
  const uint32_t first = (start + kChunk - 1) / kChunk;  // the first whole chunk
  const uintptr_t chunk = base + uintptr_t{first} * kChunk * kPageSize;
  const uint32_t bit = uint32_t{1} << (first % 32);
  pool::ArenaMeta* m = pool::MetaOfArena(base);
  std::atomic<uint32_t>& chunks = m->huge_chunks[first / 32];
  // Off (the default), a block asks for nothing.
  pool::AdviseHugeChunks(a, Bytes(96));
  EXPECT_EQ(chunks.load() & bit, 0u) << "advised while huge pages are off";
  EXPECT_EQ(VmFlagsAt(chunk).find(" hg "), std::string::npos) << VmFlagsAt(chunk);
  pool::SetHugePages(true);
  // A block shorter than its first whole chunk's end asks for nothing there.
  const size_t short_block = (size_t{first} * kChunk - start + kChunk) * kPageSize - 4096;
  pool::AdviseHugeChunks(a, short_block);
  EXPECT_EQ(chunks.load() & bit, 0u) << "advised a chunk the block does not cover";
  pool::AdviseHugeChunks(a, Bytes(96));
  EXPECT_NE(chunks.load() & bit, 0u);
  EXPECT_NE(VmFlagsAt(chunk).find(" hg "), std::string::npos) << VmFlagsAt(chunk);
  memset(PageStart(a), 1, Bytes(96));
  // Freed, it stays committed in the cache with the advice; purged, the
  // chunks it covered lose it (khugepaged must not fill them again).
  pool::FreeSpan(a);
  EXPECT_NE(chunks.load() & bit, 0u);
  pool::Purge(true);
  EXPECT_EQ(chunks.load() & bit, 0u);
  EXPECT_EQ(VmFlagsAt(chunk).find(" hg "), std::string::npos) << VmFlagsAt(chunk);
  pool::SetHugePages(false);
  EXPECT_TRUE(pool::IsValid());
}

// Frees the huge block p through its header (pool::FreeHuge), its mapping
// kept for the next huge block unless keep is false.
void FreeHugeBlock(void* p, bool keep = true) {
  pool::FreeHuge(execmem::ArenaOf(execmem::SlotLookup(p)), keep);
}

TEST(Pool, AHugeBlockAsksForHugePagesOnlyWhenOn) {
  if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").fail()) {
    GTEST_SKIP() << "the kernel has no transparent huge pages";
  }
  pool::Purge(true);  // no kept mapping: each block below is a fresh one
  const size_t size = size_t{80} << 20;
  size_t mapped = 0;
  // Off (the default), the mapping asks for nothing: the system's THP setting decides.
  void* p = pool::AllocHuge(size, 1 << 20, 0, &mapped);
  ASSERT_NE(p, nullptr);
  const uintptr_t mid = reinterpret_cast<uintptr_t>(p) + size / 2;
  EXPECT_EQ(VmFlagsAt(mid).find(" hg "), std::string::npos) << VmFlagsAt(mid);
  FreeHugeBlock(p, /*keep=*/false);
  pool::SetHugePages(true);
  void* q = pool::AllocHuge(size, 1 << 20, 0, &mapped);
  ASSERT_NE(q, nullptr);
  const uintptr_t qmid = reinterpret_cast<uintptr_t>(q) + size / 2;
  EXPECT_NE(VmFlagsAt(qmid).find(" hg "), std::string::npos) << VmFlagsAt(qmid);
  FreeHugeBlock(q, /*keep=*/false);
  pool::SetHugePages(false);
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, FindRunFindsRunsAcrossWords) {
  uint64_t bits[pool::kWords] = {};
  EXPECT_EQ(pool::FindRun(bits, 1), -1);
  bits[0] = uint64_t{1} << 63;
  bits[1] = 0x3;
  EXPECT_EQ(pool::FindRun(bits, 3), 63);
  EXPECT_EQ(pool::FindRun(bits, 4), -1);
  EXPECT_EQ(pool::FindRun(bits, 1, 64), 64);
  bits[2] = ~uint64_t{0};
  bits[3] = 0xff;
  EXPECT_EQ(pool::FindRun(bits, 72), 128);
  EXPECT_EQ(pool::FindRun(bits, 73), -1);
  EXPECT_EQ(pool::RunMask(60, 8, 0), uint64_t{0xf} << 60);
  EXPECT_EQ(pool::RunMask(60, 8, 1), uint64_t{0xf});
  EXPECT_EQ(pool::RunMask(0, 64, 0), ~uint64_t{0});
}

TEST(Pool, HeldAndCachedFollowEverySpanExactly) {
  DecayGuard decay(kHour);
  pool::Purge(true);
  const PoolCounters start = pool::Counters();
  EXPECT_EQ(start.cached, 0u) << "Purge(true) leaves nothing cached";
  const std::vector<uint32_t> lengths = {1, 1, 2, 3, 7, 16, 40};
  uint64_t total = 0;
  std::vector<PoolPage*> spans;
  for (uint32_t n : lengths) {
    bool zeroed = false;
    PoolPage* p = pool::AllocSpan(n, &zeroed);
    ASSERT_NE(p, nullptr);
    spans.push_back(p);
    total += Bytes(n);
    const PoolCounters c = pool::Counters();
    EXPECT_EQ(c.held, start.held + total);
    EXPECT_EQ(c.cached, 0u);
  }
  for (PoolPage* p : spans) pool::FreeSpan(p);
  PoolCounters c = pool::Counters();
  EXPECT_EQ(c.held, start.held + total) << "freed spans stay committed (hot)";
  EXPECT_EQ(c.cached, total);
  EXPECT_EQ(InUse(c), InUse(start));
  // Taking them again comes from the cache: held does not move.
  spans.clear();
  for (uint32_t n : lengths) {
    bool zeroed = true;
    PoolPage* p = pool::AllocSpan(n, &zeroed);
    ASSERT_NE(p, nullptr);
    EXPECT_FALSE(zeroed);
    spans.push_back(p);
  }
  c = pool::Counters();
  EXPECT_EQ(c.held, start.held + total);
  EXPECT_EQ(c.cached, 0u);
  for (PoolPage* p : spans) pool::FreeSpan(p);
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, FreshPagesPastTheHighWaterMarkGiveBackAsManyCachedPages) {
  // Freed runs of the wrong length must not make the heap grow: a request
  // they cannot serve takes fresh pages, and the oldest cached pages go back
  // for them (the Dask workers' peak RSS, docs/python-arenas.md).
  DecayGuard decay(kHour);  // neither the decay nor the size bound acts
  pool::Purge(true);
  pool::ForgetPeak();
  PoolPage* fence = CacheRunBeforeFence(8);  // a run of 8 pages, cached
  ASSERT_NE(fence, nullptr);
  const PoolCounters before = pool::Counters();
  ASSERT_EQ(before.cached, Bytes(8));
  ASSERT_LT(before.cached, pool::CacheBound());
  bool zeroed = false;
  PoolPage* c = pool::AllocSpan(12, &zeroed);  // the run's 8 pages cannot serve it
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(zeroed) << "12 fresh pages";
  PoolCounters after = pool::Counters();
  EXPECT_EQ(after.cached, 0u) << "the run's pages went back for the fresh ones";
  EXPECT_EQ(after.held, before.held - Bytes(8) + Bytes(12));
  EXPECT_EQ(after.returned_to_os, before.returned_to_os + Bytes(8));
  // Below the mark nothing goes back: c freed, then 4 of its pages taken.
  pool::FreeSpan(c);
  PoolPage* d = pool::AllocSpan(4, &zeroed);
  ASSERT_NE(d, nullptr);
  EXPECT_FALSE(zeroed);
  after = pool::Counters();
  EXPECT_EQ(after.cached, Bytes(8));
  EXPECT_EQ(after.returned_to_os, before.returned_to_os + Bytes(8));
  pool::FreeSpan(d);
  pool::FreeSpan(fence);
  EXPECT_TRUE(pool::IsValid());
  pool::Purge(true);
}

TEST(Pool, ZeroDecayReturnsPagesAtOnceAndTheyComeBackZero) {
  pool::Purge(true);
  DecayGuard decay(0);
  const PoolCounters before = pool::Counters();
  bool zeroed = false;
  PoolPage* s = pool::AllocSpan(4, &zeroed);
  ASSERT_NE(s, nullptr);
  memset(PageStart(s), 0xab, Bytes(4));
  EXPECT_EQ(pool::Counters().held, before.held + Bytes(4));
  pool::FreeSpan(s);
  const PoolCounters after = pool::Counters();
  EXPECT_EQ(after.returned_to_os, before.returned_to_os + Bytes(4));
  EXPECT_EQ(after.held, before.held);
  EXPECT_EQ(after.cached, before.cached);
  // The same span comes back (the cold stack is LIFO too), reading zero.
  PoolPage* t = pool::AllocSpan(4, &zeroed);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t, s);
  EXPECT_TRUE(zeroed);
  const char* m = PageStart(t);
  for (size_t i = 0; i < Bytes(4); ++i) ASSERT_EQ(m[i], 0) << "byte " << i;
  pool::FreeSpan(t);
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, PurgeReturnsIdleSpansAfterTheDecayAndAllOfThemWhenAsked) {
  DecayGuard decay(kHour);
  pool::Purge(true);
  const PoolCounters start = pool::Counters();
  std::vector<PoolPage*> spans;
  for (int i = 0; i < 5; ++i) {
    bool zeroed = false;
    spans.push_back(pool::AllocSpan(3, &zeroed));
    ASSERT_NE(spans.back(), nullptr);
  }
  for (PoolPage* p : spans) pool::FreeSpan(p);
  EXPECT_EQ(pool::Counters().cached, Bytes(15));
  pool::Purge(false);  // nothing has been idle for an hour
  EXPECT_EQ(pool::Counters().cached, Bytes(15));
  EXPECT_EQ(pool::Counters().returned_to_os, start.returned_to_os);
  pool::Purge(true);
  PoolCounters c = pool::Counters();
  EXPECT_EQ(c.cached, 0u);
  EXPECT_EQ(c.held, start.held);
  EXPECT_EQ(c.returned_to_os, start.returned_to_os + Bytes(15));

  // With a short decay, a plain purge returns what has been idle long enough.
  pool::SetDecayMs(20);
  bool zeroed = false;
  PoolPage* p = pool::AllocSpan(2, &zeroed);
  ASSERT_NE(p, nullptr);
  pool::FreeSpan(p);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  pool::Purge(false);
  c = pool::Counters();
  EXPECT_EQ(c.cached, 0u);
  EXPECT_EQ(c.returned_to_os, start.returned_to_os + Bytes(17));
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, CapacityRefusesSpansCleanlyAndTheyComeBackWhenRaised) {
  CapacityGuard restore;
  DecayGuard decay(kHour);
  pool::Purge(true);
  const PoolCounters before = pool::Counters();
  // The capacity may not go below what executors have reserved and been
  // granted (budget/); above held, that leaves `room` pages for spans.
  const budget::LedgerCounters ledger = budget::Counters();
  const uint64_t cap = std::max(before.held + Bytes(8), ledger.reserved + ledger.granted);
  const uint32_t room = static_cast<uint32_t>((cap - before.held) / kPageSize);
  ASSERT_LT(room, execmem::kMaxSpanPages) << "executors hold grants too large for this test";
  ASSERT_TRUE(budget::SetCapacity(cap));
  EXPECT_EQ(pool::Capacity(), cap);

  bool zeroed = false;
  EXPECT_EQ(pool::AllocSpan(room + 1, &zeroed), nullptr);
  EXPECT_EQ(pool::Counters().held, before.held) << "a refused span leaves nothing charged";
  PoolPage* a = pool::AllocSpan(room, &zeroed);  // exactly at capacity
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(pool::AllocSpan(1, &zeroed), nullptr);
  // A cached span is already held: taking it again needs no room.
  pool::FreeSpan(a);
  PoolPage* b = pool::AllocSpan(room, &zeroed);
  EXPECT_EQ(b, a);
  // Part of a cached run serves a shorter request; the rest stays cached.
  pool::FreeSpan(b);
  PoolPage* c = pool::AllocSpan(room - 1, &zeroed);
  EXPECT_EQ(c, a);
  EXPECT_EQ(pool::Counters().cached, Bytes(1));
  pool::FreeSpan(c);
  // A request no cached run can serve (the cache is cut in two by a held
  // page) needs fresh pages, so the pool purges its cache before refusing.
  PoolPage* p = pool::AllocSpan(2, &zeroed);
  PoolPage* q = pool::AllocSpan(1, &zeroed);
  ASSERT_EQ(p, a);
  ASSERT_EQ(q, DescriptorAfter(a, 2));
  pool::FreeSpan(p);
  PoolPage* r = pool::AllocSpan(room - 2, &zeroed);
  ASSERT_NE(r, nullptr) << "the pool purges its cache before refusing";
  EXPECT_EQ(pool::Counters().cached, 0u);
  pool::FreeSpan(r);
  pool::FreeSpan(q);
  EXPECT_TRUE(pool::IsValid());

  ASSERT_TRUE(budget::SetCapacity(before.capacity));
  PoolPage* d = pool::AllocSpan(room + 1, &zeroed);
  ASSERT_NE(d, nullptr);
  pool::FreeSpan(d);
}

TEST(Pool, HugeMappingsAreInThePageMapUntilFreed) {
  pool::Purge(true);  // else the huge block past the high-water mark gives cached pages back
  const PoolCounters before = pool::Counters();
  size_t mapped = 0;
  const size_t size = 100ull << 20;
  void* p = pool::AllocHuge(size, 1 << 20, 0, &mapped);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (1 << 20), 0u);
  EXPECT_GE(mapped, size);
  const uintptr_t base = execmem::SlotLookup(p);
  ASSERT_NE(base, 0u);
  EXPECT_EQ(base % execmem::kArenaSize, 0u);
  EXPECT_EQ(execmem::SlotLookup(static_cast<char*>(p) + size - 1), base);
  execmem::ArenaHeader* hdr = execmem::ArenaOf(base);
  EXPECT_EQ(hdr->huge, 1u);
  EXPECT_EQ(hdr->huge_user, reinterpret_cast<uintptr_t>(p));
  static_cast<char*>(p)[size - 1] = 1;
  EXPECT_EQ(pool::Counters().held, before.held + mapped);
  pool::FreeHuge(hdr, /*keep=*/false);
  EXPECT_EQ(execmem::SlotLookup(p), 0u);
  EXPECT_EQ(pool::Counters().held, before.held);
  EXPECT_EQ(pool::Counters().mapped, before.mapped);
}

TEST(Pool, AHugeBlockPastTheHighWaterMarkGivesBackAsManyCachedPages) {
  // Cached arena pages cannot serve a huge block (its own mapping): when it
  // makes the committed heap pass its high-water mark, as many cached pages
  // go back, at its allocation and at each growth, so that a cache kept for
  // the recent peak of large spans does not stay beside the huge blocks of a
  // program's next phase (execmem-wl-largebuf, docs/large-blocks.md).
  DecayGuard decay(kHour);  // neither the decay nor the size bound acts
  pool::Purge(true);
  pool::ForgetPeak();
  ASSERT_TRUE(CacheFreedSpans(6, 320));  // 20 MiB each
  const PoolCounters before = pool::Counters();
  ASSERT_EQ(before.cached, Bytes(6 * 320)) << "below the recent peak: all of it stays";
  size_t mapped = 0;
  void* p = pool::AllocHuge(size_t{100} << 20, 1 << 20, 0, &mapped);
  ASSERT_NE(p, nullptr);
  PoolCounters after = pool::Counters();
  // The heap grew by `mapped`; the cache gave back as much, to the page.
  EXPECT_LE(after.cached, before.cached - mapped);
  EXPECT_GT(after.cached + kPageSize, before.cached - mapped);
  EXPECT_LE(after.held, before.held);
  execmem::ArenaHeader* hdr = execmem::ArenaOf(execmem::SlotLookup(p));
  int64_t delta = 0;
  hdr = pool::ResizeHuge(hdr, size_t{110} << 20, &delta);  // grows by 10 MiB
  ASSERT_NE(hdr, nullptr);
  ASSERT_GT(delta, 0);
  const PoolCounters grown = pool::Counters();
  EXPECT_LE(grown.cached, after.cached - static_cast<uint64_t>(delta));
  EXPECT_LE(grown.held, before.held);
  pool::FreeHuge(hdr);
  EXPECT_TRUE(pool::IsValid());
  pool::Purge(true);
}

TEST(Pool, AFreedHugeMappingServesTheNextHugeBlockThatFitsUntilAPurgeGivesItBack) {
  // A freed huge block's mapping is kept whole (its pages resident: no
  // fault, no zeroing of fresh huge pages) and serves the next huge block
  // that fits, at the same address, and the block's growth over the rest;
  // counted as cached in the pool's bytes held, until Purge(true) (trim)
  // gives it back (docs/large-blocks.md, ninth step).
  DecayGuard decay(kHour);
  pool::Purge(true);
  pool::ForgetPeak();
  const PoolCounters before = pool::Counters();
  size_t mapped = 0;
  bool zeroed = false;
  char* p = static_cast<char*>(pool::AllocHuge(size_t{100} << 20, 1 << 20, 0, &mapped, &zeroed));
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(zeroed) << "a fresh mapping";
  p[0] = 7;
  FreeHugeBlock(p);
  EXPECT_EQ(execmem::SlotLookup(p), 0u) << "out of the page map while kept";
  PoolCounters kept = pool::Counters();
  EXPECT_EQ(kept.held, before.held + mapped);
  EXPECT_EQ(kept.cached, before.cached + mapped);
  EXPECT_EQ(kept.mapped, before.mapped + mapped);

  size_t mapped2 = 0;
  char* q = static_cast<char*>(pool::AllocHuge(size_t{70} << 20, 1 << 20, 0, &mapped2, &zeroed));
  ASSERT_EQ(q, p) << "the kept mapping serves it";
  EXPECT_FALSE(zeroed);
  EXPECT_EQ(q[0], 7) << "its pages, not fresh ones";
  EXPECT_EQ(pool::Counters().held, kept.held) << "no fresh bytes";
  EXPECT_EQ(pool::Counters().cached, kept.cached - mapped2);
  execmem::ArenaHeader* hdr = execmem::ArenaOf(execmem::SlotLookup(q));
  int64_t delta = 0;
  execmem::ArenaHeader* grown = pool::ResizeHuge(hdr, size_t{90} << 20, &delta);
  ASSERT_EQ(grown, hdr) << "grows in place over the rest of the kept mapping";
  EXPECT_EQ(delta, int64_t{20} << 20);
  EXPECT_EQ(pool::Counters().held, kept.held);
  EXPECT_EQ(pool::Counters().cached, kept.cached - mapped2 - (size_t{20} << 20));
  EXPECT_EQ(execmem::SlotLookup(q + (size_t{90} << 20) - 1), execmem::SlotLookup(q));
  pool::FreeHuge(grown);
  EXPECT_EQ(pool::Counters().held, kept.held);

  pool::Purge(true);
  const PoolCounters trimmed = pool::Counters();
  EXPECT_EQ(trimmed.held, before.held);
  EXPECT_EQ(trimmed.cached, before.cached);
  EXPECT_EQ(trimmed.mapped, before.mapped);
  char* r = static_cast<char*>(pool::AllocHuge(size_t{70} << 20, 1 << 20, 0, &mapped2, &zeroed));
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(zeroed) << "nothing kept after Purge(true): a fresh mapping";
  EXPECT_EQ(r[0], 0);
  FreeHugeBlock(r, /*keep=*/false);
  EXPECT_EQ(pool::Counters().held, before.held);
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, TheRestOfAKeptMappingGoesBackWhenItsBlockShrinksOrIsUnmapped) {
  // Only the block that took a kept mapping's front may grow over the rest
  // (mremap cannot grow a range spanning two mappings): once that block
  // shrinks, moves or is unmapped, the rest goes back, so that no other block
  // later placed at the same address finds it.
  DecayGuard decay(kHour);
  pool::Purge(true);
  const PoolCounters before = pool::Counters();
  size_t mapped = 0;
  void* p = pool::AllocHuge(size_t{100} << 20, 1 << 20, 0, &mapped);
  ASSERT_NE(p, nullptr);
  FreeHugeBlock(p);
  size_t taken = 0;
  void* q = pool::AllocHuge(size_t{70} << 20, 1 << 20, 0, &taken);
  ASSERT_EQ(q, p);
  ASSERT_EQ(pool::Counters().cached, before.cached + mapped - taken) << "the rest is kept";
  int64_t delta = 0;
  execmem::ArenaHeader* hdr =
      pool::ResizeHuge(execmem::ArenaOf(execmem::SlotLookup(q)), size_t{50} << 20, &delta);
  ASSERT_NE(hdr, nullptr);
  ASSERT_LT(delta, 0);
  EXPECT_EQ(pool::Counters().cached, before.cached) << "a shrink leaves a gap: the rest went back";
  EXPECT_EQ(pool::Counters().held + static_cast<uint64_t>(-delta), before.held + taken);
  pool::FreeHuge(hdr, /*keep=*/false);
  EXPECT_EQ(pool::Counters().held, before.held);
  EXPECT_EQ(pool::Counters().mapped, before.mapped);

  // Unmapped (not kept): its rest goes back with it.
  p = pool::AllocHuge(size_t{100} << 20, 1 << 20, 0, &mapped);
  ASSERT_NE(p, nullptr);
  FreeHugeBlock(p);
  q = pool::AllocHuge(size_t{70} << 20, 1 << 20, 0, &taken);
  ASSERT_EQ(q, p);
  FreeHugeBlock(q, /*keep=*/false);
  const PoolCounters after = pool::Counters();
  EXPECT_EQ(after.cached, before.cached);
  EXPECT_EQ(after.held, before.held);
  EXPECT_EQ(after.mapped, before.mapped);
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, ANewHugeBlockTakesOnlyAWholeKeptMappingNeverARest) {
  // A rest's front held the last block's bytes where a new block's header
  // region (the page map's descriptors) would be: even at an arena-aligned
  // address, a rest serves only the growth of the block before it.
  DecayGuard decay(kHour);
  pool::Purge(true);
  const PoolCounters before = pool::Counters();
  size_t mapped = 0;
  void* a = pool::AllocHuge(size_t{600} << 20, 1 << 20, 0, &mapped);
  ASSERT_NE(a, nullptr);
  FreeHugeBlock(a);
  ASSERT_EQ(pool::Counters().cached, before.cached + mapped);
  size_t taken = 0;
  void* x = pool::AllocHuge(size_t{255} << 20, 1 << 20, 0, &taken);  // 256 MiB mapped
  ASSERT_EQ(x, a);
  ASSERT_EQ(taken, execmem::kArenaSize);
  const uintptr_t rest = execmem::SlotLookup(x) + execmem::kArenaSize;  // arena-aligned
  bool zeroed = false;
  size_t fresh = 0;
  void* y = pool::AllocHuge(size_t{100} << 20, 1 << 20, 0, &fresh, &zeroed);
  ASSERT_NE(y, nullptr);
  EXPECT_NE(execmem::SlotLookup(y), rest) << "the rest of x's mapping is not a new block's";
  EXPECT_TRUE(zeroed);
  FreeHugeBlock(y, /*keep=*/false);
  FreeHugeBlock(x, /*keep=*/false);
  pool::Purge(true);
  EXPECT_EQ(pool::Counters().held, before.held);
  EXPECT_EQ(pool::Counters().mapped, before.mapped);
}

TEST(Pool, KeptHugeMappingsGoBackBeforeAFork) {
  // A child must not inherit the parent's kept mappings (nor the fork copy
  // their page tables): the fork handler gives them back.
  DecayGuard decay(kHour);
  pool::Purge(true);
  const PoolCounters before = pool::Counters();
  size_t mapped = 0;
  void* p = pool::AllocHuge(size_t{100} << 20, 1 << 20, 0, &mapped);
  ASSERT_NE(p, nullptr);
  FreeHugeBlock(p);
  ASSERT_EQ(pool::Counters().cached, before.cached + mapped);
  pool::LockForFork();
  pool::UnlockAfterFork(/*child=*/false);
  const PoolCounters after = pool::Counters();
  EXPECT_EQ(after.cached, before.cached);
  EXPECT_EQ(after.held, before.held);
  EXPECT_EQ(after.mapped, before.mapped);
}

TEST(Pool, AKeptHugeMappingGivesBackWhatSpansTakeFreshPastTheHighWaterMark) {
  // Kept, a freed huge mapping must not stay beside the fresh pages of the
  // program's next phase (peak RSS): past the committed heap's high-water
  // mark, a span's fresh pages take as many kept bytes back, whatever its
  // length.
  DecayGuard decay(kHour);
  pool::Purge(true);
  size_t mapped = 0;
  void* p = pool::AllocHuge(size_t{100} << 20, 1 << 20, 0, &mapped);
  ASSERT_NE(p, nullptr);
  FreeHugeBlock(p);
  pool::ForgetPeak();  // the high-water mark: what is held now, the kept mapping included
  const PoolCounters kept = pool::Counters();
  ASSERT_GE(kept.cached, mapped);
  bool zeroed = false;
  PoolPage* s = pool::AllocSpan(320, &zeroed);  // 20 MiB of fresh pages
  ASSERT_NE(s, nullptr);
  const PoolCounters after = pool::Counters();
  EXPECT_LE(after.held, kept.held) << "the heap did not grow";
  EXPECT_LE(after.cached + Bytes(320), kept.cached) << "as many kept bytes went back";
  pool::FreeSpan(s);
  pool::Purge(true);
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, ASpanGrowingInPlaceOverFreshPagesGivesBackKeptHugeBytes) {
  // A realloc chain's spans grow in place (GrowSpan): past the high-water
  // mark their fresh pages take kept huge bytes back too, else the next
  // chain's arena phase sits beside the whole kept mapping (reallocchain 2:
  // 329.6 MiB of peak RSS against 258.9).
  DecayGuard decay(kHour);
  pool::Purge(true);
  size_t mapped = 0;
  void* p = pool::AllocHuge(size_t{100} << 20, 1 << 20, 0, &mapped);
  ASSERT_NE(p, nullptr);
  FreeHugeBlock(p);
  bool zeroed = false;
  PoolPage* s = pool::AllocSpan(16, &zeroed, /*room=*/320);
  ASSERT_NE(s, nullptr);
  pool::ForgetPeak();  // the high-water mark: what is held now
  const PoolCounters before = pool::Counters();
  ASSERT_GE(before.cached, Bytes(320));
  ASSERT_TRUE(pool::GrowSpan(s, 336)) << "320 fresh pages after it";
  const PoolCounters after = pool::Counters();
  EXPECT_LE(after.held, before.held) << "the heap did not grow";
  EXPECT_LE(after.cached + Bytes(320), before.cached);
  for (uint32_t i = 1; i < 336; ++i) DescriptorAfter(s, i)->kind = PageKind::kFree;
  pool::FreeSpan(s);
  pool::Purge(true);
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, AFreedHugeMappingIsKeptBeforeTheOldestCachedPagesWithinTheBound) {
  // The page cache and the kept mappings share the cache bound: the mapping,
  // freed last, is kept and the oldest cached pages make room for it
  // (execmem-wl-largebuf: its churn's spans were cached when the chain's
  // block was freed, and the mapping was not kept).
  DecayGuard decay(kHour);
  pool::Purge(true);
  pool::ForgetPeak();
  size_t mapped = 0;
  void* p = pool::AllocHuge(size_t{200} << 20, 1 << 20, 0, &mapped);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(CacheFreedSpans(6, 320));  // 120 MiB, beside it
  // A peak forgotten (as a window of frees forgets it): the bound is then
  // the block's 200 MiB and a sixth, less than it and the cached spans.
  pool::ForgetPeak();
  const PoolCounters before = pool::Counters();
  ASSERT_GE(before.cached, Bytes(6 * 320));
  FreeHugeBlock(p);
  const PoolCounters after = pool::Counters();
  EXPECT_EQ(after.held + (before.cached + mapped - after.cached), before.held)
      << "only cached pages went back";
  EXPECT_GE(after.cached, mapped) << "the mapping is kept";
  EXPECT_LT(after.cached, before.cached + mapped) << "cached pages made room for it";
  EXPECT_LE(after.cached, pool::CacheBound());
  size_t mapped2 = 0;
  EXPECT_EQ(pool::AllocHuge(size_t{150} << 20, 1 << 20, 0, &mapped2), p);
  FreeHugeBlock(p, /*keep=*/false);
  pool::Purge(true);
  EXPECT_TRUE(pool::IsValid());
}

TEST(Pool, TwoFreedLargeBlocksSideBySideServeALongerRequestWithoutFreshPages) {
  // Large-block churn (execmem-wl-largechurn, docs/large-blocks.md): a free run
  // cannot cross an arena's end, so blocks must share arenas for their freed
  // runs to join. Two 600-page blocks (37.5 MiB each) lie side by side in one
  // arena; freed, they serve a 1 000-page request from their committed pages:
  // the pool takes no fresh page (the committed heap does not grow) and
  // purges none. With 64 MiB arenas (1021 pages) the second block went to a
  // second arena and the request took 400 fresh pages beside the first's run.
  DecayGuard decay(kHour);  // neither the decay nor the size bound acts
  pool::Purge(true);
  pool::ForgetPeak();
  bool zeroed = false;
  PoolPage* a = pool::AllocSpan(600, &zeroed);
  ASSERT_NE(a, nullptr);
  PoolPage* b = pool::AllocSpan(600, &zeroed);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(PageStart(b), PageStart(a) + Bytes(600)) << "the second block not beside the first";
  memset(PageStart(a), 1, Bytes(600));
  memset(PageStart(b), 1, Bytes(600));
  pool::FreeSpan(a);
  pool::FreeSpan(b);
  const PoolCounters before = pool::Counters();
  ASSERT_EQ(before.cached, Bytes(1200)) << "below the recent peak: all of it stays";
  PoolPage* c = pool::AllocSpan(1000, &zeroed);
  ASSERT_NE(c, nullptr);
  const PoolCounters after = pool::Counters();
  EXPECT_FALSE(zeroed);
  EXPECT_EQ(after.held, before.held) << "fresh pages: " << (after.held - before.held) / kPageSize;
  EXPECT_EQ(after.returned_to_os, before.returned_to_os) << "purged";
  EXPECT_EQ(after.cached, Bytes(200));
  pool::FreeSpan(c);
  EXPECT_TRUE(pool::IsValid());
  pool::Purge(true);
}

TEST(Pool, ALargeRequestTakesTheShortestCommittedSegmentThatHoldsIt) {
  // Best fit on what is committed (docs/large-blocks.md, eighth step): a
  // 100-page request that two committed segments could serve whole takes the
  // shorter one (120 pages, in a longer free run whose other pages were
  // purged), not the 300-page segment of a shorter free run, so that a
  // following 300-page request finds that segment whole and takes no fresh
  // page. Before, ties went to the shorter free run: the 100 pages carved the
  // 300-page segment and the second request took 180 fresh pages.
  DecayGuard decay(kHour);  // neither the decay nor the size bound acts
  pool::Purge(true);
  pool::ForgetPeak();
  // One span, carved into [a 120 | c 200 | live 1 | b 300 | live 1].
  bool zeroed = false;
  PoolPage* z = pool::AllocSpan(622, &zeroed);
  ASSERT_NE(z, nullptr);
  memset(PageStart(z), 1, Bytes(622));
  auto piece = [z](uint32_t from, uint32_t pages) {
    PoolPage* p = DescriptorAfter(z, from);
    p->span_pages = static_cast<uint16_t>(pages);
    p->kind = PageKind::kFree;
    return p;
  };
  PoolPage* a = piece(0, 120);
  PoolPage* c = piece(120, 200);
  PoolPage* live1 = piece(320, 1);
  PoolPage* b = piece(321, 300);
  PoolPage* live2 = piece(621, 1);
  pool::FreeSpan(c);
  pool::Purge(true);  // c's pages go back: a's free run is 320 pages, 120 committed
  pool::FreeSpan(b);  // b's free run: 300 pages, all committed
  pool::FreeSpan(a);  // last, so that no 300-page request finds b as the run freed last
  const PoolCounters before = pool::Counters();
  ASSERT_EQ(before.cached, Bytes(420)) << "below the cache's floor: all of it stays";
  PoolPage* first = pool::AllocSpan(100, &zeroed);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(PageStart(first), PageStart(a)) << "took the 300-page segment";
  PoolPage* second = pool::AllocSpan(300, &zeroed);
  ASSERT_NE(second, nullptr);
  const PoolCounters after = pool::Counters();
  EXPECT_EQ(PageStart(second), PageStart(b));
  EXPECT_EQ(after.held, before.held) << "fresh pages: " << (after.held - before.held) / kPageSize;
  EXPECT_EQ(after.cached, Bytes(20));
  for (PoolPage* p : {first, second, live1, live2}) pool::FreeSpan(p);
  EXPECT_TRUE(pool::IsValid());
  pool::Purge(true);
}

TEST(Pool, ALargeRequestTakesAsManyCommittedPagesAsAnyWindowHolds) {
  // The placement counts only windows that start where a committed segment
  // starts or end where one ends (pool.cc, BestWindow): checked against every
  // window, over random patterns of live, committed and purged pieces.
  DecayGuard decay(kHour);  // neither the decay nor the size bound acts
  std::mt19937 rng(20261207);
  for (int round = 0; round < 100; ++round) {
    pool::Purge(true);
    pool::ForgetPeak();
    constexpr uint32_t kSpan = 1000;
    bool zeroed = false;
    PoolPage* z = pool::AllocSpan(kSpan, &zeroed);
    ASSERT_NE(z, nullptr);
    // 0 live, 1 committed free, 2 purged free (1 in 5 pieces live, 2 in 5
    // committed); the first and last pieces live, so that the free runs lie
    // within z.
    std::vector<int> state(kSpan, 0);
    std::vector<PoolPage*> live, committed, purged;
    for (uint32_t at = 0; at < kSpan;) {
      const uint32_t len = std::min<uint32_t>(kSpan - at, 1 + rng() % 30);
      const int st = at == 0 || at + len == kSpan ? 0 : static_cast<int>(1 + rng() % 5) % 3;
      PoolPage* p = DescriptorAfter(z, at);
      p->span_pages = static_cast<uint16_t>(len);
      p->kind = PageKind::kFree;
      (st == 0 ? live : st == 1 ? committed : purged).push_back(p);
      std::fill(state.begin() + at, state.begin() + at + len, st);
      at += len;
    }
    for (PoolPage* p : purged) pool::FreeSpan(p);
    pool::Purge(true);
    for (PoolPage* p : committed) pool::FreeSpan(p);
    const uint32_t want = 16 + rng() % 150;
    int most = -1;  // the most committed pages of any window of free pages
    for (uint32_t a = 0; a + want <= kSpan; ++a) {
      int n = 0;
      bool all_free = true;
      for (uint32_t k = a; k < a + want && all_free; ++k) {
        all_free = state[k] != 0;
        n += state[k] == 1;
      }
      if (all_free) most = std::max(most, n);
    }
    if (most <= 0) {  // no committed page can serve it: not this test's case
      for (PoolPage* p : live) pool::FreeSpan(p);
      continue;
    }
    const PoolCounters before = pool::Counters();
    PoolPage* got = pool::AllocSpan(want, &zeroed);
    ASSERT_NE(got, nullptr);
    const PoolCounters after = pool::Counters();
    EXPECT_EQ(after.held - before.held, Bytes(want - static_cast<uint32_t>(most)))
        << "round " << round << ": " << want << " pages, at most " << most << " committed";
    pool::FreeSpan(got);
    for (PoolPage* p : live) pool::FreeSpan(p);
  }
  EXPECT_TRUE(pool::IsValid());
  pool::Purge(true);
}

// The placement rule of BestWindow (pool.cc) from every window, for one
// arena's bitmaps: `state` holds, per page, 0 live (or metadata), 1 free and
// committed, 2 free and purged. Returns "" when `got` follows the rule.
std::string CheckBestWindow(const std::vector<int>& state, uint32_t pages, bool found,
                            const pool::Placement& got) {
  const uint32_t n = execmem::kPagesPerArena;
  std::vector<uint32_t> sum(n + 1, 0);  // committed pages before each page
  for (uint32_t k = 0; k < n; ++k) sum[k + 1] = sum[k] + (state[k] == 1);
  struct Run {
    uint32_t s, e, best;  // [s, e), the most committed pages of a window in it
  };
  std::vector<Run> runs;
  uint32_t most = 0;
  bool any = false;
  for (uint32_t s = 0; s < n;) {
    if (state[s] == 0) {
      ++s;
      continue;
    }
    uint32_t e = s;
    while (e < n && state[e] != 0) ++e;
    Run r{s, e, 0};
    for (uint32_t w = s; w + pages <= e; ++w) r.best = std::max(r.best, sum[w + pages] - sum[w]);
    if (e - s >= pages) any = true, most = std::max(most, r.best);
    runs.push_back(r);
    s = e;
  }
  std::ostringstream why;
  if (found != any) return found ? "found a window where none fits" : "found none";
  if (!found) return "";
  if (got.dirty != most) why << "dirty " << got.dirty << ", the best window holds " << most;
  const bool inside = got.start + pages <= n &&
                      std::all_of(state.begin() + got.start, state.begin() + got.start + pages,
                                  [](int st) { return st != 0; });
  if (!inside) return "the window is not free";
  if (sum[got.start + pages] - sum[got.start] != got.dirty) why << "; the window's count is wrong";
  uint32_t rank = ~uint32_t{0}, start = 0;
  if (most == pages) {
    // The shortest committed segment that holds it, at its end that borders a
    // live page when only that end does, else at its start; then the lower address.
    for (uint32_t a = 0; a < n;) {
      if (state[a] != 1) {
        ++a;
        continue;
      }
      uint32_t b = a;
      while (b < n && state[b] == 1) ++b;
      if (b - a >= pages && b - a < rank) {
        const bool live_before = a == 0 || state[a - 1] == 0;
        const bool live_after = b == n || state[b] == 0;
        rank = b - a, start = !live_before && live_after ? b - pages : a;
      }
      a = b;
    }
    if (got.rank != rank || got.start != start) {
      why << "; took " << got.start << " (rank " << got.rank << "), not " << start << " (rank "
          << rank << ")";
    }
  } else {
    // Ties to the shortest free run, then the lower address.
    const Run* best = nullptr;
    for (const Run& r : runs) {
      if (r.e - r.s >= pages && r.best == most && (best == nullptr || r.e - r.s < best->e - best->s)) {
        best = &r;
      }
    }
    if (got.rank != best->e - best->s || got.start < best->s || got.start + pages > best->e) {
      why << "; took " << got.start << " (rank " << got.rank << "), not in the run at " << best->s
          << " of " << best->e - best->s;
    }
  }
  return why.str();
}

TEST(Pool, BestWindowAgreesWithEveryWindowOverWholeArenas) {
  // BestWindow counts only the windows that start where a committed segment
  // starts (or end at the run's end) and walks the bitmaps a word at a time;
  // checked here against every window of whole arenas: runs at the metadata
  // and at the arena's end, runs and segments across words, requests of 1 to
  // kMaxSpanPages pages and longer than any run, runs all committed or none.
  const uint32_t n = execmem::kPagesPerArena;
  std::mt19937_64 rng(20261208);
  auto check = [&](const std::vector<int>& state, uint32_t pages, const std::string& what) {
    uint64_t free[pool::kWords] = {}, dirty[pool::kWords] = {};
    for (uint32_t k = 0; k < n; ++k) {
      if (state[k] != 0) free[k / 64] |= uint64_t{1} << (k % 64);
      if (state[k] == 1) dirty[k / 64] |= uint64_t{1} << (k % 64);
    }
    pool::Placement got;
    const bool found = pool::BestWindow(free, dirty, pages, &got);
    const std::string why = CheckBestWindow(state, pages, found, got);
    EXPECT_EQ(why, "") << what << ", " << pages << " pages";
    return why.empty();
  };
  const uint32_t kSpecial[] = {1, 16, 63, 64, 65, 127, 128, 129, execmem::kMaxSpanPages,
                               execmem::kArenaFreePages, execmem::kArenaFreePages + 1};
  // Whole arenas of one kind, and one kind with a single page of another at
  // word boundaries.
  for (int kind = 1; kind <= 2; ++kind) {
    std::vector<int> state(n, kind);
    std::fill(state.begin(), state.begin() + execmem::kMetaPages, 0);
    for (uint32_t pages : kSpecial) check(state, pages, "one kind");
    for (uint32_t at : {execmem::kMetaPages, 63u, 64u, 127u, 128u, 2047u, n - 65, n - 64, n - 1}) {
      for (int other = 0; other <= 2; ++other) {
        std::vector<int> s2 = state;
        s2[at] = other;
        for (uint32_t pages : kSpecial) check(s2, pages, "one page " + std::to_string(at));
      }
    }
  }
  // Random layouts: pieces of up to 8 .. 4096 pages.
  const uint32_t kPieces[] = {8, 70, 140, 300, 1200, n};
  int failures = 0;
  for (int round = 0; round < 3000 && failures < 5; ++round) {
    const uint32_t longest = kPieces[round % 6];
    const bool mostly_free = round % 7 == 0;
    std::vector<int> state(n, 0);
    for (uint32_t at = execmem::kMetaPages; at < n;) {
      const uint32_t len = std::min<uint32_t>(n - at, 1 + rng() % longest);
      const int st = mostly_free ? (rng() % 10 == 0 ? 0 : 1 + static_cast<int>(rng() % 2))
                                 : static_cast<int>(rng() % 3);
      std::fill(state.begin() + at, state.begin() + at + len, st);
      at += len;
    }
    const uint32_t pages = round % 3 == 0   ? kSpecial[rng() % std::size(kSpecial)]
                           : round % 3 == 1 ? 1 + rng() % 150
                                            : 1 + rng() % execmem::kMaxSpanPages;
    failures += !check(state, pages, "round " + std::to_string(round));
  }
}

TEST(Pool, AHugeBlockOwnsOnlyThePageMapSlotsItsMappingCovers) {
  // A huge block's mapping is aligned to an arena (256 MiB) but only as long
  // as the block: the rest of that range is the OS's to give to anyone (glibc's
  // 64 MiB heaps of other threads, in fuzz.api). The page map's 64 MiB slots
  // past the mapping stay empty, so that such memory is never taken for the
  // block's (with 256 MiB slots it was: "realloc(): pointer ... not allocated
  // by execmem").
  size_t mapped = 0;
  void* p = pool::AllocHuge(size_t{70} << 20, 4096, 0, &mapped);
  ASSERT_NE(p, nullptr);
  const uintptr_t base = execmem::SlotLookup(p);
  ASSERT_NE(base, 0u);
  EXPECT_EQ(base % execmem::kArenaSize, 0u);
  EXPECT_EQ(execmem::SlotLookup(reinterpret_cast<char*>(base) + mapped - 1), base);
  const uintptr_t past = (base + mapped + execmem::kSlotSize - 1) & ~(execmem::kSlotSize - 1);
  ASSERT_LT(past, base + execmem::kArenaSize);
  EXPECT_EQ(execmem::SlotLookup(reinterpret_cast<void*>(past)), 0u) << "a slot past the mapping";
  pool::FreeHuge(execmem::ArenaOf(base));
  EXPECT_EQ(execmem::SlotLookup(p), 0u);
}

// ---- moving cached pages (docs/large-blocks.md, eleventh step) ----------------

// Carves a span of pad + 10 pages into [pad | live 1 | run 8 | live 1], writes
// `fill` over the run and frees it: 8 cached pages no request of 9 or more can
// take. The pieces other than the run are returned for freeing.
std::vector<PoolPage*> CacheHemmedRun(uint32_t pad, char fill, char** run_start) {
  bool zeroed = false;
  PoolPage* z = pool::AllocSpan(pad + 10, &zeroed);
  if (z == nullptr) return {};
  auto piece = [z](uint32_t from, uint32_t pages) {
    PoolPage* p = DescriptorAfter(z, from);
    p->span_pages = static_cast<uint16_t>(pages);
    p->kind = PageKind::kFree;
    return p;
  };
  std::vector<PoolPage*> keep;
  if (pad != 0) keep.push_back(piece(0, pad));
  keep.push_back(piece(pad, 1));
  PoolPage* run = piece(pad + 1, 8);
  keep.push_back(piece(pad + 9, 1));
  *run_start = PageStart(run);
  memset(*run_start, fill, Bytes(8));
  pool::FreeSpan(run);
  return keep;
}

// The OS's mappings that lie within [base, base + size) (/proc/self/maps).
int MappingsWithin(uintptr_t base, size_t size) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) {
    const uintptr_t lo = std::stoull(line, nullptr, 16);
    const uintptr_t hi = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
    if (lo >= base && hi <= base + size) ++n;
  }
  return n;
}

TEST(Pool, ALargeRequestTakesTheCachedPagesThePurgeWouldGiveBackByMovingThem) {
  // A 20-page request (large: 16 pages or more) that no committed run holds
  // takes fresh pages past the committed heap's high-water mark, and the 8
  // cached pages go back for them. They move into its window instead
  // (mremap): the window's first 8 pages hold the run's bytes and are
  // resident before any touch (no fault), the run's old place reads zero, and
  // nothing is returned to the OS; held is what it was with the purge. With
  // moves off (secure mode), the purge gives them back as before.
  DecayGuard decay(kHour);  // neither the decay nor the size bound acts
  for (const bool moves : {true, false}) {
    SCOPED_TRACE(moves ? "moves on" : "moves off");
    pool::SetPageMoves(moves);
    pool::Purge(true);
    pool::ForgetPeak();
    char* old = nullptr;
    std::vector<PoolPage*> live = CacheHemmedRun(0, 0x5a, &old);
    ASSERT_EQ(live.size(), 2u);
    pool::ForgetPeak();  // the high-water mark at what is held now
    const PoolCounters before = pool::Counters();
    ASSERT_EQ(before.cached, Bytes(8));
    bool zeroed = true;
    PoolPage* c = pool::AllocSpan(20, &zeroed);
    ASSERT_NE(c, nullptr);
    const PoolCounters after = pool::Counters();
    EXPECT_EQ(after.cached, 0u);
    EXPECT_EQ(after.held, before.held + Bytes(12));
    char* start = PageStart(c);
    if (moves) {
      EXPECT_FALSE(zeroed) << "the window holds moved pages";
      EXPECT_EQ(after.returned_to_os, before.returned_to_os) << "purged instead of moved";
      EXPECT_EQ(execmem::os::ResidentBytesIn(start, Bytes(8)), Bytes(8)) << "not moved in";
      EXPECT_EQ(execmem::os::ResidentBytesIn(old, Bytes(8)), 0u) << "still at the old place";
      for (size_t off = 0; off < Bytes(8); off += 4096) ASSERT_EQ(start[off], 0x5a) << off;
      for (size_t off = 0; off < Bytes(8); off += 4096) ASSERT_EQ(old[off], 0) << off;
    } else {
      EXPECT_TRUE(zeroed);
      EXPECT_EQ(after.returned_to_os, before.returned_to_os + Bytes(8));
    }
    for (size_t off = Bytes(8); off < Bytes(20); off += 4096) ASSERT_EQ(start[off], 0) << off;
    memset(start, 1, Bytes(20));
    pool::FreeSpan(c);
    for (PoolPage* p : live) pool::FreeSpan(p);
    EXPECT_TRUE(pool::IsValid());
  }
  pool::SetPageMoves(true);
  pool::Purge(true);
}

TEST(Pool, PageMovesKeepTheArenasMappingsBoundedAndGoOnPastTheBound) {
  // Each move splits the arena's mappings at up to four pages (its edges); at
  // the bound the free uncommitted runs with edges inside are mapped afresh
  // (one mapping again) and moves go on. Checked with a bound of 24 edges
  // over 40 moves at shifting places: every request moves its 8 pages, the
  // edges stay within the bound, and the OS's mappings in the arena are never
  // more than the edges say (the pool's count is a superset of the real
  // boundaries). Without the joining, moves stop at the bound.
  DecayGuard decay(kHour);
  const uint32_t saved = pool::g_max_move_edges.load();
  pool::g_max_move_edges.store(24);
  for (uint32_t i = 0; i < 40; ++i) {
    SCOPED_TRACE(i);
    pool::Purge(true);
    pool::ForgetPeak();
    char* old = nullptr;
    std::vector<PoolPage*> live = CacheHemmedRun(3 * (i % 13), static_cast<char>(i + 1), &old);
    ASSERT_FALSE(live.empty());
    pool::ForgetPeak();
    const PoolCounters before = pool::Counters();
    bool zeroed = true;
    PoolPage* c = pool::AllocSpan(20, &zeroed);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(pool::Counters().returned_to_os, before.returned_to_os) << "not moved";
    EXPECT_EQ(PageStart(c)[0], static_cast<char>(i + 1));
    EXPECT_LE(pool::PageMoveEdges(), 24u);
    const uintptr_t base = execmem::SlotLookup(PageStart(c));
    EXPECT_LE(MappingsWithin(base, execmem::kArenaSize), static_cast<int>(pool::PageMoveEdges()) + 1);
    pool::FreeSpan(c);
    for (PoolPage* p : live) pool::FreeSpan(p);
    ASSERT_TRUE(pool::IsValid());
  }
  pool::g_max_move_edges.store(saved);
  pool::Purge(true);
}

// ---- contention ----------------------------------------------------------------

constexpr int kThreads = 4;

// One atomic per page of the first kTrackedArenas arenas: who holds it.
constexpr uint32_t kTrackedArenas = 64;

struct Shared {
  std::unique_ptr<std::atomic<uint32_t>[]> owner {
    new std::atomic<uint32_t>[ kTrackedArenas * execmem::kPagesPerArena ]()
  };
  std::atomic<uint64_t> ops{0}, refused{0}, double_claims{0}, lost_claims{0}, bad_tags{0},
      dirty_zeroed{0}, bad_heads{0}, untracked{0};
};

struct Held {
  PoolPage* head;
  uint32_t pages;
  uint64_t tag;
};

// Arena id * pages per arena + page index: a page's number across arenas.
uint32_t GlobalIndexOf(const PoolPage* p) {
  return execmem::ArenaOf(execmem::ArenaBaseOfPage(p))->id * execmem::kPagesPerArena +
         execmem::PageIndexOf(p);
}

uint64_t TagOf(uint64_t base, uint32_t page) {
  return base ^ (uint64_t{page} * 0x9e3779b97f4a7c15);
}

void Claim(Shared& s, const Held& h, uint32_t who) {
  const uint32_t g = GlobalIndexOf(h.head);
  if (g + h.pages > kTrackedArenas * execmem::kPagesPerArena) {
    s.untracked.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  for (uint32_t i = 0; i < h.pages; ++i) {
    if (s.owner[g + i].exchange(who, std::memory_order_acq_rel) != 0) {
      s.double_claims.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void Release(Shared& s, const Held& h, uint32_t who) {
  const uint32_t g = GlobalIndexOf(h.head);
  if (g + h.pages > kTrackedArenas * execmem::kPagesPerArena) return;
  for (uint32_t i = 0; i < h.pages; ++i) {
    if (s.owner[g + i].exchange(0, std::memory_order_acq_rel) != who) {
      s.lost_claims.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void GiveBack(Shared& s, const Held& h, uint32_t who) {
  if (h.head->span_pages != h.pages) s.bad_heads.fetch_add(1, std::memory_order_relaxed);
  char* m = PageStart(h.head);
  for (uint32_t i = 0; i < h.pages; ++i) {
    uint64_t got;
    memcpy(&got, m + Bytes(i), sizeof got);
    if (got != TagOf(h.tag, i)) s.bad_tags.fetch_add(1, std::memory_order_relaxed);
  }
  Release(s, h, who);
  pool::FreeSpan(h.head);
}

struct Mix {
  const uint32_t* lengths;
  size_t num_lengths;
  size_t hold;  // spans held at most at once
};
// Mostly short spans (what small size classes use), some long ones.
constexpr uint32_t kMixedLengths[] = {1, 1, 1, 1, 2, 2, 3, 4, 5, 7, 8, 16, 33};
constexpr Mix kMixed{kMixedLengths, std::size(kMixedLengths), 8};
// One stack, few spans held: pop X, pop Y, push X is the pattern under which
// an unversioned Treiber stack hands Y out twice (ABA).
constexpr uint32_t kOnePage[] = {1};
constexpr Mix kAba{kOnePage, 1, 3};

void Churn(Shared& s, uint32_t who, uint64_t ops, Mix mix) {
  std::mt19937_64 rng(who * 0x1234567);
  std::vector<Held> held;
  held.reserve(mix.hold);
  for (uint64_t op = 0; op < ops; ++op) {
    const bool take = held.empty() || (held.size() < mix.hold && (rng() & 1));
    if (take) {
      const uint32_t pages = mix.lengths[rng() % mix.num_lengths];
      bool zeroed = false;
      PoolPage* head = pool::AllocSpan(pages, &zeroed);
      if (head == nullptr) {
        s.refused.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (head->span_pages != pages || head->kind != PageKind::kFree) {
        s.bad_heads.fetch_add(1, std::memory_order_relaxed);
      }
      const Held h{head, pages, (uint64_t{who} << 56) ^ (op << 8) ^ 0xa5};
      Claim(s, h, who);
      char* m = PageStart(head);
      for (uint32_t i = 0; i < pages; ++i) {
        uint64_t old;
        memcpy(&old, m + Bytes(i), sizeof old);
        if (zeroed && old != 0) s.dirty_zeroed.fetch_add(1, std::memory_order_relaxed);
        const uint64_t tag = TagOf(h.tag, i);
        memcpy(m + Bytes(i), &tag, sizeof tag);
      }
      held.push_back(h);
    } else {
      const size_t i = rng() % held.size();
      GiveBack(s, held[i], who);
      held[i] = held.back();
      held.pop_back();
    }
  }
  for (const Held& h : held) GiveBack(s, h, who);
  s.ops.fetch_add(ops, std::memory_order_relaxed);
}

void ExpectClean(const Shared& s, uint64_t want_ops) {
  EXPECT_EQ(s.ops.load(), want_ops);
  EXPECT_EQ(s.refused.load(), 0u);
  EXPECT_EQ(s.double_claims.load(), 0u) << "a page was handed to two holders at once";
  EXPECT_EQ(s.lost_claims.load(), 0u);
  EXPECT_EQ(s.bad_tags.load(), 0u) << "a held span's memory changed under its holder";
  EXPECT_EQ(s.dirty_zeroed.load(), 0u) << "a span said to be zeroed was not";
  EXPECT_EQ(s.bad_heads.load(), 0u);
  EXPECT_EQ(s.untracked.load(), 0u);
}

void ExpectNothingLost(const PoolCounters& before, const PoolCounters& after) {
  EXPECT_EQ(InUse(after), InUse(before)) << "every span went back to the pool";
  EXPECT_LE(after.cached, after.held);
  // At most kThreads * kMixed.hold spans of each length are out at once;
  // spans that went missing would make the pool carve arena after arena.
  EXPECT_LE(after.arenas, before.arenas + 3) << "arenas grew: spans were lost";
  EXPECT_TRUE(pool::IsValid());
}

TEST(PoolContention, FourThreadsGetAndPutMillionsOfSpans) {
  DecayGuard decay(kDefaultDecayMs);
  const uint64_t per_thread = kSanitized ? 100'000 : 1'500'000;
  Shared s;
  const PoolCounters before = pool::Counters();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(Churn, std::ref(s), static_cast<uint32_t>(t + 1), per_thread, kMixed);
  }
  for (auto& t : threads) t.join();
  ExpectClean(s, per_thread * kThreads);
  ExpectNothingLost(before, pool::Counters());
}

TEST(PoolContention, FourThreadsOnOneStackNoSpanIsHandedOutTwice) {
  DecayGuard decay(kDefaultDecayMs);
  const uint64_t per_thread = kSanitized ? 200'000 : 3'000'000;
  Shared s;
  const PoolCounters before = pool::Counters();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(Churn, std::ref(s), static_cast<uint32_t>(t + 1), per_thread, kAba);
  }
  for (auto& t : threads) t.join();
  ExpectClean(s, per_thread * kThreads);
  ExpectNothingLost(before, pool::Counters());
}

// The same while spans move between the hot and cold stacks underneath: a
// short decay makes every free and every allocation purge, and a fifth thread
// purges in a loop. A span decommitted while held would lose its tags.
TEST(PoolContention, GetAndPutWhileAnotherThreadPurges) {
  DecayGuard decay(1);
  const uint64_t per_thread = kSanitized ? 40'000 : 500'000;
  Shared s;
  const PoolCounters before = pool::Counters();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> purges{0};
  std::thread purger([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      pool::Purge(purges.load(std::memory_order_relaxed) % 4 == 0);
      purges.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(Churn, std::ref(s), static_cast<uint32_t>(t + 1), per_thread, kMixed);
  }
  for (auto& t : threads) t.join();
  stop = true;
  purger.join();
  EXPECT_GT(purges.load(), 0u);
  ExpectClean(s, per_thread * kThreads);
  const PoolCounters after = pool::Counters();
  EXPECT_GT(after.returned_to_os, before.returned_to_os);
  ExpectNothingLost(before, after);
}

// Large spans among short ones: donors and windows of page moves.
constexpr uint32_t kLargeMixLengths[] = {1, 2, 4, 8, 16, 20, 24, 33, 64, 100};
constexpr Mix kLargeMix{kLargeMixLengths, std::size(kLargeMixLengths), 6};

TEST(PoolContention, PageMovesWhileThreeThreadsChurnKeepEverySpanIntact) {
  // A fourth thread makes 20-page requests past the high-water mark with 8
  // pages cached between live ones, so that cached pages move (mremap) while
  // three threads take and give back spans of 1-100 pages: no held span's
  // memory changes under its holder (the moved pages are claimed as a
  // purge's are), no page is handed out twice, a span said zero reads zero.
  DecayGuard decay(kHour);
  const uint64_t per_thread = kSanitized ? 20'000 : 200'000;
  const uint32_t moves = kSanitized ? 300 : 3'000;
  Shared s;
  const PoolCounters before = pool::Counters();
  std::thread mover([&s, moves] {
    constexpr uint32_t kWho = kThreads + 1;
    for (uint32_t i = 0; i < moves; ++i) {
      char* old = nullptr;
      std::vector<PoolPage*> live = CacheHemmedRun(0, 0x5a, &old);
      if (live.empty()) {
        s.refused.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      pool::ForgetPeak();
      bool zeroed = false;
      PoolPage* c = pool::AllocSpan(20, &zeroed);
      if (c == nullptr) {
        s.refused.fetch_add(1, std::memory_order_relaxed);
      } else {
        const Held h{c, 20, (uint64_t{kWho} << 56) ^ (uint64_t{i} << 8) ^ 0x3c};
        Claim(s, h, kWho);
        char* m = PageStart(c);
        for (uint32_t p = 0; p < 20; ++p) {
          uint64_t was;
          memcpy(&was, m + Bytes(p), sizeof was);
          if (zeroed && was != 0) s.dirty_zeroed.fetch_add(1, std::memory_order_relaxed);
          const uint64_t tag = TagOf(h.tag, p);
          memcpy(m + Bytes(p), &tag, sizeof tag);
        }
        GiveBack(s, h, kWho);
      }
      for (PoolPage* p : live) pool::FreeSpan(p);
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads - 1; ++t) {
    threads.emplace_back(Churn, std::ref(s), static_cast<uint32_t>(t + 1), per_thread, kLargeMix);
  }
  for (auto& t : threads) t.join();
  mover.join();
  ExpectClean(s, per_thread * (kThreads - 1));
  ExpectNothingLost(before, pool::Counters());
  pool::Purge(true);
}

// Every free decommits; the cold stacks carry all the traffic and every span
// handed out must read zero.
TEST(PoolContention, ZeroDecayUnderContentionHandsOutZeroedSpans) {
  DecayGuard decay(0);
  const uint64_t per_thread = kSanitized ? 5'000 : 40'000;
  Shared s;
  const PoolCounters before = pool::Counters();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(Churn, std::ref(s), static_cast<uint32_t>(t + 1), per_thread, kMixed);
  }
  for (auto& t : threads) t.join();
  ExpectClean(s, per_thread * kThreads);
  const PoolCounters after = pool::Counters();
  EXPECT_GT(after.returned_to_os, before.returned_to_os);
  ExpectNothingLost(before, after);
}

}  // namespace
